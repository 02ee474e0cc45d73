import { describe, expect, it } from 'vitest';
import { openFileStore } from '../../src/store/file-store.js';
import type { StoreChange } from '../../src/store/types.js';
import { makeClient, makeGrant, T0 } from '../helpers/records.js';
import { killStoreWorkersAfterEach, spawnStoreWorker } from '../helpers/store-process.js';
import { useTmpDirs } from '../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-concurrency-');
killStoreWorkersAfterEach();

describe('one db.json shared by several OS processes', () => {
  it('DESIGN §6: two processes applying 200 mutations each at the same time lose none', async () => {
    const dataDir = await tmp();
    // Both open the store first, so that neither starts from a file the other has not seen.
    const workers = ['alpha', 'beta'].map((prefix) => spawnStoreWorker(['mutate', dataDir, prefix, '200']));
    await Promise.all(workers.map((w) => w.line(/^ready$/, 20_000)));
    for (const w of workers) w.send('go\n');
    const codes = await Promise.all(workers.map((w) => w.exited));
    expect(codes).toEqual([0, 0]);
    const spans = await Promise.all(workers.map(async (w) => (await w.line(/^done 200 /)).split(' ').slice(2).map(Number) as [number, number]));
    // They really ran at the same time: each started before the other finished.
    expect(spans[0]![0]).toBeLessThan(spans[1]![1]);
    expect(spans[1]![0]).toBeLessThan(spans[0]![1]);

    const store = await openFileStore({ dataDir });
    try {
      const ids = (await store.listClients()).map((c) => c.clientId);
      expect(ids).toHaveLength(400);
      const expected = ['alpha', 'beta'].flatMap((prefix) => Array.from({ length: 200 }, (_, i) => `${prefix}-${String(i).padStart(4, '0')}`));
      expect(ids.sort()).toEqual(expected.sort());
    } finally {
      await store.close();
    }
  });

  it('RFC 7523 §3 item 7: two processes racing to use the same 100 assertion ids accept each exactly once', async () => {
    const dataDir = await tmp();
    const workers = [1, 2].map(() => spawnStoreWorker(['jti', dataDir, 'jti', '100']));
    await Promise.all(workers.map((w) => w.line(/^ready$/, 20_000)));
    for (const w of workers) w.send('go\n');
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
    const accepted = await Promise.all(workers.map(async (w) => Number((await w.line(/^used \d+$/)).split(' ')[1])));
    expect(accepted[0]! + accepted[1]!).toBe(100);
  });

  it('DESIGN §6: a serving process sees a revocation written by a CLI process within 1 s', async () => {
    const dataDir = await tmp();
    const cli = await openFileStore({ dataDir });
    try {
      const { client } = makeClient();
      await cli.createClient(client);
      const revoked = makeGrant(client.clientId);
      const kept = makeGrant(client.clientId);
      await cli.saveTokens(revoked.access.record, revoked.refresh.record);
      await cli.saveTokens(kept.access.record);

      const server = spawnStoreWorker(['watch', dataDir]);
      await server.line(/^ready$/, 20_000);
      await cli.revokeAccessTokens({ ids: [revoked.access.record.id] }, T0 + 1);
      // The 1 s promise, with slack for the pipe and a busy machine.
      const line = await server.line(/revokedTokens/, 1_500);
      const change = JSON.parse(line) as StoreChange;
      expect(change).toMatchObject({ external: true, removedClientIds: [] });
      expect(change.revokedTokens).toEqual([
        { id: revoked.access.record.id, tokenHash: revoked.access.record.tokenHash, clientId: client.clientId, grantId: revoked.grantId },
      ]);

      await cli.removeClient(client.clientId, T0 + 2);
      const removal = JSON.parse(await server.line(/removedClientIds":\["/, 1_500)) as StoreChange;
      expect(removal.removedClientIds).toEqual([client.clientId]);
      expect(removal.revokedTokens.map((t) => t.id)).toEqual([kept.access.record.id]);
      server.child.stdin.end();
      expect(await server.exited).toBe(0);
    } finally {
      await cli.close();
    }
  });
});
