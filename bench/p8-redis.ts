import { randomUUID } from 'node:crypto';
import { checkAnswers, loadInterleaved, loadPlan, MODERN_REQUESTS, openSession, SESSION_REQUESTS, spawnTarget, type SessionTarget } from './harness.js';
import { issueLatency, tokenRecord } from './p4-store.js';
import type { Row } from './report.js';
import type { TargetName } from './targets.js';
import { openRedisStore } from '../src/store/redis/redis-store.js';
import { startRedis } from '../test/helpers/redis-server.js';

/** Issuing a token on the Redis store (one compare-and-set script) with N live tokens; p50 after warm-up. */
async function redisIssueLatency(liveTokens: number, samples: number): Promise<number> {
  const redis = await startRedis();
  try {
    const store = await openRedisStore({ url: redis.url });
    const clientId = randomUUID();
    for (let i = 0; i < liveTokens; i += 500)
      await Promise.all(Array.from({ length: Math.min(500, liveTokens - i) }, (_, j) => store.saveTokens(tokenRecord(i + j, clientId))));
    return await issueLatency(store, clientId, liveTokens, samples);
  } finally {
    await redis.close();
  }
}

/**
 * P8 — P1's authenticated tools/list and tools/call (Streamable HTTP session, 50 connections)
 * on `cupcake-mcp serve` as shipped with `"store": "redis://…"` in its config next to the same
 * serve on the file store, interleaved round by round, then P7's stateless 2026-07-28 requests the
 * same way; the bearer check is served from each store's memory, so Redis should cost little on
 * this path. Then issuing a token on Redis with 10,000 live tokens.
 */
export async function runP8(quick: boolean): Promise<Row[]> {
  // Five rounds, not three: the two stores are within a few percent of each other, and this
  // machine's drift between rounds is as large (two file-store processes differ by up to 5%).
  const plan = { ...loadPlan(quick), rounds: quick ? 1 : 5 };
  const running = new Map<TargetName, SessionTarget>();
  const rows: Row[] = [];
  try {
    for (const name of ['cupcake', 'cupcake-redis'] as const) {
      const target = await spawnTarget(name);
      running.set(name, { ...target, sessionId: await openSession(target) });
    }
    // P1's session requests, then P7's stateless 2026-07-28 ones, on the same two processes.
    for (const [era, requests] of [
      ['', SESSION_REQUESTS],
      [' (2026-07-28)', MODERN_REQUESTS],
    ] as const) {
      for (const request of requests) {
        for (const target of running.values()) await checkAnswers(target, request);
        const results = await loadInterleaved(running, request, plan);
        const file = results.get('cupcake')!;
        const redis = results.get('cupcake-redis')!;
        rows.push({
          figure: `P8 ${request.label} req/s on Redis${era}`,
          cupcake: redis.rps,
          peer: file.rps,
          peerName: 'file store',
          ratio: redis.rps / file.rps,
          target: '≥ 0.9×',
          pass: redis.rps >= 0.9 * file.rps && redis.errors === 0,
          note: `errors Redis ${redis.errors}, file ${file.errors}`,
        });
        rows.push({
          figure: `P8 ${request.label} p99 ms on Redis${era}`,
          cupcake: redis.p99,
          peer: file.p99,
          peerName: 'file store',
          ratio: redis.p99 / file.p99,
          target: '≤ 1.1×',
          pass: redis.p99 <= 1.1 * file.p99,
        });
      }
    }
  } finally {
    for (const { stop } of running.values()) await stop();
  }
  const issue = await redisIssueLatency(quick ? 1_000 : 10_000, quick ? 20 : 200);
  rows.push({ figure: 'P8 token issue p50 ms on Redis (10k live)', cupcake: issue, peer: null, ratio: null, target: '≤ 5 ms', pass: issue <= 5 });
  return rows;
}
