import { describe, expect, it } from 'vitest';
import { compileRedirectPattern, createRedirectUriPolicy, TRUSTED_CLIENTS } from '../../../src/oauth/redirect-policy.js';

describe('trusted-client presets', () => {
  it.each([
    ['chatgpt', 'https://chatgpt.com/connector_platform_oauth_redirect'],
    ['chatgpt', 'https://chatgpt.com/connector/oauth/c_6f1e0a8b2d4c'],
    ['chatgpt', 'https://chatgpt.com/connector/oauth/AbC-123_x'],
    ['claude', 'https://claude.ai/api/mcp/auth_callback'],
    ['claude', 'https://claude.com/api/mcp/auth_callback'],
    ['loopback', 'http://localhost/callback'],
    ['loopback', 'http://localhost:6274/oauth/callback/debug'],
    ['loopback', 'http://127.0.0.1:33418/'],
    ['loopback', 'http://[::1]:8080/cb?x=1'],
  ] as const)('%s allows %s', (preset, uri) => {
    expect(TRUSTED_CLIENTS[preset].allows(uri)).toBe(true);
  });

  it.each([
    ['chatgpt', 'https://chatgpt.com/connector_platform_oauth_redirect/'],
    ['chatgpt', 'https://chatgpt.com/connector_platform_oauth_redirect?x=1'],
    ['chatgpt', 'https://chatgpt.com/connector/oauth/'],
    ['chatgpt', 'https://chatgpt.com/connector/oauth/a/b'],
    ['chatgpt', 'https://chatgpt.com.evil.example/connector/oauth/abc'],
    ['chatgpt', 'https://evil.example/connector_platform_oauth_redirect'],
    ['chatgpt', 'http://chatgpt.com/connector_platform_oauth_redirect'],
    ['claude', 'https://claude.ai/api/mcp/auth_callback2'],
    ['claude', 'https://claude.ai.evil.example/api/mcp/auth_callback'],
    ['claude', 'https://evil.claude.ai/api/mcp/auth_callback'],
    ['loopback', 'https://localhost/callback'],
    ['loopback', 'http://localhost.evil.example/callback'],
    ['loopback', 'http://127.0.0.2/callback'],
    ['loopback', 'http://user@localhost/callback'],
    ['loopback', 'cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback'],
  ] as const)('%s refuses %s', (preset, uri) => {
    expect(TRUSTED_CLIENTS[preset].allows(uri)).toBe(false);
  });
});

describe('allowlist patterns: exact URIs, "*" for one host label or one path segment', () => {
  it.each([
    ['https://app.example.com/oauth/callback', 'https://app.example.com/oauth/callback', true],
    ['https://app.example.com/oauth/callback', 'https://app.example.com/oauth/callback/', false],
    ['https://app.example.com/oauth/callback', 'https://app.example.com/oauth/callbackX', false],
    ['https://app.example.com/oauth/callback', 'https://app.example.com/oauth/callback?x=1', false],
    ['https://app.example.com/oauth/callback', 'https://APP.example.com/oauth/callback', false],
    ['https://*.example.com/oauth/callback', 'https://app.example.com/oauth/callback', true],
    ['https://*.example.com/oauth/callback', 'https://a.b.example.com/oauth/callback', false],
    ['https://*.example.com/oauth/callback', 'https://example.com/oauth/callback', false],
    ['https://*.example.com/oauth/callback', 'https://evil.example/x.example.com/oauth/callback', false],
    ['https://*.example.com/oauth/callback', 'https://evil.example:443.example.com/oauth/callback', false],
    ['https://*.example.com/oauth/callback', 'https://user@app.example.com/oauth/callback', false],
    ['https://app.example.com/oauth/*', 'https://app.example.com/oauth/cb', true],
    ['https://app.example.com/oauth/*', 'https://app.example.com/oauth/a/b', false],
    ['https://app.example.com/oauth/*', 'https://app.example.com/oauth/', false],
    ['https://app.example.com/oauth/*', 'https://app.example.com/oauth/cb?next=/x', false],
    ['https://app.example.com/*/callback', 'https://app.example.com/tenant-1/callback', true],
    ['https://app.example.com/cb?tenant=*', 'https://app.example.com/cb?tenant=acme', true],
    ['https://app.example.com/cb?tenant=*', 'https://app.example.com/cb?tenant=a/b', false],
    ['https://app.example.com:*/cb', 'https://app.example.com:8443/cb', true],
    ['https://app.example.com.*/cb', 'https://app.example.com.evil/cb', true],
    ['cursor://anysphere.cursor-retrieval/oauth/*/callback', 'cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback', true],
    ['cursor://anysphere.cursor-retrieval/oauth/*/callback', 'cursor://anysphere.cursor-retrieval/oauth/a/b/callback', false],
    ['com.example.app:/oauth2redirect', 'com.example.app:/oauth2redirect', true],
    ['https://app.example.com/a.b(c)', 'https://app.example.com/a.b(c)', true],
    ['https://app.example.com/a.b(c)', 'https://app.example.com/aXb(c)', false],
  ])('%s vs %s → %s', (pattern, uri, expected) => {
    expect(compileRedirectPattern(pattern).test(uri)).toBe(expected);
  });
});

describe('the policy', () => {
  it('is open (null) without an allowlist, whatever the presets', () => {
    expect(createRedirectUriPolicy(['chatgpt', 'claude', 'loopback'], undefined)).toBeNull();
    expect(createRedirectUriPolicy([], undefined)).toBeNull();
  });

  it('with an allowlist, allows the presets and the patterns, nothing else', () => {
    const policy = createRedirectUriPolicy(['chatgpt', 'loopback'], ['https://app.example.com/oauth/*'])!;
    expect(policy.allows('https://chatgpt.com/connector/oauth/abc')).toBe(true);
    expect(policy.allows('http://127.0.0.1:5555/cb')).toBe(true);
    expect(policy.allows('https://app.example.com/oauth/cb')).toBe(true);
    expect(policy.allows('https://claude.ai/api/mcp/auth_callback')).toBe(false);
    expect(policy.allows('https://evil.example/cb')).toBe(false);
  });

  it('an empty allowlist with no presets closes registration entirely', () => {
    const policy = createRedirectUriPolicy([], [])!;
    expect(policy.allows('https://chatgpt.com/connector_platform_oauth_redirect')).toBe(false);
    expect(policy.allows('http://localhost/cb')).toBe(false);
  });
});
