import Koa from 'koa';
import Router from '@koa/router';
import type { Config } from '../config/schema.js';
import { LoginThrottle, PendingAuthorizations } from '../oauth/authorization.js';
import { ClientKeySets } from '../oauth/client-keys.js';
import { ClientMetadataDocuments, type ClientMetadataFetcher } from '../oauth/client-metadata-document.js';
import { pruneAbandonedClients } from '../oauth/client-pruning.js';
import { createOAuthSettings } from '../oauth/settings.js';
import { verifyAccessToken, type TokenVerifier } from '../oauth/tokens.js';
import { formatDistance } from '../shared/durations.js';
import type { EventLog } from '../store/event-log.js';
import type { Store } from '../store/types.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { registerWhoamiTool } from '../mcp/builtin-tools.js';
import { registerDocsTools } from '../mcp/docs/docs-tools.js';
import { createMcpRuntime, type McpRuntime } from '../mcp/runtime.js';
import { ToolRegistry } from '../mcp/tool-registry.js';
import type { Toolset } from '../mcp/toolset.js';
import { createClientMetadataFetcher } from './client-metadata-fetcher.js';
import type { ServerContext } from './context.js';
import { limitsFromConfig, resolveLimits, type AbuseLimits } from './limits.js';
import { AddressWindows, OncePerWindow, rateLimit } from './middleware/rate-limit.js';
import { SharedAddressWindows } from './middleware/shared-windows.js';
import { relayForeignSessions } from './middleware/session-relay.js';
import { SharedLoginThrottle, SharedPendingAuthorizations } from '../oauth/shared-state.js';
import type { SharedEphemeralState } from '../store/ephemeral.js';
import type { SessionRelay } from '../store/relay.js';
import { cors } from './middleware/cors.js';
import { deploymentWarnings } from './middleware/deployment-warnings.js';
import { errorHandler } from './middleware/errors.js';
import { checkHostOnLoopback } from './middleware/host-check.js';
import { mountAuthorizeRoutes } from './routes/authorize.js';
import { mountDocsRoute } from './routes/docs.js';
import { mountHomeRoute } from './routes/home.js';
import { mountFaviconRoute } from './routes/favicon.js';
import { mountMcpRoutes } from './routes/mcp.js';
import { mountMetadataRoutes } from './routes/metadata.js';
import { mountRegisterRoute } from './routes/register.js';
import { mountRevokeRoute } from './routes/revoke.js';
import { mountSignInTestRoutes } from './routes/sign-in-test.js';
import { mountSseRoutes } from './routes/sse.js';
import { mountTokenRoute } from './routes/token.js';
import { mountToolRoutes } from './routes/tools.js';

export interface AppDeps {
  config: Config;
  store: Store;
  events: EventLog;
  logger?: Logger;
  clock?: Clock;
  /** The tools to serve (mcp/toolset.ts); by default only the built-in tool. */
  toolset?: Toolset;
  /**
   * How bearer tokens are verified on the protected routes. Default: this server's own tokens
   * (oauth/tokens.ts verifyAccessToken, served from memory). A seam for embedding, and for
   * measuring what the check costs (bench P2); never set from config or CLI.
   */
  tokenVerifier?: TokenVerifier;
  /**
   * How client metadata documents are fetched (CIMD). Default: the SSRF-guarded fetcher with
   * production settings. Tests pass one built with a test CA and their own address policy; never
   * set from config or CLI.
   */
  clientMetadataFetcher?: ClientMetadataFetcher;
  /** Per-address limits and per-client caps; the defaults of limits.ts unless a test or bench narrows them. */
  limits?: Partial<AbuseLimits>;
  /** Replicas on one Redis: consent forms, lockouts and request windows shared by all (DESIGN.md §6); else in memory. */
  shared?: SharedEphemeralState;
  /** Replicas on one Redis: where MCP sessions live, to relay requests that reach another replica. */
  relay?: SessionRelay;
}

/** The HTTP application: a request handler plus the resources it owns (sessions, timers). */
export interface CupcakeApp {
  koa: Koa;
  context: ServerContext;
  mcp: McpRuntime;
  callback(): ReturnType<Koa['callback']>;
  /** Ends open streams and timers; the caller closes the store and the listener. */
  close(): Promise<void>;
}

const PURGE_INTERVAL_MS = 3_600_000;
const PRUNE_INTERVAL_MS = 86_400_000;
/** Expired tokens stay listable (`tokens list --all`) for a week before they are purged. */
const KEEP_EXPIRED_MS = 7 * 86_400_000;

/** Builds the app; never listens (start.ts does). */
export function createApp(deps: AppDeps): CupcakeApp {
  const logger = deps.logger ?? silentLogger;
  const clock = deps.clock ?? systemClock;
  const settings = createOAuthSettings(deps.config);
  const limits = resolveLimits(deps.config.limits ? limitsFromConfig(deps.config.limits) : undefined, deps.limits);
  const fetcher = deps.clientMetadataFetcher ?? createClientMetadataFetcher();
  const { shared } = deps;
  const server: ServerContext = {
    config: deps.config,
    settings,
    store: deps.store,
    events: deps.events,
    clock,
    logger,
    pending: shared
      ? new SharedPendingAuthorizations(shared, clock, settings.authorizationCodeTtlMs)
      : new PendingAuthorizations(clock, settings.authorizationCodeTtlMs),
    loginThrottle: shared ? new SharedLoginThrottle(shared, clock, limits.loginFailures) : new LoginThrottle(clock, limits.loginFailures),
    clientDocuments: new ClientMetadataDocuments(fetcher, {
      clock,
      settings,
      configured: deps.config.auth.clientMetadataDocuments,
      onPinnedCopyUsed: ({ clientId, reason }) => {
        logger.warn(`the client metadata document of ${clientId} could not be fetched (${reason}); using the copy shipped with cupcake-mcp`);
        deps.events.record({ type: 'client.pinned_document_used', client_id: clientId, detail: { reason } });
      },
    }),
    clientKeys: new ClientKeySets(fetcher, clock),
    tokenVerifier: deps.tokenVerifier ?? { verifyAccessToken: (token) => verifyAccessToken(token, { store: deps.store, clock, settings }) },
    limits,
    shared,
    relay: deps.relay,
    bearerFailures: shared ? new SharedAddressWindows(shared, 'bearer', limits.failedBearer, clock) : new AddressWindows(limits.failedBearer, clock),
    staleBearers: shared ? new SharedAddressWindows(shared, 'stale-bearer', limits.staleBearer, clock) : new AddressWindows(limits.staleBearer, clock),
    rejectionsLogged: new OncePerWindow(limits.rejectionLogWindowMs, clock),
  };

  // Behind a proxy, the client is the address the proxy saw: the last X-Forwarded-For entry.
  const koa = new Koa({ proxy: deps.config.trustProxy, maxIpsCount: 1 });
  koa.silent = true;
  koa.on('error', (error) => logger.error('koa error', error));

  let tools = deps.toolset?.registry;
  if (!tools) {
    tools = new ToolRegistry();
    registerWhoamiTool(tools, deps.config.name);
  }
  const docs = deps.toolset?.docs;
  // Registered here, not in the toolset: document URLs use this app's base URL.
  const removeDocsTools = docs ? registerDocsTools(tools, docs, { baseUrl: settings.issuer, serverName: deps.config.name }) : undefined;
  const relay = deps.relay;
  const mcp = createMcpRuntime({
    name: deps.config.name,
    tools,
    catalog: deps.toolset?.catalog,
    store: deps.store,
    events: deps.events,
    clock,
    sessionsPerClient: limits.sessionsPerClient,
    streamBufferBytes: limits.streamBufferBytes,
    logger,
    // Replicas on one Redis: where each session lives, for the others to relay to it.
    ...(relay
      ? {
          sessionLocations: {
            claim: (id: string) => void relay.claim(id).catch((error: unknown) => logger.error(`could not announce MCP session ${id}`, error)),
            release: (id: string) => void relay.release(id),
          },
        }
      : {}),
  });

  const router = new Router();
  // The consent page and its form: each page is a pending request in memory, each post may cost an scrypt.
  router.get('/authorize', rateLimit({ ...limits.authorizePage, clock, name: 'authorization', shared }));
  router.post('/authorize', rateLimit({ ...limits.authorizeForm, clock, name: 'consent', shared }));
  mountMetadataRoutes(router, server);
  mountRegisterRoute(router, server);
  mountAuthorizeRoutes(router, server);
  mountTokenRoute(router, server);
  mountRevokeRoute(router, server);
  if (deps.config.transports.streamableHttp) mountMcpRoutes(router, server, mcp);
  if (deps.config.transports.sse) mountSseRoutes(router, server, mcp);
  mountToolRoutes(router, server, mcp);
  if (docs) mountDocsRoute(router, server, docs);
  mountHomeRoute(router, server);
  mountFaviconRoute(router);
  mountSignInTestRoutes(router, server, mcp);

  koa.use(errorHandler(logger));
  koa.use(checkHostOnLoopback({ bindHost: deps.config.host, baseUrl: deps.config.baseUrl }));
  koa.use(deploymentWarnings(deps.config, logger));
  koa.use(async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    await next();
    if (ctx.status === 404 && ctx.body === undefined) {
      ctx.status = 404;
      ctx.body = { error: 'not_found', error_description: `no route for ${ctx.method} ${ctx.path.slice(0, 200)}` };
    }
  });
  koa.use(cors(deps.config.cors.origins));
  if (server.relay) koa.use(relayForeignSessions(server, mcp));
  koa.use(router.routes());
  koa.use(router.allowedMethods());

  const purge = setInterval(() => {
    deps.store.purgeExpired(clock.now() - KEEP_EXPIRED_MS).catch((error) => logger.error('purging expired records failed', error));
  }, PURGE_INTERVAL_MS);
  purge.unref();

  // auth.pruneAbandonedClientsAfter: the rule of `clients prune`, once at start and then daily.
  const pruneAfter = deps.config.auth.pruneAbandonedClientsAfter;
  let pruning: Promise<void> = Promise.resolve();
  const prune = (olderThanMs: number) => {
    pruning = pruneAbandonedClients({ store: deps.store, clock, events: deps.events }, { olderThanMs, by: 'serve' })
      .then((results) => {
        const removed = results.filter((r) => r.removed).length;
        if (removed > 0) logger.info(`removed ${removed} abandoned client${removed === 1 ? '' : 's'} (no sign of life for ${formatDistance(olderThanMs)})`);
      })
      .catch((error) => logger.error('pruning abandoned clients failed', error));
  };
  const pruneTimers = pruneAfter === undefined ? [] : [setTimeout(() => prune(pruneAfter), 0), setInterval(() => prune(pruneAfter), PRUNE_INTERVAL_MS)];
  for (const timer of pruneTimers) timer.unref();

  return {
    koa,
    context: server,
    mcp,
    callback: () => koa.callback(),
    async close() {
      clearInterval(purge);
      for (const timer of pruneTimers) clearTimeout(timer);
      await pruning;
      await mcp.close();
      removeDocsTools?.();
    },
  };
}
