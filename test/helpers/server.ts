import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type Config, type ConfigInput } from '../../src/config/schema.js';
import type { ClientMetadataFetcher } from '../../src/oauth/client-metadata-document.js';
import { hashPassword } from '../../src/oauth/secrets.js';
import { createApp, type CupcakeApp } from '../../src/server/app.js';
import { startServer, type RunningServer } from '../../src/server/start.js';
import { createFileEventLog, EVENTS_FILE, type EventLog } from '../../src/store/event-log.js';
import { openFileStore } from '../../src/store/file-store.js';
import type { DocumentStore } from '../../src/store/document-store.js';
import type { Clock } from '../../src/shared/clock.js';
import { createToolset, type Toolset } from '../../src/mcp/toolset.js';
import { silentLogger } from '../../src/shared/logger.js';

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
  close(): Promise<void>;
}

/**
 * The real app on a temp data dir, listening on 127.0.0.1 port 0, with the owner password set.
 * `config` overrides the defaults (baseUrl always follows the bound port).
 */
export async function startTestServer(
  options: { config?: Partial<ConfigInput>; clock?: Clock; password?: string; docsDir?: string; clientMetadataFetcher?: ClientMetadataFetcher } = {},
): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cupcake-test-'));
  const store = await openFileStore({ dataDir, watch: true, pollIntervalMs: 200 });
  await store.setOwnerPasswordHash(await hashPassword(options.password ?? OWNER_PASSWORD), Date.now());
  const events = createFileEventLog(join(dataDir, EVENTS_FILE));
  const configFor = (port: number) =>
    ConfigSchema.parse({
      ...options.config,
      baseUrl: `http://127.0.0.1:${port}`,
      dataDir,
      tools: { ...options.config?.tools, docs: options.docsDir ? { dir: options.docsDir } : false },
    });
  const toolset = await createToolset(configFor(0), silentLogger);
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
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.clientMetadataFetcher ? { clientMetadataFetcher: options.clientMetadataFetcher } : {}),
      });
      return app;
    },
    { host: '127.0.0.1', port: 0 },
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
    async close() {
      await running.close(1_000);
      await toolset.close();
      await events.close();
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
