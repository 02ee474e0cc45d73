import { randomBytes } from 'node:crypto';
import {
  basicAuth,
  CHATGPT_REDIRECT_URI,
  CLAUDE_REDIRECT_URI,
  codeOf,
  describeNetworkError,
  DOCTOR_CLIENT_NAME,
  INITIALIZE,
  isLoopbackHost,
  isObject,
  MCP_HEADERS,
  nullPaths,
  parseJson,
  pkcePair,
  PREFLIGHT_ORIGIN,
  PROXY_STREAM_FIX,
  short,
  type DoctorContext,
  type Registration,
} from './context.js';

/**
 * The steps of `cupcake-mcp doctor`, in order (the shape of node-oidc-provider's actions): each
 * one is named, reads what it needs from the context, records its checks and leaves what later
 * steps need. A new check is a new entry in DOCTOR_STEPS.
 */
export interface DoctorStep {
  name: string;
  run(ctx: DoctorContext): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A discovery document at `path` of the origin, or undefined after recording why the check `name` failed. */
async function discoveryDocument(ctx: DoctorContext, name: string, path: string): Promise<Record<string, unknown> | undefined> {
  const r = await ctx.http(`${ctx.origin}${path}`, { headers: { accept: 'application/json' } });
  const doc = parseJson(r.text);
  if (r.status === 200 && isObject(doc)) return doc;
  ctx.record(name, false, ctx.answered(r), ctx.unexpectedFix(r, path));
  return undefined;
}

const transportSecurity: DoctorStep = {
  name: 'transport security',
  async run(ctx) {
    const { base, issuer } = ctx;
    if (base.protocol === 'https:') ctx.record('HTTPS', true, `${issuer} uses https`);
    else if (ctx.loopback) {
      // Said once here; every other check runs as a client on this machine sees the server.
      ctx.record(
        'HTTPS',
        true,
        `http on loopback (${base.host}): clients on this machine can connect; ` +
          'hosted clients (ChatGPT, Claude) cannot reach a local address and need a public https URL. ' +
          'The other checks run as a local client sees the server',
      );
    } else {
      ctx.record(
        'HTTPS',
        false,
        `${issuer} is plain http: tokens and the owner password would cross the network in clear text, and OAuth 2.1 forbids it`,
        'put Caddy or nginx with a certificate in front ("cupcake-mcp init --deploy caddy") and set "baseUrl" to the https URL',
      );
    }
    if (/\.trycloudflare\.com$/i.test(base.hostname)) {
      ctx.record(
        'stable host name',
        false,
        `${base.hostname} is a Cloudflare quick tunnel: ` +
          'it gets a new name on every start, which invalidates every registered connector, and it does not carry SSE',
        'use a named Cloudflare tunnel on your own domain (cloudflared tunnel create …), or Caddy/nginx',
      );
    }
  },
};

/** What to do when Redis did not answer, from what the connection attempt said. */
function redisUnavailableFix(detail: string, location: string): string {
  const where = 'in "store" of cupcake.config.json (or CUPCAKE_STORE)';
  if (/WRONGPASS|NOAUTH|AUTH|NOPERM/.test(detail)) {
    return (
      `Redis at ${location} refused the credentials: ` +
      `put the password (and user, for an ACL user) Redis expects ${where}, as redis://user:password@host:port/db`
    );
  }
  if (/RESP|ECONNRESET|socket closed/i.test(detail)) {
    return (
      `something other than Redis (or a server that wants TLS) answers at ${location}: ` +
      `check the host and port ${where}, and use rediss:// when the server wants TLS`
    );
  }
  return `start Redis at ${location} (Debian: "systemctl start redis-server"), or correct the host, port or /db ${where}`;
}

/**
 * A deployment on Redis (`store: "redis://…"`, DESIGN.md §6) keeps its clients, tokens and owner
 * password there, so Redis must answer, keep its data over a restart (AOF or RDB snapshots) and
 * never evict keys to make room: an evicted token or client is simply gone. Checked from the local
 * config, before the HTTP checks, so that it is reported even when serve is down.
 */
const redisStore: DoctorStep = {
  name: 'Redis store',
  async run(ctx) {
    const redis = ctx.options.redis;
    if (!redis) return;
    let facts;
    try {
      facts = await redis.inspect();
    } catch (error) {
      const detail = error instanceof Error ? error.message : `Redis at ${redis.location} is unavailable (${String(error)})`;
      ctx.record('Redis store', false, detail, redisUnavailableFix(detail, redis.location));
      return;
    }
    ctx.record('Redis store', true, `Redis ${facts.version} at ${redis.location} answered PING in ${Math.max(1, Math.round(facts.pingMs))} ms`);

    const turnOnAof = 'turn on AOF: "appendonly yes" in redis.conf, or at once with "redis-cli CONFIG SET appendonly yes" then "redis-cli CONFIG REWRITE"';
    if (facts.aof) {
      ctx.record(
        'Redis persistence',
        true,
        `AOF on${facts.rdbSave ? `, and RDB snapshots (save ${facts.rdbSave})` : ''}: clients, tokens and the owner password survive a restart`,
      );
    } else if (facts.rdbSave) {
      ctx.record(
        'Redis persistence',
        true,
        `RDB snapshots (save ${facts.rdbSave}), AOF off: a restart keeps the data of the last snapshot; ` +
          'a crash loses what changed since (new tokens and clients)',
        `for no loss on a crash, ${turnOnAof}`,
      );
    } else if (facts.rdbSave === undefined) {
      ctx.record(
        'Redis persistence',
        'warn',
        'AOF is off, and this server does not allow CONFIG, so whether RDB snapshots are on cannot be told: ' +
          'without either, a restart of Redis loses every client, token and the owner password',
        'make sure the server persists its data: on a managed Redis, turn on persistence (AOF) in its settings; ' +
          'on your own, "appendonly yes" in redis.conf',
      );
    } else {
      ctx.record(
        'Redis persistence',
        'warn',
        'neither AOF nor RDB snapshots are on: a restart of Redis loses every client, token and the owner password ' +
          '(replicas then refuse changes until the data is restored)',
        turnOnAof,
      );
    }

    const limit = facts.maxmemory > 0 ? `maxmemory ${facts.maxmemory} bytes` : 'no maxmemory set now';
    if (facts.maxmemoryPolicy === 'noeviction') {
      ctx.record('Redis eviction policy', true, `maxmemory-policy noeviction (${limit}): when full, Redis refuses writes instead of dropping keys`);
    } else {
      ctx.record(
        'Redis eviction policy',
        'warn',
        `maxmemory-policy ${facts.maxmemoryPolicy} (${limit}): when Redis reaches its memory limit it drops keys to make room, ` +
          'and tokens, clients or the owner password vanish with them',
        'set "maxmemory-policy noeviction" in redis.conf, or at once with "redis-cli CONFIG SET maxmemory-policy noeviction" ' +
          'then "redis-cli CONFIG REWRITE"; give Redis memory enough for its data',
      );
    }
  },
};

/** Without an answer nothing else can be checked. */
const reachability: DoctorStep = {
  name: 'reachability',
  async run(ctx) {
    const health = await ctx.http(`${ctx.issuer}/healthz`);
    const body = parseJson(health.text);
    if (health.status === 200 && isObject(body) && body.status === 'ok') {
      ctx.record('reachable', true, `${ctx.issuer}/healthz answered (cupcake-mcp ${String(body.version ?? '?')})`);
    } else {
      ctx.record(
        'reachable',
        false,
        `${ctx.issuer}/healthz ${ctx.answered(health)}`,
        health.status === 200
          ? `something other than cupcake-mcp answers at ${ctx.issuer}: point the proxy at serve's host and port`
          : ctx.unexpectedFix(health, '/healthz'),
      );
      if (health.error) ctx.stopped = true;
    }
  },
};

/**
 * On loopback, localhost, 127.0.0.1 and [::1] reach the same server: when the server names
 * itself by another of them on the same port, doctor checks it under its own name instead of
 * failing every URL it advertises.
 */
const loopbackAlias: DoctorStep = {
  name: 'loopback alias',
  async run(ctx) {
    if (!ctx.loopback) return;
    const r = await ctx.http(`${ctx.origin}/.well-known/oauth-authorization-server${ctx.prefix}`, { headers: { accept: 'application/json' } });
    const doc = parseJson(r.text);
    if (r.status !== 200 || !isObject(doc) || typeof doc.issuer !== 'string' || doc.issuer === ctx.issuer) return;
    let named: URL;
    try {
      named = new URL(doc.issuer);
    } catch {
      return;
    }
    const samePlace =
      named.protocol === ctx.base.protocol &&
      isLoopbackHost(named.hostname) &&
      named.port === ctx.base.port &&
      named.pathname.replace(/\/+$/, '') === ctx.prefix;
    if (!samePlace) return;
    ctx.record('local address', true, `the server calls itself ${doc.issuer}, another name of ${ctx.issuer} on this machine: checking it as ${doc.issuer}`);
    ctx.issuer = doc.issuer;
    ctx.origin = named.origin;
  },
};

/** RFC 8414 metadata at every location ChatGPT and Claude probe (the path goes after the well-known segment, §3.1). */
const authorizationServerMetadata: DoctorStep = {
  name: 'authorization server metadata',
  async run(ctx) {
    const { issuer, prefix } = ctx;
    for (const path of [
      `/.well-known/oauth-authorization-server${prefix}`,
      `/.well-known/oauth-authorization-server${prefix}/mcp`,
      `/.well-known/oauth-authorization-server${prefix}/sse`,
      `/.well-known/openid-configuration${prefix}`,
    ]) {
      const name = `authorization server metadata ${path}`;
      const doc = await discoveryDocument(ctx, name, path);
      if (!doc) continue;
      const problems: string[] = [];
      let fix: string | null = null;
      if (doc.issuer !== issuer) {
        problems.push(`issuer is ${JSON.stringify(doc.issuer)}, not "${issuer}"`);
        fix = ctx.baseUrlFix(String(doc.issuer));
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
          fix ??= ctx.baseUrlFix(typeof value === 'string' ? value.replace(/\/[^/]*$/, '') : String(value));
        }
      }
      const nulls = nullPaths(doc);
      if (nulls.length > 0) {
        problems.push(`null at ${nulls.join(', ')}`);
        fix ??= 'some clients reject metadata with null values: stop the proxy from rewriting the document, or upgrade cupcake-mcp';
      }
      if (Array.isArray(doc.scopes_supported)) ctx.scopesSupported = doc.scopes_supported.filter((s): s is string => typeof s === 'string');
      if (problems.length > 0) ctx.record(name, false, problems.join('; '), fix ?? ctx.baseUrlFix(String(doc.issuer)));
      else ctx.record(name, true, `issuer ${issuer}, PKCE S256, registration at ${String(doc.registration_endpoint)}`);
    }
  },
};

/**
 * How ChatGPT, Claude and Claude Code sign in today: with their client metadata documents when the
 * server offers them, dynamic registration only as the fallback. ChatGPT's document asks for
 * private_key_jwt (RS256 assertions, RFC 7523); Claude uses its document only when `none` is offered.
 */
const clientMetadataDocuments: DoctorStep = {
  name: 'client metadata documents',
  async run(ctx) {
    const name = 'client metadata documents (how ChatGPT and Claude sign in)';
    const doc = await discoveryDocument(ctx, name, `/.well-known/oauth-authorization-server${ctx.prefix}`);
    if (!doc) return;
    const list = (field: string) => (Array.isArray(doc[field]) ? (doc[field] as unknown[]) : []);
    const problems: string[] = [];
    if (doc.client_id_metadata_document_supported !== true)
      problems.push(
        'client_id_metadata_document_supported is not true: ChatGPT, Claude and Claude Code fall back to registering a new client on every connection',
      );
    if (!list('token_endpoint_auth_methods_supported').includes('none'))
      problems.push('token_endpoint_auth_methods_supported lacks "none": Claude does not use its metadata document without it');
    if (!list('token_endpoint_auth_methods_supported').includes('private_key_jwt'))
      problems.push('token_endpoint_auth_methods_supported lacks "private_key_jwt": ChatGPT\'s document asks for it');
    else if (!list('token_endpoint_auth_signing_alg_values_supported').includes('RS256'))
      problems.push('token_endpoint_auth_signing_alg_values_supported lacks RS256, the algorithm ChatGPT signs with');
    if (problems.length > 0) {
      ctx.record(name, false, problems.join('; '), 'upgrade cupcake-mcp, or stop the proxy from rewriting /.well-known/oauth-authorization-server');
      return;
    }
    ctx.record(
      name,
      true,
      'offered: ChatGPT signs in with its document and RS256 client assertions (private_key_jwt), ' +
        'Claude and Claude Code with theirs as public clients; registration at /register stays the fallback',
    );
  },
};

/** RFC 9728 protected resource metadata for the origin and both transports. */
const protectedResourceMetadata: DoctorStep = {
  name: 'protected resource metadata',
  async run(ctx) {
    const { issuer } = ctx;
    for (const suffix of ['', '/mcp', '/sse']) {
      const resource = `${issuer}${suffix}`;
      const path = `/.well-known/oauth-protected-resource${ctx.prefix}${suffix}`;
      const name = `protected resource metadata ${path}`;
      const doc = await discoveryDocument(ctx, name, path);
      if (!doc) continue;
      const problems: string[] = [];
      if (doc.resource !== resource) problems.push(`resource is ${JSON.stringify(doc.resource)}, not "${resource}"`);
      const servers = doc.authorization_servers;
      if (!Array.isArray(servers) || !servers.includes(issuer)) problems.push(`authorization_servers is ${JSON.stringify(servers)}, without "${issuer}"`);
      const nulls = nullPaths(doc);
      if (nulls.length > 0) problems.push(`null at ${nulls.join(', ')}`);
      const seen = typeof doc.resource === 'string' ? doc.resource.slice(0, doc.resource.length - suffix.length) : String(doc.resource);
      if (problems.length > 0) ctx.record(name, false, problems.join('; '), ctx.baseUrlFix(seen));
      else ctx.record(name, true, `resource ${resource}`);
    }
  },
};

/** Which transports the server offers (and where it says they are). */
const manifest: DoctorStep = {
  name: 'MCP manifest',
  async run(ctx) {
    const r = await ctx.http(`${ctx.issuer}/.well-known/mcp/manifest.json`);
    const doc = parseJson(r.text);
    if (r.status !== 200 || !isObject(doc) || !isObject(doc.endpoints)) {
      ctx.record('MCP manifest', false, ctx.answered(r), ctx.unexpectedFix(r, '/.well-known/mcp/manifest.json'));
      return;
    }
    const endpoints = doc.endpoints;
    ctx.transports = { mcp: typeof endpoints.streamable_http === 'string', sse: typeof endpoints.sse === 'string' };
    const wrong = Object.entries(endpoints).filter(([, url]) => typeof url !== 'string' || !url.startsWith(`${ctx.issuer}/`));
    if (wrong.length > 0) {
      ctx.record(
        'MCP manifest',
        false,
        `endpoints ${wrong.map(([k, v]) => `${k}=${String(v)}`).join(', ')} are not under ${ctx.issuer}`,
        ctx.baseUrlFix(String(wrong[0]![1]).replace(/\/(mcp|sse)$/, '')),
      );
    } else ctx.record('MCP manifest', true, `transports: ${Object.values(endpoints).join(', ') || 'none'}`);
  },
};

/** RFC 9728 §5.1: an anonymous request is refused with the challenge that leads clients to the authorization server. */
const challenges: DoctorStep = {
  name: '401 challenges',
  async run(ctx) {
    const paths = (['/mcp', '/sse'] as const).filter((p) => (p === '/mcp' ? ctx.transports.mcp : ctx.transports.sse));
    for (const path of paths) {
      const name = `401 challenge ${path}`;
      const r = await ctx.http(`${ctx.issuer}${path}`, {
        stream: true,
        method: path === '/mcp' ? 'POST' : 'GET',
        headers: path === '/mcp' ? MCP_HEADERS : { accept: 'text/event-stream' },
        ...(path === '/mcp' ? { body: INITIALIZE } : {}),
      });
      const expected = `${ctx.issuer}/.well-known/oauth-protected-resource${path}`;
      if (r.status >= 200 && r.status < 300) {
        ctx.record(
          name,
          false,
          `${path} answered ${r.status} without a token`,
          'something in front of cupcake-mcp answers for it, or the request goes to another server: route every path of the base URL to cupcake-mcp',
        );
        continue;
      }
      if (r.status !== 401) {
        ctx.record(name, false, ctx.answered(r), ctx.unexpectedFix(r, path));
        continue;
      }
      const header = r.headers.get('www-authenticate') ?? '';
      const metadata = /resource_metadata="([^"]*)"/.exec(header)?.[1];
      if (!/^Bearer\b/i.test(header) || metadata === undefined) {
        ctx.record(
          name,
          false,
          `401 without a Bearer challenge naming resource_metadata (WWW-Authenticate: ${header ? short(header) : 'missing'})`,
          'the proxy drops or rewrites WWW-Authenticate: pass it through (and list it in Access-Control-Expose-Headers if the proxy sets CORS itself)',
        );
      } else if (metadata !== expected) {
        ctx.record(name, false, `resource_metadata is ${metadata}, not ${expected}`, ctx.baseUrlFix(metadata.replace(/\/\.well-known\/.*$/, '')));
      } else {
        ctx.record(name, true, `401 with resource_metadata="${expected}"`);
      }
    }
  },
};

/** CORS preflight, answered before authentication, for browser-based clients. */
const corsPreflight: DoctorStep = {
  name: 'CORS preflight',
  async run(ctx) {
    const { issuer } = ctx;
    const paths: Array<[string, string, string]> = [
      [`${ctx.origin}/.well-known/oauth-authorization-server${ctx.prefix}`, 'GET', 'mcp-protocol-version'],
      [`${issuer}/register`, 'POST', 'content-type'],
      [`${issuer}/token`, 'POST', 'authorization, content-type'],
    ];
    if (ctx.transports.mcp) paths.push([`${issuer}/mcp`, 'POST', 'authorization, content-type, mcp-session-id, mcp-protocol-version']);
    if (ctx.transports.sse) paths.push([`${issuer}/sse`, 'GET', 'authorization, last-event-id']);
    const failures: string[] = [];
    let fix = '';
    for (const [url, method, requested] of paths) {
      const r = await ctx.http(url, {
        method: 'OPTIONS',
        headers: { origin: PREFLIGHT_ORIGIN, 'access-control-request-method': method, 'access-control-request-headers': requested },
      });
      const path = new URL(url).pathname;
      const allowOrigin = r.headers.get('access-control-allow-origin');
      const allowHeaders = (r.headers.get('access-control-allow-headers') ?? '').toLowerCase();
      const missing = requested.split(', ').filter((h) => allowHeaders !== '*' && !allowHeaders.split(/\s*,\s*/).includes(h));
      if (r.status < 200 || r.status >= 300) {
        failures.push(`${path} ${ctx.answered(r)}`);
        fix ||= 'the proxy must pass OPTIONS requests through to cupcake-mcp unauthenticated (no auth or method filter on OPTIONS)';
      } else if (allowOrigin !== '*' && allowOrigin !== PREFLIGHT_ORIGIN) {
        failures.push(`${path} allows origin ${allowOrigin ?? '(none)'}`);
        fix ||=
          `browser-based clients such as the MCP Inspector (${PREFLIGHT_ORIGIN}) are refused: ` +
          'add their origins to "cors.origins" (or ["*"]), and do not let the proxy set CORS headers of its own';
      } else if (missing.length > 0) {
        failures.push(`${path} does not allow ${missing.join(', ')}`);
        fix ||= 'the proxy replaces Access-Control-Allow-Headers: let cupcake-mcp answer preflights';
      }
    }
    if (failures.length > 0) ctx.record('CORS preflight', false, failures.join('; '), fix);
    else ctx.record('CORS preflight', true, `${paths.length} endpoints allow ${PREFLIGHT_ORIGIN} with Authorization and the MCP headers`);
  },
};

/**
 * Dynamic registration as `who` registers, then its consent page and its client authentication
 * at /token, without approving anything.
 */
async function registerAs(ctx: DoctorContext, who: 'ChatGPT' | 'Claude'): Promise<Registration | undefined> {
  const { issuer } = ctx;
  const name = `registration round trip (${who})`;
  const redirectUri = who === 'ChatGPT' ? CHATGPT_REDIRECT_URI : CLAUDE_REDIRECT_URI;
  const metadata =
    who === 'ChatGPT'
      ? {
          client_name: DOCTOR_CLIENT_NAME,
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        }
      : {
          client_name: DOCTOR_CLIENT_NAME,
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_post',
          scope: 'claudeai',
        };
  const reg = await ctx.http(`${issuer}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
  const body = parseJson(reg.text);
  if (reg.status !== 201 || !isObject(body) || typeof body.client_id !== 'string') {
    ctx.record(
      name,
      false,
      `POST /register ${ctx.answered(reg)}`,
      reg.status === 400 ? `cupcake-mcp refused ${redirectUri}: upgrade cupcake-mcp` : ctx.unexpectedFix(reg, '/register'),
    );
    return undefined;
  }
  ctx.registered.push(body.client_id);
  if (typeof body.client_secret !== 'string' || nullPaths(body).length > 0 || !Array.isArray(body.redirect_uris) || body.redirect_uris[0] !== redirectUri) {
    ctx.record(
      name,
      false,
      `the registration response lacks client_secret, changes redirect_uris or has nulls: ${short(reg.text)}`,
      'stop the proxy from rewriting /register responses, or upgrade cupcake-mcp',
    );
    return undefined;
  }
  const result: Registration = { clientId: body.client_id, clientSecret: body.client_secret };

  const { verifier, challenge: codeChallenge } = pkcePair();
  const state = randomBytes(12).toString('hex');
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: result.clientId,
    redirect_uri: redirectUri,
    state,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
  });
  const scope = ctx.scopesSupported.find((s) => s !== 'offline_access');
  if (who === 'ChatGPT' && scope) query.set('scope', scope);
  if (who === 'Claude') query.set('resource', `${issuer}/mcp`);
  const page = await ctx.http(`${issuer}/authorize?${query}`);
  const requestId = /name="request_id" value="([^"]+)"/.exec(page.text)?.[1];
  const csrfToken = /name="csrf_token" value="([^"]+)"/.exec(page.text)?.[1];
  const cookie =
    page.headers
      .getSetCookie?.()
      .map((c) => c.split(';')[0])
      .join('; ') ?? '';
  if (page.status !== 200 || !requestId || !csrfToken) {
    const location = page.headers.get('location') ?? '';
    const error = location
      ? (new URL(location, issuer).searchParams.get('error_description') ?? new URL(location, issuer).searchParams.get('error'))
      : undefined;
    ctx.record(
      name,
      false,
      `the consent page did not open: ${error ? `redirected with "${error}"` : ctx.answered(page)}`,
      error?.includes('resource') ? ctx.baseUrlFix() : ctx.unexpectedFix(page, '/authorize'),
    );
    return result;
  }
  result.consent = { cookie, requestId, csrfToken, state, verifier };

  // Client authentication as this client performs it, with a code that cannot exist: a healthy
  // server answers invalid_grant, which proves the credentials got through.
  const form = new URLSearchParams({ grant_type: 'authorization_code', code: 'doctor-check-not-a-code', code_verifier: verifier, redirect_uri: redirectUri });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (who === 'ChatGPT') headers.authorization = basicAuth(result.clientId, result.clientSecret);
  else {
    form.set('client_id', result.clientId);
    form.set('client_secret', result.clientSecret);
  }
  const token = await ctx.http(`${issuer}/token`, { method: 'POST', headers, body: form });
  const tokenBody = parseJson(token.text);
  const error = isObject(tokenBody) ? tokenBody.error : undefined;
  if (token.status === 400 && error === 'invalid_grant') {
    ctx.record(
      name,
      true,
      `registered ${redirectUri}, consent page opens, /token accepts ${who === 'ChatGPT' ? 'HTTP Basic' : 'client_secret_post'} credentials`,
    );
  } else if (token.status === 401) {
    ctx.record(
      name,
      false,
      `/token refused the client's credentials (${String(error)})`,
      who === 'ChatGPT'
        ? 'the proxy strips the Authorization header from POST /token: pass it through'
        : 'the proxy rewrites the body of POST /token: pass it through unchanged',
    );
  } else {
    ctx.record(name, false, `POST /token ${ctx.answered(token)}`, ctx.unexpectedFix(token, '/token'));
  }
  return result;
}

const registration: DoctorStep = {
  name: 'registration',
  async run(ctx) {
    ctx.chatgpt = await registerAs(ctx, 'ChatGPT');
    await registerAs(ctx, 'Claude');
  },
};

const SIGN_IN = 'sign-in and token exchange (ChatGPT flow)';

/** With the owner password: approve doctor's own connection and exchange the code as ChatGPT does. */
const signIn: DoctorStep = {
  name: 'sign-in',
  async run(ctx) {
    const { issuer, chatgpt, options } = ctx;
    if (!chatgpt?.consent) return ctx.record(SIGN_IN, 'skip', 'not checked: the registration round trip above failed', 'fix the registration round trip first');
    if (options.password === undefined) {
      return ctx.record(
        SIGN_IN,
        'skip',
        'not checked: doctor needs the owner password to approve its own test connection',
        'run doctor in a terminal to be asked, or set CUPCAKE_OWNER_PASSWORD, or pass --password-stdin',
      );
    }
    // A wrong password sent to the server counts towards the consent lockout of this address
    // (on a local setup, the owner's own): checked here first when the data dir is at hand.
    if (options.verifyPassword && !(await options.verifyPassword(options.password))) {
      return ctx.record(
        SIGN_IN,
        'skip',
        'not checked: the password given is not the owner password of this data dir (not sent, so it cannot lock you out)',
        'give doctor the owner password, or set a new one with "cupcake-mcp passwd"',
      );
    }
    const { consent } = chatgpt;
    const answer = await ctx.http(`${issuer}/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: consent.cookie },
      body: new URLSearchParams({ request_id: consent.requestId, csrf_token: consent.csrfToken, password: options.password, decision: 'approve' }),
    });
    const location = answer.status === 302 ? answer.headers.get('location') : null;
    const redirect = location ? new URL(location, issuer) : undefined;
    if (answer.status === 401)
      return ctx.record(
        SIGN_IN,
        false,
        'the owner password was refused',
        'give doctor the owner password of this server ' +
          '(after 5 wrong ones in 15 minutes the consent form locks for that address; "cupcake-mcp unlock" on the server lifts it)',
      );
    if (answer.status === 429)
      return ctx.record(
        SIGN_IN,
        false,
        'the consent form is locked for this address after too many wrong passwords',
        'run "cupcake-mcp unlock" on the server (or wait 15 minutes), then run doctor again with the right password',
      );
    if (!redirect || redirect.href.split('?')[0] !== CHATGPT_REDIRECT_URI || !redirect.searchParams.get('code')) {
      return ctx.record(
        SIGN_IN,
        false,
        `approving answered ${answer.status}${location ? ` to ${location.split('?')[0]}` : ''}: ${short(answer.text)}`,
        answer.status === 400
          ? 'the consent form lost its cookie: the proxy must pass Cookie and Set-Cookie for /authorize'
          : ctx.unexpectedFix(answer, '/authorize'),
      );
    }
    if (redirect.searchParams.get('state') !== consent.state)
      return ctx.record(SIGN_IN, false, 'the redirect lost the state parameter', 'the proxy must not rewrite redirects from /authorize');
    // RFC 9207 §2.4: a client compares iss with the issuer it discovered. A mismatch fails the
    // check, but the code is still exchanged so that the stream checks below can run.
    const iss = redirect.searchParams.get('iss');
    const issProblem = iss === issuer ? undefined : `the redirect carries iss=${iss}, not ${issuer}`;
    const token = await ctx.http(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(chatgpt.clientId, chatgpt.clientSecret) },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: redirect.searchParams.get('code')!,
        code_verifier: consent.verifier,
        redirect_uri: CHATGPT_REDIRECT_URI,
      }),
    });
    const body = parseJson(token.text);
    if (token.status === 200 && isObject(body) && typeof body.access_token === 'string' && String(body.token_type).toLowerCase() === 'bearer') {
      ctx.accessToken = body.access_token;
      if (issProblem) ctx.record(SIGN_IN, false, issProblem, ctx.baseUrlFix(String(iss)));
      else ctx.record(SIGN_IN, true, `approved with the owner password, code exchanged with HTTP Basic, token expires in ${String(body.expires_in)} s`);
    } else {
      ctx.record(
        SIGN_IN,
        false,
        [issProblem, `POST /token ${ctx.answered(token)}`].filter(Boolean).join('; '),
        issProblem ? ctx.baseUrlFix(String(iss)) : ctx.unexpectedFix(token, '/token'),
      );
    }
  },
};

/** A check that needs the token of the sign-in: skipped, saying so, without it. */
function withToken(
  name: (ctx: DoctorContext) => string,
  offered: (ctx: DoctorContext) => boolean,
  check: (ctx: DoctorContext, bearer: { authorization: string }) => Promise<void>,
): DoctorStep['run'] {
  return async (ctx) => {
    if (!offered(ctx)) return;
    if (!ctx.accessToken)
      return ctx.record(name(ctx), 'skip', 'not checked: it needs the token of the sign-in above', 'fix the sign-in above (doctor needs the owner password)');
    await check(ctx, { authorization: `Bearer ${ctx.accessToken}` });
  };
}

const sseName = (ctx: DoctorContext) => `SSE first byte within ${ctx.firstByteMs} ms`;

/** The first byte of an SSE stream through whatever proxy sits in front. */
const sseStream: DoctorStep = {
  name: 'SSE stream',
  run: withToken(
    sseName,
    (ctx) => ctx.transports.sse,
    async (ctx, bearer) => {
      const name = sseName(ctx);
      const doFetch = ctx.options.fetch ?? fetch;
      const controller = new AbortController();
      const started = Date.now();
      const timer = setTimeout(() => controller.abort(), ctx.firstByteMs);
      try {
        const response = await doFetch(`${ctx.issuer}/sse`, {
          headers: { ...bearer, accept: 'text/event-stream' },
          signal: controller.signal,
          redirect: 'manual',
        });
        if (response.status !== 200) {
          const refused = { status: response.status, headers: response.headers, text: '' };
          ctx.record(
            name,
            false,
            `GET /sse with the token answered ${response.status} ${short(await response.text())}`,
            response.status === 401
              ? 'the token was refused at /sse: the proxy must pass the Authorization header through'
              : ctx.unexpectedFix(refused, '/sse'),
          );
          return;
        }
        const first = await response.body!.getReader().read();
        const text = first.value ? new TextDecoder().decode(first.value) : '';
        if (first.done) ctx.record(name, false, 'the stream ended before any event', PROXY_STREAM_FIX);
        else ctx.record(name, true, `first byte after ${Date.now() - started} ms${text.startsWith('event: endpoint') ? ' (event: endpoint)' : ''}`);
      } catch (error) {
        const aborted = controller.signal.aborted;
        ctx.record(
          name,
          false,
          aborted ? `no byte of the /sse stream arrived within ${ctx.firstByteMs} ms` : describeNetworkError(error),
          aborted ? PROXY_STREAM_FIX : ctx.networkFix(codeOf(error)),
        );
      } finally {
        clearTimeout(timer);
        controller.abort();
      }
    },
  ),
};

const MCP_SESSION = 'Streamable HTTP session /mcp';

const mcpSession: DoctorStep = {
  name: 'Streamable HTTP session',
  run: withToken(
    () => MCP_SESSION,
    (ctx) => ctx.transports.mcp,
    async (ctx, bearer) => {
      const r = await ctx.http(`${ctx.issuer}/mcp`, { method: 'POST', headers: { ...MCP_HEADERS, ...bearer }, body: INITIALIZE });
      const session = r.headers.get('mcp-session-id');
      if (r.status === 200 && session && /"serverInfo"/.test(r.text)) {
        ctx.record(MCP_SESSION, true, `initialize answered with a session (${short(/"serverInfo":\{[^}]*\}/.exec(r.text)?.[0] ?? '', 80)})`);
        await ctx.http(`${ctx.issuer}/mcp`, { method: 'DELETE', headers: { ...bearer, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' } });
      } else if (r.status === 200 && !session) {
        ctx.record(
          MCP_SESSION,
          false,
          'initialize answered without an Mcp-Session-Id header',
          'the proxy drops the Mcp-Session-Id response header: pass it through',
        );
      } else {
        ctx.record(MCP_SESSION, false, `initialize ${ctx.answered(r)}`, ctx.unexpectedFix(r, '/mcp'));
      }
    },
  ),
};

/** RFC 7009: the client revokes its token; the next request with it is refused. */
const revocation: DoctorStep = {
  name: 'token revocation',
  async run(ctx) {
    const { accessToken, chatgpt, issuer } = ctx;
    if (!accessToken || !chatgpt) return;
    const name = 'token revocation';
    const r = await ctx.http(`${issuer}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(chatgpt.clientId, chatgpt.clientSecret) },
      body: new URLSearchParams({ token: accessToken, token_type_hint: 'access_token' }),
    });
    if (r.status !== 200) return ctx.record(name, false, `POST /revoke ${ctx.answered(r)}`, ctx.unexpectedFix(r, '/revoke'));
    const path = ctx.transports.mcp ? '/mcp' : '/tools';
    const authorization = `Bearer ${accessToken}`;
    let status = 0;
    for (let attempt = 0; attempt < 10 && status !== 401; attempt++) {
      if (attempt > 0) await sleep(200);
      const probe = await ctx.http(
        `${issuer}${path}`,
        path === '/mcp' ? { method: 'POST', headers: { ...MCP_HEADERS, authorization }, body: INITIALIZE } : { headers: { authorization } },
      );
      status = probe.status;
    }
    if (status === 401) ctx.record(name, true, `revoked; ${path} refuses the token`);
    else
      ctx.record(
        name,
        false,
        `after /revoke, ${path} still answered ${status}`,
        'a cache in front of cupcake-mcp answers for it: do not cache authenticated requests',
      );
  },
};

/** The test clients must not linger in "clients list". */
const cleanup: DoctorStep = {
  name: 'clean up',
  async run(ctx) {
    const { registered, options } = ctx;
    if (registered.length === 0) return;
    const removed = options.removeTestClients ? await options.removeTestClients(registered).catch(() => [] as string[]) : [];
    const left = registered.filter((id) => !removed.includes(id));
    if (left.length === 0) ctx.record('test clients removed', true, `removed the ${registered.length} "${DOCTOR_CLIENT_NAME}" clients from the local data dir`);
    else {
      ctx.record(
        'test clients removed',
        true,
        `left ${left.length} client${left.length === 1 ? '' : 's'} named "${DOCTOR_CLIENT_NAME}" on the server (${left.join(', ')}); ` +
          'its data dir is not on this machine',
        `on the server: ${left.map((id) => `cupcake-mcp clients remove ${id}`).join(' && ')}`,
      );
    }
  },
};

export const DOCTOR_STEPS: readonly DoctorStep[] = [
  transportSecurity,
  redisStore,
  reachability,
  loopbackAlias,
  authorizationServerMetadata,
  clientMetadataDocuments,
  protectedResourceMetadata,
  manifest,
  challenges,
  corsPreflight,
  registration,
  signIn,
  sseStream,
  mcpSession,
  revocation,
  cleanup,
];
