import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_CALL, BENCH_OWNER_PASSWORD, MCP_HEADERS, ROOT, percentile, spawnTarget, type TargetProcess } from './harness.js';
import type { Row } from './report.js';
import { s256 } from '../src/oauth/pkce.js';
import { randomToken } from '../src/shared/ids.js';

const BIN = join(ROOT, 'bin/cupcake-mcp.js');

/** Wall time of one CLI run (process start to exit), in ms. */
function timeCli(args: string[], cwd: string): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
  if (result.status !== 0) throw new Error(`cupcake-mcp ${args.join(' ')} failed: ${result.stderr}`);
  return performance.now() - started;
}

/**
 * P5 — CLI start-up: the median wall time of `runs` runs of the built bin (after one warm-up run
 * so the file cache is warm), `--help` and `clients list` in an initialised folder.
 */
export async function runP5(quick: boolean): Promise<Row[]> {
  const runs = quick ? 2 : 11;
  const dir = await mkdtemp(join(tmpdir(), 'cupcake-bench-cli-'));
  try {
    spawnSync(process.execPath, [BIN, 'init', '--yes'], { cwd: dir, env: { PATH: process.env.PATH, CUPCAKE_OWNER_PASSWORD: 'bench password' } });
    const median = (args: string[]) => {
      timeCli(args, dir);
      return percentile(
        Array.from({ length: runs }, () => timeCli(args, dir)),
        50,
      );
    };
    const help = median(['--help']);
    const list = median(['clients', 'list']);
    const version = median(['--version']);
    return [
      {
        figure: 'P5 cupcake-mcp --help (median ms)',
        cupcake: help,
        peer: null,
        ratio: null,
        target: '≤ 150 ms',
        pass: help <= 150,
        note: `--version ${version.toFixed(0)} ms`,
      },
      { figure: 'P5 cupcake-mcp clients list (median ms)', cupcake: list, peer: null, ratio: null, target: '≤ 300 ms', pass: list <= 300 },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * P6 — the whole flow on loopback, as ChatGPT performs it: register → GET /authorize → POST the
 * consent form (scrypt password check) → POST /token (Basic) → initialize → first tools/list.
 * Median of `runs` sequential flows against `serve`, after one warm-up flow; the in-process app
 * runs the same flows in alternation, for the note (what serve adds).
 */
export async function runP6(quick: boolean): Promise<Row[]> {
  const runs = quick ? 2 : 15;
  const serve = await spawnTarget('cupcake');
  const app = await spawnTarget('cupcake-app').catch(async (error: unknown) => {
    await serve.stop();
    throw error;
  });
  try {
    const flow = async (target: TargetProcess) => {
      const started = performance.now();
      const redirectUri = 'https://chatgpt.com/connector_platform_oauth_redirect';
      const reg = await fetch(`${target.url}/register`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ client_name: 'bench', redirect_uris: [redirectUri] }),
      });
      const client = (await reg.json()) as { client_id: string; client_secret: string };
      const verifier = randomToken(32);
      const query = new URLSearchParams({
        response_type: 'code',
        client_id: client.client_id,
        redirect_uri: redirectUri,
        state: 'bench',
        scope: 'mcp',
        code_challenge: s256(verifier),
        code_challenge_method: 'S256',
      });
      const page = await fetch(`${target.url}/authorize?${query}`);
      const html = await page.text();
      const cookie = page.headers.getSetCookie()[0]!.split(';')[0]!;
      const form = new URLSearchParams({
        request_id: /name="request_id" value="([^"]+)"/.exec(html)![1]!,
        csrf_token: /name="csrf_token" value="([^"]+)"/.exec(html)![1]!,
        password: BENCH_OWNER_PASSWORD,
        decision: 'approve',
      });
      const consent = await fetch(`${target.url}/authorize`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie },
        body: form,
      });
      const code = new URL(consent.headers.get('location')!).searchParams.get('code')!;
      const basic = Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64');
      const tokenResponse = await fetch(`${target.url}/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Basic ${basic}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }),
      });
      const { access_token } = (await tokenResponse.json()) as { access_token: string };
      const headers = { ...MCP_HEADERS, Authorization: `Bearer ${access_token}` };
      const init = await fetch(`${target.url}/mcp`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
        }),
      });
      await init.text();
      const session = init.headers.get('mcp-session-id')!;
      await (
        await fetch(`${target.url}/mcp`, {
          method: 'POST',
          headers: { ...headers, 'Mcp-Session-Id': session },
          body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
        })
      ).text();
      const list = await fetch(`${target.url}/mcp`, {
        method: 'POST',
        headers: { ...headers, 'Mcp-Session-Id': session },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
      });
      const listed = await list.text();
      if (!listed.includes(`"${BENCH_CALL.name}"`)) throw new Error(`the flow did not reach tools/list: ${listed.slice(0, 200)}`);
      return performance.now() - started;
    };
    await flow(serve);
    await flow(app);
    // Alternating, so that drift of the machine falls on both alike.
    const times: number[] = [];
    const appTimes: number[] = [];
    for (let i = 0; i < runs; i++) {
      times.push(await flow(serve));
      appTimes.push(await flow(app));
    }
    const median = percentile(times, 50);
    const appMedian = percentile(appTimes, 50);
    return [
      {
        figure: 'P6 register → consent → token → tools/list (median ms)',
        cupcake: median,
        peer: null,
        ratio: null,
        target: '≤ 150 ms',
        pass: median <= 150,
        note: `in-process createApp ${appMedian.toFixed(0)} ms in the same rounds`,
      },
    ];
  } finally {
    await serve.stop();
    await app.stop();
  }
}
