import { z } from 'zod';
import { parseDuration } from '../shared/durations.js';
import { storeSettingProblem } from '../shared/store-url.js';

const duration = (example: string) =>
  z.string({ error: `expected a duration like "${example}"` }).transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a duration like "${example}"` });
      return z.NEVER;
    }
    return ms;
  });

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Whether `hostname` (as URL.hostname gives it) names this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return LOOPBACK_HOSTS.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host.endsWith('.localhost');
}

/**
 * The public base URL: the issuer and the prefix of every URL we publish. A trailing slash is
 * dropped so that the issuer is byte-identical everywhere (RFC 8414 §3.3 compares it exactly).
 */
const baseUrl = z.string({ error: 'expected a URL like "https://mcp.example.com"' }).transform((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected a URL like "https://mcp.example.com"' });
    return z.NEVER;
  }
  const problems: string[] = [];
  if (url.protocol !== 'https:' && url.protocol !== 'http:') problems.push('must start with https://');
  else if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    problems.push('must use https:// unless the host is loopback (OAuth 2.1 §1.5)');
  }
  if (url.search || text.includes('?')) problems.push('must not have a query');
  if (url.hash || text.includes('#')) problems.push('must not have a fragment');
  if (url.username || url.password) problems.push('must not contain a user name or password');
  if (problems.length > 0) {
    // One line per field (DESIGN.md §3): a URL with several problems lists them on that line.
    ctx.addIssue({ code: 'custom', message: problems.join('; ') });
    return z.NEVER;
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
});

export const TRUSTED_CLIENT_NAMES = ['chatgpt', 'claude', 'loopback'] as const;

/** A redirect URI, where `*` may stand for one host label or one path segment (oauth/redirect-policy.ts). */
const redirectPattern = z
  .string({ error: 'expected a redirect URI pattern like "https://app.example.com/oauth/*"' })
  .max(2000, 'expected at most 2000 characters')
  .regex(/^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s#]+$/, 'expected a redirect URI pattern like "https://app.example.com/oauth/*" (no spaces, no fragment)');

const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'expected a scope name without spaces or quotes (RFC 6749 §3.3)');

const stdioServer = z
  .object({
    command: z.string({ error: 'expected a command to run' }).min(1, 'expected a command to run'),
    args: z.array(z.string()).default([]),
    env: z.record(z.string(), z.string()).default({}),
    cwd: z.string().optional(),
    /** How long a forwarded call may take before it is cancelled upstream; default: as long as the client waits. */
    timeout: duration('5m').optional(),
  })
  .strict();

const remoteServer = z
  .object({
    url: z.url({ error: 'expected an http(s) URL of a remote MCP server', protocol: /^https?$/ }),
    headers: z.record(z.string(), z.string()).default({}),
    timeout: duration('5m').optional(),
  })
  .strict();

/** A whole number of at least 1 with its default (the abuse limits). */
const wholeNumber = (fallback: number) =>
  z
    .number({ error: 'expected a whole number of at least 1' })
    .int('expected a whole number of at least 1')
    .min(1, 'expected a whole number of at least 1')
    .default(fallback);

/** A request window of the abuse limits: at most `limit` per `window`. */
export const rateWindow = (limit: number, window: string, windowMs: number) =>
  z
    .object({
      limit: z
        .number({ error: 'expected a whole number of at least 1' })
        .int('expected a whole number of at least 1')
        .min(1, 'expected a whole number of at least 1')
        .default(limit),
      window: duration(window).default(windowMs),
    })
    .strict()
    .prefault({});

/**
 * Abuse limits (DESIGN.md §3, SECURITY.md): per client address unless said otherwise. The
 * defaults are the values the code has always used; add a limit here with its default.
 */
export const LimitsSchema = z
  .object({
    /** POST /register: each request is a client record on disk. */
    register: rateWindow(300, '1h', 3_600_000),
    token: rateWindow(1_200, '1h', 3_600_000),
    revoke: rateWindow(1_200, '1h', 3_600_000),
    /** GET /authorize: each request is a pending consent form in memory. */
    authorizePage: rateWindow(600, '15m', 900_000),
    /** POST /authorize (wrong passwords have their own lock, loginFailures). */
    authorizeForm: rateWindow(300, '15m', 900_000),
    /** Requests with an unknown or malformed bearer token. */
    failedBearer: rateWindow(60, '15m', 900_000),
    /** Requests with an expired, revoked or wrong-audience token (counted apart, more generously). */
    staleBearer: rateWindow(300, '15m', 900_000),
    /** GET /oauth/start and /oauth/callback, the home page's test sign-in. */
    signIn: rateWindow(120, '10m', 600_000),
    /** A refusal that proves nothing is logged once per address and reason in this window. */
    rejectionLogWindow: duration('15m').default(900_000),
    /** Wrong owner passwords on the consent form before it locks for that address (DESIGN.md §4: 5 in 15 minutes). */
    loginFailures: rateWindow(5, '15m', 900_000),
    /** Open MCP sessions (both transports) of one client; past it, its least recently used one closes. */
    sessionsPerClient: z
      .number({ error: 'expected a whole number of at least 1' })
      .int('expected a whole number of at least 1')
      .min(1, 'expected a whole number of at least 1')
      .default(100),
    /** Requests sent on one connection and not answered yet (HTTP/1.1 pipelining); past it the connection is closed. */
    pipelinedRequests: wholeNumber(16),
    /** Unsent bytes one event stream (GET /sse, GET /mcp, a POST /mcp answered as a stream) may hold for a client not reading; past it it closes. */
    streamBufferBytes: wholeNumber(8 * 1024 * 1024),
    /** Messages in one JSON-RPC batch, for the MCP revisions before 2025-06-18 (later ones allow none). */
    batchSize: wholeNumber(100),
    /** Registrations never approved by the owner that are kept; past it the oldest of them are removed. */
    unapprovedClients: wholeNumber(1_000),
  })
  .strict()
  .prefault({});

export const ConfigSchema = z
  .object({
    name: z.string().min(1, 'expected a non-empty name').max(100, 'expected at most 100 characters').default('cupcake'),
    baseUrl: baseUrl.default('http://localhost:8787'),
    host: z.string().min(1, 'expected a host to listen on, like "127.0.0.1"').default('127.0.0.1'),
    port: z
      .number({ error: 'expected a port number between 0 and 65535' })
      .int('expected a port number between 0 and 65535')
      .min(0, 'expected a port number between 0 and 65535')
      .max(65535, 'expected a port number between 0 and 65535')
      .default(8787),
    dataDir: z.string({ error: 'expected a folder path' }).min(1, 'expected a folder path').default('.cupcake'),
    trustProxy: z.boolean({ error: 'expected true or false' }).default(false),
    /** "file" (db.json in the data dir) or a Redis URL shared by several `serve` replicas (DESIGN.md §6). */
    store: z
      .string({ error: 'expected "file" or a URL like "redis://host:6379/0"' })
      .superRefine((value, ctx) => {
        const problem = storeSettingProblem(value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default('file'),
    auth: z
      .object({
        accessTokenTtl: duration('24h').default(86_400_000),
        authorizationCodeTtl: duration('5m').default(300_000),
        refreshTokens: z.boolean({ error: 'expected true or false' }).default(false),
        refreshTokenTtl: duration('30d').default(2_592_000_000),
        scopes: z.array(scopeToken).min(1, 'expected at least one scope').default(['mcp']),
        /**
         * Tools that need a scope besides "mcp": scope → tool name patterns (`*` matches any characters).
         * A call to a matching tool with a token that lacks the scope answers 403 insufficient_scope.
         */
        toolScopes: z
          .record(
            scopeToken,
            z
              .array(z.string().regex(/^[A-Za-z0-9_.*-]{1,128}$/, 'expected a tool name pattern like "files__*"'))
              .min(1, 'expected at least one tool name pattern'),
          )
          .default({}),
        /** Redirect shapes pre-approved when `redirectUriAllowlist` closes registration (oauth/redirect-policy.ts). */
        trustedClients: z
          .array(z.enum(TRUSTED_CLIENT_NAMES, { error: `expected one of ${TRUSTED_CLIENT_NAMES.map((n) => `"${n}"`).join(', ')}` }))
          .default([...TRUSTED_CLIENT_NAMES]),
        /** When set, /register accepts only redirect URIs of the trusted clients or matching one of these patterns. */
        redirectUriAllowlist: z.array(redirectPattern).optional(),
        /** When set, `serve` removes abandoned registrations daily (as `clients prune --older-than`). */
        pruneAbandonedClientsAfter: duration('30d').optional(),
        /**
         * Client ID Metadata Documents the owner pins: client_id URL → the document, used instead
         * of fetching it. Each document is checked by the CIMD rules when the server starts.
         */
        clientMetadataDocuments: z
          .record(
            z.string().regex(/^https:\/\/[^\s#]+$/, 'expected a client_id URL like "https://client.example/oauth/metadata.json"'),
            z.record(z.string(), z.unknown(), { error: 'expected the client metadata document as a JSON object' }),
          )
          .optional(),
      })
      .strict()
      .superRefine((auth, ctx) => {
        // Said only of a list that is otherwise valid: one line per problem.
        const valid = auth.scopes.length > 0 && auth.scopes.every((s) => scopeToken.safeParse(s).success);
        if (valid && !auth.scopes.includes('mcp'))
          ctx.addIssue({
            code: 'custom',
            path: ['scopes'],
            message: 'must include "mcp", the scope that uses the MCP endpoints; other scopes narrow it (auth.toolScopes)',
          });
        for (const scope of Object.keys(auth.toolScopes)) {
          if (scope === 'mcp')
            ctx.addIssue({ code: 'custom', path: ['toolScopes', scope], message: '"mcp" is the scope of every tool; name a narrower scope' });
          else if (!auth.scopes.includes(scope)) ctx.addIssue({ code: 'custom', path: ['toolScopes', scope], message: `"${scope}" is not in auth.scopes` });
        }
      })
      .prefault({}),
    transports: z
      .object({
        streamableHttp: z.boolean({ error: 'expected true or false' }).default(true),
        sse: z.boolean({ error: 'expected true or false' }).default(true),
      })
      .strict()
      .prefault({}),
    cors: z
      .object({
        /** Allowed browser origins; `["*"]` allows any (the default: MCP clients run in many origins). */
        origins: z.array(z.string()).default(['*']),
      })
      .strict()
      .prefault({}),
    limits: LimitsSchema,
    tools: z
      .object({
        docs: z
          .union([z.object({ dir: z.string().min(1) }).strict(), z.literal(false)], { error: 'expected {"dir": "<folder>"} or false' })
          .default({ dir: 'docs' }),
        servers: z
          .record(
            z.string().regex(/^[a-zA-Z0-9_-]{1,32}$/, 'expected a server name of letters, digits, "_" or "-"'),
            z.union([stdioServer, remoteServer], { error: 'expected {"command": …} for a local server or {"url": …} for a remote one' }),
          )
          .default({}),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** The validated configuration: durations in milliseconds, paths absolute. */
export type Config = z.output<typeof ConfigSchema>;
/** What a person writes in `cupcake.config.json`. */
export type ConfigInput = z.input<typeof ConfigSchema>;
