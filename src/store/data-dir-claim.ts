import { randomBytes } from 'node:crypto';
import { link, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireFileLock, isHolderGone, PID_SPACE } from './file-lock.js';

/**
 * "One `serve` per data dir": a claim file, `serve.json`, that names its holder and, once it
 * listens, its URLs. The same lock policy as the store's lock (file-lock.ts):
 *
 * - the claim appears whole or not at all: its content is written to a temp file first and then
 *   hard-linked to `serve.json` (link fails if the name exists), so a rival that finds the claim
 *   always reads who holds it;
 * - a holder refreshes the file's mtime while it runs; a claim not refreshed for `CLAIM_STALE_MS`
 *   is stale (its holder hung or died somewhere we cannot see, e.g. another pid namespace);
 * - a claim whose holder is a process of our host and pid namespace that no longer exists is
 *   taken over at once (isHolderGone);
 * - a takeover happens under a short lock and only of the very claim that was judged, so two
 *   newcomers cannot both take over.
 */

export const CLAIM_FILE = 'serve.json';
export const CLAIM_STALE_MS = 15_000;
export const CLAIM_REFRESH_MS = 3_000;

export interface ServeClaim {
  pid: number;
  /** The host and pid namespace the pid belongs to. */
  host: string;
  started_at: string;
  /** Set once the server listens. */
  url?: string;
  listening?: string;
  version?: string;
  /** Live sessions, refreshed while the server runs (`status` shows them). */
  sessions?: { total: number; by_transport: Record<string, number>; by_client: Record<string, number>; at: string };
}

export class AlreadyRunningError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: ServeClaim | undefined,
  ) {
    const who = holder ? ` (pid ${holder.pid}${holder.url ? `, ${holder.url}` : ''}${holder.host === PID_SPACE ? '' : ', in another container or host'})` : '';
    super(`another cupcake-mcp serve is already using ${dataDir}${who}; stop it first or use another data dir`);
    this.name = 'AlreadyRunningError';
  }
}

interface ReadClaim {
  claim: ServeClaim | undefined;
  raw: string;
  mtimeMs: number;
  ino: number;
}

async function readClaimFile(dataDir: string): Promise<ReadClaim | undefined> {
  const path = join(dataDir, CLAIM_FILE);
  try {
    const [raw, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    let claim: ServeClaim | undefined;
    try {
      const value = JSON.parse(raw) as ServeClaim;
      // A claim without a host was written by an earlier version on this machine.
      if (Number.isSafeInteger(value.pid) && value.pid > 0) claim = { ...value, host: typeof value.host === 'string' ? value.host : PID_SPACE };
    } catch {
      /* not a claim we can read: only its age decides */
    }
    return { claim, raw, mtimeMs: st.mtimeMs, ino: st.ino };
  } catch {
    return undefined;
  }
}

/** Data dirs claimed by this process (a second claim from the same process is refused too). */
const claimedHere = new Set<string>();

function isStale(found: ReadClaim, now: number): boolean {
  if (now - found.mtimeMs > CLAIM_STALE_MS) return true;
  if (!found.claim) return false;
  if (found.claim.pid === process.pid && found.claim.host === PID_SPACE) return true; // a restart with our pid (container pid 1)
  return isHolderGone(found.claim);
}

/** What `serve.json` says, whether or not its holder still runs. */
export async function readServeClaim(dataDir: string): Promise<ServeClaim | undefined> {
  return (await readClaimFile(dataDir))?.claim;
}

/** The server holding this data dir, if one does (a claim whose holder is gone or stale is not). */
export async function findRunningServer(dataDir: string): Promise<ServeClaim | undefined> {
  const found = await readClaimFile(dataDir);
  if (!found?.claim) return undefined;
  if (claimedHere.has(dataDir) && found.claim.pid === process.pid) return found.claim;
  return isStale(found, Date.now()) ? undefined : found.claim;
}

export interface DataDirClaim {
  readonly claim: ServeClaim;
  /** Adds what the server wants `status` to see (replaces the file atomically; the claim stays). */
  publish(info: Partial<Omit<ServeClaim, 'pid' | 'host' | 'started_at'>>): Promise<void>;
  /** Removes the claim if it is still ours. */
  release(): Promise<void>;
}

const tempName = (dataDir: string) => join(dataDir, `${CLAIM_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);

async function writeWhole(dataDir: string, claim: ServeClaim): Promise<string> {
  const temp = tempName(dataDir);
  await writeFile(temp, `${JSON.stringify(claim)}\n`, { mode: 0o600 });
  return temp;
}

/**
 * Claims `dataDir` for this process or throws AlreadyRunningError naming the holder. Any other
 * error (permissions, a missing folder) is thrown as it is.
 */
export async function claimDataDir(dataDir: string, now: () => number = Date.now): Promise<DataDirClaim> {
  const path = join(dataDir, CLAIM_FILE);
  if (claimedHere.has(dataDir)) throw new AlreadyRunningError(dataDir, await readServeClaim(dataDir));
  let claim: ServeClaim = { pid: process.pid, host: PID_SPACE, started_at: new Date(now()).toISOString() };
  const temp = await writeWhole(dataDir, claim);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(temp, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const found = await readClaimFile(dataDir);
      if (found === undefined) continue; // released between our link and our read: try again
      if (!isStale(found, now()) || attempt >= 3) throw new AlreadyRunningError(dataDir, found.claim);
      // Take over the stale claim, but only the one judged: another newcomer may be doing the same.
      const release = await acquireFileLock({ lockPath: `${path}.lock`, waitMs: 5_000 });
      try {
        const again = await readClaimFile(dataDir);
        if (again && again.ino === found.ino && again.raw === found.raw) await unlink(path).catch(() => undefined);
      } finally {
        await release();
      }
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  claimedHere.add(dataDir);
  let released = false;
  const refresh = setInterval(() => {
    const t = new Date();
    utimes(path, t, t).catch(() => undefined);
  }, CLAIM_REFRESH_MS);
  refresh.unref();
  const stillOurs = async () => {
    const found = await readClaimFile(dataDir);
    return found?.claim?.pid === process.pid && found.claim.host === PID_SPACE && found.claim.started_at === claim.started_at;
  };
  return {
    get claim() {
      return claim;
    },
    async publish(info) {
      if (released || !(await stillOurs())) return;
      claim = { ...claim, ...info };
      const next = await writeWhole(dataDir, claim);
      await rename(next, path).catch(async (error) => {
        await unlink(next).catch(() => undefined);
        throw error;
      });
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(refresh);
      claimedHere.delete(dataDir);
      if (await stillOurs()) await unlink(path).catch(() => undefined);
    },
  };
}
