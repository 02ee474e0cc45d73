import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorCheck } from '../../src/doctor/checks.js';
import { assertBuilt, killChildrenAfterEach, runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-doctor-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const PASSWORD = 'correct horse battery staple';
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** `serve --port 0` in a fresh folder with this config; the owner password is set on first start. */
async function serveWith(config: Record<string, unknown>, args: string[] = []): Promise<{ dir: string; serve: ServeProcess; base: string }> {
  const dir = await tmp();
  await writeFile(join(dir, 'cupcake.config.json'), `${JSON.stringify({ tools: { docs: false }, ...config })}\n`);
  const serve = await startServe(['--port', '0', ...args], { cwd: dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD } });
  // The banner ends with the URLs to paste; wait for it so that the base URL is known.
  for (let i = 0; i < 100 && !/SSE \(legacy\):/.test(serve.stdout()); i++) await new Promise((r) => setTimeout(r, 20));
  const base = /Streamable HTTP:\s+(\S+)\/mcp/.exec(serve.stdout())?.[1];
  if (!base) throw new Error(`no base URL in the serve banner:\n${serve.stdout()}`);
  return { dir, serve, base };
}

function parseChecks(stdout: string): DoctorCheck[] {
  const checks = JSON.parse(stdout) as DoctorCheck[];
  expect(Array.isArray(checks)).toBe(true);
  for (const c of checks) expect(Object.keys(c).sort()).toEqual(['check', 'detail', 'fix', 'ok', 'status']);
  return checks;
}

const byName = (checks: DoctorCheck[], pattern: RegExp) => checks.filter((c) => pattern.test(c.check));

async function doctorClients(dir: string): Promise<string[]> {
  const listed = await runCli(['clients', 'list', '--json'], { cwd: dir });
  expect(listed.code).toBe(0);
  return (JSON.parse(listed.stdout) as Array<{ client_id: string; client_name: string | null }>)
    .filter((c) => c.client_name === 'cupcake-mcp doctor')
    .map((c) => c.client_id);
}

/**
 * A reverse proxy that buffers each upstream response completely before sending any of it,
 * as nginx with gzip on text/event-stream, or a misconfigured CDN, does. It adds forwarding
 * headers like any proxy.
 */
async function startBufferingProxy(): Promise<{ url: string; setUpstream(port: number): void }> {
  let upstreamPort = 0;
  const proxy = createServer((req, res) => {
    const upstream = request(
      {
        host: '127.0.0.1',
        port: upstreamPort,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '127.0.0.1', 'x-forwarded-proto': 'http' },
      },
      (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (chunk: Buffer) => chunks.push(chunk));
        up.on('end', () => {
          const headers = { ...up.headers };
          delete headers['transfer-encoding'];
          delete headers.connection;
          const body = Buffer.concat(chunks);
          res.writeHead(up.statusCode ?? 502, { ...headers, 'content-length': String(body.length) });
          res.end(body);
        });
        up.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  servers.push(proxy);
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, setUpstream: (port) => (upstreamPort = port) };
}

describe('cupcake-mcp doctor', () => {
  it('a healthy local server passes every check, and the test clients are removed from the local data dir', async () => {
    const { dir, base } = await serveWith({});
    // No --url: doctor finds the running server of this config.
    const result = await runCli(['doctor', '--json'], { cwd: dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD }, timeoutMs: 30_000 });
    const checks = parseChecks(result.stdout);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(result.code).toBe(0);
    expect(checks.every((c) => c.fix === null)).toBe(true);
    // DESIGN.md §4: AS metadata at every probed path, PRM per resource, both challenges.
    expect(byName(checks, /^authorization server metadata /).map((c) => c.check.split(' ').at(-1))).toEqual([
      '/.well-known/oauth-authorization-server',
      '/.well-known/oauth-authorization-server/mcp',
      '/.well-known/oauth-authorization-server/sse',
      '/.well-known/openid-configuration',
    ]);
    expect(byName(checks, /^protected resource metadata /)).toHaveLength(3);
    expect(byName(checks, /^401 challenge /).map((c) => c.detail)).toEqual([
      `401 with resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`,
      `401 with resource_metadata="${base}/.well-known/oauth-protected-resource/sse"`,
    ]);
    for (const pattern of [
      /^CORS preflight$/,
      /^registration round trip \(ChatGPT\)$/,
      /^registration round trip \(Claude\)$/,
      /^sign-in and token exchange/,
      /^SSE first byte within 2000 ms$/,
      /^Streamable HTTP session/,
      /^token revocation$/,
      /^test clients removed$/,
    ]) {
      expect(byName(checks, pattern), String(pattern)).toHaveLength(1);
    }
    expect(await doctorClients(dir)).toEqual([]);
  });

  it('without the owner password the sign-in and stream checks are reported as skipped, with how to give them, and are not failures', async () => {
    const { dir } = await serveWith({});
    const result = await runCli(['doctor', '--json'], { cwd: dir, timeoutMs: 30_000 });
    expect(result.code, result.stderr).toBe(0);
    const checks = parseChecks(result.stdout);
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
    const skipped = checks.filter((c) => c.status === 'skip');
    expect(skipped.map((c) => c.check)).toEqual(['sign-in and token exchange (ChatGPT flow)', 'SSE first byte within 2000 ms', 'Streamable HTTP session /mcp']);
    expect(skipped[0]!.fix).toMatch(/CUPCAKE_OWNER_PASSWORD|--password-stdin/);

    const text = await runCli(['doctor'], { cwd: dir, timeoutMs: 30_000 });
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n').filter((l) => l.startsWith('- skip'))).toHaveLength(3);
    expect(text.stdout).toMatch(/\d+ passed, 0 failed, 3 skipped \(of \d+ checks\)\./);
    // The same "how to" is printed once, then referred to.
    expect(text.stdout.match(/fix the sign-in above/g)).toHaveLength(1);
  });

  it(
    'doctor --url http://127.0.0.1:PORT on a healthy local server whose base URL says ' +
      'localhost: says once that hosted clients cannot reach it, and everything passes',
    async () => {
      const { dir, serve } = await serveWith({});
      const reached = serve.url.replace('localhost', '127.0.0.1');
      expect(reached).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const result = await runCli(['doctor', '--url', reached], { cwd: dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD }, timeoutMs: 30_000 });
      expect(result.code, result.stdout).toBe(0);
      expect(result.stdout.match(/hosted clients \(ChatGPT, Claude\) cannot reach a local address/g)).toHaveLength(1);
      expect(result.stdout).toContain(`the server calls itself http://localhost:${new URL(reached).port}`);
      expect(result.stdout).toMatch(/All \d+ checks passed\./);
      expect(await doctorClients(dir)).toEqual([]);
    },
  );

  it('the owner’s own doctor never locks them out: a wrong password is checked against the local data dir and not sent', async () => {
    const { dir, serve } = await serveWith({});
    for (let i = 0; i < 6; i++) {
      const result = await runCli(['doctor', '--json'], { cwd: dir, env: { CUPCAKE_OWNER_PASSWORD: 'not the owner password' }, timeoutMs: 30_000 });
      const signIn = parseChecks(result.stdout).find((c) => c.check.startsWith('sign-in'))!;
      expect(signIn).toMatchObject({ status: 'skip' });
      expect(signIn.detail).toContain('not sent');
    }
    const events = (await readFile(join(dir, '.cupcake', 'events.jsonl'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string });
    expect(events.filter((e) => e.type.startsWith('login.'))).toEqual([]);
    // And the right password still signs in from this address.
    const ok = await runCli(['doctor', '--json'], { cwd: dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD }, timeoutMs: 30_000 });
    expect(parseChecks(ok.stdout).find((c) => c.check.startsWith('sign-in'))).toMatchObject({ status: 'pass' });
    expect(serve.url).toBeDefined();
  });

  it('a baseUrl that does not match where the server is reached fails the issuer and resource checks, with the baseUrl to set', async () => {
    const { dir, serve } = await serveWith({ baseUrl: 'https://mcp.example.com' });
    const reached = serve.url; // http://127.0.0.1:<port>, not the configured https://mcp.example.com
    const result = await runCli(['doctor', '--url', reached, '--json'], { cwd: dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD }, timeoutMs: 30_000 });
    expect(result.code).toBe(1);
    const checks = parseChecks(result.stdout);
    const failed = checks.filter((c) => !c.ok);
    const issuerChecks = byName(checks, /^(authorization server metadata|protected resource metadata|401 challenge) /);
    expect(issuerChecks).toHaveLength(9);
    for (const check of issuerChecks) {
      expect(check.ok, check.check).toBe(false);
      expect(check.detail).toContain('https://mcp.example.com');
      expect(check.fix).toContain(`set "baseUrl": "${reached}"`);
    }
    expect(byName(failed, /^authorization server metadata /)[0]!.detail).toContain(`issuer is "https://mcp.example.com", not "${reached}"`);
    expect(byName(failed, /^protected resource metadata \/\.well-known\/oauth-protected-resource\/mcp$/)[0]!.detail).toContain(
      `resource is "https://mcp.example.com/mcp", not "${reached}/mcp"`,
    );
    // RFC 9207: the authorization response names the configured issuer, which a client rejects.
    expect(byName(failed, /^sign-in/)[0]!.detail).toContain('iss=https://mcp.example.com');
    // What does not depend on the URL still passes: the checks point at the cause, not at everything.
    for (const pattern of [/^HTTPS$/, /^reachable$/, /^CORS preflight$/, /^registration round trip \(ChatGPT\)$/, /^SSE first byte/]) {
      expect(byName(checks, pattern)[0]?.ok, String(pattern)).toBe(true);
    }
    expect(await doctorClients(dir)).toEqual([]);
  });

  it('behind a proxy that buffers responses, the SSE first-byte check fails with the proxy settings to change', async () => {
    const proxy = await startBufferingProxy();
    const { dir, serve } = await serveWith({ baseUrl: proxy.url });
    proxy.setUpstream(Number(new URL(serve.url).port));
    // From another folder: doctor cannot reach this server's data dir, so it reports its clients.
    const elsewhere = await tmp();
    const result = await runCli(['doctor', '--url', proxy.url], { cwd: elsewhere, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD }, timeoutMs: 30_000 });
    expect(result.code).toBe(1);
    const lines = result.stdout.split('\n').filter((l) => /^[✓✗-] /.test(l));
    const failedLines = lines.filter((l) => l.startsWith('✗ FAIL'));
    expect(failedLines).toHaveLength(1);
    expect(failedLines[0]).toMatch(
      /^✗ FAIL {2}SSE first byte within 2000 ms: no byte of the \/sse stream arrived within 2000 ms — fix: .*proxy_buffering off.*flush_interval -1/,
    );
    expect(lines.length).toBeGreaterThan(15);
    expect(result.stdout).toMatch(/\d+ passed, 1 failed \(of \d+ checks\)\./);

    const cleanup = lines.find((l) => l.includes('test clients removed'))!;
    const left = await doctorClients(dir);
    expect(left).toHaveLength(2);
    for (const id of left) expect(cleanup).toContain(`cupcake-mcp clients remove ${id}`);

    // CUPCAKE_W002: the proxy sends X-Forwarded-For while trustProxy is off — said once.
    expect(serve.stderr().match(/CUPCAKE_W002/g)).toHaveLength(1);
  });
});

describe('serve deployment warnings', () => {
  it('CUPCAKE_W001: a plain-http base URL while listening on all interfaces', async () => {
    const { serve } = await serveWith({}, ['--host', '0.0.0.0']);
    expect(serve.stderr()).toMatch(/warn CUPCAKE_W001 baseUrl http:\/\/localhost:\d+ is not https while serve listens on 0\.0\.0\.0/);
  });

  it('no warning for a local try on loopback', async () => {
    const { serve, base } = await serveWith({});
    await fetch(`${base}/healthz`);
    expect(serve.stderr()).not.toMatch(/CUPCAKE_W00/);
  });
});
