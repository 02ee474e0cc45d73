import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { ConfigInput } from '../src/config/schema.js';
import type { TargetName } from './targets.js';

/** The bench's tool on the peers (the same name, schema and answer everywhere; serve names it `bench__add`). */
const BENCH_TOOL_NAME = 'add';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The owner password every cupcake target starts with (P6 signs in with it). */
export const BENCH_OWNER_PASSWORD = 'bench owner password';

export interface TargetProcess {
  url: string;
  token: string;
  /** The name the bench's tool (add two numbers) has on this target. */
  tool: string;
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
    tool: BENCH_TOOL_NAME,
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
