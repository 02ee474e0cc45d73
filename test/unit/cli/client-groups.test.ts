import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { groupIdenticalClients } from '../../../src/cli/client-groups.js';
import { clientJson, renderClientsTable } from '../../../src/cli/commands/clients.js';
import { createOutput } from '../../../src/cli/output.js';
import { HOUR, makeAccessToken, makeClient, T0 } from '../../helpers/records.js';

const claude = (createdAt: number, overrides = {}) =>
  makeClient({
    clientName: 'Claude',
    redirectUris: ['https://claude.ai/api/mcp/auth_callback'],
    tokenEndpointAuthMethod: 'client_secret_post',
    createdAt,
    ...overrides,
  }).client;

describe('grouping identical registrations (clients list)', () => {
  it('folds registrations with the same name, redirect URIs and auth method; keeps order', () => {
    const a = claude(T0);
    const chatgpt = makeClient({ createdAt: T0 + 1 }).client;
    const b = claude(T0 + 2);
    const c = claude(T0 + 3);
    expect(groupIdenticalClients([a, chatgpt, b, c])).toEqual([[a, b, c], [chatgpt]]);
  });

  it.each([
    [{ clientName: 'Claude (work)' }, 'another name'],
    [{ clientName: null }, 'no name'],
    [{ redirectUris: ['https://claude.com/api/mcp/auth_callback'] }, 'another redirect URI'],
    [{ redirectUris: ['https://claude.ai/api/mcp/auth_callback', 'https://claude.com/api/mcp/auth_callback'] }, 'an extra redirect URI'],
    [{ tokenEndpointAuthMethod: 'none', clientSecretHash: null }, 'another auth method'],
  ])('a registration with %j (%s) is not folded in', (overrides, _why) => {
    const a = claude(T0);
    const other = claude(T0 + 1, overrides);
    expect(groupIdenticalClients([a, other])).toEqual([[a], [other]]);
  });

  it('redirect URIs in another order are another registration', () => {
    const a = claude(T0, { redirectUris: ['https://a.example/cb', 'https://b.example/cb'] });
    const b = claude(T0 + 1, { redirectUris: ['https://b.example/cb', 'https://a.example/cb'] });
    expect(groupIdenticalClients([a, b])).toHaveLength(2);
  });

  it('the first-party client and metadata-document clients always stand alone', () => {
    const first = claude(T0, { firstParty: true });
    const twin = claude(T0 + 1);
    const doc1 = claude(T0 + 2, { clientId: 'https://one.example/client.json' });
    const doc2 = claude(T0 + 3, { clientId: 'https://two.example/client.json' });
    expect(groupIdenticalClients([first, twin, doc1, doc2])).toEqual([[first], [twin], [doc1], [doc2]]);
  });
});

describe('clients list table', () => {
  const output = createOutput(
    Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }),
    new Writable({ write: (_c, _e, cb) => cb() }),
    {},
  );
  const now = T0 + 100 * HOUR;

  it('shows 42 identical Claude registrations as one row "Claude ×42" with the newest id and the pile’s tokens; JSON stays one object per client', () => {
    const pile = Array.from({ length: 42 }, (_, i) => claude(T0 + i * HOUR));
    const chatgpt = makeClient({ clientName: 'ChatGPT', createdAt: T0 + HOUR / 2 }).client;
    const tokens = [
      makeAccessToken(pile[3]!.clientId, 'g1', { createdAt: now - HOUR, expiresAt: now + HOUR, lastUsedAt: now - 2 * HOUR }).record,
      makeAccessToken(pile[40]!.clientId, 'g2', { createdAt: now - HOUR, expiresAt: now + HOUR }).record,
    ];
    const table = renderClientsTable(output, [...pile, chatgpt], tokens, now);
    const lines = table.split('\n');
    expect(lines).toHaveLength(4); // header, ChatGPT, the Claude pile, the ×N note
    const claudeRow = lines.find((l) => l.includes('Claude'))!;
    expect(claudeRow).toContain('Claude ×42');
    expect(claudeRow.startsWith(pile[41]!.clientId.slice(0, 8))).toBe(true);
    expect(claudeRow).toMatch(/2 h ago\s+2$/); // last use of the pile, 2 active tokens
    expect(lines[3]).toMatch(/^×N: N registrations with the same name/);
    expect(pile.concat(chatgpt).map((c) => clientJson(c, tokens, now))).toHaveLength(43);
  });

  it('without identical registrations the table is one row per client and has no note', () => {
    const table = renderClientsTable(output, [claude(T0), makeClient({ createdAt: T0 + 1 }).client], [], now);
    expect(table.split('\n')).toHaveLength(3);
    expect(table).not.toContain('×');
  });

  it('a metadata-document client shows its URL, and does not lengthen the short ids of the others', () => {
    const doc = claude(T0, { clientId: 'https://claude.ai/oauth/mcp-oauth-client-metadata', clientSecretHash: null, tokenEndpointAuthMethod: 'none' });
    const doc2 = claude(T0 + 1, { clientId: 'https://claude.ai/oauth/mcp-oauth-client-metadata-2', clientSecretHash: null, tokenEndpointAuthMethod: 'none' });
    const registered = makeClient({ clientId: '8c2f6a1e-0b5d-4e7a-9f10-2b3c4d5e6f70', createdAt: T0 + 2 }).client;
    const lines = renderClientsTable(output, [doc, doc2, registered], [], now).split('\n');
    expect(lines[1]).toMatch(/^https:\/\/claude\.ai\/oauth\/mcp-oauth-clien…\s/);
    expect(lines[3]).toMatch(/^8c2f6a1e\s/);
  });
});
