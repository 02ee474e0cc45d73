import { load, percentile, spawnTarget, type LoadResult, type TargetProcess } from './harness.js';
import type { Row } from './report.js';
import type { TargetName } from './targets.js';

const MODERN = '2026-07-28';
const META = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
const HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': MODERN };

/** The two requests, as a 2026-07-28 client sends them: envelope in `_meta`, Mcp-Method/Mcp-Name headers. */
export const MODERN_REQUESTS = [
  {
    label: 'tools/list',
    headers: () => ({ ...HEADERS, 'Mcp-Method': 'tools/list' }),
    body: () => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: META } }),
  },
  {
    label: 'tools/call',
    headers: (tool: string) => ({ ...HEADERS, 'Mcp-Method': 'tools/call', 'Mcp-Name': tool }),
    body: (tool: string) => JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: { a: 2, b: 3 }, _meta: META } }),
  },
] as const;

/** Checks a target answers the request as MCP 2026-07-28 before it is loaded: a bench of refusals measures nothing. */
async function check(target: TargetProcess, request: (typeof MODERN_REQUESTS)[number]): Promise<void> {
  const response = await fetch(`${target.url}/mcp`, {
    method: 'POST',
    headers: { ...request.headers(target.tool), Authorization: `Bearer ${target.token}` },
    body: request.body(target.tool),
  });
  const body = (await response.json()) as { result?: { resultType?: string } };
  if (response.status !== 200 || body.result?.resultType !== 'complete')
    throw new Error(`P7: ${request.label} was not answered as 2026-07-28 (${response.status} ${JSON.stringify(body).slice(0, 200)})`);
}

/**
 * P7 — stateless MCP 2026-07-28 tools/list and tools/call on /mcp, 50 connections:
 * `cupcake-mcp serve` (its tool an upstream stdio server, as in P1) against the SDK v2's reference stack (Express + requireBearerAuth + createMcpHandler, same
 * tool), each in its own process, rounds interleaved as in P1; each figure is the median round.
 */
export async function runP7(quick: boolean): Promise<Row[]> {
  const rounds = quick ? 1 : 3;
  const seconds = quick ? 1 : 3;
  const warmup = quick ? 0 : 2;
  const names: TargetName[] = ['cupcake', 'sdk-v2'];
  const targets = new Map<TargetName, TargetProcess>();
  try {
    for (const name of names) targets.set(name, await spawnTarget(name));
    const rows: Row[] = [];
    for (const request of MODERN_REQUESTS) {
      for (const target of targets.values()) await check(target, request);
      const runs = new Map<TargetName, LoadResult[]>();
      for (let round = 0; round < rounds; round++) {
        for (const [name, target] of targets) {
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
      const cupcake = median('cupcake');
      const sdk = median('sdk-v2');
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
