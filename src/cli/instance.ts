import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { isProcessAlive } from '../shared/process.js';

export const SERVE_INFO_FILE = 'serve.json';

export interface ServeInfo {
  pid: number;
  url: string;
  listening: string;
  started_at: string;
}

export class AlreadyRunningError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number | undefined,
    readonly info: ServeInfo | undefined,
  ) {
    const who = pid === undefined ? '' : ` (pid ${pid}${info?.pid === pid && info.url ? `, ${info.url}` : ''})`;
    super(`another cupcake-mcp serve is already using ${dataDir}${who}; stop it first or use another data dir`);
    this.name = 'AlreadyRunningError';
  }
}

export async function readServeInfo(dataDir: string): Promise<ServeInfo | undefined> {
  try {
    return JSON.parse(await readFile(join(dataDir, SERVE_INFO_FILE), 'utf8')) as ServeInfo;
  } catch {
    return undefined;
  }
}

/** The running server for this data dir, if any (a pid file whose process is gone is stale). */
export async function findRunningServer(dataDir: string): Promise<ServeInfo | undefined> {
  const info = await readServeInfo(dataDir);
  if (!info || !isProcessAlive(info.pid)) return undefined;
  const locked = await lockfile.check(join(dataDir, 'serve'), { realpath: false, lockfilePath: join(dataDir, 'serve.lock'), stale: 10_000 }).catch(() => false);
  return locked ? info : undefined;
}

/** Written beside the lock as soon as it is taken, so that a rival knows at once who holds it. */
const SERVE_PID_FILE = 'serve.pid';

async function readPid(dataDir: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(join(dataDir, SERVE_PID_FILE), 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Claims the data dir for one `serve` process: a lock kept fresh while we run. A lock whose
 * holder no longer exists is taken over at once rather than after the stale timeout. A lock whose
 * holder is unknown (it has just taken it, or died before saying who it is) is respected: the
 * holder may still be starting, and proper-lockfile expires a dead one's lock after 10 s.
 */
export async function claimDataDir(dataDir: string): Promise<{ publish(info: Omit<ServeInfo, 'pid'>): Promise<void>; release(): Promise<void> }> {
  const lockOptions = { realpath: false, lockfilePath: join(dataDir, 'serve.lock'), stale: 10_000, update: 3_000 };
  const target = join(dataDir, 'serve');
  const pidPath = join(dataDir, SERVE_PID_FILE);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(target, { ...lockOptions, onCompromised: () => undefined });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    const info = await readServeInfo(dataDir);
    const pid = (await readPid(dataDir)) ?? info?.pid;
    if (pid === undefined || (isProcessAlive(pid) && pid !== process.pid)) throw new AlreadyRunningError(dataDir, pid, info);
    await rm(lockOptions.lockfilePath, { recursive: true, force: true });
    try {
      release = await lockfile.lock(target, { ...lockOptions, onCompromised: () => undefined });
    } catch {
      throw new AlreadyRunningError(dataDir, await readPid(dataDir), await readServeInfo(dataDir));
    }
  }
  const infoPath = join(dataDir, SERVE_INFO_FILE);
  try {
    await writeFile(pidPath, `${process.pid}\n`, { mode: 0o600 });
  } catch (error) {
    await release().catch(() => undefined);
    throw error;
  }
  return {
    async publish(info) {
      await writeFile(infoPath, `${JSON.stringify({ pid: process.pid, ...info })}\n`, { mode: 0o600 });
    },
    async release() {
      await rm(infoPath, { force: true });
      await rm(pidPath, { force: true });
      await release().catch(() => undefined);
    },
  };
}
