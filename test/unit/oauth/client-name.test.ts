import { describe, expect, it } from 'vitest';
import { clientNameIsVouched } from '../../../src/oauth/client-name.js';

const registered = { clientId: '5b1f6a3e-0c8b-4a57-9b8a-3f1d2c4e5a6b' };

describe('RFC 7591 §5: a client name is its own claim unless something it cannot fake vouches for it', () => {
  it.each([
    ['a registered client sending the answer to ChatGPT’s redirect', registered, 'https://chatgpt.com/connector_platform_oauth_redirect', true],
    ['a registered client sending it to ChatGPT’s per-connector redirect', registered, 'https://chatgpt.com/connector/oauth/abc_123', true],
    ['a registered client sending it to Claude’s redirect', registered, 'https://claude.ai/api/mcp/auth_callback', true],
    ['a registered client sending it to another host', registered, 'https://chatgpt.example.net/callback', false],
    ['a registered client on loopback (any local program)', registered, 'http://127.0.0.1:33418/callback', false],
    ['a registered client on an app scheme', registered, 'cursor://anysphere.cursor-retrieval/oauth/callback', false],
    [
      'a metadata-document client whose document host is the redirect host',
      { clientId: 'https://app.example.com/oauth/client.json' },
      'https://app.example.com/callback',
      true,
    ],
    [
      'a metadata-document client redirecting to a subdomain of its document host',
      { clientId: 'https://example.com/client.json' },
      'https://auth.example.com/cb',
      true,
    ],
    ['a metadata-document client redirecting elsewhere', { clientId: 'https://app.example.com/client.json' }, 'https://evil.example.net/cb', false],
    ['a metadata-document client redirecting to a look-alike host', { clientId: 'https://example.com/client.json' }, 'https://notexample.com/cb', false],
    ['the server’s own first-party client', { ...registered, firstParty: true }, 'http://localhost:8787/oauth/callback', true],
  ])('%s → %s', (_label, client, redirectUri, vouched) => {
    expect(clientNameIsVouched(client, redirectUri)).toBe(vouched);
  });
});
