import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomHex } from '../../../src/shared/ids.js';
import { StoreUnavailableError } from '../../../src/store/errors.js';
import { openRedisStore, type RedisStore } from '../../../src/store/redis/redis-store.js';
import { storeSettingProblem } from '../../../src/shared/store-url.js';
import type { StoreChange } from '../../../src/store/types.js';
import { T0, makeClient, makeCode, makeGrant } from '../../helpers/records.js';
import { startRedis, type TestRedis } from '../../helpers/redis-server.js';

/**
 * What the Redis store promises beyond the shared contract: several processes (here: several
 * stores, each with its own connections) on one Redis see one another's writes at once and
 * revocations within 1 s, one-shot operations stay one-shot across them, and an outage is a
 * quick StoreUnavailableError with cached tokens still served.
 */
let redis: TestRedis;
const open: RedisStore[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close().catch(() => undefined)));
});

async function replicas(n: number, prefix = `r-${randomHex(4)}:`): Promise<RedisStore[]> {
  const stores = await Promise.all(Array.from({ length: n }, () => openRedisStore({ url: redis.url, prefix, watch: true })));
  open.push(...stores);
  return stores;
}

function nextChange(store: RedisStore): Promise<StoreChange> {
  return new Promise((resolve) => {
    const off = store.onChange((change) => {
      off();
      resolve(change);
    });
  });
}

describe('Redis store across processes', () => {
  it('a token saved by one replica is found by another at once (a cache miss reads Redis)', async () => {
    const [a, b] = await replicas(2);
    const { client } = makeClient();
    await a!.createClient(client);
    const g = makeGrant(client.clientId);
    await a!.saveTokens(g.access.record);
    expect(await b!.findAccessToken(g.access.record.tokenHash)).toEqual(g.access.record);
    expect(await b!.getClient(client.clientId)).toEqual(client);
  });

  it('a revocation on one replica reaches the cache and the listeners of the others within 1 s', async () => {
    const [a, b, c] = await replicas(3);
    const { client } = makeClient();
    await a!.createClient(client);
    const g = makeGrant(client.clientId);
    await a!.saveTokens(g.access.record);
    // Both other replicas have it in memory, as after a first authenticated request.
    expect((await b!.findAccessToken(g.access.record.tokenHash))?.revokedAt).toBeNull();
    expect((await c!.findAccessToken(g.access.record.tokenHash))?.revokedAt).toBeNull();
    const seenB = nextChange(b!);
    const seenC = nextChange(c!);
    await a!.revokeAccessTokens({ ids: [g.access.record.id] }, T0 + 5);
    const within = (p: Promise<StoreChange>) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no change within 1 s')), 1_000))]);
    const [changeB, changeC] = await Promise.all([within(seenB), within(seenC)]);
    for (const change of [changeB, changeC]) {
      expect(change.external).toBe(true);
      expect(change.revokedTokens.map((t) => t.id)).toEqual([g.access.record.id]);
    }
    expect((await b!.findAccessToken(g.access.record.tokenHash))?.revokedAt).not.toBeNull();
    expect((await c!.findAccessToken(g.access.record.tokenHash))?.revokedAt).not.toBeNull();
  });

  it('removing a client on one replica tells the others which client went', async () => {
    const [a, b] = await replicas(2);
    const { client } = makeClient();
    await a!.createClient(client);
    const seen = nextChange(b!);
    await a!.removeClient(client.clientId, T0);
    expect((await seen).removedClientIds).toEqual([client.clientId]);
  });

  it('RFC 6749 §4.1.2: a code exchanged on several replicas at once is consumed exactly once', async () => {
    const stores = await replicas(4);
    const { client } = makeClient();
    await stores[0]!.createClient(client);
    const code = makeCode(client.clientId);
    await stores[0]!.saveCode(code.record);
    const results = await Promise.all(stores.flatMap((s) => [s.consumeCode(code.record.codeHash, T0 + 1), s.consumeCode(code.record.codeHash, T0 + 1)]));
    expect(results.filter((r) => r.outcome === 'consumed')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'replayed')).toHaveLength(7);
  });

  it('RFC 7523 §3: a jti used on several replicas at once is accepted exactly once', async () => {
    const stores = await replicas(4);
    const results = await Promise.all(stores.flatMap((s) => [s.useAssertionId('k', T0 + 60_000, T0), s.useAssertionId('k', T0 + 60_000, T0)]));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('a refresh token rotated on several replicas at once yields one rotation, the others inside the grace window', async () => {
    const stores = await replicas(3);
    const { client } = makeClient();
    await stores[0]!.createClient(client);
    const g = makeGrant(client.clientId);
    await stores[0]!.saveTokens(g.access.record, g.refresh.record);
    const results = await Promise.all(
      stores.map((s) =>
        s.rotateRefreshToken(
          g.refresh.record.tokenHash,
          { access: makeGrant(client.clientId).access.record, refresh: makeGrant(client.clientId).refresh.record },
          T0 + 10,
          60_000,
        ),
      ),
    );
    expect(results.every((r) => r.outcome === 'rotated')).toBe(true);
    expect((await stores[1]!.findRefreshToken(g.refresh.record.tokenHash))?.rotatedAt).toBe(T0 + 10);
  });

  it('one first-party client however many replicas start at once', async () => {
    const stores = await replicas(4);
    const candidate = () =>
      makeClient({
        clientName: 'cupcake-mcp',
        clientSecretHash: null,
        tokenEndpointAuthMethod: 'none',
        redirectUris: ['https://mcp.example.com/oauth/callback'],
      }).client;
    const results = await Promise.all(stores.map((s) => s.ensureFirstPartyClient(candidate())));
    expect(new Set(results.map((r) => r.client.clientId)).size).toBe(1);
    expect(results.filter((r) => r.outcome === 'created')).toHaveLength(1);
  });

  it('the /db of the URL is honoured: two databases hold two deployments', async () => {
    const prefix = `db-${randomHex(4)}:`;
    const zero = await openRedisStore({ url: `${redis.url}/0`, prefix });
    const three = await openRedisStore({ url: `${redis.url}/3`, prefix });
    open.push(zero, three);
    await zero.createClient(makeClient().client);
    expect(await zero.listClients()).toHaveLength(1);
    expect(await three.listClients()).toHaveLength(0);
    expect(zero.deployment).not.toBe(three.deployment);
  });
});

describe('Redis store settings', () => {
  it.each([
    ['file', undefined],
    ['redis://127.0.0.1:6379', undefined],
    ['redis://:secret@cache.internal:6380/2', undefined],
    ['rediss://user:secret@cache.example.com:6380/0', undefined],
    ['http://cache:6379', 'expected "file" or a URL starting with redis:// or rediss://'],
    ['redis://cache:6379/abc', 'expected the database as a number after the host, like "redis://host:6379/0"'],
    ['redis://cache:6379/0?x=1', 'expected no query or fragment'],
  ])('%s → %s', (url, problem) => {
    expect(storeSettingProblem(url)).toBe(problem);
  });
});

describe('Redis unreachable', () => {
  it('fails to open within seconds, naming the server and not the password', async () => {
    const error = await openRedisStore({ url: 'redis://:hunter2@127.0.0.1:1/0', prefix: 'x:' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toContain('redis://127.0.0.1:1/0');
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('writes fail with StoreUnavailableError, cached tokens keep working, and the store recovers when Redis returns', async () => {
    const own = await startRedis();
    try {
      const store = await openRedisStore({ url: own.url, prefix: 'outage:', watch: true });
      open.push(store);
      const { client } = makeClient();
      await store.createClient(client);
      const g = makeGrant(client.clientId);
      await store.saveTokens(g.access.record);
      await own.stop();
      await expect(store.saveCode(makeCode(client.clientId).record)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.createClient(makeClient().client)).rejects.toBeInstanceOf(StoreUnavailableError);
      // The bearer check is served from memory.
      expect((await store.findAccessToken(g.access.record.tokenHash))?.id).toBe(g.access.record.id);
      await own.start();
      // No restart of the store: the client reconnects on its own.
      await expect
        .poll(
          () =>
            store.createClient(makeClient().client).then(
              () => true,
              () => false,
            ),
          { timeout: 10_000, interval: 200 },
        )
        .toBe(true);
      // Redis came back empty (no persistence here): the store notices it is not the data it opened.
      expect(await store.deploymentIntact()).toBe(false);
    } finally {
      await own.close();
    }
  });

  it('Redis restarted empty is reported plainly and changes are refused, not served as a new deployment', async () => {
    const own = await startRedis();
    try {
      const errors: string[] = [];
      const store = await openRedisStore({
        url: own.url,
        prefix: 'lost:',
        watch: true,
        logger: { info() {}, warn() {}, error: (message) => errors.push(message) },
      });
      open.push(store);
      await store.createClient(makeClient().client);
      await own.stop();
      await own.start();
      await expect.poll(() => errors.some((e) => e.includes('no longer holds this deployment')), { timeout: 15_000, interval: 200 }).toBe(true);
      const refused = await store.createClient(makeClient().client).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(StoreUnavailableError);
      expect((refused as Error).message).toContain("lost this deployment's data");
    } finally {
      await own.close();
    }
  });
});
