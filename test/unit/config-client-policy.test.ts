import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { useTmpDirs } from '../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-config-policy-');

async function load(auth: unknown) {
  const dir = await tmp();
  const path = join(dir, 'cupcake.config.json');
  await writeFile(path, JSON.stringify({ auth }));
  try {
    return { config: loadConfig({ path, env: {} }).config, problems: [] as string[] };
  } catch (error) {
    if (error instanceof ConfigError) return { config: undefined, problems: error.problems };
    throw error;
  }
}

describe('config: trusted clients, redirect URI allowlist, pruning', () => {
  it('defaults: all three presets, no allowlist (open registration), no automatic pruning', async () => {
    const { config } = await load({});
    expect(config?.auth.trustedClients).toEqual(['chatgpt', 'claude', 'loopback']);
    expect(config?.auth.redirectUriAllowlist).toBeUndefined();
    expect(config?.auth.pruneAbandonedClientsAfter).toBeUndefined();
  });

  it('reads an allowlist, narrowed presets and a pruning age', async () => {
    const { config } = await load({
      trustedClients: ['claude'],
      redirectUriAllowlist: ['https://*.example.com/oauth/callback', 'cursor://anysphere.cursor-retrieval/oauth/*/callback'],
      pruneAbandonedClientsAfter: '30d',
    });
    expect(config?.auth).toMatchObject({
      trustedClients: ['claude'],
      redirectUriAllowlist: ['https://*.example.com/oauth/callback', 'cursor://anysphere.cursor-retrieval/oauth/*/callback'],
      pruneAbandonedClientsAfter: 30 * 86_400_000,
    });
  });

  it.each([
    [{ trustedClients: ['cursor'] }, 'auth.trustedClients.0: expected one of "chatgpt", "claude", "loopback"'],
    [
      { redirectUriAllowlist: ['not a uri'] },
      'auth.redirectUriAllowlist.0: expected a redirect URI pattern like "https://app.example.com/oauth/*" (no spaces, no fragment)',
    ],
    [
      { redirectUriAllowlist: ['https://app.example.com/cb#x'] },
      'auth.redirectUriAllowlist.0: expected a redirect URI pattern like "https://app.example.com/oauth/*" (no spaces, no fragment)',
    ],
    [
      { redirectUriAllowlist: ['*://app.example.com/cb'] },
      'auth.redirectUriAllowlist.0: expected a redirect URI pattern like "https://app.example.com/oauth/*" (no spaces, no fragment)',
    ],
    [{ redirectUriAllowlist: 'https://app.example.com/cb' }, expect.stringMatching(/^auth\.redirectUriAllowlist: /)],
    [{ pruneAbandonedClientsAfter: 'monthly' }, 'auth.pruneAbandonedClientsAfter: expected a duration like "30d"'],
  ])('%j is one clear line', async (auth, problem) => {
    expect((await load(auth)).problems).toEqual([problem]);
  });
});
