import { MCP_HEADERS, load, openSession, percentile, spawnTarget, type LoadResult, type TargetProcess } from './harness.js';
import type { Row } from './report.js';
import type { TargetName } from './targets.js';

const LIST = () => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
const CALL = (tool: string) => JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: { a: 2, b: 3 } } });

export interface Running {
  target: TargetProcess;
  sessionId: string;
}

/** The median run (by req/s) of several, with its own latencies. */
function medianRun(results: LoadResult[]): LoadResult {
  const rps = percentile(
    results.map((r) => r.rps),
    50,
  );
  const run = results.find((r) => r.rps === rps)!;
  return { ...run, errors: results.reduce((sum, r) => sum + r.errors, 0) };
}

/**
 * Loads each target in turn, round after round, so that drift of this shared machine falls on all
 * of them alike; each target's figure is its median round.
 */
export async function interleaved(
  targets: Map<TargetName, Running>,
  body: (tool: string) => string,
  rounds: number,
  seconds: number,
  warmup: number,
): Promise<Map<TargetName, LoadResult>> {
  const results = new Map<TargetName, LoadResult[]>();
  for (let round = 0; round < rounds; round++) {
    for (const [name, { target, sessionId }] of targets) {
      const result = await load({
        url: `${target.url}/mcp`,
        headers: { ...MCP_HEADERS, Authorization: `Bearer ${target.token}`, 'Mcp-Session-Id': sessionId },
        body: body(target.tool),
        connections: 50,
        seconds,
        warmupSeconds: round === 0 ? warmup : 0,
      });
      results.set(name, [...(results.get(name) ?? []), result]);
    }
  }
  return new Map([...results].map(([name, runs]) => [name, medianRun(runs)]));
}

/**
 * P1 — authenticated tools/list and tools/call over Streamable HTTP in one initialized session,
 * 50 connections (autocannon, keep-alive), each target in its own process: `cupcake-mcp serve`
 * as shipped (its tool an upstream stdio server from `tools.servers`, so a call crosses to it and
 * back), the MCP SDK's reference stack (Express + requireBearerAuth +
 * StreamableHTTPServerTransport + McpServer), bare node:http, and cupcake's `createApp`
 * in-process with the tool registered in code (what serve adds to the app). A warm-up run per
 * target is discarded; then rounds alternate between targets and each figure is the target's
 * median round (average req/s, p99 latency).
 * P2 — the same tools/list route on the in-process app with and without authentication (the
 * twin's `tokenVerifier` checks nothing; serve has no such setting), interleaved the same way: the ratio
 * of mean latencies is what the bearer check, audience and session-owner check cost.
 */
export async function runP1P2(quick: boolean): Promise<Row[]> {
  const rounds = quick ? 1 : 3;
  const seconds = quick ? 1 : 3;
  const warmup = quick ? 0 : 2;
  const names: TargetName[] = ['cupcake', 'cupcake-app', 'sdk', 'bare', 'cupcake-app-noauth'];
  const running = new Map<TargetName, Running>();
  try {
    for (const name of names) {
      const target = await spawnTarget(name);
      running.set(name, { target, sessionId: await openSession(target) });
    }
    const pick = (...wanted: TargetName[]) => new Map(wanted.map((n) => [n, running.get(n)!]));
    const rows: Row[] = [];
    for (const [label, body] of [
      ['tools/list', LIST],
      ['tools/call', CALL],
    ] as const) {
      const results = await interleaved(pick('cupcake', 'cupcake-app', 'sdk', 'bare'), body, rounds, seconds, warmup);
      const cupcake = results.get('cupcake')!;
      const sdk = results.get('sdk')!;
      const bare = results.get('bare')!;
      const app = results.get('cupcake-app')!;
      rows.push({
        figure: `P1 ${label} req/s (50 conn)`,
        cupcake: cupcake.rps,
        peer: sdk.rps,
        peerName: 'SDK reference',
        ratio: cupcake.rps / sdk.rps,
        target: '≥ 2.5×',
        pass: cupcake.rps >= 2.5 * sdk.rps && cupcake.errors === 0,
        note: `in-process createApp ${Math.round(app.rps)} req/s (serve at ${((cupcake.rps / app.rps) * 100).toFixed(0)}% of it); bare node:http ${Math.round(bare.rps)} req/s (serve at ${((cupcake.rps / bare.rps) * 100).toFixed(0)}% of it); errors cupcake ${cupcake.errors}, app ${app.errors}, SDK ${sdk.errors}`,
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
    const auth = await interleaved(pick('cupcake-app', 'cupcake-app-noauth'), LIST, rounds + (quick ? 0 : 2), seconds, 0);
    const withAuth = auth.get('cupcake-app')!;
    const withoutAuth = auth.get('cupcake-app-noauth')!;
    rows.push({
      figure: 'P2 auth cost (mean latency ms)',
      cupcake: withAuth.mean,
      peer: withoutAuth.mean,
      peerName: 'in-process app, auth off',
      ratio: withAuth.mean / withoutAuth.mean,
      target: '≤ 1.05×',
      pass: withAuth.mean <= withoutAuth.mean * 1.05,
    });
    return rows;
  } finally {
    for (const { target } of running.values()) await target.stop();
  }
}
