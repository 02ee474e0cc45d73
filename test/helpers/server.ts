import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type Config, type ConfigInput } from '../../src/config/schema.js';
import type { ClientMetadataFetcher } from '../../src/oauth/client-metadata-document.js';
import { hashPassword } from '../../src/oauth/secrets.js';
import { createApp, type CupcakeApp } from '../../src/server/app.js';
import type { AbuseLimits } from '../../src/server/limits.js';
import { startServer, type RunningServer, type ServerTimeouts } from '../../src/server/start.js';
import { createFileEventLog, EVENTS_FILE, type EventLog } from '../../src/store/event-log.js';
import { openFileStore } from '../../src/store/file-store.js';
import type { StoreFileSystem } from '../../src/store/file-system.js';
import type { DocumentStore } from '../../src/store/document-store.js';
import type { Clock } from '../../src/shared/clock.js';
import { createToolset, type Toolset } from '../../src/mcp/toolset.js';
import { describeError, type Logger } from '../../src/shared/logger.js';

export const OWNER_PASSWORD = 'correct horse battery staple';

export interface TestServer {
  url: string;
  config: Config;
  dataDir: string;
  store: DocumentStore;
  events: EventLog;
  app: CupcakeApp;
  running: RunningServer;
  toolset: Toolset;
  /** What the server logged, one `level message` string per line (a test checks no stack trace got there). */
  logs: string[];
  close(): Promise<void>;
}

export interface TestServerOptions {
  config?: Partial<ConfigInput>;
  clock?: Clock;
  password?: string;
  docsDir?: string;
  clientMetadataFetcher?: ClientMetadataFetcher;
  /** The store's file system: a test wraps the real one to make a step fail as a full disk would. */
  fileSystem?: StoreFileSystem;
  /** Narrower limits than the config's, to see one bite. */
  limits?: Partial<AbuseLimits>;
  timeouts?: Partial<ServerTimeouts>;
  /** Rotate events.jsonl at this size instead of 10 MB. */
  eventRotateBytes?: number;
}

/**
 * The real app on a temp data dir, listening on 127.0.0.1 port 0, with the owner password set.
 * `config` overrides the defaults (baseUrl always follows the bound port).
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cupcake-test-'));
  const logs: string[] = [];
  const logger: Logger = {
    info: (m) => logs.push(`info ${m}`),
    warn: (m) => logs.push(`warn ${m}`),
    error: (m, e) => logs.push(`error ${m}${e === undefined ? '' : `: ${describeError(e)}`}`),
  };
  const store = await openFileStore({ dataDir, watch: true, pollIntervalMs: 200, logger, ...(options.fileSystem ? { fileSystem: options.fileSystem } : {}) });
  await store.setOwnerPasswordHash(await hashPassword(options.password ?? OWNER_PASSWORD), Date.now());
  const events = createFileEventLog(join(dataDir, EVENTS_FILE), {
    onError: (error) => logger.error('could not write the event log', error),
    ...(options.eventRotateBytes ? { rotateBytes: options.eventRotateBytes } : {}),
  });
  const configFor = (port: number) =>
    ConfigSchema.parse({
      ...options.config,
      baseUrl: `http://127.0.0.1:${port}`,
      dataDir,
      tools: { ...options.config?.tools, docs: options.docsDir ? { dir: options.docsDir } : false },
    });
  const toolset = await createToolset(configFor(0), logger);
  let config!: Config;
  let app!: CupcakeApp;
  const running = await startServer(
    (port) => {
      config = configFor(port);
      app = createApp({
        config,
        store,
        events,
        toolset,
        logger,
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.limits ? { limits: options.limits } : {}),
        ...(options.clientMetadataFetcher ? { clientMetadataFetcher: options.clientMetadataFetcher } : {}),
      });
      return app;
    },
    { host: '127.0.0.1', port: 0, ...(options.timeouts ? { timeouts: options.timeouts } : {}) },
  );
  return {
    url: `http://127.0.0.1:${running.port}`,
    config,
    dataDir,
    store,
    events,
    app,
    running,
    toolset,
    logs,
    async close() {
      await running.close(1_000);
      await toolset.close();
      await events.close();
      // A test that broke the disk may leave writes that cannot flush; everything else must close cleanly.
      await (options.fileSystem ? store.close().catch(() => undefined) : store.close());
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
