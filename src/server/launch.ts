import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { ToolRegistry } from '../mcp/tool-registry.js';
import { createToolset } from '../mcp/toolset.js';
import { parseConfiguredDocuments } from '../oauth/client-metadata-document.js';
import { ensureFirstPartyClient } from '../oauth/first-party.js';
import { createOAuthSettings } from '../oauth/settings.js';
import { generatePassword, hashPassword, ownerPasswordProblem } from '../oauth/secrets.js';
import { claimDataDir } from '../store/data-dir-claim.js';
import type { AuthEvent, EventLog } from '../store/event-log.js';
import { openConfiguredStore } from '../store/open.js';
import type { RedisStore } from '../store/redis/redis-store.js';
import { isRedisUrl } from '../shared/store-url.js';
import { hostname } from 'node:os';
import type { Store } from '../store/types.js';
import type { Logger } from '../shared/logger.js';
import { VERSION } from '../shared/version.js';
import { createApp, type CupcakeApp } from './app.js';
import { startServer } from './start.js';
import { serveRelayedRequests } from './middleware/session-relay.js';

export interface LaunchOptions {
  config: Config;
  /** The (loopback) base URL follows the port actually bound; see loadConfig. */
  baseUrlFollowsPort: boolean;
  logger: Logger;
  /** Tools registered before launch (programmatic API); the config's tools are added to it. */
  registry?: ToolRegistry;
  /**
   * First start (no owner password in the data dir yet): the password to set, and where it came
   * from (named in errors); or, with `onGenerated`, a generated one handed over to be shown once.
   * With neither, launch fails saying how to set one.
   */
  /** Each auth event as it is recorded (serve prints them). */
  onEvent?: (event: AuthEvent) => void;
  firstPassword?: { password?: string; source: string; onGenerated?: (password: string) => void };
}

export interface LaunchedServer {
  baseUrl: string;
  port: number;
  /** The address listened on, as a URL. */
  listening: string;
  store: Store;
  events: EventLog;
  app: CupcakeApp;
  /** Graceful stop: no new connections, streams closed, events and store flushed. */
  close(): Promise<void>;
}

/** The loopback base URL on the port actually bound (its host kept: localhost, 127.0.0.1 or [::1]). */
function withPort(baseUrl: string, port: number): string {
  const url = new URL(baseUrl);
  url.port = String(port);
  return url.origin;
}

const SESSIONS_PUBLISH_MS = 1_000;

/** A launch refused before listening, with a message that says what to do. */
export class LaunchError extends Error {
  override name = 'LaunchError';
}

/** Sets the owner password on first start; the same rule whether the CLI or the API launches. */
async function bootstrapOwner(store: Store, dataDir: string, first: LaunchOptions['firstPassword']): Promise<void> {
  if ((await store.getOwner()).passwordHash) return;
  let password = first?.password;
  if (password !== undefined) {
    const problem = ownerPasswordProblem(password);
    if (problem) throw new LaunchError(`${first!.source}: ${problem}`);
  } else if (first?.onGenerated) {
    password = generatePassword();
    first.onGenerated(password);
  } else {
    throw new LaunchError(`no owner password in ${dataDir}: run "npx cupcake-mcp init" there${first ? `, or set ${first.source}` : ''}`);
  }
  await store.setOwnerPasswordHash(await hashPassword(password), Date.now());
}

/**
 * Several serve processes may share one Redis deployment: instead of a claim on the folder, each
 * announces itself in Redis with a heartbeat (`status` lists them) from its first publish on.
 */
function announceReplica(store: Store, dataDir: string): Awaited<ReturnType<typeof claimDataDir>> {
  let stop: (() => Promise<void>) | undefined;
  const started_at = new Date().toISOString();
  let latest: Parameters<Awaited<ReturnType<typeof claimDataDir>>['publish']>[0] = {};
  return {
    claim: { pid: process.pid, host: hostname(), started_at },
    async publish(info) {
      // Each heartbeat writes the latest (sessions change while it runs).
      latest = { ...latest, ...info };
      if (stop || !latest.url || !('announceReplica' in store)) return;
      stop = await (store as unknown as RedisStore).announceReplica(() => ({
        pid: process.pid,
        hostname: hostname(),
        data_dir: dataDir,
        url: latest.url!,
        listening: latest.listening ?? latest.url!,
        started_at,
        ...(latest.version ? { version: latest.version } : {}),
        ...(latest.sessions ? { sessions: latest.sessions } : {}),
      }));
    },
    async release() {
      await stop?.();
    },
  };
}

/** This process's own listener as a URL it can connect to (a wildcard host answers on loopback). */
function loopbackUrl(host: string, port: number): string {
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${local.includes(':') ? `[${local}]` : local}:${port}`;
}

/** Opens the data dir, builds the tools and the app, and listens: everything `serve` runs. */
export async function launchServer(options: LaunchOptions): Promise<LaunchedServer> {
  const { config, logger } = options;
  // Pinned documents are part of the config: checked before anything opens, reported like any setting.
  const { problems } = parseConfiguredDocuments(config.auth.clientMetadataDocuments ?? {}, createOAuthSettings(config), Date.now());
  if (problems.length > 0) throw new ConfigError(problems);
  // "file" (db.json in the data dir) or Redis shared by several replicas (DESIGN.md §6).
  const opened = await openConfiguredStore({ store: config.store, dataDir: config.dataDir, watch: true, logger, name: `cupcake-mcp-serve-${process.pid}` });
  const { store } = opened;
  const cleanups: Array<() => Promise<void>> = [() => store.close()];
  const undo = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((error) => logger.error('cleanup failed', error));
  };
  try {
    // One serve per data dir for the file store, claimed before anything is written; released after
    // the store's last flush. Replicas on one Redis claim nothing: each announces itself there.
    const claim = isRedisUrl(config.store) ? announceReplica(store, config.dataDir) : await claimDataDir(config.dataDir);
    cleanups.unshift(() => claim.release());
    await bootstrapOwner(store, config.dataDir, options.firstPassword);
    const events = opened.createEventLog({
      onError: (error) => logger.error('could not write the event log', error),
      ...(options.onEvent ? { onRecord: options.onEvent } : {}),
    });
    cleanups.push(() => events.close());
    const toolset = await createToolset(config, logger, options.registry);
    cleanups.push(() => toolset.close());
    let app!: CupcakeApp;
    const running = await startServer(
      (port) => {
        const effective = options.baseUrlFollowsPort ? { ...config, baseUrl: withPort(config.baseUrl, port) } : config;
        app = createApp({ config: effective, store, events, logger, toolset, shared: opened.shared, relay: opened.relay });
        return app;
      },
      { host: config.host, port: config.port },
    );
    const baseUrl = app.context.settings.issuer;
    // Replicas on one Redis: /mcp requests for sessions held here, relayed by the others, go through this listener.
    if (opened.relay) serveRelayedRequests(opened.relay, loopbackUrl(config.host, running.port));
    events.record({ type: 'server.started', detail: { version: VERSION, base_url: baseUrl, pid: process.pid } });
    cleanups.push(async () => {
      await running.close();
      events.record({ type: 'server.stopped', detail: { pid: process.pid } });
    });
    // First start creates the first-party client; a new base URL moves its redirect along.
    await ensureFirstPartyClient(app.context, {}, 'serve');
    const listening = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${running.port}`;
    await claim.publish({ url: baseUrl, listening, version: VERSION });
    // Live sessions for `status`, written when they change (at most every SESSIONS_PUBLISH_MS).
    let published = '';
    const publishSessions = setInterval(() => {
      const { byTransport, byClient } = app.mcp.sessions.summary();
      const snapshot = JSON.stringify([byTransport, byClient]);
      if (snapshot === published) return;
      published = snapshot;
      const total = Object.values(byTransport).reduce((a, b) => a + b, 0);
      claim.publish({ sessions: { total, by_transport: byTransport, by_client: byClient, at: new Date().toISOString() } }).catch(() => undefined);
    }, SESSIONS_PUBLISH_MS);
    publishSessions.unref();
    cleanups.push(async () => clearInterval(publishSessions));
    let closing: Promise<void> | undefined;
    return {
      baseUrl,
      port: running.port,
      listening,
      store,
      events,
      app,
      close: () => (closing ??= undo()),
    };
  } catch (error) {
    await undo();
    throw error;
  }
}
