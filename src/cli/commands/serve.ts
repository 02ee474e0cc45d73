import { join } from 'node:path';
import { loadConfig } from '../../config/load.js';
import { generatePassword, hashPassword } from '../../oauth/secrets.js';
import { createToolset } from '../../mcp/toolset.js';
import { createApp } from '../../server/app.js';
import { startServer } from '../../server/start.js';
import { createFileEventLog, EVENTS_FILE } from '../../store/event-log.js';
import { openFileStore, StoreCorruptError, StoreWriteError } from '../../store/file-store.js';
import { describeError, type Logger } from '../../shared/logger.js';
import { VERSION } from '../../shared/version.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { AlreadyRunningError, claimDataDir } from '../instance.js';
import { checkPassword } from '../password.js';
import { println } from '../output.js';

export interface ServeOptions {
  port?: string;
  host?: string;
  baseUrl?: string;
}

function createLogger(ctx: CliContext): Logger {
  const line = (level: string, message: string) => ctx.output.err.write(`${new Date().toISOString()} ${level} ${message}\n`);
  return {
    info: (message) => line('info', message),
    warn: (message) => line('warn', message),
    error: (message, error) => line('error', error === undefined ? message : `${message}: ${describeError(error)}`),
  };
}

/** Runs until SIGINT/SIGTERM; resolves after a graceful shutdown. */
export async function runServe(ctx: CliContext, options: ServeOptions, signals: { once(signal: 'SIGINT' | 'SIGTERM', fn: () => void): void }): Promise<void> {
  const { config, path, baseUrlSet: baseUrlGiven } = loadConfig({
    path: ctx.configPath,
    env: ctx.env,
    cwd: ctx.cwd,
    overrides: { port: options.port, host: options.host, baseUrl: options.baseUrl },
  });
  const logger = createLogger(ctx);

  let store;
  try {
    store = await openFileStore({ dataDir: config.dataDir, watch: true, logger });
  } catch (error) {
    if (error instanceof StoreCorruptError || error instanceof StoreWriteError) throw new CliError(error.message);
    throw error;
  }
  let claim;
  try {
    claim = await claimDataDir(config.dataDir);
  } catch (error) {
    await store.close();
    if (error instanceof AlreadyRunningError) throw new CliError(error.message);
    throw error;
  }

  const events = createFileEventLog(join(config.dataDir, EVENTS_FILE), { onError: (error) => logger.error('could not write the event log', error) });
  try {
    const owner = await store.getOwner();
    if (!owner.passwordHash) {
      let password = ctx.env.CUPCAKE_OWNER_PASSWORD;
      if (password) {
        const ok = checkPassword(password);
        if (ok !== true) throw new CliError(`CUPCAKE_OWNER_PASSWORD: ${ok}`);
      } else {
        password = generatePassword();
        println(ctx.output, `Owner password (generated, shown once; change it with "cupcake-mcp passwd"): ${ctx.output.color.bold(password)}`);
      }
      await store.setOwnerPasswordHash(await hashPassword(password), Date.now());
    }
  } catch (error) {
    await claim.release();
    await store.close();
    throw error;
  }

  let running;
  let toolset;
  try {
    toolset = await createToolset(config, logger);
    const tools = toolset;
    running = await startServer(
      (port) => {
        // With no base URL anywhere, the embedded default follows the port actually bound.
        const effective = baseUrlGiven ? config : { ...config, baseUrl: `http://localhost:${port}` };
        return createApp({ config: effective, store, events, logger, toolset: tools });
      },
      { host: config.host, port: config.port },
    );
  } catch (error) {
    await toolset?.close();
    await claim.release();
    await store.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new CliError(`port ${config.port} on ${config.host} is already in use; choose another with --port`);
    if (code === 'EACCES') throw new CliError(`not allowed to listen on ${config.host}:${config.port}; choose a port above 1024 with --port`);
    throw error;
  }
  const baseUrl = baseUrlGiven ? config.baseUrl : `http://localhost:${running.port}`;
  const listening = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${running.port}`;
  await claim.publish({ url: baseUrl, listening, started_at: new Date().toISOString() });
  events.record({ type: 'server.started', detail: { version: VERSION, base_url: baseUrl, pid: process.pid } });

  const { color } = ctx.output;
  println(ctx.output, `cupcake-mcp ${VERSION} listening on ${listening}`);
  println(ctx.output, `  config:    ${path ?? '(embedded default)'}`);
  println(ctx.output, `  data dir:  ${config.dataDir}`);
  println(ctx.output, `Paste into your MCP client:`);
  println(ctx.output, `  Streamable HTTP: ${color.cyan(`${baseUrl}/mcp`)}`);
  println(ctx.output, `  SSE (legacy):    ${color.cyan(`${baseUrl}/sse`)}`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      resolve();
    };
    signals.once('SIGINT', stop);
    signals.once('SIGTERM', stop);
  });

  println(ctx.output, 'shutting down…');
  await running.close();
  await toolset.close();
  events.record({ type: 'server.stopped', detail: { pid: process.pid } });
  await events.flush();
  try {
    await store.close();
  } finally {
    // Even when the last flush fails, the data dir is handed back for the next serve.
    await claim.release();
  }
}
