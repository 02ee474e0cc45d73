import { createHash, randomBytes } from 'node:crypto';
import type { RedisServerFacts } from '../store/redis/server-facts.js';

/**
 * What every doctor step shares: the URLs it checks, an HTTP helper that never throws, the
 * wording of the usual fixes, what earlier steps learnt, and `record` for the step's verdicts.
 */

/** `warn`: works today, but a setting puts data at risk; said with its fix, not counted as a failure. */
export type CheckStatus = 'pass' | 'fail' | 'skip' | 'warn';

export interface DoctorCheck {
  check: string;
  /** False only for a failure: a skipped check is not one. */
  ok: boolean;
  status: CheckStatus;
  detail: string;
  /** What to change when the check fails (or, for a passing check, a follow-up); null otherwise. */
  fix: string | null;
}

/** The `client_name` of every client doctor registers, so that people and tools can tell them apart. */
export const DOCTOR_CLIENT_NAME = 'cupcake-mcp doctor';
export const CHATGPT_REDIRECT_URI = 'https://chatgpt.com/connector_platform_oauth_redirect';
export const CLAUDE_REDIRECT_URI = 'https://claude.ai/api/mcp/auth_callback';
/** The origin the MCP Inspector runs at: a browser-based client that needs CORS. */
export const PREFLIGHT_ORIGIN = 'http://localhost:6274';

export interface DoctorOptions {
  /** The public base URL to check (the issuer, e.g. https://mcp.example.com). */
  baseUrl: string;
  /** The owner password: with it doctor approves its own test connection and opens a stream. */
  password?: string | undefined;
  /**
   * Checks the password against the owner password before doctor sends it (possible when the
   * data dir is on this machine), so that a wrong one never counts towards the consent lockout.
   */
  verifyPassword?: (password: string) => Promise<boolean>;
  fetch?: typeof fetch;
  /** Per request (default 10 s). */
  requestTimeoutMs?: number;
  /** How soon the first byte of an SSE stream must arrive (default 2 s). */
  firstByteMs?: number;
  /**
   * Deletes doctor's test clients (there is no deletion endpoint over HTTP); resolves with the
   * ids it removed. Without it, the clients left on the server are reported.
   */
  removeTestClients?: (clientIds: string[]) => Promise<string[]>;
  /**
   * The Redis store the local config names (`store: "redis://…"`, DESIGN.md §6): doctor checks that
   * it answers, keeps its data over a restart and never evicts keys. `location` is the URL without
   * its password; `inspect` connects once and fails with a message saying why.
   */
  redis?: { location: string; inspect(): Promise<RedisServerFacts> };
  /** Called as each check completes, for live output. */
  onCheck?: (check: DoctorCheck) => void;
}

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  /** Set when no HTTP answer came back at all (DNS, refused, TLS, timeout). */
  error?: string;
  errorCode?: string;
}

export interface Registration {
  clientId: string;
  clientSecret: string;
  consent?: { cookie: string; requestId: string; csrfToken: string; state: string; verifier: string };
}

export interface DoctorContext {
  readonly options: DoctorOptions;
  readonly base: URL;
  /** The issuer doctor expects (a loopback alias may be replaced by the server's own name). */
  issuer: string;
  origin: string;
  /** The base URL's path, without a trailing slash ('' at the root). */
  prefix: string;
  readonly loopback: boolean;
  readonly firstByteMs: number;
  readonly results: DoctorCheck[];
  /** Set by a step after which nothing else can be checked. */
  stopped: boolean;
  // What earlier steps learnt.
  scopesSupported: string[];
  transports: { mcp: boolean; sse: boolean };
  registered: string[];
  chatgpt?: Registration;
  accessToken?: string;

  record(check: string, status: CheckStatus | boolean, detail: string, fix?: string | null): void;
  http(url: string, init?: RequestInit & { stream?: boolean }): Promise<HttpResult>;
  /** One line on what came back when it is not what a check wanted. */
  answered(r: HttpResult): string;
  /** The fix for an answer that is not cupcake-mcp's. */
  unexpectedFix(r: HttpResult, path: string): string;
  /** The fix when the server names itself differently from where it is reached. */
  baseUrlFix(seen?: string): string;
  networkFix(code: string | undefined): string;
}

export const PROXY_STREAM_FIX =
  'a proxy between here and cupcake-mcp holds the stream back. nginx: "proxy_buffering off;" and no gzip for text/event-stream; ' +
  'Caddy: "flush_interval -1" in reverse_proxy and no encode for text/event-stream; Cloudflare: a named tunnel, not a quick tunnel. ' +
  '"cupcake-mcp init --deploy nginx|caddy" writes a config that does this';

export const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
export const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: DOCTOR_CLIENT_NAME, version: '1' } },
});

export function codeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export function describeNetworkError(error: unknown): string {
  const code = codeOf(error);
  const name = (error as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return 'no answer in time';
  const cause = (error as { cause?: { message?: string } }).cause?.message;
  return [code, cause ?? (error as Error).message].filter(Boolean).join(': ');
}

/** The fix for a request that got no HTTP answer. */
function networkFix(code: string | undefined, base: URL): string {
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the name ${base.hostname} does not resolve: create its DNS record (A/AAAA or CNAME) pointing at the server`;
    case 'ECONNREFUSED':
      return `nothing listens at ${base.host}: start the proxy (or serve), and open the port in the firewall`;
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `${base.host} does not answer: open ports 80 and 443 in the firewall / security group`;
    case 'CERT_HAS_EXPIRED':
      return 'the TLS certificate has expired: renew it (Caddy renews by itself; with nginx, check certbot renew)';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return 'the TLS certificate is not trusted (self-signed or missing its chain): use a public certificate such as Let’s Encrypt, and serve fullchain.pem';
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `the TLS certificate does not name ${base.hostname}: issue one for this host name`;
    default:
      return `make ${base.origin} reachable from this machine (DNS, firewall, proxy running), then run doctor again`;
  }
}

/** Dotted paths of every `null` in a JSON value (DESIGN.md §4: no nulls in metadata). */
export function nullPaths(value: unknown, path = ''): string[] {
  if (value === null) return [path || '(document)'];
  if (Array.isArray(value)) return value.flatMap((v, i) => nullPaths(v, `${path}[${i}]`));
  if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([k, v]) => nullPaths(v, path ? `${path}.${k}` : k));
  return [];
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function short(text: string, max = 120): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function basicAuth(id: string, secret: string): string {
  // RFC 6749 §2.3.1: form-url-encode id and secret before base64.
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

export function isLoopbackHost(hostname: string): boolean {
  return ['localhost', '127.0.0.1', '[::1]', '::1'].includes(hostname) || /^127\./.test(hostname) || hostname.endsWith('.localhost');
}

/**
 * The context for `options`, or the reason the base URL cannot be checked at all (it must read
 * as an issuer does: http(s), no query, fragment or user name).
 */
export function createDoctorContext(options: DoctorOptions): DoctorContext | { problem: string; fix: string } {
  let base: URL;
  try {
    base = new URL(options.baseUrl);
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new Error('not http(s)');
  } catch {
    return { problem: `"${options.baseUrl}" is not an http(s) URL`, fix: 'pass the public URL, e.g. --url https://mcp.example.com' };
  }
  if (base.search || base.hash || base.username || base.password) {
    return { problem: `${options.baseUrl} has a query, fragment or user name`, fix: 'pass the base URL alone, as in "baseUrl" of cupcake.config.json' };
  }
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const ctx: DoctorContext = {
    options,
    base,
    issuer: `${base.origin}${base.pathname}`.replace(/\/+$/, ''),
    origin: base.origin,
    prefix: base.pathname.replace(/\/+$/, ''),
    loopback: isLoopbackHost(base.hostname),
    firstByteMs: options.firstByteMs ?? 2_000,
    results: [],
    stopped: false,
    scopesSupported: [],
    transports: { mcp: true, sse: true },
    registered: [],
    record(check, status, detail, fix = null) {
      const verdict: CheckStatus = typeof status === 'boolean' ? (status ? 'pass' : 'fail') : status;
      const result: DoctorCheck = { check, ok: verdict !== 'fail', status: verdict, detail, fix };
      ctx.results.push(result);
      options.onCheck?.(result);
    },
    async http(url, init = {}) {
      const { stream, ...rest } = init;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        const response = await doFetch(url, { redirect: 'manual', ...rest, signal: rest.signal ?? controller.signal });
        // A stream that answers 200 would never end: only what a refusal carries is read.
        const text = stream && response.status === 200 ? '' : await response.text();
        return { status: response.status, headers: response.headers, text };
      } catch (error) {
        return { status: 0, headers: new Headers(), text: '', error: describeNetworkError(error), errorCode: codeOf(error) };
      } finally {
        clearTimeout(timer);
        if (stream) controller.abort();
      }
    },
    answered(r) {
      if (r.error) return r.error;
      const location = r.headers.get('location');
      if (r.status >= 300 && r.status < 400) return `answered ${r.status} redirecting to ${location ?? '(no Location)'}`;
      return `answered ${r.status} ${r.headers.get('content-type') ?? ''} ${short(r.text, 80)}`.trim();
    },
    unexpectedFix(r, path) {
      if (r.error) return networkFix(r.errorCode, base);
      if (r.status >= 300 && r.status < 400) {
        return `clients do not follow redirects here: serve ${path} directly. If the redirect goes to another URL, that URL is the one to use as "baseUrl"`;
      }
      if (r.status === 404)
        return (
          `${path} is not forwarded to cupcake-mcp: the proxy must pass every path of ${ctx.issuer} ` +
          `(and /.well-known/ at the root of ${ctx.origin}) through`
        );
      if (r.status === 502 || r.status === 503 || r.status === 504)
        return 'the proxy cannot reach cupcake-mcp: is serve running, and does the proxy point at its host and port?';
      if ((r.headers.get('content-type') ?? '').includes('text/html')) {
        const fix = 'check the proxy’s routes (and turn off any bot challenge or login wall in front of it)';
        return `${path} is answered by a web page, not by cupcake-mcp: ${fix}`;
      }
      return `make ${path} reach cupcake-mcp unchanged`;
    },
    baseUrlFix(seen) {
      const { issuer } = ctx;
      return (
        `${seen ? `the server believes its URL is ${seen}, but it is reached at ${issuer}` : `the server does not recognise ${issuer} as its own URL`}: ` +
        `set "baseUrl": "${issuer}" in cupcake.config.json (or CUPCAKE_BASE_URL, or serve --base-url) and restart serve. ` +
        `If ${issuer} is not the public URL, run doctor with --url <public URL>`
      );
    },
    networkFix: (code) => networkFix(code, base),
  };
  return ctx;
}
