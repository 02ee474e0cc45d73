import { checkAnswers, loadInterleaved, loadPlan, MODERN_REQUESTS, spawnTarget, type TargetProcess } from './harness.js';
import type { Row } from './report.js';
import type { TargetName } from './targets.js';

/**
 * P7 — stateless MCP 2026-07-28 tools/list and tools/call (`search`, as in P1) on /mcp, 50
 * connections: `cupcake-mcp serve` as shipped against the SDK v2's reference stack (Express +
 * requireBearerAuth + createMcpHandler, the same tool), each in its own process, rounds
 * interleaved as in P1; each figure is the median round.
 */
export async function runP7(quick: boolean): Promise<Row[]> {
  const plan = loadPlan(quick);
  const targets = new Map<TargetName, TargetProcess>();
  try {
    for (const name of ['cupcake', 'sdk-v2'] as const) targets.set(name, await spawnTarget(name));
    const rows: Row[] = [];
    for (const request of MODERN_REQUESTS) {
      for (const target of targets.values()) await checkAnswers(target, request);
      const results = await loadInterleaved(targets, request, plan);
      const cupcake = results.get('cupcake')!;
      const sdk = results.get('sdk-v2')!;
      rows.push({
        figure: `P7 ${request.label} req/s (50 conn, 2026-07-28)`,
        cupcake: cupcake.rps,
        peer: sdk.rps,
        peerName: 'SDK v2 reference',
        ratio: cupcake.rps / sdk.rps,
        target: '≥ 2.5×',
        pass: cupcake.rps >= 2.5 * sdk.rps && cupcake.errors === 0,
        note: `errors cupcake ${cupcake.errors}, SDK v2 ${sdk.errors}`,
      });
      rows.push({
        figure: `P7 ${request.label} p99 ms`,
        cupcake: cupcake.p99,
        peer: sdk.p99,
        peerName: 'SDK v2 reference',
        ratio: cupcake.p99 / sdk.p99,
        target: '≤ 1×',
        pass: cupcake.p99 <= sdk.p99,
      });
    }
    return rows;
  } finally {
    for (const target of targets.values()) await target.stop();
  }
}
