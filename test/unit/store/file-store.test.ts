import { readFile, readdir, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DB_FILE, type FileStoreOptions, openFileStore, StoreCorruptError, StoreWriteError } from '../../../src/store/file-store.js';
import type { DocumentStore } from '../../../src/store/document-store.js';
import type { StoreChange } from '../../../src/store/types.js';
import { brokenDisk, type WriteStep } from '../../helpers/broken-disk.js';
import { HOUR, T0, makeClient, makeCode, makeGrant } from '../../helpers/records.js';
import { useTmpDirs } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

const tmp = useTmpDirs('cupcake-filestore-');
const opened: DocumentStore[] = [];
async function open(dataDir: string, options: Omit<FileStoreOptions, 'dataDir'> = {}): Promise<DocumentStore> {
  const store = await openFileStore({ dataDir, ...options });
  opened.push(store);
  return store;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close().catch(() => undefined)));
});

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const readDb = async (dataDir: string) => JSON.parse(await readFile(join(dataDir, DB_FILE), 'utf8')) as Record<string, unknown>;

/** One of everything the store holds, with the plaintext secrets that were hashed. */
async function populate(store: DocumentStore) {
  const { client, secret } = makeClient();
  await store.createClient(client);
  const code = makeCode(client.clientId);
  await store.saveCode(code.record);
  const grant = makeGrant(client.clientId, code.record.grantId);
  await store.saveTokens(grant.access.record, grant.refresh.record);
  const passwordHash = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
  await store.setOwnerPasswordHash(passwordHash, T0);
  return { client, code, grant, passwordHash, plaintexts: [secret, code.code, grant.access.token, grant.refresh.token] };
}

describe('file store (lowdb)', () => {
  it('keeps everything across close and reopen', async () => {
    const dataDir = await tmp();
    const store = await open(dataDir);
    const { client, code, grant, passwordHash } = await populate(store);
    await store.revokeRefreshToken(grant.refresh.record.tokenHash, T0 + 1);
    await store.close();

    const again = await open(dataDir);
    expect(await again.getOwner()).toEqual({ passwordHash, passwordChangedAt: T0 });
    expect(await again.listClients()).toEqual([{ ...client, approvedAt: code.record.createdAt }]);
    expect(await again.findAccessToken(grant.access.record.tokenHash)).toEqual(grant.access.record);
    expect(await again.findRefreshToken(grant.refresh.record.tokenHash)).toEqual({ ...grant.refresh.record, revokedAt: T0 + 1 });
    expect(await again.consumeCode(code.record.codeHash, T0 + 2)).toEqual({ outcome: 'consumed', code: { ...code.record, usedAt: T0 + 2 } });
    expect((await readDb(dataDir)).schemaVersion).toBe(1);
  });

  it('used assertion ids survive a reopen; a db.json written before they existed opens with none', async () => {
    const dataDir = await tmp();
    const store = await open(dataDir);
    await store.useAssertionId('k1', T0 + HOUR, T0);
    await store.close();
    const again = await open(dataDir);
    expect(await again.useAssertionId('k1', T0 + HOUR, T0 + 1)).toBe(false);
    await again.close();

    const older = await tmp();
    const { assertions: _none, ...before } = await readDb(dataDir);
    await writeFile(join(older, DB_FILE), JSON.stringify(before), { mode: 0o600 });
    const upgraded = await open(older);
    expect(await upgraded.listClients()).toEqual([]);
    expect(await upgraded.useAssertionId('k1', T0 + HOUR, T0 + 1)).toBe(true);
    await upgraded.close();
    expect((await readDb(older)).assertions).toEqual({ k1: { expiresAt: T0 + HOUR } });
  });

  it('DESIGN §6: the data dir is 0700 and db.json 0600, also after writes', async () => {
    const parent = await tmp();
    const dataDir = join(parent, 'nested', '.cupcake');
    const store = await open(dataDir);
    expect(await mode(dataDir)).toBe(0o700);
    expect(await mode(join(dataDir, DB_FILE))).toBe(0o600);
    await populate(store);
    expect(await mode(join(dataDir, DB_FILE))).toBe(0o600);
    // No temp file is left behind by the atomic writes.
    expect((await readdir(dataDir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('tightens an existing data dir and db.json that are readable by others', async () => {
    const dataDir = await tmp();
    const first = await open(dataDir);
    await first.close();
    await chmod(dataDir, 0o755);
    await chmod(join(dataDir, DB_FILE), 0o644);
    const store = await open(dataDir);
    expect(await mode(dataDir)).toBe(0o700);
    await store.createClient(makeClient().client);
    expect(await mode(join(dataDir, DB_FILE))).toBe(0o600);
  });

  it('DESIGN §6: db.json never holds the plaintext of a secret, only its hash', async () => {
    const dataDir = await tmp();
    const store = await open(dataDir);
    const { plaintexts } = await populate(store);
    store.touchAccessToken(makeGrant('x').access.record.tokenHash, T0);
    await store.close();
    const text = await readFile(join(dataDir, DB_FILE), 'utf8');
    for (const secret of plaintexts) {
      expect(text).not.toContain(secret);
    }
    const { sha256Hex } = await import('../../../src/shared/ids.js');
    for (const secret of plaintexts) expect(text).toContain(sha256Hex(secret));
  });

  describe('a corrupt or unreadable db.json stops the open and is never overwritten', () => {
    const cases: Array<[string, (full: string) => string | Buffer]> = [
      ['truncated', (full) => full.slice(0, Math.floor(full.length / 2))],
      ['empty', () => ''],
      ['not an object', () => '[1,2,3]'],
      ['missing a collection', () => JSON.stringify({ schemaVersion: 1, owner: {}, clients: {}, codes: {}, tokens: {} })],
      ['from a newer version', (full) => full.replace('"schemaVersion":1', '"schemaVersion":99')],
    ];
    for (const [name, damage] of cases) {
      it(`${name}: throws StoreCorruptError naming the path and leaves the bytes unchanged`, async () => {
        const dataDir = await tmp();
        const store = await open(dataDir);
        await populate(store);
        await store.close();
        const path = join(dataDir, DB_FILE);
        await writeFile(path, damage(await readFile(path, 'utf8')));
        const before = await readFile(path);

        const error = await openFileStore({ dataDir, watch: true }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(StoreCorruptError);
        expect((error as StoreCorruptError).path).toBe(path);
        expect((error as Error).message).toContain(path);
        expect(await readFile(path)).toEqual(before);
        expect((await readdir(dataDir)).filter((n) => n !== DB_FILE && !n.endsWith('.lock'))).toEqual([]);
      });
    }

    it('a running store refuses to write over a db.json another process damaged', async () => {
      const dataDir = await tmp();
      const store = await open(dataDir);
      const { client } = await populate(store);
      const path = join(dataDir, DB_FILE);
      const full = await readFile(path, 'utf8');
      await writeFile(path, full.slice(0, 40));
      await expect(store.createClient(makeClient().client)).rejects.toThrow(path);
      await expect(store.removeClient(client.clientId, T0)).rejects.toBeInstanceOf(StoreCorruptError);
      expect(await readFile(path, 'utf8')).toBe(full.slice(0, 40));
    });
  });

  describe('a write the disk refuses changes nothing, on disk or in memory, and the next one succeeds once the disk recovers', () => {
    const refused: Array<[WriteStep, string]> = [
      ['lock', `${DB_FILE}.lock (ENOSPC)`],
      ['temp', `${DB_FILE} (ENOSPC)`],
      ['rename', `${DB_FILE} (EIO)`],
    ];
    for (const [step, named] of refused) {
      it(`${step}: StoreWriteError naming ${named}; no temp file left, db.json and the store's answers as before`, async () => {
        const dataDir = await tmp();
        const disk = brokenDisk();
        const store = await open(dataDir, { fileSystem: disk.fileSystem });
        const { client } = await populate(store);
        const before = await readFile(join(dataDir, DB_FILE));

        disk.failing = step;
        const { client: refusedClient } = makeClient();
        const error = await store.createClient(refusedClient).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(StoreWriteError);
        expect((error as Error).message).toContain(`${join(dataDir, named)}: the change was not saved`);
        expect(disk.failures).toEqual([step]);
        expect(await readFile(join(dataDir, DB_FILE))).toEqual(before);
        expect((await readdir(dataDir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
        expect(await store.getClient(refusedClient.clientId)).toBeUndefined();
        expect(await store.getClient(client.clientId)).toBeDefined();

        disk.failing = undefined;
        await store.createClient(refusedClient);
        expect(Object.keys((await readDb(dataDir)).clients as object)).toContain(refusedClient.clientId);
      });
    }
  });

  it('creates db.json when the data dir is new, and writes it back when deleted while open', async () => {
    const dataDir = await tmp();
    const store = await open(dataDir, { watch: true });
    const { client } = await populate(store);
    await rm(join(dataDir, DB_FILE));
    // Give the watcher a moment to notice the deletion: it must not throw away the data.
    await new Promise((resolve) => setTimeout(resolve, 600));
    const { client: second } = makeClient({ clientName: 'Claude' });
    await store.createClient(second);

    const data = await readDb(dataDir);
    expect(Object.keys(data.clients as object).sort()).toEqual([client.clientId, second.clientId].sort());
    expect((data.owner as { passwordHash: string }).passwordHash).toMatch(/^scrypt\$/);
    expect(await mode(join(dataDir, DB_FILE))).toBe(0o600);
  });

  it('batches lastUsedAt: touching does not write db.json; flush (and close) do', async () => {
    const dataDir = await tmp();
    const store = await open(dataDir);
    const { client, grant } = await populate(store);
    const before = await readFile(join(dataDir, DB_FILE), 'utf8');
    for (let i = 1; i <= 50; i++) store.touchAccessToken(grant.access.record.tokenHash, T0 + i);
    expect(await readFile(join(dataDir, DB_FILE), 'utf8')).toBe(before);

    await store.flush();
    const flushed = (await readDb(dataDir)) as { tokens: Record<string, { lastUsedAt: number }>; clients: Record<string, { lastUsedAt: number }> };
    expect(flushed.tokens[grant.access.record.tokenHash]?.lastUsedAt).toBe(T0 + 50);
    expect(flushed.clients[client.clientId]?.lastUsedAt).toBe(T0 + 50);

    store.touchAccessToken(grant.access.record.tokenHash, T0 + 99);
    await store.close();
    const reopened = await open(dataDir);
    expect((await reopened.findAccessToken(grant.access.record.tokenHash))?.lastUsedAt).toBe(T0 + 99);
  });

  it('DESIGN §6: lastUsedAt reaches db.json by itself a few seconds after use, in one batch', async () => {
    const dataDir = await tmp();
    const store = await open(dataDir);
    const { grant } = await populate(store);
    const other = makeGrant(grant.access.record.clientId);
    await store.saveTokens(other.access.record);
    const dbPath = join(dataDir, DB_FILE);
    const before = await readFile(dbPath, 'utf8');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      store.touchAccessToken(grant.access.record.tokenHash, T0 + 1);
      store.touchAccessToken(other.access.record.tokenHash, T0 + 2);
      vi.advanceTimersByTime(4_000);
      expect(await readFile(dbPath, 'utf8')).toBe(before);
      vi.advanceTimersByTime(1_000);
    } finally {
      vi.useRealTimers();
    }
    const written = await waitFor(
      async () => {
        const data = (await readDb(dataDir)) as { tokens: Record<string, { lastUsedAt: number | null }> };
        return data.tokens[other.access.record.tokenHash]?.lastUsedAt === T0 + 2 && data;
      },
      { timeoutMs: 2_000, what: 'the batched lastUsedAt write' },
    );
    expect(written.tokens[grant.access.record.tokenHash]?.lastUsedAt).toBe(T0 + 1);
  });

  it('a token another process just issued is found at once, before any watch or poll has run', async () => {
    const dataDir = await tmp();
    // No watch: only the lookup itself can notice the other writer (serve's watch may lag by up to 500 ms).
    const serving = await open(dataDir);
    const cli = await open(dataDir);
    const { client } = makeClient();
    await cli.createClient(client);
    const grant = makeGrant(client.clientId, 'grant-1');
    await cli.saveTokens(grant.access.record);
    expect((await serving.findAccessToken(grant.access.record.tokenHash))?.id).toBe(grant.access.record.id);
    expect(await serving.findAccessToken('0'.repeat(64))).toBeUndefined();
  });

  it('two instances on one file never lose each other’s writes', async () => {
    const dataDir = await tmp();
    const a = await open(dataDir);
    const b = await open(dataDir);
    const clients = Array.from({ length: 20 }, () => makeClient().client);
    await Promise.all(clients.map((c, i) => (i % 2 === 0 ? a : b).createClient(c)));
    for (const store of [a, b]) {
      // A write through one instance is seen by the other's next transaction at the latest.
      await store.purgeExpired(0);
      expect((await store.listClients()).map((c) => c.clientId).sort()).toEqual(clients.map((c) => c.clientId).sort());
    }
  });

  it('DESIGN §6: a watching store sees another writer’s revocation within 1 s and reports it as external', async () => {
    const dataDir = await tmp();
    const server = await open(dataDir, { watch: true });
    const cli = await open(dataDir);
    const { client } = makeClient();
    await cli.createClient(client);
    const g1 = makeGrant(client.clientId);
    const g2 = makeGrant(client.clientId);
    await cli.saveTokens(g1.access.record, g1.refresh.record);
    await cli.saveTokens(g2.access.record);
    await waitFor(() => server.findAccessToken(g2.access.record.tokenHash), { timeoutMs: 1_500, what: 'the new token to reach the server' });

    const changes: StoreChange[] = [];
    server.onChange((change) => changes.push(change));
    await cli.revokeAccessTokens({ ids: [g1.access.record.id] }, T0 + 1);
    const started = Date.now();
    await waitFor(() => changes.length > 0, { timeoutMs: 1_500, intervalMs: 10, what: 'the revocation to reach the server' });
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(changes[0]).toEqual({
      revokedTokens: [{ id: g1.access.record.id, tokenHash: g1.access.record.tokenHash, clientId: client.clientId, grantId: g1.grantId }],
      removedClientIds: [],
      external: true,
    });
    expect((await server.findAccessToken(g1.access.record.tokenHash))?.revokedAt).toBe(T0 + 1);

    await cli.removeClient(client.clientId, T0 + 2);
    await waitFor(() => changes.length > 1, { timeoutMs: 1_500, intervalMs: 10, what: 'the removal to reach the server' });
    expect(changes[1]).toMatchObject({ removedClientIds: [client.clientId], external: true });
    expect(changes[1]?.revokedTokens.map((t) => t.id)).toEqual([g2.access.record.id]);
    expect(await server.getClient(client.clientId)).toBeUndefined();
  });

  it('after close, a store no longer follows the file', async () => {
    const dataDir = await tmp();
    const server = await open(dataDir, { watch: true });
    const cli = await open(dataDir);
    const { client } = makeClient();
    await cli.createClient(client);
    const g = makeGrant(client.clientId);
    await cli.saveTokens(g.access.record);
    await waitFor(() => server.findAccessToken(g.access.record.tokenHash), { timeoutMs: 1_500 });
    const changes: StoreChange[] = [];
    server.onChange((change) => changes.push(change));
    await server.close();
    await cli.revokeGrant(g.grantId, T0);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(changes).toEqual([]);
  });

  it('a db.json written before first-party clients and token labels loads, and gets its first-party client beside the old ones', async () => {
    const dataDir = await tmp();
    const { client } = makeClient();
    const g = makeGrant(client.clientId);
    // As an older cupcake-mcp wrote it: no firstParty on clients, no label on tokens.
    await writeFile(
      join(dataDir, DB_FILE),
      JSON.stringify({
        schemaVersion: 1,
        owner: { passwordHash: null, passwordChangedAt: null },
        clients: { [client.clientId]: client },
        codes: {},
        tokens: { [g.access.record.tokenHash]: g.access.record },
        refreshTokens: {},
      }),
      { mode: 0o600 },
    );
    const store = await open(dataDir);
    expect(await store.getClient(client.clientId)).toEqual(client);
    expect(await store.findAccessToken(g.access.record.tokenHash)).toEqual(g.access.record);
    const { client: firstParty, outcome } = await store.ensureFirstPartyClient(
      makeClient({ clientSecretHash: null, tokenEndpointAuthMethod: 'none', redirectUris: ['https://mcp.example.com/oauth/callback'] }).client,
    );
    expect(outcome).toBe('created');
    await store.close();

    const again = await open(dataDir);
    expect((await again.listClients()).map((c) => [c.clientId, c.firstParty]).sort()).toEqual(
      [
        [client.clientId, undefined],
        [firstParty.clientId, true],
      ].sort(),
    );
    expect(((await readDb(dataDir)).clients as Record<string, Record<string, unknown>>)[client.clientId]).not.toHaveProperty('firstParty');
  });
});
