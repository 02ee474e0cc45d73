import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { ConfigInput } from '../src/config/schema.js';
import type { TargetName } from './targets.js';

/**
 * The tool every target serves and the bench calls: `search` over the same docs folder
 * (bench/docs), with the code and schema of serve's built-in docs tool — serve has it from its
 * default `tools.docs`, the peers register the same tool in their own stack.
 */
export const BENCH_CALL = { name: 'search', arguments: { query: 'revoke tokens' } } as const;
export const BENCH_DOCS = fileURLToPath(new URL('./docs/', import.meta.url));

export const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The owner password every cupcake target starts with (P6 signs in with it). */
export const BENCH_OWNER_PASSWORD = 'bench owner password';

export interface TargetProcess {
  url: string;
  token: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

let bundled: Promise<string> | undefined;

/**
 * The target process as plain JavaScript: bundled once per run with esbuild (dependencies stay in
 * node_modules), so targets run on bare Node as the product does, without a TypeScript loader
 * adding its own memory and start-up to the figures.
 */
function targetScript(): Promise<string> {
  bundled ??= (async () => {
    const { build } = await import('esbuild');
    const outfile = join(ROOT, 'bench/results/target-process.mjs');
    await build({
      entryPoints: [join(ROOT, 'bench/target-process.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      outfile,
      logLevel: 'warning',
    });
    return outfile;
  })();
  return bundled;
}

/**
 * Starts a bench target in its own Node process: `cupcake` is `cupcake-mcp serve` as shipped
 * (serve-target.ts, with `limits` from its config), `cupcake-redis` the same on a Redis store (P8);
 * a peer prints its {url, token} line.
 */
export async function spawnTarget(name: TargetName, limits?: ConfigInput['limits']): Promise<TargetProcess> {
  if (name === 'cupcake') return (await import('./serve-target.js')).startServe(limits);
  if (name === 'cupcake-redis') return (await import('./serve-target.js')).startServe(limits, 'redis');
  const child = spawn(process.execPath, [await targetScript(), name], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench target ${name} exited with ${code}`)));
  });
  const { url, token } = JSON.parse(line) as { url: string; token: string };
  return {
    url,
    token,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export const MCP_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2025-06-18' };

/** Opens an initialized Streamable HTTP session and returns its id. */
export async function openSession(target: { url: string; token: string }): Promise<string> {
  const headers = { ...MCP_HEADERS, Authorization: `Bearer ${target.token}` };
  const init = await fetch(`${target.url}/mcp`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
    }),
  });
  await init.text();
  const sessionId = init.headers.get('mcp-session-id');
  if (init.status !== 200 || !sessionId) throw new Error(`initialize failed: ${init.status}`);
  const done = await fetch(`${target.url}/mcp`, {
    method: 'POST',
    headers: { ...headers, 'Mcp-Session-Id': sessionId },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await done.text();
  return sessionId;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  mean: number;
  errors: number;
}

/** autocannon against one URL: a warm-up run that is thrown away, then the measured run. */
export async function load(options: {
  url: string;
  headers: Record<string, string>;
  body?: string;
  method?: 'POST' | 'GET';
  connections: number;
  seconds: number;
  warmupSeconds: number;
}): Promise<LoadResult> {
  const run = (duration: number) =>
    autocannon({
      url: options.url,
      method: options.method ?? 'POST',
      headers: options.headers,
      body: options.body,
      connections: options.connections,
      duration,
    });
  if (options.warmupSeconds > 0) await run(options.warmupSeconds);
  const result = await run(options.seconds);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    mean: result.latency.average,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A target with an initialized 2025 Streamable HTTP session (`openSession`). */
export interface SessionTarget extends TargetProcess {
  sessionId: string;
}

export interface BenchRequest<T extends TargetProcess = TargetProcess> {
  label: string;
  headers(target: T): Record<string, string>;
  body(target: T): string;
}

const CALL_PARAMS = { name: BENCH_CALL.name, arguments: BENCH_CALL.arguments };

/** P1's two requests, as a 2025 client sends them in its session. */
export const SESSION_REQUESTS: ReadonlyArray<BenchRequest<SessionTarget>> = [
  {
    label: 'tools/list',
    headers: (target) => ({ ...MCP_HEADERS, 'Mcp-Session-Id': target.sessionId }),
    body: () => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  },
  {
    label: 'tools/call',
    headers: (target) => ({ ...MCP_HEADERS, 'Mcp-Session-Id': target.sessionId }),
    body: () => JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: CALL_PARAMS }),
  },
];

const MODERN = '2026-07-28';
const MODERN_META = { 'io.modelcontextprotocol/protocolVersion': MODERN, 'io.modelcontextprotocol/clientCapabilities': {} };
const MODERN_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': MODERN };

/** P7's two requests, as a 2026-07-28 client sends them: envelope in `_meta`, Mcp-Method/Mcp-Name headers, no session. */
export const MODERN_REQUESTS: ReadonlyArray<BenchRequest> = [
  {
    label: 'tools/list',
    headers: () => ({ ...MODERN_HEADERS, 'Mcp-Method': 'tools/list' }),
    body: () => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: MODERN_META } }),
  },
  {
    label: 'tools/call',
    headers: () => ({ ...MODERN_HEADERS, 'Mcp-Method': 'tools/call', 'Mcp-Name': BENCH_CALL.name }),
    body: () => JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { ...CALL_PARAMS, _meta: MODERN_META } }),
  },
];

/** Checks that a target answers `request` with a result before it is loaded: a bench of refusals measures nothing. */
export async function checkAnswers<T extends TargetProcess>(target: T, request: BenchRequest<T>): Promise<void> {
  const response = await fetch(`${target.url}/mcp`, {
    method: 'POST',
    headers: { ...request.headers(target), Authorization: `Bearer ${target.token}` },
    body: request.body(target),
  });
  const text = await response.text();
  const data = /^data: (.*)$/m.exec(text)?.[1] ?? text;
  const body = JSON.parse(data) as { result?: { isError?: boolean } };
  if (response.status !== 200 || !body.result || body.result.isError) {
    throw new Error(`${target.url}: ${request.label} was not answered (${response.status} ${text.slice(0, 300)})`);
  }
}

export interface LoadPlan {
  rounds: number;
  seconds: number;
  warmup: number;
}

export function loadPlan(quick: boolean): LoadPlan {
  return quick ? { rounds: 1, seconds: 1, warmup: 0 } : { rounds: 3, seconds: 3, warmup: 2 };
}

/**
 * POSTs `request` to each target's /mcp with 50 connections, one target after the other, round
 * after round, so that drift of this shared machine falls on all of them alike (the first round
 * starts with a warm-up that is thrown away). Each target's figure is its median round by req/s,
 * with that round's latencies and the errors of every round.
 */
export async function loadInterleaved<Name extends string, T extends TargetProcess>(
  targets: Map<Name, T>,
  request: BenchRequest<T>,
  plan: LoadPlan,
): Promise<Map<Name, LoadResult>> {
  const runs = new Map<Name, LoadResult[]>();
  for (let round = 0; round < plan.rounds; round++) {
    for (const [name, target] of targets) {
      const result = await load({
        url: `${target.url}/mcp`,
        headers: { ...request.headers(target), Authorization: `Bearer ${target.token}` },
        body: request.body(target),
        connections: 50,
        seconds: plan.seconds,
        warmupSeconds: round === 0 ? plan.warmup : 0,
      });
      runs.set(name, [...(runs.get(name) ?? []), result]);
    }
  }
  const median = (all: LoadResult[]): LoadResult => {
    const rps = percentile(
      all.map((r) => r.rps),
      50,
    );
    return { ...all.find((r) => r.rps === rps)!, errors: all.reduce((sum, r) => sum + r.errors, 0) };
  };
  return new Map([...runs].map(([name, all]) => [name, median(all)]));
}
