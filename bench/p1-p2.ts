import { MCP_HEADERS, load, openSession, spawnTarget, type LoadResult } from './harness.js';
import type { Row } from './report.js';
import type { TargetName } from './targets.js';

const LIST = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
const CALL = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'add', arguments: { a: 2, b: 3 } } });

async function measure(name: TargetName, body: string, seconds: number, warmup: number): Promise<LoadResult> {
  const target = await spawnTarget(name);
  try {
    const sessionId = await openSession(target);
    return await load({
      url: `${target.url}/mcp`,
      headers: { ...MCP_HEADERS, Authorization: `Bearer ${target.token}`, 'Mcp-Session-Id': sessionId },
      body,
      connections: 50,
      seconds,
      warmupSeconds: warmup,
    });
  } finally {
    await target.stop();
  }
}

/**
 * P1 — authenticated tools/list and tools/call over Streamable HTTP in one initialized session,
 * 50 connections, each target in its own process; a warm-up run is discarded, then the measured
 * run's average req/s and p99 latency are compared with the MCP SDK's reference stack.
 * P2 — the same tools/list route with and without authentication (bench-only switch): the
 * difference in mean latency is what the bearer check, audience and session owner cost.
 */
export async function runP1P2(quick: boolean): Promise<Row[]> {
  const seconds = quick ? 1 : 6;
  const warmup = quick ? 0 : 2;
  const rows: Row[] = [];
  for (const [label, body] of [
    ['tools/list', LIST],
    ['tools/call', CALL],
  ] as const) {
    const cupcake = await measure('cupcake', body, seconds, warmup);
    const sdk = await measure('sdk', body, seconds, warmup);
    const bare = await measure('bare', body, seconds, warmup);
    rows.push({
      figure: `P1 ${label} req/s (50 conn)`,
      cupcake: cupcake.rps,
      peer: sdk.rps,
      peerName: 'SDK reference',
      ratio: cupcake.rps / sdk.rps,
      target: '≥ 2.5×',
      pass: cupcake.rps >= 2.5 * sdk.rps && cupcake.errors === 0,
      note: `bare node:http ${Math.round(bare.rps)} req/s; errors ${cupcake.errors}/${sdk.errors}`,
    });
    rows.push({
      figure: `P1 ${label} p99 ms`,
      cupcake: cupcake.p99,
      peer: sdk.p99,
      peerName: 'SDK reference',
      ratio: cupcake.p99 / sdk.p99,
      target: '≤ 1×',
      pass: cupcake.p99 <= sdk.p99,
    });
  }
  const withAuth = await measure('cupcake', LIST, seconds, warmup);
  const withoutAuth = await measure('cupcake-noauth', LIST, seconds, warmup);
  rows.push({
    figure: 'P2 auth cost (mean latency)',
    cupcake: withAuth.mean,
    peer: withoutAuth.mean,
    peerName: 'cupcake, auth off',
    ratio: withAuth.mean / withoutAuth.mean,
    target: '≤ 1.05×',
    pass: withAuth.mean <= withoutAuth.mean * 1.05,
  });
  return rows;
}
