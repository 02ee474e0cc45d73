import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword, hashPassword } from '../../src/oauth/secrets.js';
import { sha256Hex, tokenIdFromHash } from '../../src/shared/ids.js';
import { createFileEventLog, EVENTS_FILE, openFileStore, type StoreChange } from '../../src/store/index.js';
import type { AccessTokenRecord, ClientRecord } from '../../src/store/types.js';
import { assertBuilt, BIN, cleanEnv, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { HOUR, makeAccessToken, makeClient } from '../helpers/records.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { SseReader } from '../helpers/sse.js';
import { waitFor } from '../helpers/wait.js';
import { mintToken } from '../helpers/tokens.js';
import type { StatusJson } from '../../src/cli/commands/status.js';
import { VERSION } from '../../src/shared/version.js';

const MINUTE = 60_000;
const ANSI = /\u001b\[/;

const tmp = useTmpDirs('cupcake-admin-');
killChildrenAfterEach();
beforeAll(assertBuilt);

interface Seeded {
  dir: string;
  dataDir: string;
  chatgpt: ClientRecord;
  claude: ClientRecord;
  cursor: ClientRecord;
  /** Every plaintext secret and stored hash: none may ever appear in CLI output. */
  secrets: string[];
  tokens: { active: AccessTokenRecord; active2: AccessTokenRecord; revoked: AccessTokenRecord; expired: AccessTokenRecord; cursor: AccessTokenRecord };
}

/**
 * A project folder with a config and a data dir holding three clients and five tokens. Times are
 * relative to now, with minutes of slack, so relative times in tables are deterministic.
 */
async function seedProject(): Promise<Seeded> {
  const dir = await tmp();
  const dataDir = join(dir, '.cupcake');
  await writeFile(join(dir, 'cupcake.config.json'), `${JSON.stringify({ baseUrl: 'http://localhost:8787', dataDir: '.cupcake' })}\n`);
  const now = Date.now();
  const chatgpt = makeClient({
    clientId: 'c0ffee00-1111-4111-8111-111111111111',
    clientName: 'ChatGPT',
    createdAt: now - 3 * HOUR - 5 * MINUTE,
    lastUsedAt: now - 10 * MINUTE,
  });
  const claude = makeClient({
    clientId: 'c0ffee99-2222-4222-8222-222222222222',
    clientName: 'Claude, with a client name far longer than any table column should show',
    redirectUris: ['https://claude.ai/api/mcp/auth_callback', 'https://claude.com/api/mcp/auth_callback'],
    tokenEndpointAuthMethod: 'client_secret_post',
    createdAt: now - 2 * HOUR - 5 * MINUTE,
  });
  const cursor = makeClient({
    clientId: 'abcdef12-3333-4333-8333-333333333333',
    clientSecretHash: null,
    clientName: null,
    redirectUris: ['cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback'],
    tokenEndpointAuthMethod: 'none',
    createdAt: now - 26 * HOUR,
  });
  const resource = 'http://localhost:8787/mcp';
  const active = makeAccessToken(chatgpt.client.clientId, 'grant-1', {
    resource,
    createdAt: now - 3 * HOUR - MINUTE,
    expiresAt: now + 21 * HOUR - MINUTE,
    lastUsedAt: now - 10 * MINUTE,
  });
  const active2 = makeAccessToken(chatgpt.client.clientId, 'grant-2', { resource, createdAt: now - 2 * HOUR - MINUTE, expiresAt: now + 22 * HOUR - MINUTE });
  const revoked = makeAccessToken(claude.client.clientId, 'grant-3', {
    resource,
    createdAt: now - 2 * HOUR - MINUTE,
    expiresAt: now + 22 * HOUR - MINUTE,
    revokedAt: now - HOUR - MINUTE,
  });
  const expired = makeAccessToken(claude.client.clientId, 'grant-4', { resource, createdAt: now - 25 * HOUR - MINUTE, expiresAt: now - HOUR - MINUTE });
  const cursorToken = makeAccessToken(cursor.client.clientId, 'grant-5', { resource, createdAt: now - 5 * HOUR - MINUTE, expiresAt: now + 19 * HOUR - MINUTE });

  const store = await openFileStore({ dataDir });
  try {
    await store.setOwnerPasswordHash(await hashPassword('old-owner-password'), now);
    for (const { client } of [chatgpt, claude, cursor]) await store.createClient(client);
    for (const t of [active, active2, revoked, expired, cursorToken]) await store.saveTokens(t.record);
  } finally {
    await store.close();
  }
  const secrets = [chatgpt, claude].flatMap((c) => [c.secret, c.client.clientSecretHash!]);
  for (const t of [active, active2, revoked, expired, cursorToken]) secrets.push(t.token, t.record.tokenHash);
  return {
    dir,
    dataDir,
    chatgpt: chatgpt.client,
    claude: claude.client,
    cursor: cursor.client,
    secrets,
    tokens: { active: active.record, active2: active2.record, revoked: revoked.record, expired: expired.record, cursor: cursorToken.record },
  };
}

async function readStore(dataDir: string) {
  const store = await openFileStore({ dataDir });
  try {
    return { clients: await store.listClients(), tokens: await store.listAccessTokens(), owner: await store.getOwner() };
  } finally {
    await store.close();
  }
}

async function readEvents(dataDir: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(join(dataDir, EVENTS_FILE), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function expectNoSecrets(seed: Seeded, ...outputs: string[]) {
  for (const output of outputs) for (const secret of seed.secrets) expect(output).not.toContain(secret);
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

describe('without a data dir', () => {
  it.each([
    ['clients', 'list'],
    ['clients', 'show', 'abc'],
    ['tokens', 'list'],
    ['tokens', 'revoke', '--all'],
    ['events', 'tail'],
    ['passwd', '--password-stdin'],
  ])('%s %s says where it looked, suggests init, exits 1 and creates nothing', async (...args) => {
    const dir = await tmp();
    const result = await runCli(args, { cwd: dir, input: 'a-new-password\n' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`no data dir at ${join(dir, '.cupcake')}`);
    expect(result.stderr).toContain(join(dir, 'cupcake.config.json'));
    expect(result.stderr).toContain('cupcake-mcp init');
    expect(existsSync(join(dir, '.cupcake'))).toBe(false);
  });

  it('names the config file whose dataDir is missing', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'cupcake.config.json'), JSON.stringify({ dataDir: 'state' }));
    const result = await runCli(['clients', 'list'], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`no data dir at ${join(dir, 'state')} (the "dataDir" of ${join(dir, 'cupcake.config.json')})`);
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });

  it('status still answers, with nothing running and nothing registered', async () => {
    const dir = await tmp();
    const result = await runCli(['status', '--json'], { cwd: dir });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      version: VERSION,
      config: null,
      base_url: 'http://localhost:8787',
      data_dir: join(dir, '.cupcake'),
      server: { running: false, pid: null, url: null, version: null, started_at: null, uptime_seconds: null, sessions: null },
      clients: 0,
      active_tokens: 0,
    });
    expect(existsSync(join(dir, '.cupcake'))).toBe(false);
  });

  it('an empty data dir lists nothing and gets no db.json written by a listing', async () => {
    const dir = await tmp();
    await mkdir(join(dir, '.cupcake'));
    const result = await runCli(['clients', 'list', '--json'], { cwd: dir });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([]);
    expect(existsSync(join(dir, '.cupcake', 'db.json'))).toBe(false);
  });
});

describe('clients', () => {
  it('clients list --json prints exactly the documented shape, oldest first, and nothing else', async () => {
    const seed = await seedProject();
    const result = await runCli(['clients', 'list', '--json'], { cwd: seed.dir });
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    expect(parsed).toEqual([
      {
        client_id: seed.cursor.clientId,
        client_name: null,
        redirect_uris: seed.cursor.redirectUris,
        token_endpoint_auth_method: 'none',
        created_at: iso(seed.cursor.createdAt),
        last_used_at: null,
        active_tokens: 1,
      },
      {
        client_id: seed.chatgpt.clientId,
        client_name: 'ChatGPT',
        redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'],
        token_endpoint_auth_method: 'client_secret_basic',
        created_at: iso(seed.chatgpt.createdAt),
        // The newest use of the client or any of its tokens.
        last_used_at: iso(seed.tokens.active.lastUsedAt),
        active_tokens: 2,
      },
      {
        client_id: seed.claude.clientId,
        client_name: seed.claude.clientName,
        redirect_uris: seed.claude.redirectUris,
        token_endpoint_auth_method: 'client_secret_post',
        created_at: iso(seed.claude.createdAt),
        last_used_at: null,
        // One revoked and one expired token: none active.
        active_tokens: 0,
      },
    ]);
    for (const row of parsed)
      expect(Object.keys(row).sort()).toEqual([
        'active_tokens',
        'client_id',
        'client_name',
        'created_at',
        'last_used_at',
        'redirect_uris',
        'token_endpoint_auth_method',
      ]);
    expectNoSecrets(seed, result.stdout, result.stderr);
  });

  it('clients list prints an aligned table with relative times and truncated values, without ANSI codes off a TTY', async () => {
    const seed = await seedProject();
    // NO_COLOR empty counts as unset (no-color.org): only "stdout is not a TTY" turns colour off here.
    const result = await runCli(['clients', 'list'], { cwd: seed.dir, env: { NO_COLOR: '', FORCE_COLOR: '1' } });
    expect(result.code).toBe(0);
    expect(result.stdout).not.toMatch(ANSI);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^ID\s+NAME\s+REDIRECT URI\s+AUTH\s+CREATED\s+LAST USED\s+TOKENS$/);
    const [cursor, chatgpt, claude] = lines.slice(1);
    expect(cursor).toMatch(/^abcdef12 +\(no name\) +cursor:\/\/anysphere\.cursor-retrieval\/oau… +public +1 d ago +never +1$/);
    expect(chatgpt).toMatch(/^c0ffee00 +ChatGPT +https:\/\/chatgpt\.com\/connector_platform_… +basic +3 h ago +10 min ago +2$/);
    expect(claude).toMatch(/^c0ffee99 +Claude, with a client n… +https:\/\/claude\.ai\/api\/mcp\/auth_callback \+1 +post +2 h ago +never +0$/);
    // Aligned: every column starts at the same offset on every line.
    for (const header of ['NAME', 'AUTH', 'CREATED', 'TOKENS']) {
      const at = lines[0]!.indexOf(header);
      for (const line of lines.slice(1)) expect(line[at - 1]).toBe(' ');
    }
    expectNoSecrets(seed, result.stdout);
  });

  it('NO_COLOR output carries no ANSI codes in any listing', async () => {
    const seed = await seedProject();
    for (const args of [['clients', 'list'], ['clients', 'show', 'c0ffee00'], ['tokens', 'list', '--all'], ['status']]) {
      const result = await runCli(args, { cwd: seed.dir, env: { NO_COLOR: '1', FORCE_COLOR: '3' } });
      expect(result.code).toBe(0);
      expect(result.stdout).not.toMatch(ANSI);
    }
  });

  it('clients show accepts an unambiguous prefix and prints the whole record without secrets', async () => {
    const seed = await seedProject();
    const text = await runCli(['clients', 'show', 'c0ffee99'], { cwd: seed.dir });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(seed.claude.clientId);
    expect(text.stdout).toContain(seed.claude.clientName);
    expect(text.stdout).toContain('https://claude.com/api/mcp/auth_callback');
    expect(text.stdout).toMatch(/tokens\s+0 active, 2 revoked or expired/);

    const json = await runCli(['clients', 'show', 'c0ffee00', '--json'], { cwd: seed.dir });
    expect(json.code).toBe(0);
    const shown = JSON.parse(json.stdout) as Record<string, unknown> & { tokens: Array<Record<string, unknown>> };
    expect(shown).toMatchObject({
      client_id: seed.chatgpt.clientId,
      client_name: 'ChatGPT',
      active_tokens: 2,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
    });
    expect(shown.tokens.map((t) => t.id)).toEqual([seed.tokens.active.id, seed.tokens.active2.id]);
    expect(JSON.stringify(shown)).not.toMatch(/secret_hash|client_secret"/);
    expectNoSecrets(seed, text.stdout, json.stdout);
  });

  it('an ambiguous prefix lists the matches and exits 1; an unknown id says "no client with id"', async () => {
    const seed = await seedProject();
    const ambiguous = await runCli(['clients', 'show', 'c0ffee'], { cwd: seed.dir });
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stdout).toBe('');
    expect(ambiguous.stderr).toContain('"c0ffee" matches 2 clients');
    expect(ambiguous.stderr).toContain(seed.chatgpt.clientId);
    expect(ambiguous.stderr).toContain(seed.claude.clientId);
    expect(ambiguous.stderr).not.toContain(seed.cursor.clientId);

    const unknown = await runCli(['clients', 'remove', 'deadbeef'], { cwd: seed.dir });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no client with id "deadbeef"');
    expect((await readStore(seed.dataDir)).clients).toHaveLength(3);
  });

  it('clients remove deletes the client, revokes its tokens and records client.removed and token.revoked', async () => {
    const seed = await seedProject();
    const result = await runCli(['clients', 'remove', 'c0ffee00'], { cwd: seed.dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`removed client ${seed.chatgpt.clientId} (ChatGPT); revoked 2 tokens`);

    const after = await readStore(seed.dataDir);
    expect(after.clients.map((c) => c.clientId).sort()).toEqual([seed.claude.clientId, seed.cursor.clientId].sort());
    const own = after.tokens.filter((t) => t.clientId === seed.chatgpt.clientId);
    expect(own).toHaveLength(2);
    for (const t of own) expect(t.revokedAt).not.toBeNull();
    expect(after.tokens.find((t) => t.id === seed.tokens.cursor.id)?.revokedAt).toBeNull();

    const events = await readEvents(seed.dataDir);
    expect(events.filter((e) => e.type === 'client.removed')).toEqual([
      expect.objectContaining({ type: 'client.removed', client_id: seed.chatgpt.clientId, ts: expect.stringMatching(ISO) }),
    ]);
    expect(
      events
        .filter((e) => e.type === 'token.revoked')
        .map((e) => e.token_id)
        .sort(),
    ).toEqual([seed.tokens.active.id, seed.tokens.active2.id].sort());
    expectNoSecrets(seed, JSON.stringify(events), result.stdout);

    const again = await runCli(['clients', 'show', seed.chatgpt.clientId], { cwd: seed.dir });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no client with id "${seed.chatgpt.clientId}"`);
  });
});

describe('tokens', () => {
  it('tokens list --json shows active tokens in the documented shape, never a token or hash', async () => {
    const seed = await seedProject();
    const result = await runCli(['tokens', 'list', '--json'], { cwd: seed.dir });
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    const { cursor, active, active2 } = seed.tokens;
    expect(parsed).toEqual([
      {
        id: cursor.id,
        client_id: seed.cursor.clientId,
        client_name: null,
        scope: 'mcp',
        resource: 'http://localhost:8787/mcp',
        created_at: iso(cursor.createdAt),
        expires_at: iso(cursor.expiresAt),
        last_used_at: null,
        status: 'active',
        label: null,
      },
      {
        id: active.id,
        client_id: seed.chatgpt.clientId,
        client_name: 'ChatGPT',
        scope: 'mcp',
        resource: 'http://localhost:8787/mcp',
        created_at: iso(active.createdAt),
        expires_at: iso(active.expiresAt),
        last_used_at: iso(active.lastUsedAt),
        status: 'active',
        label: null,
      },
      {
        id: active2.id,
        client_id: seed.chatgpt.clientId,
        client_name: 'ChatGPT',
        scope: 'mcp',
        resource: 'http://localhost:8787/mcp',
        created_at: iso(active2.createdAt),
        expires_at: iso(active2.expiresAt),
        last_used_at: null,
        status: 'active',
        label: null,
      },
    ]);
    for (const row of parsed) {
      // DESIGN.md §2 shape, plus the label that `tokens create --name` gives (null for OAuth tokens).
      expect(Object.keys(row).sort()).toEqual([
        'client_id',
        'client_name',
        'created_at',
        'expires_at',
        'id',
        'label',
        'last_used_at',
        'resource',
        'scope',
        'status',
      ]);
      expect(row.id).toMatch(/^tok_[0-9a-f]{12}$/);
    }
    expectNoSecrets(seed, result.stdout, result.stderr);
  });

  it('tokens list --all adds revoked and expired tokens; --client takes a prefix', async () => {
    const seed = await seedProject();
    const all = await runCli(['tokens', 'list', '--all', '--json'], { cwd: seed.dir });
    const statuses = Object.fromEntries((JSON.parse(all.stdout) as Array<{ id: string; status: string }>).map((t) => [t.id, t.status]));
    expect(statuses).toEqual({
      [seed.tokens.active.id]: 'active',
      [seed.tokens.active2.id]: 'active',
      [seed.tokens.cursor.id]: 'active',
      [seed.tokens.revoked.id]: 'revoked',
      [seed.tokens.expired.id]: 'expired',
    });

    const claude = await runCli(['tokens', 'list', '--all', '--client', 'c0ffee9', '--json'], { cwd: seed.dir });
    expect((JSON.parse(claude.stdout) as Array<{ id: string }>).map((t) => t.id).sort()).toEqual([seed.tokens.revoked.id, seed.tokens.expired.id].sort());
    const claudeActive = await runCli(['tokens', 'list', '--client', 'c0ffee9', '--json'], { cwd: seed.dir });
    expect(JSON.parse(claudeActive.stdout)).toEqual([]);

    const table = await runCli(['tokens', 'list', '--all'], { cwd: seed.dir });
    expect(table.stdout).not.toMatch(ANSI);
    expect(table.stdout).toMatch(/^ID\s+CLIENT\s+SCOPE\s+CREATED\s+EXPIRES\s+LAST USED\s+STATUS$/m);
    expect(table.stdout).toMatch(new RegExp(`^${seed.tokens.active.id} +ChatGPT +mcp +3 h ago +in 20 h +10 min ago +active$`, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^${seed.tokens.revoked.id} +Claude, with a client n… +mcp +2 h ago +revoked 1 h ago +never +revoked$`, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^${seed.tokens.expired.id} .* +1 h ago +never +expired$`, 'm'));
    expectNoSecrets(seed, all.stdout, claude.stdout, table.stdout);

    const unknown = await runCli(['tokens', 'list', '--client', 'ffff'], { cwd: seed.dir });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no client with id "ffff"');
  });

  it('tokens revoke <id> accepts the id with or without tok_ and as a prefix, and records token.revoked', async () => {
    const seed = await seedProject();
    const { active, active2 } = seed.tokens;
    const result = await runCli(['tokens', 'revoke', active.id, active2.id.slice(4, 12)], { cwd: seed.dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`revoked ${active.id} (ChatGPT)`);
    expect(result.stdout).toContain(`revoked ${active2.id} (ChatGPT)`);

    const after = await readStore(seed.dataDir);
    const byId = new Map(after.tokens.map((t) => [t.id, t]));
    expect(byId.get(active.id)?.revokedAt).not.toBeNull();
    expect(byId.get(active2.id)?.revokedAt).not.toBeNull();
    expect(byId.get(seed.tokens.cursor.id)?.revokedAt).toBeNull();

    const events = (await readEvents(seed.dataDir)).filter((e) => e.type === 'token.revoked');
    expect(events.map((e) => e.token_id).sort()).toEqual([active.id, active2.id].sort());
    for (const e of events) expect(e.client_id).toBe(seed.chatgpt.clientId);
    expectNoSecrets(seed, JSON.stringify(events));

    const listed = JSON.parse((await runCli(['tokens', 'list', '--json'], { cwd: seed.dir })).stdout) as Array<{ id: string }>;
    expect(listed.map((t) => t.id)).toEqual([seed.tokens.cursor.id]);
  });

  it('one unknown id among several revokes nothing and exits 1', async () => {
    const seed = await seedProject();
    const result = await runCli(['tokens', 'revoke', seed.tokens.active.id, 'tok_000000000000'], { cwd: seed.dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no token with id "tok_000000000000"');
    expect((await readStore(seed.dataDir)).tokens.find((t) => t.id === seed.tokens.active.id)?.revokedAt).toBeNull();
    expect(await readEvents(seed.dataDir)).toEqual([]);
  });

  it('tokens revoke --client revokes only that client’s tokens; --all revokes the rest', async () => {
    const seed = await seedProject();
    const byClient = await runCli(['tokens', 'revoke', '--client', 'abcdef'], { cwd: seed.dir });
    expect(byClient.code).toBe(0);
    let tokens = (await readStore(seed.dataDir)).tokens;
    expect(tokens.filter((t) => t.revokedAt !== null && t.revokedAt !== seed.tokens.revoked.revokedAt).map((t) => t.id)).toEqual([seed.tokens.cursor.id]);

    const all = await runCli(['tokens', 'revoke', '--all'], { cwd: seed.dir });
    expect(all.code).toBe(0);
    tokens = (await readStore(seed.dataDir)).tokens;
    for (const t of tokens) expect(t.revokedAt).not.toBeNull();
    const revokedEvents = (await readEvents(seed.dataDir)).filter((e) => e.type === 'token.revoked').map((e) => e.token_id);
    // The expired token was still unrevoked, so --all revokes it too; the revoked one is not revoked twice.
    expect(revokedEvents.sort()).toEqual([seed.tokens.cursor.id, seed.tokens.active.id, seed.tokens.active2.id, seed.tokens.expired.id].sort());

    const none = await runCli(['tokens', 'revoke', '--all'], { cwd: seed.dir });
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('No active tokens to revoke');
  });

  it('tokens revoke without a selection, or with two, is a usage error (exit 2)', async () => {
    const seed = await seedProject();
    expect((await runCli(['tokens', 'revoke'], { cwd: seed.dir })).code).toBe(2);
    expect((await runCli(['tokens', 'revoke', seed.tokens.active.id, '--all'], { cwd: seed.dir })).code).toBe(2);
    expect((await readStore(seed.dataDir)).tokens.filter((t) => t.revokedAt === null)).toHaveLength(4);
  });
});

describe('events tail', () => {
  async function seedEvents(dataDir: string) {
    const log = createFileEventLog(join(dataDir, EVENTS_FILE));
    for (let i = 0; i < 12; i++) {
      log.record({
        type: 'token.issued',
        client_id: i % 2 ? 'c0ffee00-1111-4111-8111-111111111111' : 'abcdef12-3333-4333-8333-333333333333',
        token_id: `tok_${String(i).padStart(12, '0')}`,
      });
      log.record({ type: 'session.opened', ip: '203.0.113.9', detail: { transport: 'sse', session_id: `s${i}` } });
    }
    log.record({ type: 'tool.called', client_id: 'c0ffee00-1111-4111-8111-111111111111', detail: { tool: 'search', ms: 3 } });
    await log.flush();
  }

  it('-n 5 --json prints the last 5 events as stored, one parseable object per line', async () => {
    const seed = await seedProject();
    await seedEvents(seed.dataDir);
    const stored = (await readFile(join(seed.dataDir, EVENTS_FILE), 'utf8')).trimEnd().split('\n');
    const result = await runCli(['events', 'tail', '-n', '5', '--json'], { cwd: seed.dir });
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines.map((l) => JSON.parse(l))).toEqual(stored.slice(-5).map((l) => JSON.parse(l)));
  });

  it('defaults to 20 readable lines and filters by --type prefix (repeatable) and --client prefix', async () => {
    const seed = await seedProject();
    await seedEvents(seed.dataDir);
    const plain = await runCli(['events', 'tail'], { cwd: seed.dir });
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toMatch(ANSI);
    const lines = plain.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(20);
    expect(lines.at(-1)).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}tool\.called {2,}client=c0ffee00-1111-4111-8111-111111111111 {2}tool=search ms=3$/);

    const typed = await runCli(['events', 'tail', '-n', '100', '--json', '--type', 'token.', '--type', 'tool'], { cwd: seed.dir });
    const types = typed.stdout
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { type: string }).type);
    expect(types).toHaveLength(13);
    expect(new Set(types)).toEqual(new Set(['token.issued', 'tool.called']));

    const byClient = await runCli(['events', 'tail', '-n', '100', '--json', '--client', 'c0ffee00', '--type', 'token'], { cwd: seed.dir });
    const events = byClient.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { client_id: string; type: string });
    expect(events).toHaveLength(6);
    for (const e of events) expect(e).toMatchObject({ client_id: seed.chatgpt.clientId, type: 'token.issued' });
  });

  it('rejects a -n that is not a number and a --type no event has (exit 2)', async () => {
    const seed = await seedProject();
    const badN = await runCli(['events', 'tail', '-n', 'ten'], { cwd: seed.dir });
    expect(badN.code).toBe(2);
    expect(badN.stderr).toContain('-n');
    const badType = await runCli(['events', 'tail', '--type', 'tokens.'], { cwd: seed.dir });
    expect(badType.code).toBe(2);
    expect(badType.stderr).toContain('no event type starts with "tokens."');
  });

  it('-f prints an event written after it started, honours the filter, and exits 0 on SIGINT', async () => {
    const seed = await seedProject();
    await seedEvents(seed.dataDir);
    const child = spawn(process.execPath, [BIN, 'events', 'tail', '-n', '1', '-f', '--json', '--type', 'token.revoked'], {
      cwd: seed.dir,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    try {
      await waitFor(() => stderr.includes('following'), { what: 'events tail -f to start following' });
      expect(stdout).toBe('');

      // Written until one shows up: "following" is printed as the follower starts, and the follower
      // only counts what is appended after its first look at the file.
      const log = createFileEventLog(join(seed.dataDir, EVENTS_FILE));
      let n = 0;
      const line = await waitFor(
        async () => {
          const seen = stdout.split('\n').find((l) => l.includes('tok_bbbbbbbb'));
          if (seen) return seen;
          n++;
          log.record({ type: 'token.issued', client_id: seed.chatgpt.clientId, token_id: 'tok_aaaaaaaaaaaa' });
          log.record({ type: 'token.revoked', client_id: seed.chatgpt.clientId, token_id: `tok_bbbbbbbb${String(n).padStart(4, '0')}`, detail: { by: 'cli' } });
          await log.flush();
          return undefined;
        },
        { timeoutMs: 3_000, intervalMs: 300, what: 'a new event on stdout' },
      );
      expect(JSON.parse(line)).toMatchObject({
        type: 'token.revoked',
        client_id: seed.chatgpt.clientId,
        token_id: expect.stringMatching(/^tok_bbbbbbbb\d{4}$/),
        detail: { by: 'cli' },
      });
      expect(stdout).not.toContain('tok_aaaaaaaaaaaa');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toEqual({ code: 0, signal: null });
  });
});

describe('passwd', () => {
  it('--password-stdin stores a new scrypt hash: the new password verifies, the old one no longer does', async () => {
    const seed = await seedProject();
    const result = await runCli(['passwd', '--password-stdin'], { cwd: seed.dir, input: 'a brand new password\n' });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('owner password changed');
    expect(result.stdout + result.stderr).not.toContain('a brand new password');
    const { owner } = await readStore(seed.dataDir);
    expect(owner.passwordHash).toMatch(/^scrypt\$/);
    expect(await verifyPassword('a brand new password', owner.passwordHash)).toBe(true);
    expect(await verifyPassword('old-owner-password', owner.passwordHash)).toBe(false);
  });

  it('takes CUPCAKE_OWNER_PASSWORD when stdin is not a terminal', async () => {
    const seed = await seedProject();
    const result = await runCli(['passwd'], { cwd: seed.dir, env: { CUPCAKE_OWNER_PASSWORD: 'from-the-environment' } });
    expect(result.code).toBe(0);
    expect(await verifyPassword('from-the-environment', (await readStore(seed.dataDir)).owner.passwordHash)).toBe(true);
  });

  it('refuses without a password source off a TTY (exit 2) and a too-short password (exit 1), changing nothing', async () => {
    const seed = await seedProject();
    const before = (await readStore(seed.dataDir)).owner.passwordHash;
    const none = await runCli(['passwd'], { cwd: seed.dir });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--password-stdin');
    const short = await runCli(['passwd', '--password-stdin'], { cwd: seed.dir, input: 'short\n' });
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('at least 8 characters');
    expect((await readStore(seed.dataDir)).owner.passwordHash).toBe(before);
  });
});

describe('with a running serve', () => {
  it('status reports the server (pid, URL) while it runs and not after SIGTERM', async () => {
    const seed = await seedProject();
    const before = JSON.parse((await runCli(['status', '--json'], { cwd: seed.dir })).stdout) as Record<string, unknown>;
    expect(before).toEqual({
      version: VERSION,
      config: join(seed.dir, 'cupcake.config.json'),
      base_url: 'http://localhost:8787',
      data_dir: seed.dataDir,
      server: { running: false, pid: null, url: null, version: null, started_at: null, uptime_seconds: null, sessions: null },
      clients: 3,
      active_tokens: 3,
    });

    const serve = await startServe(['--port', '0'], { cwd: seed.dir, env: { CUPCAKE_OWNER_PASSWORD: 'old-owner-password' } });
    const during = await runCli(['status', '--json'], { cwd: seed.dir });
    expect(during.code, during.stderr).toBe(0);
    // The first start added the first-party client (home page sign-in, tokens create).
    // The local base URL of the config follows the port actually bound (loadConfig: baseUrlFollowsPort).
    const url = `http://localhost:${new URL(serve.url).port}`;
    const running = JSON.parse(during.stdout) as StatusJson;
    expect(running).toEqual({
      ...before,
      clients: 4,
      server: {
        running: true,
        pid: serve.child.pid,
        url,
        version: VERSION,
        started_at: expect.any(String),
        uptime_seconds: expect.any(Number),
        sessions: { total: 0, by_transport: {}, by_client: [] },
      },
    });

    // Live sessions per transport and per client, as the server publishes them.
    const store = await openFileStore({ dataDir: seed.dataDir });
    const { token } = await mintToken(store, { baseUrl: url, clientId: seed.chatgpt.clientId, resource: `${url}/sse` });
    await store.close();
    const sse = await waitFor(
      async () => {
        const response = await fetch(`${serve.url}/sse`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
        if (response.status === 200) return response;
        await response.text();
        return undefined;
      },
      { timeoutMs: 10_000, what: 'serve to see the new token' },
    );
    const reader = sse.body!.getReader();
    await reader.read();
    const live = await waitFor(
      async () => {
        const s = JSON.parse((await runCli(['status', '--json'], { cwd: seed.dir })).stdout) as StatusJson;
        return s.server.sessions?.total === 1 ? s : undefined;
      },
      { timeoutMs: 10_000, what: 'status to show the SSE session' },
    );
    expect(live.server.sessions).toEqual({
      total: 1,
      by_transport: { sse: 1 },
      by_client: [{ client_id: seed.chatgpt.clientId, client_name: 'ChatGPT', sessions: 1 }],
    });
    const text = await runCli(['status'], { cwd: seed.dir });
    expect(text.stdout).toMatch(new RegExp(`server +running \\(pid ${serve.child.pid}, cupcake-mcp ${VERSION.replace(/\./g, '\\.')}, up \\d+s\\) at ${url}`));
    expect(text.stdout).toMatch(/sessions +1 live \(1 sse\)\n +1 {2}ChatGPT /);
    await reader.cancel();

    expect(await serve.stop('SIGTERM'), serve.stderr()).toEqual({ code: 0, signal: null });
    const after = JSON.parse((await runCli(['status', '--json'], { cwd: seed.dir })).stdout) as Record<string, unknown>;
    expect(after.server).toEqual({ running: false, pid: null, url: null, version: null, started_at: null, uptime_seconds: null, sessions: null });
  });

  it('a stale serve.json (its process gone) is reported as not running', async () => {
    const seed = await seedProject();
    // A pid that cannot exist on Linux (pid_max is at most 2^22).
    await writeFile(
      join(seed.dataDir, 'serve.json'),
      JSON.stringify({ pid: 2 ** 22 + 1, url: 'http://localhost:8787', listening: 'http://127.0.0.1:8787', started_at: new Date().toISOString() }),
    );
    const json = JSON.parse((await runCli(['status', '--json'], { cwd: seed.dir })).stdout) as { server: unknown };
    expect(json.server).toMatchObject({ running: false, pid: null, url: null });
    const text = await runCli(['status'], { cwd: seed.dir });
    expect(text.stdout).toContain('not running (stale serve.json');
  });

  it('a revocation made by the CLI while serve runs reaches a watching store within 1 s (external change)', async () => {
    const seed = await seedProject();
    const serve = await startServe(['--port', '0'], { cwd: seed.dir, env: { CUPCAKE_OWNER_PASSWORD: 'old-owner-password' } });
    // Stands in for the server's own store until the server exposes revocation over HTTP.
    const watcher = await openFileStore({ dataDir: seed.dataDir, watch: true });
    const changes: StoreChange[] = [];
    watcher.onChange((change) => changes.push(change));
    try {
      expect(await watcher.findAccessToken(seed.tokens.active.tokenHash)).toMatchObject({ revokedAt: null });
      const result = await runCli(['tokens', 'revoke', seed.tokens.active.id], { cwd: seed.dir });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`the running server (pid ${serve.child.pid})`);
      const exitedAt = Date.now();
      const change = await waitFor(() => changes.find((c) => c.revokedTokens.some((t) => t.id === seed.tokens.active.id)), {
        timeoutMs: 1_000,
        what: 'the revocation to reach the watching store',
      });
      expect(Date.now() - exitedAt).toBeLessThan(1_000);
      expect(change.external).toBe(true);
      expect((await watcher.findAccessToken(seed.tokens.active.tokenHash))?.revokedAt).not.toBeNull();

      const removed = await runCli(['clients', 'remove', seed.cursor.clientId], { cwd: seed.dir });
      expect(removed.code).toBe(0);
      const removal = await waitFor(() => changes.find((c) => c.removedClientIds.includes(seed.cursor.clientId)), {
        timeoutMs: 1_000,
        what: 'the client removal to reach the watching store',
      });
      expect(removal).toMatchObject({ external: true, revokedTokens: [expect.objectContaining({ id: seed.tokens.cursor.id })] });
    } finally {
      await watcher.close();
    }
    expect(await serve.stop('SIGTERM'), serve.stderr()).toEqual({ code: 0, signal: null });
  });
});

/** The browser and client steps of the authorization-code flow, against a real `serve`. */
const REDIRECT = 'https://chatgpt.com/connector_platform_oauth_redirect';

async function register(url: string): Promise<{ client_id: string; client_secret: string }> {
  const response = await fetch(`${url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'Flow client', redirect_uris: [REDIRECT] }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { client_id: string; client_secret: string };
}

async function openConsent(url: string, clientId: string) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'st',
  });
  const response = await fetch(`${url}/authorize?${query}`);
  const html = await response.text();
  expect(response.status).toBe(200);
  const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(html)?.[1] ?? '';
  const cookie = response.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  return { verifier, cookie, requestId: field('request_id'), csrfToken: field('csrf_token') };
}

function submitConsent(url: string, form: Awaited<ReturnType<typeof openConsent>>, password: string) {
  return fetch(`${url}/authorize`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: form.cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ request_id: form.requestId, csrf_token: form.csrfToken, password, decision: 'approve' }),
  });
}

function tokenRequest(url: string, client: { client_id: string; client_secret: string }, params: Record<string, string>) {
  const basic = Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64');
  return fetch(`${url}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
}

async function connect(url: string, password: string) {
  const client = await register(url);
  const form = await openConsent(url, client.client_id);
  const approved = await submitConsent(url, form, password);
  expect(approved.status).toBe(302);
  const code = new URL(approved.headers.get('location')!).searchParams.get('code')!;
  const response = await tokenRequest(url, client, { grant_type: 'authorization_code', code, code_verifier: form.verifier, redirect_uri: REDIRECT });
  expect(response.status).toBe(200);
  const { access_token } = (await response.json()) as { access_token: string };
  return { client, accessToken: access_token };
}

describe('against the real server process', () => {
  const PASSWORD = 'old-owner-password';

  it('lists a client registered and a token issued over HTTP, by id, never the token or the client secret', async () => {
    const seed = await seedProject();
    const serve = await startServe(['--port', '0'], { cwd: seed.dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD } });
    const { client, accessToken } = await connect(serve.url, PASSWORD);

    const clients = await runCli(['clients', 'list', '--json'], { cwd: seed.dir });
    expect(JSON.parse(clients.stdout)).toContainEqual({
      client_id: client.client_id,
      client_name: 'Flow client',
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'client_secret_basic',
      created_at: expect.stringMatching(ISO),
      last_used_at: null,
      active_tokens: 1,
    });
    const tokens = await runCli(['tokens', 'list', '--client', client.client_id, '--json'], { cwd: seed.dir });
    const listed = JSON.parse(tokens.stdout) as Array<Record<string, unknown>>;
    expect(listed).toEqual([
      expect.objectContaining({ id: tokenIdFromHash(sha256Hex(accessToken)), client_id: client.client_id, client_name: 'Flow client', status: 'active' }),
    ]);
    for (const output of [clients.stdout, tokens.stdout, (await runCli(['events', 'tail', '-n', '100', '--json'], { cwd: seed.dir })).stdout]) {
      expect(output).not.toContain(accessToken);
      expect(output).not.toContain(client.client_secret);
    }
    expect(await serve.stop('SIGTERM'), serve.stderr()).toEqual({ code: 0, signal: null });
  });

  it('tokens revoke <id> while serve runs: the token gets 401 within 1 s and its open SSE stream closes within 2 s', async () => {
    const seed = await seedProject();
    const serve = await startServe(['--port', '0'], { cwd: seed.dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD } });
    const { accessToken } = await connect(serve.url, PASSWORD);
    const auth = { authorization: `Bearer ${accessToken}` };
    expect((await fetch(`${serve.url}/tools`, { headers: auth })).status).toBe(200);
    const abort = new AbortController();
    const stream = await fetch(`${serve.url}/sse`, { headers: { accept: 'text/event-stream', ...auth }, signal: abort.signal });
    expect(stream.status).toBe(200);
    const reader = new SseReader(stream);
    expect((await reader.next()).event).toBe('endpoint');
    try {
      const revoked = await runCli(['tokens', 'revoke', tokenIdFromHash(sha256Hex(accessToken))], { cwd: seed.dir });
      expect(revoked.code).toBe(0);
      const at = Date.now();
      await waitFor(async () => (await fetch(`${serve.url}/tools`, { headers: auth })).status === 401, {
        timeoutMs: 1_000,
        intervalMs: 100,
        what: 'the revoked token to get 401',
      });
      await Promise.race([
        reader.closed,
        new Promise((_, reject) => setTimeout(() => reject(new Error('SSE stream still open 2 s after the revocation')), 2_000 - (Date.now() - at))),
      ]);
    } finally {
      abort.abort();
    }
    expect(await serve.stop('SIGTERM'), serve.stderr()).toEqual({ code: 0, signal: null });
  });

  it('tokens revoke --client and --all while serve runs reach only the selected tokens', async () => {
    const seed = await seedProject();
    const serve = await startServe(['--port', '0'], { cwd: seed.dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD } });
    const first = await connect(serve.url, PASSWORD);
    const second = await connect(serve.url, PASSWORD);
    const status = async (token: string) => (await fetch(`${serve.url}/tools`, { headers: { authorization: `Bearer ${token}` } })).status;
    expect([await status(first.accessToken), await status(second.accessToken)]).toEqual([200, 200]);

    expect((await runCli(['tokens', 'revoke', '--client', first.client.client_id], { cwd: seed.dir })).code).toBe(0);
    await waitFor(async () => (await status(first.accessToken)) === 401, { timeoutMs: 1_000, intervalMs: 100, what: 'the first client’s token to get 401' });
    expect(await status(second.accessToken)).toBe(200);

    expect((await runCli(['tokens', 'revoke', '--all'], { cwd: seed.dir })).code).toBe(0);
    await waitFor(async () => (await status(second.accessToken)) === 401, { timeoutMs: 1_000, intervalMs: 100, what: 'every token to get 401' });
    expect(await serve.stop('SIGTERM'), serve.stderr()).toEqual({ code: 0, signal: null });
  });

  it('clients remove while serve runs: the client’s next /token call gets 401 invalid_client within 1 s', async () => {
    const seed = await seedProject();
    const serve = await startServe(['--port', '0'], { cwd: seed.dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD } });
    const client = await register(serve.url);
    const bogus = { grant_type: 'authorization_code', code: 'not-a-code', code_verifier: 'v'.repeat(43), redirect_uri: REDIRECT };
    // Authenticated, the client gets past client authentication to the grant check.
    const before = await tokenRequest(serve.url, client, bogus);
    expect(before.status).toBe(400);
    expect(((await before.json()) as { error: string }).error).toBe('invalid_grant');

    const removed = await runCli(['clients', 'remove', client.client_id], { cwd: seed.dir });
    expect(removed.code).toBe(0);
    const response = await waitFor(
      async () => {
        const r = await tokenRequest(serve.url, client, bogus);
        return r.status === 401 ? r : undefined;
      },
      { timeoutMs: 1_000, intervalMs: 100, what: 'the removed client to be refused at /token' },
    );
    expect(((await response.json()) as { error: string }).error).toBe('invalid_client');
    expect(await serve.stop('SIGTERM'), serve.stderr()).toEqual({ code: 0, signal: null });
  });

  it('passwd while serve runs: an open consent form refuses the old password and accepts the new one', async () => {
    const seed = await seedProject();
    const serve = await startServe(['--port', '0'], { cwd: seed.dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD } });
    const client = await register(serve.url);
    const form = await openConsent(serve.url, client.client_id);

    const changed = await runCli(['passwd', '--password-stdin'], { cwd: seed.dir, input: 'the new owner password\n' });
    expect(changed.code).toBe(0);
    expect(changed.stdout).toContain(`the running server (pid ${serve.child.pid})`);
    // The store promises that another process's write is seen within 1 s.
    await new Promise((resolve) => setTimeout(resolve, 1_100));

    const old = await submitConsent(serve.url, form, PASSWORD);
    expect(old.status).toBe(401);
    const fresh = await submitConsent(serve.url, form, 'the new owner password');
    expect(fresh.status).toBe(302);
    expect(new URL(fresh.headers.get('location')!).searchParams.get('code')).toBeTruthy();
    expect(await serve.stop('SIGTERM'), serve.stderr()).toEqual({ code: 0, signal: null });
  });
});
