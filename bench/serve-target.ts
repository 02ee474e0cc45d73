/**
 * `cupcake-mcp serve` as a user runs it (DESIGN.md §8): the built bin, in a folder of its own with
 * a `cupcake.config.json` a user could write — the default config with its docs folder at
 * bench/docs (the built-in `search` the bench calls), an upstream stdio server (`tools.servers`,
 * for P1's gateway row) and, where a figure needs it, a documented `limits` setting —
 * the owner password from CUPCAKE_OWNER_PASSWORD on first start, and a token from `tokens create`.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { ConfigInput } from '../src/config/schema.js';
import { BENCH_DOCS, BENCH_OWNER_PASSWORD, MCP_HEADERS, ROOT, type TargetProcess } from './harness.js';
import { startRedis, type TestRedis } from '../test/helpers/redis-server.js';

const run = promisify(execFile);
const BIN = join(ROOT, 'bin/cupcake-mcp.js');

/** The upstream's tool as serve exposes it: `<server>__<tool>` from `tools.servers.bench`. */
const UPSTREAM_TOOL = 'bench__add';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Waits until tools/list on a fresh session names `tool`: the upstream server connects after the banner. */
async function waitForTool(url: string, token: string, tool: string): Promise<void> {
  const headers = { ...MCP_HEADERS, 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/list', Authorization: `Bearer ${token}` };
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
  const deadline = Date.now() + 15_000;
  let last = '';
  while (Date.now() < deadline) {
    const response = await fetch(`${url}/mcp`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: meta } }),
    });
    last = await response.text();
    if (last.includes(`"${tool}"`)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`serve did not list ${tool} within 15 s: ${last.slice(0, 300)}`);
}

/**
 * Starts `cupcake-mcp serve` with `limits` (documented config keys only) and waits until it serves the
 * upstream's tool. With `store: 'redis'` (P8) a redis-server of its own is started the way the tests start
 * theirs and named in the config as `"store": "redis://…"`, as a deployment on Redis writes it.
 */
export async function startServe(limits: ConfigInput['limits'] = {}, store: 'file' | 'redis' = 'file'): Promise<TargetProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'cupcake-bench-serve-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const redis: TestRedis | undefined = store === 'redis' ? await startRedis() : undefined;
  const config: ConfigInput = {
    baseUrl: url,
    host: '127.0.0.1',
    port,
    tools: { docs: { dir: BENCH_DOCS }, servers: { bench: { command: process.execPath, args: [join(ROOT, 'bench/add-server.mjs')], cwd: ROOT } } },
    limits,
    ...(redis ? { store: redis.url } : {}),
  };
  await writeFile(join(dir, 'cupcake.config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const env = { PATH: process.env.PATH, NO_COLOR: '1' };
  const child = spawn(process.execPath, [BIN, 'serve'], {
    cwd: dir,
    env: { ...env, CUPCAKE_OWNER_PASSWORD: BENCH_OWNER_PASSWORD },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line.includes('/mcp')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`cupcake-mcp serve exited with ${code}`)));
  });
  // serve prints a line per auth event; keep reading so that a full pipe never stalls it.
  child.stdout!.resume();
  const { stdout } = await run(process.execPath, [BIN, 'tokens', 'create', '--json', '--name', 'bench'], { cwd: dir, env });
  const token = (JSON.parse(stdout) as { token: string }).token;
  await waitForTool(url, token, UPSTREAM_TOOL);
  return {
    url,
    token,
    child,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await redis?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
