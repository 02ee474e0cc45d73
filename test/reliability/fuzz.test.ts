import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, initDataDir, killChildrenAfterEach, rssOf, startServe } from '../helpers/cli.js';
import { SseReader } from '../helpers/sse.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { mintToken } from '../helpers/tokens.js';
import { CHATGPT_REDIRECT, runFlow } from '../helpers/oauth-flow.js';
import { startTestServer } from '../helpers/server.js';

const tmp = useTmpDirs('cupcake-fuzz-');
killChildrenAfterEach();
beforeAll(assertBuilt);

/**
 * Hostile input (issue 9): thousands of generated malformed requests to every endpoint of a real
 * `serve`. Seeded: a failure names its seed and request number, and CUPCAKE_FUZZ_SEED=<seed>
 * replays the same sequence.
 */
const SEED = Number(process.env.CUPCAKE_FUZZ_SEED ?? 0x5eed_c0de);
const REQUESTS = Number(process.env.CUPCAKE_FUZZ_REQUESTS ?? 4_000);

/** mulberry32: small, fast, and the same everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => next() < p;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const ascii = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + int(95))).join('');
  return { next, int, pick, chance, bytes, ascii };
}
type Rng = ReturnType<typeof prng>;

/** What only a leaked stack trace or internal error would put in a response. */
const STACK_TRACE = /\n\s+at\s|\bat\s+\S+\s+\(.*:\d+:\d+\)|node_modules|\.ts:\d+|\.js:\d+:\d+|\b(TypeError|ReferenceError|SyntaxError|RangeError):/;

interface Known {
  clientId: string;
  clientSecret: string;
  token: string;
  sseSession: string;
  mcpSession: string;
}

interface Generated {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Sent over a raw socket: bytes a well-behaved HTTP client refuses to send. */
  raw?: Buffer;
}

const PATHS = [
  '/register',
  '/token',
  '/revoke',
  '/authorize',
  '/mcp',
  '/sse',
  '/messages',
  '/messages/',
  '/tools',
  '/tools/whoami',
  '/tools/search',
  '/tools/fetch',
  '/tools/%2e%2e',
  '/docs/getting-started.md',
  '/docs/..%2f..%2fetc%2fpasswd',
  '/docs/%',
  '/.well-known/oauth-authorization-server',
  '/.well-known/oauth-protected-resource/mcp',
  '/.well-known/openid-configuration',
  '/.well-known/mcp/manifest.json',
  '/healthz',
  '/',
  '/oauth/start',
  '/oauth/callback',
  '/oauth/sign-out',
  '/%ff%fe',
  '/%',
  '/a/../../etc/passwd',
  '//register',
  '/register/',
  '/TOKEN',
];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];
const CONTENT_TYPES = [
  'application/json',
  'application/x-www-form-urlencoded',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-7',
  'application/json; charset=latin1',
  'application/x-www-form-urlencoded; charset=ibm500',
  'application/jsonx',
  '*/*',
  'application/json, text/html',
  '',
];
const HOSTILE_STRINGS = [
  'x\r\nSet-Cookie: evil=1',
  'x%0d%0aSet-Cookie:%20evil=1',
  '\u2028\u2029',
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "' OR 1=1 --",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a Log4Shell probe, sent as the literal text
  '${jndi:ldap://x}',
  '../../../../etc/passwd',
  '\u0000',
  '%00',
  '__proto__',
  'constructor',
  'javascript:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'https://evil.example/cb',
  `${CHATGPT_REDIRECT}\r\nLocation: https://evil.example`,
  `${CHATGPT_REDIRECT}%0d%0aLocation:%20https://evil.example`,
  `${CHATGPT_REDIRECT}#frag`,
  `${CHATGPT_REDIRECT}?x=1`,
  'https://user:pass@chatgpt.com/connector_platform_oauth_redirect',
  'ａｄｍｉｎ',
  '\ud800',
];

function jsonBomb(rng: Rng): string {
  const depth = rng.pick([1_000, 10_000, 100_000, 500_000]);
  return rng.chance(0.5) ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

function randomJson(rng: Rng, depth = 0): unknown {
  const kind = rng.int(depth > 4 ? 5 : 8);
  switch (kind) {
    case 0:
      return rng.pick(HOSTILE_STRINGS);
    case 1:
      return rng.pick([0, -1, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 0.1, 2 ** 53]);
    case 2:
      return rng.pick([true, false, null]);
    case 3:
      return rng.ascii(rng.int(200));
    case 4:
      return rng.chance(0.1) ? 'x'.repeat(rng.int(200_000)) : rng.ascii(8);
    case 5:
      return Array.from({ length: rng.int(6) }, () => randomJson(rng, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = rng.int(6); i > 0; i--)
        out[
          rng.pick([
            'client_name',
            'redirect_uris',
            'grant_types',
            'token_endpoint_auth_method',
            'scope',
            '__proto__',
            'constructor',
            'jsonrpc',
            'method',
            'id',
            'params',
            'name',
            'arguments',
            rng.ascii(6),
          ])
        ] = randomJson(rng, depth + 1);
      return out;
    }
  }
}

function body(rng: Rng, path: string, known: Known): Buffer | undefined {
  switch (rng.int(14)) {
    case 0:
      return undefined;
    case 1:
      return rng.bytes(rng.int(2_000));
    case 2:
      return Buffer.from(jsonBomb(rng));
    case 3:
      // Just over the 1 MB limit, or far over it.
      return Buffer.alloc(rng.chance(0.7) ? 1_048_577 + rng.int(1_000) : 3 * 1_048_576, rng.pick(['a', '[', '{', '%']));
    case 4: {
      const keys: Record<string, number> = {};
      for (let i = 0; i < 50_000; i++) keys[`k${i}`] = i;
      return Buffer.from(JSON.stringify(keys));
    }
    case 5:
      return Buffer.from(Array.from({ length: 5_000 }, (_, i) => `${rng.pick(['code', 'grant_type', 'client_id', 'a'])}${i % 3 ? '' : '[]'}=${i}`).join('&'));
    case 6: {
      // JSON-RPC that looks right, with hostile params.
      const method = rng.pick(['initialize', 'tools/list', 'tools/call', 'ping', 'resources/list', 'notifications/initialized', 'x'.repeat(5_000)]);
      const message = {
        jsonrpc: rng.pick(['2.0', '1.0', 2]),
        id: rng.pick([1, 'a', null, {}, [], 1e308]),
        method,
        params: {
          name: rng.pick(['whoami', 'search', 'fetch', '__proto__', '../x']),
          arguments: randomJson(rng),
          protocolVersion: rng.pick(['2025-06-18', '1999-01-01', 42]),
        },
      };
      return Buffer.from(JSON.stringify(rng.chance(0.2) ? Array.from({ length: rng.int(2_000) }, () => message) : message));
    }
    case 7:
      return Buffer.from(JSON.stringify(randomJson(rng)));
    case 8: {
      const form = new URLSearchParams();
      for (const key of [
        'grant_type',
        'code',
        'code_verifier',
        'redirect_uri',
        'client_id',
        'client_secret',
        'token',
        'request_id',
        'csrf_token',
        'password',
        'decision',
      ]) {
        if (rng.chance(0.6))
          form.append(
            key,
            rng.chance(0.3) ? notUrl(rng.pick(HOSTILE_STRINGS)) : rng.pick([known.clientId, 'authorization_code', 'refresh_token', 'approve', rng.ascii(40)]),
          );
        if (rng.chance(0.1)) form.append(key, 'again');
      }
      return Buffer.from(form.toString());
    }
    case 9:
      return Buffer.from('{"a":1,"a":2,"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}');
    case 10:
      return Buffer.concat([
        Buffer.from('{"client_name":"'),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
        Buffer.from('","redirect_uris":["https://x.example/cb"]}'),
      ]);
    case 11:
      return Buffer.from(
        JSON.stringify({
          redirect_uris: [rng.pick(HOSTILE_STRINGS)],
          client_name: rng.pick(HOSTILE_STRINGS),
          token_endpoint_auth_method: rng.pick(['none', 'private_key_jwt', 'client_secret_basic', '']),
        }),
      );
    case 12:
      return Buffer.from(path.startsWith('/token') ? 'grant_type=authorization_code&code=%ZZ&code_verifier=%' : '%%%%');
    default:
      return Buffer.from(rng.ascii(rng.int(300)));
  }
}

/** A hostile value that is not URL-shaped: a URL client_id would be fetched (CIMD), and this suite stays on loopback. */
const notUrl = (value: string) => (/^[a-z][a-z0-9+.-]*:/i.test(value) && value.includes('//') ? value.replace(/:/g, '_') : value);

/** Percent-encodes every UTF-8 byte (lone surrogates included, which encodeURIComponent refuses). */
const pct = (text: string) => [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

function query(rng: Rng, known: Known): string {
  if (rng.chance(0.3)) return '';
  const params: string[] = [];
  const value = () => pct(rng.chance(0.4) ? rng.pick(HOSTILE_STRINGS) : rng.ascii(rng.int(30)));
  if (rng.chance(0.5)) {
    params.push(
      `client_id=${rng.chance(0.7) ? known.clientId : pct(notUrl(rng.pick(HOSTILE_STRINGS)))}`,
      'response_type=code',
      `redirect_uri=${rng.chance(0.5) ? encodeURIComponent(CHATGPT_REDIRECT) : value()}`,
    );
    if (rng.chance(0.7))
      params.push('code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', `code_challenge_method=${rng.pick(['S256', 'plain', value()])}`);
    params.push(
      `state=${value()}`,
      `scope=${rng.pick(['mcp', 'offline_access', value()])}`,
      `resource=${rng.pick(['', value(), 'https%3A%2F%2Fevil.example'])}`,
    );
  }
  if (rng.chance(0.3)) params.push(`session_id=${rng.chance(0.5) ? known.sseSession : value()}`, `sessionId=${value()}`);
  if (rng.chance(0.2)) params.push(...Array.from({ length: rng.int(100) }, () => `state=${value()}`));
  if (rng.chance(0.05)) params.push(`x=${'%41'.repeat(rng.pick([1_000, 3_000, 8_000]))}`);
  if (rng.chance(0.1)) params.push('%', '%zz=%zz', '==', '&&&', 'a[b][c][d]=1', '__proto__[x]=1');
  return `?${params.join('&')}`;
}

function headers(rng: Rng, known: Known, path: string): Record<string, string> {
  const h: Record<string, string> = { 'x-forwarded-for': `10.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}` };
  if (rng.chance(0.7)) h['content-type'] = rng.pick(CONTENT_TYPES);
  const auth = rng.int(8);
  if (auth === 0 || (auth < 4 && /^\/(mcp|messages|sse|tools|docs)/.test(path))) h.authorization = `Bearer ${known.token}`;
  else if (auth === 1) h.authorization = `Basic ${Buffer.from(`${known.clientId}:${known.clientSecret}`).toString('base64')}`;
  else if (auth === 2) h.authorization = `Basic ${rng.bytes(40).toString('base64')}`;
  else if (auth === 3) h.authorization = `Bearer ${rng.ascii(rng.int(5_000))}`;
  else if (auth === 4)
    h.authorization = rng.pick([
      'Bearer',
      'Basic',
      'Basic ::::',
      'Digest x',
      `Basic ${Buffer.from('%zz:%').toString('base64')}`,
      'Bearer mcp_0000000000000000000000000000000g',
    ]);
  if (rng.chance(0.3)) h['mcp-session-id'] = rng.chance(0.5) ? known.mcpSession : rng.ascii(rng.int(100));
  if (rng.chance(0.2)) h['mcp-protocol-version'] = rng.pick(['2025-06-18', '2024-11-05', rng.ascii(20)]);
  if (rng.chance(0.2)) h.accept = rng.pick(['text/event-stream', 'application/json, text/event-stream', '*/*', rng.ascii(30)]);
  if (rng.chance(0.15)) h.cookie = rng.pick(['cupcake_consent=x', `cupcake_consent=${'a'.repeat(64)}`, rng.ascii(200), 'a=b; a=c; ;;;']);
  if (rng.chance(0.1)) h['content-encoding'] = rng.pick(['gzip', 'deflate', 'br', 'identity', 'x-unknown']);
  if (rng.chance(0.1)) h.origin = rng.pick(['https://evil.example', 'null', 'file://']);
  if (rng.chance(0.05)) h['x-forwarded-for'] = rng.pick(['', 'not-an-ip', '1.1.1.1, 2.2.2.2, ::1', 'a'.repeat(2_000)]);
  if (rng.chance(0.05)) h['last-event-id'] = rng.ascii(100);
  return h;
}

function generate(rng: Rng, known: Known): Generated {
  let path = rng.pick(PATHS);
  // Mostly the methods the route takes, so that bodies and parameters get read.
  const takes = /^\/(register|token|revoke|messages)/i.test(path) ? ['POST'] : /^\/(authorize|mcp|tools\/)/.test(path) ? ['GET', 'POST'] : ['GET'];
  const method = rng.chance(0.75) ? rng.pick(takes) : rng.pick(METHODS);
  if (rng.chance(0.05)) path = `/${rng.ascii(rng.int(3_000)).replace(/[\s?#]/g, 'x')}`;
  path += query(rng, known);
  const h = headers(rng, known, path);
  const b = method === 'GET' || method === 'HEAD' ? (rng.chance(0.05) ? body(rng, path, known) : undefined) : body(rng, path, known);
  if (rng.chance(0.1)) {
    // Bytes no polite client sends: invalid UTF-8 and CR/LF in the request line and headers,
    // conflicting lengths, a body shorter than announced.
    const kind = rng.int(6);
    const lines: Buffer[] = [];
    if (kind === 0)
      lines.push(Buffer.concat([Buffer.from(`${method} ${path.split('?')[0]}?state=`), Buffer.from([0xff, 0xfe, 0xc0, 0x80]), Buffer.from(' HTTP/1.1\r\n')]));
    else lines.push(Buffer.from(`${method} ${path} HTTP/1.1\r\n`));
    lines.push(Buffer.from('Host: 127.0.0.1\r\nConnection: close\r\n'));
    if (kind === 1) lines.push(Buffer.concat([Buffer.from('X-Evil: a'), Buffer.from([0x0d]), Buffer.from('Set-Cookie: evil=1\r\n')]));
    if (kind === 2) lines.push(Buffer.from('Content-Length: 10\r\nTransfer-Encoding: chunked\r\n'));
    if (kind === 3) lines.push(Buffer.concat([Buffer.from('Authorization: Basic '), Buffer.from([0xff, 0xfe]), Buffer.from('\r\n')]));
    if (kind === 4) lines.push(Buffer.from(`Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":`));
    if (kind === 5) lines.push(Buffer.from(`X-Long: ${'a'.repeat(20_000)}\r\n`));
    if (kind !== 4) lines.push(Buffer.from('\r\n'));
    return { method, path, headers: h, raw: Buffer.concat(lines) };
  }
  return { method, path, headers: h, ...(b ? { body: b } : {}) };
}

interface Outcome {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

function send(port: number, agent: Agent, g: Generated): Promise<Outcome> {
  const raw = g.raw;
  if (raw) {
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let data = '';
      const done = () => {
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
        resolve({ status, text: data, headers: {} });
      };
      socket.on('data', (d) => (data += d.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', done);
      socket.write(raw);
      // A body shorter than announced is answered by the request timeout; do not wait for it.
      setTimeout(() => socket.destroy(), 800);
    });
  }
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: g.method,
        path: g.path,
        headers: { ...g.headers, ...(g.body ? { 'content-length': String(g.body.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        const finish = () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('latin1'), headers: res.headers });
        if (g.method !== 'HEAD' && String(res.headers['content-type'] ?? '').includes('text/event-stream')) {
          // A stream we opened: its headers and first event (if one comes soon) are enough.
          let done = false;
          const stop = () => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            req.destroy();
            finish();
          };
          const timer = setTimeout(stop, 500);
          res.once('data', (d: Buffer) => {
            chunks.push(d);
            stop();
          });
          res.once('close', stop);
          res.once('error', stop);
          return;
        }
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', finish);
        res.on('error', finish);
      },
    );
    req.on('error', (error) => resolve({ status: 0, text: String(error), headers: {} }));
    req.setTimeout(5_000, () => req.destroy());
    if (g.body) req.write(g.body);
    req.end();
  });
}

/** A response that breaks a promise of DESIGN.md §4, described for the failure message; or undefined. */
function problemWith(outcome: Outcome): string | undefined {
  if (outcome.status >= 500) return `${outcome.status} ${outcome.text.slice(0, 300)}`;
  if (STACK_TRACE.test(outcome.text)) return `stack trace: ${outcome.text.slice(0, 300)}`;
  if ([outcome.headers['set-cookie'] ?? []].flat().some((c) => c.includes('evil'))) return 'injected Set-Cookie';
  const location = outcome.headers.location;
  // Only a registered redirect URI, or our own pages, may be redirected to.
  if (
    typeof location === 'string' &&
    /^[a-z][a-z0-9+.-]*:/i.test(location) &&
    !location.startsWith(`${CHATGPT_REDIRECT}?`) &&
    !/^http:\/\/(localhost|127\.0\.0\.1):\d+\//.test(location)
  ) {
    return `redirected to an unregistered place: ${location.slice(0, 200)}`;
  }
  return undefined;
}

/** Sends `plan[from..to)` over 8 keep-alive connections; collects problems and statuses. */
async function runPlan(port: number, plan: Generated[], from: number, to: number, problems: string[], statuses: Map<number, number>): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  let next = from;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < to && problems.length < 20) {
        const i = next++;
        const g = plan[i]!;
        const outcome = await send(port, agent, g);
        statuses.set(outcome.status, (statuses.get(outcome.status) ?? 0) + 1);
        const problem = problemWith(outcome);
        if (problem) problems.push(`#${i} (seed ${SEED}) ${g.method} ${g.path.slice(0, 120)} → ${problem}`);
      }
    }),
  );
  agent.destroy();
}

/** A client, its token, an SSE session and a Streamable HTTP session: something real to aim at. */
async function target(base: string): Promise<Known> {
  const flow = await runFlow(base, { headers: { 'x-forwarded-for': '192.0.2.1' } });
  expect(flow.accessToken).toBeDefined();
  const auth = { authorization: `Bearer ${flow.accessToken}` };
  const sse = new SseReader(await fetch(`${base}/sse`, { headers: auth }));
  const sseSession = /session_id=([^&\s]+)/.exec((await sse.next()).data)![1]!;
  const init = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } },
    }),
  });
  await init.arrayBuffer();
  return { clientId: flow.clientId!, clientSecret: flow.clientSecret!, token: flow.accessToken!, sseSession, mcpSession: init.headers.get('mcp-session-id')! };
}

describe('hostile input (issue 9)', () => {
  it(`seed ${SEED}: ${REQUESTS} malformed requests to every endpoint of a real serve: no 5xx, ` +
    `no stack trace, no injected header or redirect, no crash; a valid flow works afterwards`, {
    timeout: 120_000,
  }, async () => {
    const dir = await tmp();
    await initDataDir(dir, { trustProxy: true, auth: { refreshTokens: true } });
    const server = await startServe(['--port', '0'], { cwd: dir });
    const base = server.url;
    const known = await target(base);
    const rng = prng(SEED);
    const plan = Array.from({ length: REQUESTS }, () => generate(rng, known));
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    const started = Date.now();
    for (let from = 0; from < plan.length && problems.length === 0; from += 500) {
      await runPlan(Number(new URL(base).port), plan, from, Math.min(from + 500, plan.length), problems, statuses);
      if (server.child.exitCode !== null) problems.push(`serve exited (${server.child.exitCode}) after request ${from + 500}`);
    }
    const elapsed = Date.now() - started;

    expect(problems).toEqual([]);
    expect(server.child.exitCode).toBeNull();
    expect(elapsed).toBeLessThan(60_000);
    // Every request was answered by someone: our app (2xx-4xx) or Node's parser (400, 408, 431).
    expect([...statuses.keys()].every((s) => s === 0 || (s >= 200 && s < 500))).toBe(true);
    // And the fuzz reached past the front door: bodies read and refused, requests authenticated and served.
    const count = (...codes: number[]) => codes.reduce((n, c) => n + (statuses.get(c) ?? 0), 0);
    const seen = JSON.stringify([...statuses.entries()].sort((x, y) => x[0] - y[0]));
    expect(count(0), `no answer at all; statuses ${seen}`).toBeLessThan(REQUESTS * 0.1);
    expect(count(413), `bodies over 1 MB refused; statuses ${seen}`).toBeGreaterThan(5);
    expect(count(200, 201, 202), `requests served; statuses ${seen}`).toBeGreaterThan(REQUESTS * 0.1);
    expect(count(400), `malformed requests refused; statuses ${seen}`).toBeGreaterThan(REQUESTS * 0.1);
    expect(count(401), `bad credentials refused; statuses ${seen}`).toBeGreaterThan(REQUESTS * 0.03);
    expect(await rssOf(server.child.pid!)).toBeLessThan(350 * 1024 * 1024);

    // Still in working order: a new connection from a fresh address.
    const after = await runFlow(base, { headers: { 'x-forwarded-for': '192.0.2.200' }, clientName: 'after the storm' });
    expect(after.statuses).toEqual([201, 200, 302, 200]);
    expect((await fetch(`${base}/tools`, { headers: { authorization: `Bearer ${after.accessToken}` } })).status).toBe(200);
    expect((await server.stop()).code).toBe(0);
    expect(server.stderr()).not.toMatch(/unhandled error|uncaught/i);
  });

  it(`seed ${SEED + 1}: memory stays flat under the same fuzz (heap after a full GC, measured in-process)`, { timeout: 60_000 }, async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const server = await startTestServer({ config: { trustProxy: true, auth: { refreshTokens: true } } });
    try {
      const known = await target(server.url);
      const rng = prng(SEED + 1);
      const plan = Array.from({ length: 1_400 }, () => generate(rng, known));
      const problems: string[] = [];
      const statuses = new Map<number, number>();
      const port = Number(new URL(server.url).port);
      const heap = async () => {
        await new Promise((resolve) => setTimeout(resolve, 200));
        gc();
        gc();
        return process.memoryUsage().heapUsed;
      };
      await runPlan(port, plan, 0, 400, problems, statuses);
      const warm = await heap();
      await runPlan(port, plan, 400, 1_400, problems, statuses);
      const end = await heap();
      expect(problems).toEqual([]);
      // 1,000 more hostile requests may leave bounded state behind (rate-limit windows, consent forms), not megabytes.
      expect(end - warm, `heap ${Math.round(warm / 1e6)} MB → ${Math.round(end / 1e6)} MB`).toBeLessThan(4 * 1024 * 1024);
    } finally {
      await server.close();
    }
  });
});

describe('what the fuzz found (issue 9)', () => {
  it('HEAD /sse answers the stream headers without opening a session (a HEAD response has no body: the stream would never end)', async () => {
    const server = await startTestServer();
    try {
      const { token } = await mintToken(server.store, { baseUrl: server.url, resource: server.url });
      for (let i = 0; i < 5; i++) {
        const response = await fetch(`${server.url}/sse`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toContain('text/event-stream');
      }
      expect(server.app.mcp.sessions.size).toBe(0);
      expect((await fetch(`${server.url}/sse`, { method: 'HEAD' })).status).toBe(401);
    } finally {
      await server.close();
    }
  });
});
