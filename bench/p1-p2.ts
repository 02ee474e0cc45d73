import {
  loadInterleaved,
  loadPlan,
  MCP_HEADERS,
  openSession,
  SESSION_REQUESTS,
  checkAnswers,
  spawnTarget,
  type BenchRequest,
  type SessionTarget,
} from './harness.js';
import type { Row } from './report.js';
import type { TargetName } from './targets.js';

/** The bench's stdio upstream (bench/add-server.mjs): `bench__add` on serve; the SDK reference has the same `add` in its process. */
function gatewayCall(serve: SessionTarget): BenchRequest<SessionTarget> {
  return {
    label: 'tools/call through a stdio upstream',
    headers: (target) => ({ ...MCP_HEADERS, 'Mcp-Session-Id': target.sessionId }),
    body: (target) =>
      JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: target === serve ? 'bench__add' : 'add', arguments: { a: 2, b: 3 } } }),
  };
}

/**
 * P1 — authenticated tools/list and tools/call (`search` over bench/docs) over Streamable HTTP in
 * one initialized session, 50 connections (autocannon, keep-alive), each target in its own process:
 * `cupcake-mcp serve` as shipped, the MCP SDK's reference stack (Express + requireBearerAuth +
 * StreamableHTTPServerTransport + McpServer, the same tool), bare node:http, and cupcake's
 * `createApp` in-process (what serve adds to the app). Rounds alternate between targets
 * (`loadInterleaved`). A last row, for information, calls a tool of serve's stdio upstream
 * (`tools.servers`) against the same tool in the reference's process: what the gateway's hop costs.
 * P2 — the same tools/list route on the in-process app with and without authentication (the
 * twin's `tokenVerifier` checks nothing; serve has no such setting), interleaved the same way: the ratio
 * of mean latencies is what the bearer check, audience and session-owner check cost.
 */
export async function runP1P2(quick: boolean): Promise<Row[]> {
  const plan = loadPlan(quick);
  const names: TargetName[] = ['cupcake', 'cupcake-app', 'sdk', 'bare', 'cupcake-app-noauth'];
  const running = new Map<TargetName, SessionTarget>();
  try {
    for (const name of names) {
      const target = await spawnTarget(name);
      running.set(name, { ...target, sessionId: await openSession(target) });
    }
    const pick = (...wanted: TargetName[]) => new Map(wanted.map((n) => [n, running.get(n)!]));
    const rows: Row[] = [];
    for (const request of SESSION_REQUESTS) {
      const targets = pick('cupcake', 'cupcake-app', 'sdk', 'bare');
      for (const target of targets.values()) await checkAnswers(target, request);
      const results = await loadInterleaved(targets, request, plan);
      const cupcake = results.get('cupcake')!;
      const sdk = results.get('sdk')!;
      const bare = results.get('bare')!;
      const app = results.get('cupcake-app')!;
      rows.push({
        figure: `P1 ${request.label} req/s (50 conn)`,
        cupcake: cupcake.rps,
        peer: sdk.rps,
        peerName: 'SDK reference',
        ratio: cupcake.rps / sdk.rps,
        target: '≥ 2.5×',
        pass: cupcake.rps >= 2.5 * sdk.rps && cupcake.errors === 0,
        note:
          `in-process createApp ${Math.round(app.rps)} req/s (serve at ${((cupcake.rps / app.rps) * 100).toFixed(0)}% of it); ` +
          `bare node:http ${Math.round(bare.rps)} req/s (serve at ${((cupcake.rps / bare.rps) * 100).toFixed(0)}% of it); ` +
          `errors cupcake ${cupcake.errors}, app ${app.errors}, SDK ${sdk.errors}`,
      });
      rows.push({
        figure: `P1 ${request.label} p99 ms`,
        cupcake: cupcake.p99,
        peer: sdk.p99,
        peerName: 'SDK reference',
        ratio: cupcake.p99 / sdk.p99,
        target: '≤ 1×',
        pass: cupcake.p99 <= sdk.p99,
      });
    }
    const gateway = gatewayCall(running.get('cupcake')!);
    const hop = pick('cupcake', 'sdk');
    for (const target of hop.values()) await checkAnswers(target, gateway);
    const hopResults = await loadInterleaved(hop, gateway, plan);
    const viaUpstream = hopResults.get('cupcake')!;
    const inProcess = hopResults.get('sdk')!;
    rows.push({
      figure: `P1 ${gateway.label} req/s (information)`,
      cupcake: viaUpstream.rps,
      peer: inProcess.rps,
      peerName: 'SDK reference, tool in process',
      ratio: viaUpstream.rps / inProcess.rps,
      target: '—',
      pass: viaUpstream.errors === 0,
      note: `serve's call crosses to the upstream process and back; errors cupcake ${viaUpstream.errors}, SDK ${inProcess.errors}`,
    });
    const listOnly = SESSION_REQUESTS[0]!;
    const auth = await loadInterleaved(pick('cupcake-app', 'cupcake-app-noauth'), listOnly, { ...plan, rounds: plan.rounds + (quick ? 0 : 2), warmup: 0 });
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
    for (const target of running.values()) await target.stop();
  }
}
