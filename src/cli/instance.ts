import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';

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
    readonly info: ServeInfo | undefined,
  ) {
    super(
      `another cupcake-mcp serve is already using ${dataDir}${info ? ` (pid ${info.pid}, ${info.url})` : ''}; stop it first or use another data dir`,
    );
    this.name = 'AlreadyRunningError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
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
  if (!info || !isAlive(info.pid)) return undefined;
  const locked = await lockfile.check(join(dataDir, 'serve'), { realpath: false, lockfilePath: join(dataDir, 'serve.lock'), stale: 10_000 }).catch(() => false);
  return locked ? info : undefined;
}

/**
 * Claims the data dir for one `serve` process: a lock kept fresh while we run. A lock left by a
 * process that no longer exists is taken over at once rather than after the stale timeout.
 */
export async function claimDataDir(dataDir: string): Promise<{ publish(info: Omit<ServeInfo, 'pid'>): Promise<void>; release(): Promise<void> }> {
  const lockOptions = { realpath: false, lockfilePath: join(dataDir, 'serve.lock'), stale: 10_000, update: 3_000 };
  const target = join(dataDir, 'serve');
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(target, { ...lockOptions, onCompromised: () => undefined });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    const info = await readServeInfo(dataDir);
    if (info && isAlive(info.pid) && info.pid !== process.pid) throw new AlreadyRunningError(dataDir, info);
    await rm(lockOptions.lockfilePath, { recursive: true, force: true });
    try {
      release = await lockfile.lock(target, { ...lockOptions, onCompromised: () => undefined });
    } catch {
      throw new AlreadyRunningError(dataDir, info);
    }
  }
  const infoPath = join(dataDir, SERVE_INFO_FILE);
  return {
    async publish(info) {
      await writeFile(infoPath, `${JSON.stringify({ pid: process.pid, ...info })}\n`, { mode: 0o600 });
    },
    async release() {
      await rm(infoPath, { force: true });
      await release().catch(() => undefined);
    },
  };
}
