import { loadConfig } from '../../config/load.js';
import { LaunchError, launchServer } from '../../server/launch.js';
import { AlreadyRunningError } from '../../store/data-dir-claim.js';
import { StoreCorruptError, StoreWriteError } from '../../store/file-store.js';
import { describeError, type Logger } from '../../shared/logger.js';
import { VERSION } from '../../shared/version.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { fieldText, escapeFields, println } from '../output.js';
import { describeEvent } from '../event-lines.js';
import type { AuthEvent } from '../../store/event-log.js';
import { StoreUnavailableError } from '../../store/errors.js';
import { describeRedisUrl, isRedisUrl } from '../../shared/store-url.js';

export interface ServeOptions {
  port?: string;
  host?: string;
  baseUrl?: string;
  /** No line per auth event. */
  quiet?: boolean;
  logFormat?: 'text' | 'json';
}

/**
 * One line per auth event on stdout as it happens: a readable sentence after its time, or with
 * `--log-format json` the event object as stored. Never a secret: events hold none (DESIGN.md §7).
 */
function createEventPrinter(
  ctx: CliContext,
  options: ServeOptions,
): { print(event: AuthEvent): void; learnNames(clients: Array<{ clientId: string; clientName?: string | null }>): void } {
  const names = new Map<string, string>();
  const nameOf = (id: string) => names.get(id);
  return {
    print(event) {
      if (options.quiet) return;
      if (event.type === 'client.registered' && typeof event.detail === 'object' && typeof event.detail.client_name === 'string' && event.client_id) {
        names.set(event.client_id, event.detail.client_name);
      }
      if (options.logFormat === 'json') return println(ctx.output, JSON.stringify(event));
      // A tool call is no auth step and gets no line: skip the escaping on the hottest event.
      if (event.type === 'tool.called') return;
      // Every field may come from an unauthenticated request: control characters become visible escapes.
      const line = describeEvent(escapeFields(event), (id) => {
        const name = nameOf(id);
        return name === undefined ? undefined : fieldText(name);
      });
      if (line) println(ctx.output, `${ctx.output.color.dim(event.ts)}  ${line}`);
    },
    learnNames(clients) {
      for (const c of clients) if (c.clientName) names.set(c.clientId, c.clientName);
    },
  };
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
  const { config, path, baseUrlFollowsPort } = loadConfig({
    path: ctx.configPath,
    env: ctx.env,
    cwd: ctx.cwd,
    overrides: { port: options.port, host: options.host, baseUrl: options.baseUrl },
  });
  const logger = createLogger(ctx);
  if (options.logFormat !== undefined && options.logFormat !== 'text' && options.logFormat !== 'json')
    throw new CliError('--log-format: expected "text" or "json"', 2);
  const events = createEventPrinter(ctx, options);
  // Events of the start-up itself (server.started) wait for the banner.
  const early: AuthEvent[] = [];
  let started = false;

  let server;
  try {
    server = await launchServer({
      config,
      baseUrlFollowsPort,
      logger,
      onEvent: (event) => (started ? events.print(event) : early.push(event)),
      firstPassword: {
        password: ctx.env.CUPCAKE_OWNER_PASSWORD || undefined,
        source: 'CUPCAKE_OWNER_PASSWORD',
        onGenerated: (password) =>
          println(ctx.output, `Owner password (generated, shown once; change it with "cupcake-mcp passwd"): ${ctx.output.color.bold(password)}`),
      },
    });
  } catch (error) {
    if (
      error instanceof StoreCorruptError ||
      error instanceof StoreWriteError ||
      error instanceof StoreUnavailableError ||
      error instanceof AlreadyRunningError ||
      error instanceof LaunchError
    ) {
      throw new CliError(error.message);
    }
    const { code, syscall, path: where } = error as NodeJS.ErrnoException;
    if (syscall === 'listen' && code === 'EADDRINUSE')
      throw new CliError(`port ${config.port} on ${config.host} is already in use; choose another with --port`);
    if (syscall === 'listen' && (code === 'EACCES' || code === 'EPERM'))
      throw new CliError(`not allowed to listen on ${config.host}:${config.port}; choose a port above 1024 with --port`);
    // The data dir (claimed with a lock beside db.json) must be writable: say which file and why.
    if (where && code && /^E(ACCES|PERM|ROFS|NOSPC|DQUOT|NOENT|NOTDIR|IO)$/.test(code)) {
      throw new CliError(`cannot write ${where} (${code}): serve needs a data dir it can write; check its owner, permissions and free space`);
    }
    throw error;
  }
  const { baseUrl, listening } = server;

  const { color } = ctx.output;
  println(ctx.output, `cupcake-mcp ${VERSION} listening on ${listening}`);
  println(ctx.output, `  config:    ${path ?? '(embedded default)'}`);
  println(ctx.output, isRedisUrl(config.store) ? `  store:     ${describeRedisUrl(config.store)} (shared by every replica)` : `  data dir:  ${config.dataDir}`);
  println(ctx.output, `Paste into your MCP client:`);
  println(ctx.output, `  Streamable HTTP: ${color.cyan(`${baseUrl}/mcp`)}`);
  println(ctx.output, `  SSE (legacy):    ${color.cyan(`${baseUrl}/sse`)}`);
  println(ctx.output, `Home page (URLs, discovery check, test sign-in): ${color.cyan(`${baseUrl}/`)}`);
  if (!options.quiet) println(ctx.output, color.dim('Auth events follow, one line each (--quiet turns them off; also in events.jsonl).'));
  events.learnNames(await server.store.listClients());
  started = true;
  for (const event of early.splice(0)) events.print(event);

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
  await server.close();
}
