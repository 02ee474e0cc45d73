import { createHash, randomBytes } from 'node:crypto';

/**
 * `cupcake-mcp doctor`: checks a deployment from the outside, over HTTP only, the way ChatGPT and
 * Claude meet it — discovery documents, 401 challenges, dynamic registration with their redirect
 * URIs, CORS preflight, a real sign-in and a stream through whatever proxy sits in front. Each
 * check says what it saw and, when it fails, the fix to apply. Nothing here knows about the CLI;
 * removing the test clients is a capability the caller may pass in.
 */

export interface DoctorCheck {
  check: string;
  ok: boolean;
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
  /** Called as each check completes, for live output. */
  onCheck?: (check: DoctorCheck) => void;
}

interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  /** Set when no HTTP answer came back at all (DNS, refused, TLS, timeout). */
  error?: string;
  errorCode?: string;
}

const PROXY_STREAM_FIX =
  'a proxy between here and cupcake-mcp holds the stream back. nginx: "proxy_buffering off;" and no gzip for text/event-stream; ' +
  'Caddy: "flush_interval -1" in reverse_proxy and no encode for text/event-stream; Cloudflare: a named tunnel, not a quick tunnel. ' +
  '"cupcake-mcp init --deploy nginx|caddy" writes a config that does this';

function codeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function describeNetworkError(error: unknown): string {
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

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function short(text: string, max = 120): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function basicAuth(id: string, secret: string): string {
  // RFC 6749 §2.3.1: form-url-encode id and secret before base64.
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs every check against `options.baseUrl` and returns them in order. */
export async function runDoctor(options: DoctorOptions): Promise<DoctorCheck[]> {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const firstByteMs = options.firstByteMs ?? 2_000;
  const results: DoctorCheck[] = [];
  const record = (check: string, ok: boolean, detail: string, fix: string | null = null): boolean => {
    const result: DoctorCheck = { check, ok, detail, fix: fix };
    results.push(result);
    options.onCheck?.(result);
    return ok;
  };

  // The base URL as the issuer must read: no trailing slash, no query or fragment.
  let base: URL;
  try {
    base = new URL(options.baseUrl);
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new Error('not http(s)');
  } catch {
    record('base URL', false, `"${options.baseUrl}" is not an http(s) URL`, 'pass the public URL, e.g. --url https://mcp.example.com');
    return results;
  }
  if (base.search || base.hash || base.username || base.password) {
    record('base URL', false, `${options.baseUrl} has a query, fragment or user name`, 'pass the base URL alone, as in "baseUrl" of cupcake.config.json');
    return results;
  }
  const issuer = `${base.origin}${base.pathname}`.replace(/\/+$/, '');
  const origin = base.origin;
  const prefix = base.pathname.replace(/\/+$/, '');
  const loopback = ['localhost', '127.0.0.1', '[::1]', '::1'].includes(base.hostname) || /^127\./.test(base.hostname) || base.hostname.endsWith('.localhost');
  const baseUrlFix = (seen?: string) =>
    `${seen ? `the server believes its URL is ${seen}, but it is reached at ${issuer}` : `the server does not recognise ${issuer} as its own URL`}: ` +
    `set "baseUrl": "${issuer}" in cupcake.config.json (or CUPCAKE_BASE_URL, or serve --base-url) and restart serve. ` +
    `If ${issuer} is not the public URL, run doctor with --url <public URL>`;

  const http = async (url: string, init: RequestInit = {}): Promise<HttpResult> => {
    try {
      const response = await doFetch(url, { redirect: 'manual', ...init, signal: init.signal ?? AbortSignal.timeout(timeoutMs) });
      return { status: response.status, headers: response.headers, text: await response.text() };
    } catch (error) {
      return { status: 0, headers: new Headers(), text: '', error: describeNetworkError(error), errorCode: codeOf(error) };
    }
  };
  /** One line on what came back when it is not what a check wanted. */
  const answered = (r: HttpResult) => {
    if (r.error) return r.error;
    const location = r.headers.get('location');
    if (r.status >= 300 && r.status < 400) return `answered ${r.status} redirecting to ${location ?? '(no Location)'}`;
    return `answered ${r.status} ${r.headers.get('content-type') ?? ''} ${short(r.text, 80)}`.trim();
  };
  const unexpectedFix = (r: HttpResult, path: string) => {
    if (r.error) return networkFix(r.errorCode, base);
    if (r.status >= 300 && r.status < 400) {
      return `clients do not follow redirects here: serve ${path} directly. If the redirect goes to another URL, that URL is the one to use as "baseUrl"`;
    }
    if (r.status === 404) return `${path} is not forwarded to cupcake-mcp: the proxy must pass every path of ${issuer} (and /.well-known/ at the root of ${origin}) through`;
    if (r.status === 502 || r.status === 503 || r.status === 504) return 'the proxy cannot reach cupcake-mcp: is serve running, and does the proxy point at its host and port?';
    if ((r.headers.get('content-type') ?? '').includes('text/html')) return `${path} is answered by a web page, not by cupcake-mcp: check the proxy’s routes (and turn off any bot challenge or login wall in front of it)`;
    return `make ${path} reach cupcake-mcp unchanged`;
  };

  // 1. Transport security.
  if (base.protocol === 'https:') record('HTTPS', true, `${issuer} uses https`);
  else if (loopback) record('HTTPS', true, `http on loopback (${base.host}): fine to try here; ChatGPT and Claude need a public https URL`);
  else {
    record('HTTPS', false, `${issuer} is plain http: tokens and the owner password would cross the network in clear text, and OAuth 2.1 forbids it`, 'put Caddy or nginx with a certificate in front ("cupcake-mcp init --deploy caddy") and set "baseUrl" to the https URL');
  }
  if (/\.trycloudflare\.com$/i.test(base.hostname)) {
    record(
      'stable host name',
      false,
      `${base.hostname} is a Cloudflare quick tunnel: it gets a new name on every start, which invalidates every registered connector, and it does not carry SSE`,
      'use a named Cloudflare tunnel on your own domain (cloudflared tunnel create …), or Caddy/nginx',
    );
  }

  // 2. Reachability: without it nothing else can be checked.
  const health = await http(`${issuer}/healthz`);
  const healthBody = parseJson(health.text);
  if (health.status === 200 && isObject(healthBody) && healthBody.status === 'ok') {
    record('reachable', true, `${issuer}/healthz answered (cupcake-mcp ${String(healthBody.version ?? '?')})`);
  } else {
    record('reachable', false, `${issuer}/healthz ${answered(health)}`, health.status === 200 ? `something other than cupcake-mcp answers at ${issuer}: point the proxy at serve's host and port` : unexpectedFix(health, '/healthz'));
    if (health.error) return results;
  }

  // 3. RFC 8414 metadata at every location ChatGPT and Claude probe (the path goes after the
  //    well-known segment, §3.1), each with our exact issuer.
  let scopesSupported: string[] = [];
  const asPaths = [
    `/.well-known/oauth-authorization-server${prefix}`,
    `/.well-known/oauth-authorization-server${prefix}/mcp`,
    `/.well-known/oauth-authorization-server${prefix}/sse`,
    `/.well-known/openid-configuration${prefix}`,
  ];
  for (const path of asPaths) {
    const name = `authorization server metadata ${path}`;
    const r = await http(`${origin}${path}`, { headers: { accept: 'application/json' } });
    const doc = parseJson(r.text);
    if (r.status !== 200 || !isObject(doc)) {
      record(name, false, answered(r), unexpectedFix(r, path));
      continue;
    }
    const problems: string[] = [];
    let fix: string | null = null;
    if (doc.issuer !== issuer) {
      problems.push(`issuer is ${JSON.stringify(doc.issuer)}, not "${issuer}"`);
      fix = baseUrlFix(String(doc.issuer));
    }
    const methods = doc.code_challenge_methods_supported;
    if (!Array.isArray(methods) || !methods.includes('S256')) {
      problems.push('code_challenge_methods_supported does not list S256');
      fix ??= 'ChatGPT and Claude refuse a server that does not advertise PKCE S256: upgrade cupcake-mcp, or stop the proxy from rewriting the document';
    }
    const types = doc.response_types_supported;
    if (!Array.isArray(types) || !types.includes('code')) problems.push('response_types_supported does not list "code"');
    for (const field of ['authorization_endpoint', 'token_endpoint', 'registration_endpoint']) {
      const value = doc[field];
      if (typeof value !== 'string' || !value.startsWith(`${issuer}/`)) {
        problems.push(`${field} is ${JSON.stringify(value)}`);
        fix ??= baseUrlFix(typeof value === 'string' ? value.replace(/\/[^/]*$/, '') : String(value));
      }
    }
    const nulls = nullPaths(doc);
    if (nulls.length > 0) {
      problems.push(`null at ${nulls.join(', ')}`);
      fix ??= 'some clients reject metadata with null values: stop the proxy from rewriting the document, or upgrade cupcake-mcp';
    }
    if (Array.isArray(doc.scopes_supported)) scopesSupported = doc.scopes_supported.filter((s): s is string => typeof s === 'string');
    if (problems.length > 0) record(name, false, problems.join('; '), fix ?? baseUrlFix(String(doc.issuer)));
    else record(name, true, `issuer ${issuer}, PKCE S256, registration at ${String(doc.registration_endpoint)}`);
  }

  // 4. RFC 9728 protected resource metadata for the origin and both transports.
  for (const [suffix, resource] of [
    ['', issuer],
    ['/mcp', `${issuer}/mcp`],
    ['/sse', `${issuer}/sse`],
  ] as const) {
    const path = `/.well-known/oauth-protected-resource${prefix}${suffix}`;
    const name = `protected resource metadata ${path}`;
    const r = await http(`${origin}${path}`, { headers: { accept: 'application/json' } });
    const doc = parseJson(r.text);
    if (r.status !== 200 || !isObject(doc)) {
      record(name, false, answered(r), unexpectedFix(r, path));
      continue;
    }
    const problems: string[] = [];
    if (doc.resource !== resource) problems.push(`resource is ${JSON.stringify(doc.resource)}, not "${resource}"`);
    const servers = doc.authorization_servers;
    if (!Array.isArray(servers) || !servers.includes(issuer)) problems.push(`authorization_servers is ${JSON.stringify(servers)}, without "${issuer}"`);
    const nulls = nullPaths(doc);
    if (nulls.length > 0) problems.push(`null at ${nulls.join(', ')}`);
    const seen = typeof doc.resource === 'string' ? doc.resource.slice(0, doc.resource.length - suffix.length) : String(doc.resource);
    if (problems.length > 0) record(name, false, problems.join('; '), baseUrlFix(seen));
    else record(name, true, `resource ${resource}`);
  }

  // 5. Which transports the server offers (and where it says they are).
  let transports = { mcp: true, sse: true };
  {
    const r = await http(`${issuer}/.well-known/mcp/manifest.json`);
    const doc = parseJson(r.text);
    if (r.status === 200 && isObject(doc) && isObject(doc.endpoints)) {
      const endpoints = doc.endpoints;
      transports = { mcp: typeof endpoints.streamable_http === 'string', sse: typeof endpoints.sse === 'string' };
      const wrong = Object.entries(endpoints).filter(([, url]) => typeof url !== 'string' || !url.startsWith(`${issuer}/`));
      if (wrong.length > 0) record('MCP manifest', false, `endpoints ${wrong.map(([k, v]) => `${k}=${String(v)}`).join(', ')} are not under ${issuer}`, baseUrlFix(String(wrong[0]![1]).replace(/\/(mcp|sse)$/, '')));
      else record('MCP manifest', true, `transports: ${Object.values(endpoints).join(', ') || 'none'}`);
    } else {
      record('MCP manifest', false, answered(r), unexpectedFix(r, '/.well-known/mcp/manifest.json'));
    }
  }
  const initialize = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: DOCTOR_CLIENT_NAME, version: '1' } },
  });
  const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

  // 6. An anonymous request is refused with the RFC 9728 §5.1 challenge, which is how clients
  //    find the authorization server.
  const challenge = async (path: '/mcp' | '/sse') => {
    const name = `401 challenge ${path}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let r: HttpResult;
    try {
      const response = await doFetch(`${issuer}${path}`, {
        method: path === '/mcp' ? 'POST' : 'GET',
        headers: path === '/mcp' ? mcpHeaders : { accept: 'text/event-stream' },
        ...(path === '/mcp' ? { body: initialize } : {}),
        redirect: 'manual',
        signal: controller.signal,
      });
      // An unprotected stream would never end: read only what a refusal carries.
      r = { status: response.status, headers: response.headers, text: response.status === 200 ? '' : await response.text() };
    } catch (error) {
      r = { status: 0, headers: new Headers(), text: '', error: describeNetworkError(error), errorCode: codeOf(error) };
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    const expected = `${issuer}/.well-known/oauth-protected-resource${path}`;
    if (r.status >= 200 && r.status < 300) {
      record(name, false, `${path} answered ${r.status} without a token`, 'something in front of cupcake-mcp answers for it, or the request goes to another server: route every path of the base URL to cupcake-mcp');
      return;
    }
    if (r.status !== 401) {
      record(name, false, answered(r), unexpectedFix(r, path));
      return;
    }
    const header = r.headers.get('www-authenticate') ?? '';
    const metadata = /resource_metadata="([^"]*)"/.exec(header)?.[1];
    if (!/^Bearer\b/i.test(header) || metadata === undefined) {
      record(name, false, `401 without a Bearer challenge naming resource_metadata (WWW-Authenticate: ${header ? short(header) : 'missing'})`, 'the proxy drops or rewrites WWW-Authenticate: pass it through (and list it in Access-Control-Expose-Headers if the proxy sets CORS itself)');
    } else if (metadata !== expected) {
      record(name, false, `resource_metadata is ${metadata}, not ${expected}`, baseUrlFix(metadata.replace(/\/\.well-known\/.*$/, '')));
    } else {
      record(name, true, `401 with resource_metadata="${expected}"`);
    }
  };
  if (transports.mcp) await challenge('/mcp');
  if (transports.sse) await challenge('/sse');

  // 7. CORS preflight, answered before authentication, for browser-based clients.
  {
    const paths: Array<[string, string, string]> = [
      [`${origin}/.well-known/oauth-authorization-server${prefix}`, 'GET', 'mcp-protocol-version'],
      [`${issuer}/register`, 'POST', 'content-type'],
      [`${issuer}/token`, 'POST', 'authorization, content-type'],
    ];
    if (transports.mcp) paths.push([`${issuer}/mcp`, 'POST', 'authorization, content-type, mcp-session-id, mcp-protocol-version']);
    if (transports.sse) paths.push([`${issuer}/sse`, 'GET', 'authorization, last-event-id']);
    const failures: string[] = [];
    let fix = '';
    for (const [url, method, requested] of paths) {
      const r = await http(url, { method: 'OPTIONS', headers: { origin: PREFLIGHT_ORIGIN, 'access-control-request-method': method, 'access-control-request-headers': requested } });
      const path = new URL(url).pathname;
      const allowOrigin = r.headers.get('access-control-allow-origin');
      const allowHeaders = (r.headers.get('access-control-allow-headers') ?? '').toLowerCase();
      const missing = requested.split(', ').filter((h) => allowHeaders !== '*' && !allowHeaders.split(/\s*,\s*/).includes(h));
      if (r.status < 200 || r.status >= 300) {
        failures.push(`${path} ${answered(r)}`);
        fix ||= 'the proxy must pass OPTIONS requests through to cupcake-mcp unauthenticated (no auth or method filter on OPTIONS)';
      } else if (allowOrigin !== '*' && allowOrigin !== PREFLIGHT_ORIGIN) {
        failures.push(`${path} allows origin ${allowOrigin ?? '(none)'}`);
        fix ||= `browser-based clients such as the MCP Inspector (${PREFLIGHT_ORIGIN}) are refused: add their origins to "cors.origins" (or ["*"]), and do not let the proxy set CORS headers of its own`;
      } else if (missing.length > 0) {
        failures.push(`${path} does not allow ${missing.join(', ')}`);
        fix ||= 'the proxy replaces Access-Control-Allow-Headers: let cupcake-mcp answer preflights';
      }
    }
    if (failures.length > 0) record('CORS preflight', false, failures.join('; '), fix);
    else record('CORS preflight', true, `${paths.length} endpoints allow ${PREFLIGHT_ORIGIN} with Authorization and the MCP headers`);
  }

  // 8. Dynamic registration as ChatGPT and Claude register, then their consent page and client
  //    authentication at /token, without approving anything.
  const registered: string[] = [];
  const scope = scopesSupported.find((s) => s !== 'offline_access');
  interface Registration {
    clientId: string;
    clientSecret: string;
    consent?: { cookie: string; requestId: string; csrfToken: string; state: string; verifier: string };
  }
  const registerAs = async (who: 'ChatGPT' | 'Claude'): Promise<Registration | undefined> => {
    const name = `registration round trip (${who})`;
    const redirectUri = who === 'ChatGPT' ? CHATGPT_REDIRECT_URI : CLAUDE_REDIRECT_URI;
    const metadata =
      who === 'ChatGPT'
        ? { client_name: DOCTOR_CLIENT_NAME, redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }
        : { client_name: DOCTOR_CLIENT_NAME, redirect_uris: [redirectUri], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_post', scope: 'claudeai' };
    const reg = await http(`${issuer}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
    const body = parseJson(reg.text);
    if (reg.status !== 201 || !isObject(body) || typeof body.client_id !== 'string') {
      record(name, false, `POST /register ${answered(reg)}`, reg.status === 400 ? `cupcake-mcp refused ${redirectUri}: upgrade cupcake-mcp` : unexpectedFix(reg, '/register'));
      return undefined;
    }
    registered.push(body.client_id);
    if (typeof body.client_secret !== 'string' || nullPaths(body).length > 0 || !Array.isArray(body.redirect_uris) || body.redirect_uris[0] !== redirectUri) {
      record(name, false, `the registration response lacks client_secret, changes redirect_uris or has nulls: ${short(reg.text)}`, 'stop the proxy from rewriting /register responses, or upgrade cupcake-mcp');
      return undefined;
    }
    const result: Registration = { clientId: body.client_id, clientSecret: body.client_secret };

    const { verifier, challenge: codeChallenge } = pkcePair();
    const state = randomBytes(12).toString('hex');
    const query = new URLSearchParams({ response_type: 'code', client_id: result.clientId, redirect_uri: redirectUri, state, code_challenge: codeChallenge, code_challenge_method: 'S256' });
    if (who === 'ChatGPT' && scope) query.set('scope', scope);
    if (who === 'Claude') query.set('resource', `${issuer}/mcp`);
    const page = await http(`${issuer}/authorize?${query}`);
    const requestId = /name="request_id" value="([^"]+)"/.exec(page.text)?.[1];
    const csrfToken = /name="csrf_token" value="([^"]+)"/.exec(page.text)?.[1];
    const cookie = page.headers.getSetCookie?.().map((c) => c.split(';')[0]).join('; ') ?? '';
    if (page.status !== 200 || !requestId || !csrfToken) {
      const location = page.headers.get('location') ?? '';
      const error = location ? new URL(location, issuer).searchParams.get('error_description') ?? new URL(location, issuer).searchParams.get('error') : undefined;
      record(
        name,
        false,
        `the consent page did not open: ${error ? `redirected with "${error}"` : answered(page)}`,
        error?.includes('resource') ? baseUrlFix() : unexpectedFix(page, '/authorize'),
      );
      return result;
    }
    result.consent = { cookie, requestId, csrfToken, state, verifier };

    // Client authentication as this client performs it, with a code that cannot exist: a
    // healthy server answers invalid_grant, which proves the credentials got through.
    const form = new URLSearchParams({ grant_type: 'authorization_code', code: 'doctor-check-not-a-code', code_verifier: verifier, redirect_uri: redirectUri });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (who === 'ChatGPT') headers.authorization = basicAuth(result.clientId, result.clientSecret);
    else {
      form.set('client_id', result.clientId);
      form.set('client_secret', result.clientSecret);
    }
    const token = await http(`${issuer}/token`, { method: 'POST', headers, body: form });
    const tokenBody = parseJson(token.text);
    const error = isObject(tokenBody) ? tokenBody.error : undefined;
    if (token.status === 400 && error === 'invalid_grant') {
      record(name, true, `registered ${redirectUri}, consent page opens, /token accepts ${who === 'ChatGPT' ? 'HTTP Basic' : 'client_secret_post'} credentials`);
    } else if (token.status === 401) {
      record(
        name,
        false,
        `/token refused the client's credentials (${String(error)})`,
        who === 'ChatGPT' ? 'the proxy strips the Authorization header from POST /token: pass it through' : 'the proxy rewrites the body of POST /token: pass it through unchanged',
      );
    } else {
      record(name, false, `POST /token ${answered(token)}`, unexpectedFix(token, '/token'));
    }
    return result;
  };
  const chatgpt = await registerAs('ChatGPT');
  await registerAs('Claude');

  // 9. With the owner password: approve doctor's own connection, exchange the code, and use the
  //    token as ChatGPT does — an SSE stream through the proxy, and a Streamable HTTP session.
  let accessToken: string | undefined;
  const signIn = 'sign-in and token exchange (ChatGPT flow)';
  if (!chatgpt?.consent) {
    record(signIn, false, 'not checked: the registration round trip above failed', 'fix the registration round trip first');
  } else if (options.password === undefined) {
    record(signIn, false, 'not checked: doctor needs the owner password to approve its own test connection', 'run doctor in a terminal to be asked, or set CUPCAKE_OWNER_PASSWORD, or pass --password-stdin');
  } else {
    const { consent } = chatgpt;
    const answer = await http(`${issuer}/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: consent.cookie },
      body: new URLSearchParams({ request_id: consent.requestId, csrf_token: consent.csrfToken, password: options.password, decision: 'approve' }),
    });
    const location = answer.status === 302 ? answer.headers.get('location') : null;
    const redirect = location ? new URL(location, issuer) : undefined;
    if (answer.status === 401) record(signIn, false, 'the owner password was refused', 'give doctor the owner password of this server (after 5 wrong ones in 15 minutes the consent form locks for that address)');
    else if (answer.status === 429) record(signIn, false, 'the consent form is locked for this address after too many wrong passwords', 'wait 15 minutes, then run doctor again with the right password');
    else if (!redirect || redirect.href.split('?')[0] !== CHATGPT_REDIRECT_URI || !redirect.searchParams.get('code')) {
      record(signIn, false, `approving answered ${answer.status}${location ? ` to ${location.split('?')[0]}` : ''}: ${short(answer.text)}`, answer.status === 400 ? 'the consent form lost its cookie: the proxy must pass Cookie and Set-Cookie for /authorize' : unexpectedFix(answer, '/authorize'));
    } else if (redirect.searchParams.get('state') !== consent.state) {
      record(signIn, false, 'the redirect lost the state parameter', 'the proxy must not rewrite redirects from /authorize');
    } else {
      // RFC 9207 §2.4: a client compares iss with the issuer it discovered. A mismatch fails
      // the check, but the code is still exchanged so that the stream checks below can run.
      const iss = redirect.searchParams.get('iss');
      const issProblem = iss === issuer ? undefined : `the redirect carries iss=${iss}, not ${issuer}`;
      const token = await http(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(chatgpt.clientId, chatgpt.clientSecret) },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, code_verifier: consent.verifier, redirect_uri: CHATGPT_REDIRECT_URI }),
      });
      const body = parseJson(token.text);
      if (token.status === 200 && isObject(body) && typeof body.access_token === 'string' && String(body.token_type).toLowerCase() === 'bearer') {
        accessToken = body.access_token;
        if (issProblem) record(signIn, false, issProblem, baseUrlFix(String(iss)));
        else record(signIn, true, `approved with the owner password, code exchanged with HTTP Basic, token expires in ${String(body.expires_in)} s`);
      } else {
        record(signIn, false, [issProblem, `POST /token ${answered(token)}`].filter(Boolean).join('; '), issProblem ? baseUrlFix(String(iss)) : unexpectedFix(token, '/token'));
      }
    }
  }

  const bearer = accessToken ? { authorization: `Bearer ${accessToken}` } : undefined;
  if (transports.sse) {
    const name = `SSE first byte within ${firstByteMs} ms`;
    if (!bearer) record(name, false, 'not checked: it needs the token of the sign-in above', 'fix the sign-in above (doctor needs the owner password)');
    else {
      const controller = new AbortController();
      const started = Date.now();
      const timer = setTimeout(() => controller.abort(), firstByteMs);
      try {
        const response = await doFetch(`${issuer}/sse`, { headers: { ...bearer, accept: 'text/event-stream' }, signal: controller.signal, redirect: 'manual' });
        if (response.status !== 200) {
          record(name, false, `GET /sse with the token answered ${response.status} ${short(await response.text())}`, response.status === 401 ? 'the token was refused at /sse: the proxy must pass the Authorization header through' : unexpectedFix({ status: response.status, headers: response.headers, text: '' }, '/sse'));
        } else {
          const reader = response.body!.getReader();
          const first = await reader.read();
          const elapsed = Date.now() - started;
          const text = first.value ? new TextDecoder().decode(first.value) : '';
          if (first.done) record(name, false, 'the stream ended before any event', PROXY_STREAM_FIX);
          else record(name, true, `first byte after ${elapsed} ms${text.startsWith('event: endpoint') ? ' (event: endpoint)' : ''}`);
        }
      } catch (error) {
        const aborted = controller.signal.aborted;
        record(name, false, aborted ? `no byte of the /sse stream arrived within ${firstByteMs} ms` : describeNetworkError(error), aborted ? PROXY_STREAM_FIX : networkFix(codeOf(error), base));
      } finally {
        clearTimeout(timer);
        controller.abort();
      }
    }
  }

  if (transports.mcp) {
    const name = 'Streamable HTTP session /mcp';
    if (!bearer) record(name, false, 'not checked: it needs the token of the sign-in above', 'fix the sign-in above (doctor needs the owner password)');
    else {
      const r = await http(`${issuer}/mcp`, { method: 'POST', headers: { ...mcpHeaders, ...bearer }, body: initialize });
      const session = r.headers.get('mcp-session-id');
      const ok = r.status === 200 && session && /"serverInfo"/.test(r.text);
      if (ok) {
        record(name, true, `initialize answered with a session (${short(/"serverInfo":\{[^}]*\}/.exec(r.text)?.[0] ?? '', 80)})`);
        await http(`${issuer}/mcp`, { method: 'DELETE', headers: { ...bearer, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' } });
      } else if (r.status === 200 && !session) {
        record(name, false, 'initialize answered without an Mcp-Session-Id header', 'the proxy drops the Mcp-Session-Id response header: pass it through');
      } else {
        record(name, false, `initialize ${answered(r)}`, unexpectedFix(r, '/mcp'));
      }
    }
  }

  // 10. RFC 7009: the client revokes its token; the next request with it is refused.
  if (accessToken && chatgpt) {
    const name = 'token revocation';
    const r = await http(`${issuer}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(chatgpt.clientId, chatgpt.clientSecret) },
      body: new URLSearchParams({ token: accessToken, token_type_hint: 'access_token' }),
    });
    if (r.status !== 200) record(name, false, `POST /revoke ${answered(r)}`, unexpectedFix(r, '/revoke'));
    else {
      const path = transports.mcp ? '/mcp' : '/tools';
      let status = 0;
      for (let attempt = 0; attempt < 10; attempt++) {
        const probe = await http(`${issuer}${path}`, path === '/mcp' ? { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${accessToken}` }, body: initialize } : { headers: { authorization: `Bearer ${accessToken}` } });
        status = probe.status;
        if (status === 401) break;
        await sleep(200);
      }
      if (status === 401) record(name, true, `revoked; ${path} refuses the token`);
      else record(name, false, `after /revoke, ${path} still answered ${status}`, 'a cache in front of cupcake-mcp answers for it: do not cache authenticated requests');
    }
  }

  // 11. Clean up: the test clients must not linger in "clients list".
  if (registered.length > 0) {
    const removed = options.removeTestClients ? await options.removeTestClients(registered).catch(() => [] as string[]) : [];
    const left = registered.filter((id) => !removed.includes(id));
    if (left.length === 0) record('test clients removed', true, `removed the ${registered.length} "${DOCTOR_CLIENT_NAME}" clients from the local data dir`);
    else {
      record(
        'test clients removed',
        true,
        `left ${left.length} client${left.length === 1 ? '' : 's'} named "${DOCTOR_CLIENT_NAME}" on the server (${left.join(', ')}); its data dir is not on this machine`,
        `on the server: ${left.map((id) => `cupcake-mcp clients remove ${id}`).join(' && ')}`,
      );
    }
  }
  return results;
}
