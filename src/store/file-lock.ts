import * as fs from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import lockfile from 'proper-lockfile';
import { isProcessAlive } from '../shared/process.js';

/**
 * A lock held by one process at a time across processes, as a directory made with mkdir
 * (proper-lockfile). Store transactions hold it for milliseconds, so:
 *
 * - a holder refreshes the directory's mtime every second while it holds the lock, and a lock
 *   not refreshed for 5 s is stale (its holder hung or died) and is taken over;
 * - a holder also names itself (pid, host) in `<lock>.owner`, so that a lock whose holder is a
 *   process of this machine that no longer exists (SIGKILL, power cut of a CLI) is taken over at
 *   once instead of after the stale time;
 * - a takeover removes the lock only if it is still the very directory that was judged stale
 *   (inode and birth time), so two waiters cannot both take over and then both hold it;
 * - only "held by someone else" is waited for: any other error (permissions, disk, a missing
 *   folder) fails at once, so a request gets its answer instead of waiting for retries to run out.
 */

export const LOCK_STALE_MS = 5_000;
export const LOCK_UPDATE_MS = 1_000;
/** How long a writer waits for a live holder before giving up. */
export const LOCK_WAIT_MS = 20_000;

export interface FileLockOptions {
  /** The lock directory, e.g. `<dataDir>/db.json.lock`. */
  lockPath: string;
  staleMs?: number;
  updateMs?: number;
  waitMs?: number;
  onCompromised?: (error: Error) => void;
  /** Makes the lock directory: node's mkdir by default; the file store passes its own file system's. */
  mkdir?: (path: string) => Promise<unknown>;
}

interface OwnerRecord {
  pid: number;
  /** The host and pid namespace the pid belongs to. */
  host: string;
  /** Identity of the lock directory the owner made: inode and birth time. */
  lock: string;
}

const identity = (st: { ino: number | bigint; birthtimeMs: number }) => `${st.ino}:${st.birthtimeMs}`;

/**
 * Where a pid means something: the host name, and on Linux the pid namespace (a container that
 * shares the host's name and data dir does not share its pids).
 */
export const PID_SPACE = (() => {
  let namespace = '';
  try {
    namespace = fs.readlinkSync('/proc/self/ns/pid');
  } catch {
    /* not Linux: the host name alone */
  }
  return namespace ? `${hostname()} ${namespace}` : hostname();
})();

async function readOwner(path: string): Promise<OwnerRecord | undefined> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as OwnerRecord;
    return typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.lock === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The one liveness rule for every lock and claim of the data dir: a holder is known to be gone
 * only when its pid belongs to our host and pid namespace and no such process exists. A holder
 * of another namespace (a container sharing the data dir and the host's name) may be alive
 * there: only a stale time may decide for it. Our own pid is left to the caller (a container's
 * pid 1 restarted on the same data dir is us, and not the holder).
 */
export function isHolderGone(holder: { pid: number; host: string }): boolean {
  return holder.host === PID_SPACE && holder.pid !== process.pid && !isProcessAlive(holder.pid);
}

/** Whether the lock directory `st` was made by a process of this machine that has gone. */
async function holderIsGone(ownerPath: string, st: fs.Stats): Promise<boolean> {
  const owner = await readOwner(ownerPath);
  if (!owner || owner.lock !== identity(st)) return false;
  return isHolderGone(owner);
}

const elocked = (message: string) => Object.assign(new Error(message), { code: 'ELOCKED' });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One process's handle on a lock path. Acquisitions through one handle must not overlap (the
 * file store serialises its transactions); two handles on one path in one process exclude each
 * other like two processes do.
 */
export class FileLock {
  private readonly ownerPath: string;
  /** The fs proper-lockfile uses for this lock (one object, so its mtime-precision probe is cached). */
  private readonly fs: typeof fs;
  /** The lock directory a failed mkdir met, as judged by the last stat: a takeover removes only that one. */
  private judged: string | undefined;
  /** Another holder was met on this attempt: only then is the owner record consulted. */
  private contended = false;
  /** Identity of the directory this handle made, from the stat proper-lockfile does right after mkdir. */
  private made: string | undefined;

  constructor(private readonly options: FileLockOptions) {
    this.ownerPath = `${options.lockPath}.owner`;
    const { lockPath } = options;
    const makeDir = options.mkdir ?? ((path: string) => mkdir(path));
    this.fs = {
      ...fs,
      mkdir: (path: fs.PathLike, callback: (error: NodeJS.ErrnoException | null) => void) => {
        const settle = (error: NodeJS.ErrnoException | null) => {
          if (String(path) === lockPath) this.contended = error?.code === 'EEXIST';
          callback(error);
        };
        makeDir(String(path)).then(() => settle(null), settle);
      },
      stat: (path: fs.PathLike, callback: (error: NodeJS.ErrnoException | null, st?: fs.Stats) => void) => {
        fs.stat(path, (error, st) => {
          if (error || String(path) !== lockPath) return callback(error, st);
          if (!this.contended) {
            this.made = identity(st);
            return callback(null, st);
          }
          this.judged = identity(st);
          holderIsGone(this.ownerPath, st).then(
            // proper-lockfile then sees a lock long past its stale time and takes it over.
            (gone) => callback(null, gone ? ({ mtime: new Date(0) } as fs.Stats) : st),
            () => callback(null, st),
          );
        });
      },
      rmdir: (path: fs.PathLike, callback: (error: NodeJS.ErrnoException | null) => void) => {
        const expected = this.judged;
        this.judged = undefined;
        if (String(path) !== lockPath || !this.contended || expected === undefined) return fs.rmdir(path, callback);
        // A takeover: remove the stale lock only if no one replaced it since it was judged.
        fs.stat(path, (error, st) => {
          if (error) return callback(error.code === 'ENOENT' ? null : error);
          if (identity(st) !== expected) return callback(elocked('the lock changed hands while it was being taken over'));
          fs.unlink(this.ownerPath, () => fs.rmdir(path, callback));
        });
      },
    } as unknown as typeof fs;
  }

  /**
   * Takes the lock, waiting for a live holder at most `waitMs`. Resolves with the release
   * function; rejects with the underlying error (code `ELOCKED` after the wait).
   */
  async acquire(): Promise<() => Promise<void>> {
    const { lockPath } = this.options;
    const deadline = Date.now() + (this.options.waitMs ?? LOCK_WAIT_MS);
    let delay = 2;
    let release: () => Promise<void>;
    for (;;) {
      this.contended = false;
      this.judged = undefined;
      this.made = undefined;
      try {
        release = await lockfile.lock(lockPath, {
          realpath: false,
          lockfilePath: lockPath,
          stale: this.options.staleMs ?? LOCK_STALE_MS,
          update: this.options.updateMs ?? LOCK_UPDATE_MS,
          retries: 0,
          fs: this.fs,
          onCompromised: this.options.onCompromised ?? (() => undefined),
        });
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() >= deadline) throw error;
        await sleep(delay * (0.5 + randomInt(1000) / 1000));
        delay = Math.min(delay * 1.5, 40);
      }
    }
    this.contended = false;
    try {
      const made = this.made ?? identity(fs.statSync(lockPath));
      const owner: OwnerRecord = { pid: process.pid, host: PID_SPACE, lock: made };
      // Synchronous: a tenth of a millisecond, and the lock is not ours to describe any later.
      fs.writeFileSync(this.ownerPath, JSON.stringify(owner), { mode: 0o600 });
    } catch {
      // Naming the owner only speeds up recovery after a crash; the stale time still applies.
    }
    return async () => {
      try {
        fs.unlinkSync(this.ownerPath);
      } catch {
        /* already gone */
      }
      await release();
    };
  }
}

/** Takes the lock at `options.lockPath` once (see FileLock.acquire). */
export function acquireFileLock(options: FileLockOptions): Promise<() => Promise<void>> {
  return new FileLock(options).acquire();
}
