import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomHex } from '../../../src/shared/ids.js';
import type { AuthEvent } from '../../../src/store/event-log.js';
import { openRedisStore, type RedisStore } from '../../../src/store/redis/redis-store.js';
import { connectRedis } from '../../../src/store/redis/connection.js';
import { BATCH_INTERVAL_MS } from '../../../src/store/redis/event-log.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { startRedis, type TestRedis } from '../../helpers/redis-server.js';

/** The audit log of a Redis deployment (DESIGN.md §6, §7): one log for every replica, records and rejections apart. */
let redis: TestRedis;
const stores: RedisStore[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const s of stores) await s.close();
  await redis.close();
});

/** Script calls Redis has run so far (every append is one), from its own command statistics. */
async function scriptCalls(): Promise<number> {
  const client = await connectRedis(redis.url, { logger: silentLogger, name: 'test-stats' });
  try {
    const info = await client.info('commandstats');
    return [...info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  } finally {
    await client.close();
  }
}

async function replica(prefix: string): Promise<RedisStore> {
  const store = await openRedisStore({ url: redis.url, prefix });
  stores.push(store);
  return store;
}

describe('Redis event log', () => {
  it('events of every replica are read back in the order Redis received them, records and rejections merged', async () => {
    const prefix = `ev-${randomHex(4)}:`;
    const a = (await replica(prefix)).createEventLog();
    const b = (await replica(prefix)).createEventLog();
    a.record({ type: 'client.registered', client_id: 'c1' });
    await a.flush();
    b.record({ type: 'token.rejected', detail: { reason: 'unknown' } });
    await b.flush();
    a.record({ type: 'token.issued', client_id: 'c1' });
    await a.flush();
    const seen = await b.readLast(10);
    expect(seen.map((e) => e.type)).toEqual(['client.registered', 'token.rejected', 'token.issued']);
    expect((await a.readLast(2)).map((e) => e.type)).toEqual(['token.rejected', 'token.issued']);
    expect((await a.readLast(10, { types: ['token.'] })).map((e) => e.type)).toEqual(['token.rejected', 'token.issued']);
  });

  it('a flood of rejections does not push records out: they keep a stream of their own', async () => {
    const prefix = `flood-${randomHex(4)}:`;
    const log = (await replica(prefix)).createEventLog();
    log.record({ type: 'token.issued', client_id: 'kept' });
    for (let i = 0; i < 500; i++) log.record({ type: 'token.rejected', detail: { reason: 'unknown' } });
    await log.flush();
    const records = await log.readLast(1, { types: ['token.issued'] });
    expect(records).toEqual([expect.objectContaining({ type: 'token.issued', client_id: 'kept' })]);
  });

  it('follow delivers new events of any replica, from both streams, until stopped', async () => {
    const prefix = `follow-${randomHex(4)}:`;
    const reader = (await replica(prefix)).createEventLog();
    const writer = (await replica(prefix)).createEventLog();
    writer.record({ type: 'server.started' });
    await writer.flush();
    const seen: AuthEvent[] = [];
    const stop = reader.follow((e) => seen.push(e));
    // Give the follower its starting point, then write.
    await new Promise((resolve) => setTimeout(resolve, 200));
    writer.record({ type: 'login.failed', client_id: 'c' });
    writer.record({ type: 'token.rejected', detail: { reason: 'unknown' } });
    await writer.flush();
    await expect.poll(() => seen.map((e) => e.type), { timeout: 5_000 }).toEqual(['login.failed', 'token.rejected']);
    stop();
  });

  it('under a steady stream of events (a tool.called per request) writes are batched: at most one script call per interval, not one per event', async () => {
    const prefix = `batch-${randomHex(4)}:`;
    const log = (await replica(prefix)).createEventLog();
    const before = await scriptCalls();
    const started = performance.now();
    for (let i = 0; i < 100; i++) {
      log.record({ type: 'tool.called', client_id: 'c', detail: { tool: 'search', ms: i } });
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await log.flush();
    const elapsed = performance.now() - started;
    const calls = (await scriptCalls()) - before;
    // One write may start per interval, plus the one flush() sends at once.
    expect(calls).toBeLessThanOrEqual(Math.ceil(elapsed / BATCH_INTERVAL_MS) + 2);
    expect(calls).toBeLessThan(100);
    const stored = await log.readLast(200);
    expect(stored.map((e) => (e.detail as { ms: number }).ms)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('close writes everything still pending, in order, however many events (more than one script call holds)', async () => {
    const prefix = `close-${randomHex(4)}:`;
    const log = (await replica(prefix)).createEventLog();
    const reader = (await replica(prefix)).createEventLog();
    for (let i = 0; i < 1_200; i++)
      log.record(
        i % 7 === 0 ? { type: 'token.rejected', detail: { reason: `r${i}` } } : { type: 'tool.called', client_id: 'c', detail: { tool: 'search', ms: i } },
      );
    await log.close();
    const stored = await reader.readLast(2_000);
    expect(stored).toHaveLength(1_200);
    expect(
      stored.map((e) => (e.type === 'token.rejected' ? Number((e.detail as { reason: string }).reason.slice(1)) : (e.detail as { ms: number }).ms)),
    ).toEqual(Array.from({ length: 1_200 }, (_, i) => i));
  });
});
