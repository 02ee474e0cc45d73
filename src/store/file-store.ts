import { watch, type FSWatcher } from 'node:fs';
import { chmod, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { randomHex } from '../shared/ids.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { checkData, diffData, emptyData, StoreFormatError, type StoreData } from './document.js';
import { DocumentStore, type DocumentBackend } from './document-store.js';
import { StoreUnavailableError } from './errors.js';
import { FileLock } from './file-lock.js';
import { nodeFileSystem, type StoreFileHandle, type StoreFileSystem } from './file-system.js';
import type { StoreChange } from './types.js';
import { isProcessAlive } from '../shared/process.js';

export const DB_FILE = 'db.json';

/** `db.json` exists but cannot be used. It is reported with its path and never overwritten. */
export class StoreCorruptError extends StoreUnavailableError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`${path} cannot be read: ${reason}. Restore it from a backup or move it away; cupcake-mcp will not overwrite it.`);
    this.name = 'StoreCorruptError';
  }
}

/** A write to the data dir failed (permissions, disk full, …); nothing was changed. */
export class StoreWriteError extends StoreUnavailableError {
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    super(`could not write ${path}${code ? ` (${code})` : ''}: the change was not saved`);
    this.name = 'StoreWriteError';
  }
}

export interface FileStoreOptions {
  dataDir: string;
  /** Follow other processes' writes (serve does; one-shot CLI commands need not). */
  watch?: boolean;
  /** Polling fallback for file watching, in ms. */
  pollIntervalMs?: number;
  logger?: Logger;
  /** The file operations on the data dir; `nodeFileSystem` unless a test breaks the disk. */
  fileSystem?: StoreFileSystem;
}

/** File identity: changes whenever any process renames a new version into place. */
type Signature = string;

async function signatureOf(path: string): Promise<Signature | null> {
  try {
    const st = await stat(path, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * lowdb adapter writing atomically: a 0600 temp file beside the target, fsynced, then renamed over
 * it, so a reader or a crash sees either the old or the new document, never half of one.
 */
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from('}');

class AtomicJsonFile implements Adapter<StoreData> {
  /** Each record's `"key":{…}` bytes, kept while the record object lives (records are replaced, never changed). */
  private readonly serialized = new WeakMap<object, Buffer>();

  constructor(
    readonly path: string,
    private readonly fs: StoreFileSystem = nodeFileSystem,
  ) {}

  /**
   * The document as JSON bytes, reusing the bytes of records that did not change: with 10,000
   * tokens a new token costs one small JSON.stringify and a memcpy of the rest instead of a
   * full serialisation (DESIGN.md §8, P4).
   */
  serialize(data: StoreData): Buffer {
    const parts: Buffer[] = [Buffer.from(`{"schemaVersion":${JSON.stringify(data.schemaVersion)},"owner":${JSON.stringify(data.owner)}`)];
    for (const key of ['clients', 'codes', 'tokens', 'refreshTokens', 'assertions'] as const) {
      parts.push(Buffer.from(`,"${key}":{`));
      let first = true;
      for (const [id, record] of Object.entries(data[key])) {
        let bytes = this.serialized.get(record);
        if (bytes === undefined) {
          bytes = Buffer.from(`${JSON.stringify(id)}:${JSON.stringify(record)}`);
          this.serialized.set(record, bytes);
        }
        if (!first) parts.push(COMMA);
        parts.push(bytes);
        first = false;
      }
      parts.push(CLOSE);
    }
    parts.push(CLOSE);
    return Buffer.concat(parts);
  }

  async read(): Promise<StoreData | null> {
    let text: string;
    try {
      text = await this.fs.readFile(this.path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      throw new StoreCorruptError(this.path, code ?? String(error));
    }
    try {
      return checkData(JSON.parse(text));
    } catch (error) {
      const reason = error instanceof StoreFormatError ? error.message : `not valid JSON (${(error as Error).message})`;
      throw new StoreCorruptError(this.path, reason);
    }
  }

  async write(data: StoreData): Promise<void> {
    const temp = `${this.path}.${process.pid}.${randomHex(4)}.tmp`;
    let handle: StoreFileHandle | undefined;
    try {
      handle = await this.fs.open(temp, 'wx', 0o600);
      await handle.writeFile(this.serialize(data));
      await handle.datasync();
      await handle.close();
      handle = undefined;
      await this.fs.rename(temp, this.path);
      // The rename itself is durable only once the folder is synced: a 2xx must survive a power cut.
      await this.syncFolder();
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await this.fs.unlink(temp).catch(() => undefined);
      throw new StoreWriteError(this.path, error);
    }
  }

  private async syncFolder(): Promise<void> {
    const folder = await this.fs.open(join(this.path, '..'), 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  }
}

class FileBackend implements DocumentBackend {
  private readonly db: Low<StoreData>;
  private readonly lockPath: string;
  private readonly lock: FileLock;
  private known: Signature | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private catchingUp: Promise<void> | undefined;
  private listener: (change: StoreChange) => void = () => {};
  private closed = false;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    private readonly fs: StoreFileSystem,
  ) {
    this.db = new Low(new AtomicJsonFile(path, fs), emptyData());
    this.lockPath = `${path}.lock`;
    this.lock = new FileLock({
      lockPath: this.lockPath,
      mkdir: (lockPath) => fs.mkdir(lockPath),
      onCompromised: (error) => this.logger.error(`lock on ${this.path} was compromised`, error),
    });
  }

  async open(options: FileStoreOptions): Promise<void> {
    await this.removeAbandonedTempFiles();
    if ((await signatureOf(this.path)) === null) {
      // First start: create the file under the lock so two starters do not both write defaults.
      await this.withLock(async () => {
        if ((await signatureOf(this.path)) === null) await this.db.adapter.write(emptyData());
      });
    }
    await this.load();
    if (options.watch) this.startWatching(options.pollIntervalMs ?? 500);
  }

  current(): StoreData {
    return this.db.data;
  }

  onExternalChange(listener: (change: StoreChange) => void): void {
    this.listener = listener;
  }

  /** Lookups of unknown tokens share one check in flight: a flood of them is one stat at a time, not a queue. */
  catchUp(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.catchingUp ??= this.serialize(() => this.reloadIfChanged()).finally(() => {
      this.catchingUp = undefined;
    });
    return this.catchingUp;
  }

  transact<T>(fn: (data: StoreData) => T): Promise<T> {
    return this.serialize(() =>
      this.withLock(async () => {
        await this.reloadIfChanged();
        let result: T;
        try {
          result = fn(this.db.data);
          await this.db.write();
        } catch (error) {
          // Drop whatever fn changed in memory: the file is the truth.
          this.known = null;
          await this.reloadIfChanged().catch(() => undefined);
          throw error;
        }
        this.known = await signatureOf(this.path);
        return result;
      }),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
    await this.queue.catch(() => undefined);
  }

  private serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async withLock<T>(task: () => Promise<T>): Promise<T> {
    let release: () => Promise<void>;
    try {
      // A holder that died is taken over at once (same machine) or after 5 s without a refresh.
      release = await this.lock.acquire();
    } catch (error) {
      throw new StoreWriteError(this.lockPath, error);
    }
    try {
      return await task();
    } finally {
      await release().catch(() => undefined);
    }
  }

  /**
   * Temp files of writers that died between creating and renaming them (`db.json.<pid>.<hex>.tmp`):
   * never a version of the data, only clutter, so they are removed once their writer is gone.
   */
  private async removeAbandonedTempFiles(): Promise<void> {
    const dir = join(this.path, '..');
    const prefix = `${DB_FILE}.`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const match = name.startsWith(prefix) ? /^(\d+)\.[0-9a-f]+\.tmp$/.exec(name.slice(prefix.length)) : null;
      if (!match) continue;
      const pid = Number(match[1]);
      if (pid === process.pid || isProcessAlive(pid)) continue;
      await this.fs.unlink(join(dir, name)).catch(() => undefined);
    }
  }

  private async load(): Promise<void> {
    const before = await signatureOf(this.path);
    await this.db.read();
    if (before === null) throw new StoreCorruptError(this.path, 'the file disappeared');
    this.known = before;
  }

  /** Re-reads the file when another process replaced it, and tells listeners what changed. */
  private async reloadIfChanged(): Promise<void> {
    const now = await signatureOf(this.path);
    if (now === null) {
      if (this.known !== null) this.logger.error(`${this.path} was deleted; keeping the data in memory and writing it back on the next change`);
      this.known = null;
      return;
    }
    if (now === this.known) return;
    const previous = this.db.data;
    await this.db.read();
    this.known = now;
    this.listener(diffData(previous, this.db.data));
  }

  private startWatching(pollMs: number): void {
    let reported: string | undefined;
    const check = () => {
      if (this.closed) return;
      void this.serialize(() => this.reloadIfChanged()).then(
        () => {
          reported = undefined;
        },
        (error: unknown) => {
          // Said once per cause, not on every poll: the file stays broken until someone fixes it.
          const message = error instanceof Error ? error.message : String(error);
          if (message === reported) return;
          reported = message;
          this.logger.error(`could not reload ${this.path}; serving the last good data`, error);
        },
      );
    };
    try {
      this.watcher = watch(join(this.path, '..'), { persistent: false }, (_event, filename) => {
        if (filename === null || filename.toString() === DB_FILE) check();
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // No inotify (or similar) here: polling alone keeps us within the 1 s promise.
    }
    this.poller = setInterval(check, pollMs);
    this.poller.unref();
  }
}

/**
 * The whole document of a data dir's `db.json`, read once without locking or watching (for
 * `store migrate`); undefined when there is no file. A damaged file is a StoreCorruptError.
 */
export async function readFileStoreData(dataDir: string): Promise<StoreData | undefined> {
  return (await new AtomicJsonFile(join(dataDir, DB_FILE)).read()) ?? undefined;
}

/** Opens (creating when absent) the JSON-file store in `dataDir`: mode 0700 dir, 0600 file. */
export async function openFileStore(options: FileStoreOptions): Promise<DocumentStore> {
  const { dataDir } = options;
  const logger = options.logger ?? silentLogger;
  const fs = options.fileSystem ?? nodeFileSystem;
  try {
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new StoreWriteError(dataDir, error);
  }
  // DESIGN.md §6: data dir 0700, files 0600. mkdir's mode only applies to a dir it creates, so
  // a dir that already existed (made by hand, restored from a backup) is tightened here.
  await tighten(dataDir, 0o700, logger);
  const backend = new FileBackend(join(dataDir, DB_FILE), logger, fs);
  await backend.open(options);
  await tighten(join(dataDir, DB_FILE), 0o600, logger);
  return new DocumentStore(backend);
}

/** Removes group and other permissions from `path`; a failure (not the owner) is only logged. */
async function tighten(path: string, mode: number, logger: Logger): Promise<void> {
  try {
    const current = (await stat(path)).mode & 0o777;
    if ((current & 0o077) !== 0) await chmod(path, mode);
  } catch (error) {
    logger.warn(`could not restrict the permissions of ${path} to ${mode.toString(8)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}
