import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, resolveConfigPath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { formatDistance } from '../shared/durations.js';
import { createFileEventLog, EVENTS_FILE, type EventLog } from '../store/event-log.js';
import { DB_FILE, openFileStore, StoreCorruptError, StoreWriteError } from '../store/file-store.js';
import { createMemoryStore } from '../store/memory-store.js';
import { StoreUnavailableError } from '../store/errors.js';
import { openConfiguredStore } from '../store/open.js';
import { silentLogger } from '../shared/logger.js';
import { describeRedisUrl, isRedisUrl } from '../shared/store-url.js';
import type { AccessTokenRecord, ClientRecord, Store } from '../store/types.js';
import type { CliContext } from './context.js';
import { CliError } from './errors.js';

/**
 * What the admin commands (clients, tokens, events, status, passwd) share: finding the data dir
 * without creating it, opening the store the running `serve` also writes, and turning what a
 * person typed (an id or a prefix of one) into exactly one record.
 */

export interface AdminConfig {
  config: Config;
  /** The config file read, or null on the embedded default. */
  configPath: string | null;
  dataDir: string;
  /** The store is Redis (`store`: a redis:// URL): the data dir holds none of the data. */
  redis: boolean;
}

export function loadAdminConfig(ctx: CliContext): AdminConfig {
  const { config, path } = loadConfig({ path: ctx.configPath, env: ctx.env, cwd: ctx.cwd });
  return { config, configPath: path, dataDir: config.dataDir, redis: isRedisUrl(config.store) };
}

/** Fails, saying what to run, when the file store's data dir is missing; a Redis store needs none. */
export async function requireStore(ctx: CliContext, admin: AdminConfig): Promise<void> {
  if (admin.redis) return;
  if (!(await dataDirExists(admin.dataDir))) throw missingDataDirError(ctx, admin);
}

/** The audit log of the configured store, opened on its own (`events tail`); `where` names it for messages. */
export async function openAdminEventLog(admin: AdminConfig): Promise<{ log: EventLog; where: string; close(): Promise<void> }> {
  if (!admin.redis) {
    const path = join(admin.dataDir, EVENTS_FILE);
    return { log: createFileEventLog(path), where: path, close: async () => undefined };
  }
  const { store, createEventLog } = await openRedisForCli(admin);
  const log = createEventLog({});
  return {
    log,
    where: `the event stream in ${describeRedisUrl(admin.config.store)}`,
    async close() {
      await log.close();
      await store.close();
    },
  };
}

async function openRedisForCli(admin: AdminConfig) {
  try {
    return await openConfiguredStore({ store: admin.config.store, dataDir: admin.dataDir, watch: false, logger: silentLogger, name: 'cupcake-mcp-cli' });
  } catch (error) {
    if (error instanceof StoreUnavailableError)
      throw new CliError(`${error.message}; check "store" in your config (or $CUPCAKE_STORE) and that Redis is running`);
    throw error;
  }
}

export async function dataDirExists(dataDir: string): Promise<boolean> {
  try {
    const st = await stat(dataDir);
    if (!st.isDirectory()) throw new CliError(`${dataDir} is not a directory; the data dir must be a folder`);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** The person-facing explanation of a missing data dir: where we looked and what to run. */
export function missingDataDirError(ctx: CliContext, admin: AdminConfig): CliError {
  let source: string;
  if (ctx.env.CUPCAKE_DATA_DIR) source = 'from $CUPCAKE_DATA_DIR';
  else if (admin.configPath) source = `the "dataDir" of ${admin.configPath}`;
  else source = `the default; no config file at ${resolveConfigPath({ path: ctx.configPath, env: ctx.env, cwd: ctx.cwd }).path}`;
  return new CliError(
    `no data dir at ${admin.dataDir} (${source}).\nRun "cupcake-mcp init" to create one, or point to your config with --config <path> or $CUPCAKE_CONFIG.`,
  );
}

export interface AdminSession extends AdminConfig {
  store: Store;
  /** Opened lazily: only commands that change something write events. */
  events(): EventLog;
  close(): Promise<void>;
}

/**
 * Opens the store of an existing data dir. Listing must never create anything: a data dir without
 * `db.json` yet is read as empty, and only `writable` sessions (passwd) may create the file.
 */
export async function openAdminSession(ctx: CliContext, options: { writable?: boolean } = {}): Promise<AdminSession> {
  const admin = loadAdminConfig(ctx);
  if (admin.redis) {
    const { store, createEventLog } = await openRedisForCli(admin);
    let log: EventLog | undefined;
    return {
      ...admin,
      store,
      events() {
        log ??= createEventLog({ onError: (error) => ctx.output.err.write(`warning: could not write the event log: ${(error as Error).message}\n`) });
        return log;
      },
      async close() {
        await log?.close();
        await store.close();
      },
    };
  }
  if (!(await dataDirExists(admin.dataDir))) throw missingDataDirError(ctx, admin);
  let store: Store;
  const dbExists = await stat(join(admin.dataDir, DB_FILE)).then(
    () => true,
    () => false,
  );
  if (!dbExists && !options.writable) {
    store = createMemoryStore();
  } else {
    try {
      store = await openFileStore({ dataDir: admin.dataDir, watch: false });
    } catch (error) {
      if (error instanceof StoreCorruptError || error instanceof StoreWriteError) throw new CliError(error.message);
      throw error;
    }
  }
  let log: EventLog | undefined;
  return {
    ...admin,
    store,
    events() {
      log ??= createFileEventLog(join(admin.dataDir, EVENTS_FILE), {
        onError: (error) => ctx.output.err.write(`warning: could not write the event log: ${(error as Error).message}\n`),
      });
      return log;
    },
    async close() {
      await log?.flush();
      await store.close();
    },
  };
}

/** Runs `fn` with an admin session and always closes it (flushing events). */
export async function withAdminSession<T>(ctx: CliContext, fn: (session: AdminSession) => Promise<T>, options: { writable?: boolean } = {}): Promise<T> {
  const session = await openAdminSession(ctx, options);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/**
 * Picks the one candidate whose id is `input` or starts with it. An exact match wins over prefixes;
 * no match or several matches are errors that name what to do next.
 */
export function resolveById<T>(
  input: string,
  candidates: T[],
  idOf: (item: T) => string,
  describe: { noun: string; label: (item: T) => string; listCommand: string },
): T {
  const exact = candidates.find((c) => idOf(c) === input);
  if (exact) return exact;
  const matches = input === '' ? [] : candidates.filter((c) => idOf(c).startsWith(input));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) {
    throw new CliError(`no ${describe.noun} with id "${input}" (see "cupcake-mcp ${describe.listCommand}")`);
  }
  const lines = matches.slice(0, 20).map((m) => `  ${idOf(m)}  ${describe.label(m)}`.trimEnd());
  if (matches.length > 20) lines.push(`  … and ${matches.length - 20} more`);
  throw new CliError(`"${input}" matches ${matches.length} ${describe.noun}s; type more of the id:\n${lines.join('\n')}`);
}

export function resolveClient(input: string, clients: ClientRecord[]): ClientRecord {
  return resolveById(input, clients, (c) => c.clientId, {
    noun: 'client',
    label: (c) => c.clientName ?? '(no name)',
    listCommand: 'clients list',
  });
}

/** Token ids may be typed with or without their `tok_` prefix. */
export function resolveToken(input: string, tokens: AccessTokenRecord[], now: number): AccessTokenRecord {
  const normalized = input.startsWith('tok_') ? input : `tok_${input}`;
  try {
    return resolveById(normalized, tokens, (t) => t.id, {
      noun: 'token',
      label: (t) => `${tokenStatus(t, now)}  client ${t.clientId}`,
      listCommand: 'tokens list --all',
    });
  } catch (error) {
    // Name the id as the person typed it.
    if (error instanceof CliError && normalized !== input) throw new CliError(error.message.replace(`"${normalized}"`, `"${input}"`), error.exitCode);
    throw error;
  }
}

/** The shortest prefix length (at least `min`) that still tells every id apart: what tables show. */
export function shortIdLength(ids: string[], min = 8): number {
  let length = min;
  const longest = Math.max(0, ...ids.map((id) => id.length));
  while (length < longest && new Set(ids.map((id) => id.slice(0, length))).size < ids.length) length++;
  return length;
}

export type TokenStatus = 'active' | 'revoked' | 'expired';

export function tokenStatus(token: Pick<AccessTokenRecord, 'revokedAt' | 'expiresAt'>, now: number): TokenStatus {
  if (token.revokedAt !== null) return 'revoked';
  if (token.expiresAt <= now) return 'expired';
  return 'active';
}

/** "3 h ago", "in 21 h", "never". */
export function relativeTime(at: number | null | undefined, now: number, never = 'never'): string {
  if (at == null) return never;
  const distance = at - now;
  if (Math.abs(distance) < 1000) return 'just now';
  return distance > 0 ? `in ${formatDistance(distance)}` : `${formatDistance(distance)} ago`;
}
