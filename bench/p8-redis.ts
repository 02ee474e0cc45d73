import { randomUUID } from 'node:crypto';
import { openSession, percentile, spawnTarget } from './harness.js';
import { interleaved, type Running } from './p1-p2.js';
import { MODERN_REQUESTS } from './p7-modern.js';
import { load, type LoadResult } from './harness.js';
import type { Row } from './report.js';
import type { TargetName } from './targets.js';
import { hashSecret } from '../src/oauth/secrets.js';
import { tokenIdFromHash } from '../src/shared/ids.js';
import { openRedisStore } from '../src/store/redis/redis-store.js';
import type { AccessTokenRecord } from '../src/store/types.js';
import { startRedis } from '../test/helpers/redis-server.js';

const LIST = () => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
const CALL = (tool: string) => JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: { a: 2, b: 3 } } });

function tokenRecord(i: number, clientId: string): AccessTokenRecord {
  const hash = hashSecret(`bench-token-${i}-${randomUUID()}`);
  const now = Date.now();
  return {
    id: tokenIdFromHash(hash),
    tokenHash: hash,
    clientId,
    grantId: randomUUID(),
    scopes: ['mcp'],
    resource: 'http://127.0.0.1/mcp',
    createdAt: now,
    expiresAt: now + 86_400_000,
    lastUsedAt: null,
    revokedAt: null,
  };
}

/** Issuing a token on the Redis store (one compare-and-set script) with N live tokens; p50 after warm-up. */
async function redisIssueLatency(liveTokens: number, samples: number): Promise<number> {
  const redis = await startRedis();
  try {
    const store = await openRedisStore({ url: redis.url });
    const clientId = randomUUID();
    for (let i = 0; i < liveTokens; i += 500)
      await Promise.all(Array.from({ length: Math.min(500, liveTokens - i) }, (_, j) => store.saveTokens(tokenRecord(i + j, clientId))));
    const times: number[] = [];
    for (let i = 0; i < samples + 3; i++) {
      const started = performance.now();
      await store.saveTokens(tokenRecord(liveTokens + i, clientId));
      if (i >= 3) times.push(performance.now() - started);
    }
    await store.close();
    return percentile(times, 50);
  } finally {
    await redis.close();
  }
}

/**
 * P8 — P1's authenticated tools/list and tools/call (Streamable HTTP session, 50 connections)
 * on `cupcake-mcp serve` as shipped with `"store": "redis://…"` in its config next to the same
 * serve on the file store, interleaved round by round; the bearer check is
 * served from each store's memory, so Redis should cost nothing on this path. Then issuing a
 * token on Redis with 10,000 live tokens; and P7's stateless 2026-07-28 requests the same way.
 */
export async function runP8(quick: boolean): Promise<Row[]> {
  const rounds = quick ? 1 : 3;
  const seconds = quick ? 1 : 3;
  const warmup = quick ? 0 : 2;
  const running = new Map<TargetName, Running>();
  const rows: Row[] = [];
  try {
    for (const name of ['cupcake', 'cupcake-redis'] as const) {
      const target = await spawnTarget(name);
      running.set(name, { target, sessionId: await openSession(target) });
    }
    for (const [label, body] of [
      ['tools/list', LIST],
      ['tools/call', CALL],
    ] as const) {
      const results = await interleaved(running, body, rounds, seconds, warmup);
      const file = results.get('cupcake')!;
      const redis = results.get('cupcake-redis')!;
      rows.push({
        figure: `P8 ${label} req/s on Redis`,
        cupcake: redis.rps,
        peer: file.rps,
        peerName: 'file store',
        ratio: redis.rps / file.rps,
        target: '≥ 0.9×',
        pass: redis.rps >= 0.9 * file.rps && redis.errors === 0,
        note: `errors Redis ${redis.errors}, file ${file.errors}`,
      });
      rows.push({
        figure: `P8 ${label} p99 ms on Redis`,
        cupcake: redis.p99,
        peer: file.p99,
        peerName: 'file store',
        ratio: redis.p99 / file.p99,
        target: '≤ 1.1×',
        pass: redis.p99 <= 1.1 * file.p99,
      });
    }
    // P7's stateless 2026-07-28 requests, the same way.
    for (const request of MODERN_REQUESTS) {
      const runs = new Map<TargetName, LoadResult[]>();
      for (let round = 0; round < rounds; round++) {
        for (const [name, { target }] of running) {
          const result = await load({
            url: `${target.url}/mcp`,
            headers: { ...request.headers(target.tool), Authorization: `Bearer ${target.token}` },
            body: request.body(target.tool),
            connections: 50,
            seconds,
            warmupSeconds: round === 0 ? warmup : 0,
          });
          runs.set(name, [...(runs.get(name) ?? []), result]);
        }
      }
      const median = (name: TargetName) => {
        const all = runs.get(name)!;
        const rps = percentile(
          all.map((r) => r.rps),
          50,
        );
        return { ...all.find((r) => r.rps === rps)!, errors: all.reduce((sum, r) => sum + r.errors, 0) };
      };
      const file = median('cupcake');
      const redis = median('cupcake-redis');
      rows.push({
        figure: `P8 ${request.label} req/s on Redis (2026-07-28)`,
        cupcake: redis.rps,
        peer: file.rps,
        peerName: 'file store',
        ratio: redis.rps / file.rps,
        target: '≥ 0.9×',
        pass: redis.rps >= 0.9 * file.rps && redis.errors === 0,
        note: `errors Redis ${redis.errors}, file ${file.errors}`,
      });
    }
  } finally {
    for (const { target } of running.values()) await target.stop();
  }
  const issue = await redisIssueLatency(quick ? 1_000 : 10_000, quick ? 20 : 200);
  rows.push({ figure: 'P8 token issue p50 ms on Redis (10k live)', cupcake: issue, peer: null, ratio: null, target: '≤ 5 ms', pass: issue <= 5 });
  return rows;
}
