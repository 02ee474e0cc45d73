import { spawn } from 'node:child_process';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AlreadyRunningError, CLAIM_FILE, CLAIM_STALE_MS, claimDataDir, findRunningServer } from '../../../src/store/data-dir-claim.js';
import { PID_SPACE } from '../../../src/store/file-lock.js';
import { useTmpDirs } from '../../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-claim-');
const releases: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const release of releases.splice(0)) await release();
});

/** A claim file as another holder would have left it, its mtime `ageMs` in the past (negative: the future). */
async function plant(dataDir: string, holder: { pid: number; host: string }, ageMs = 0): Promise<void> {
  const path = join(dataDir, CLAIM_FILE);
  await writeFile(path, JSON.stringify({ ...holder, started_at: new Date().toISOString() }));
  const t = new Date(Date.now() - ageMs);
  await utimes(path, t, t);
}

const OTHER_NAMESPACE = `${hostname()} pid:[4026531836-not-ours]`;

describe('one serve per data dir: the claim (store/data-dir-claim.ts)', () => {
  it('a claim names its holder from the moment it exists, and is gone after release', async () => {
    const dir = await tmp();
    const claim = await claimDataDir(dir);
    expect(JSON.parse(await readFile(join(dir, CLAIM_FILE), 'utf8'))).toMatchObject({ pid: process.pid, host: PID_SPACE });
    await claim.publish({ url: 'http://localhost:1', listening: 'http://127.0.0.1:1' });
    expect(await findRunningServer(dir)).toMatchObject({ pid: process.pid, url: 'http://localhost:1' });
    await claim.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('a second claim in the same process is refused', async () => {
    const dir = await tmp();
    const claim = await claimDataDir(dir);
    releases.push(() => claim.release());
    await expect(claimDataDir(dir)).rejects.toThrow(`already using ${dir} (pid ${process.pid})`);
  });

  it('a live holder of this pid namespace is respected', async () => {
    const dir = await tmp();
    const sleeper = spawn('sleep', ['30']);
    try {
      await plant(dir, { pid: sleeper.pid!, host: PID_SPACE });
      const error = await claimDataDir(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AlreadyRunningError);
      expect(String(error)).toContain(`pid ${sleeper.pid}`);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('a holder of this pid namespace that no longer exists is taken over at once, however fresh its claim', async () => {
    const dir = await tmp();
    // mtime an hour ahead: the stale time can never decide, only the pid check can.
    await plant(dir, { pid: 999_999, host: PID_SPACE }, -3_600_000);
    const claim = await claimDataDir(dir);
    releases.push(() => claim.release());
    expect(claim.claim.pid).toBe(process.pid);
    expect(JSON.parse(await readFile(join(dir, CLAIM_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
  });

  it(
    'container-like setup: a holder in another pid namespace on the same host name is respected ' +
      'while its claim is fresh (its pid means nothing here), and taken over once stale',
    async () => {
      const dir = await tmp();
      await plant(dir, { pid: 999_999, host: OTHER_NAMESPACE });
      const refused = await claimDataDir(dir).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(AlreadyRunningError);
      expect(String(refused)).toContain('pid 999999');
      expect(String(refused)).toContain('another container or host');
      expect(await findRunningServer(dir)).toMatchObject({ pid: 999_999 });

      const old = new Date(Date.now() - CLAIM_STALE_MS - 1_000);
      await utimes(join(dir, CLAIM_FILE), old, old);
      expect(await findRunningServer(dir)).toBeUndefined();
      const claim = await claimDataDir(dir);
      releases.push(() => claim.release());
      expect(claim.claim.pid).toBe(process.pid);
    },
  );

  it('a claim left with our own pid by an earlier run (a container restarted as pid 1) is taken over', async () => {
    const dir = await tmp();
    await plant(dir, { pid: process.pid, host: PID_SPACE }, -3_600_000);
    const claim = await claimDataDir(dir);
    releases.push(() => claim.release());
    expect((await stat(join(dir, CLAIM_FILE))).isFile()).toBe(true);
  });

  it('release leaves a claim that is no longer ours in place', async () => {
    const dir = await tmp();
    const claim = await claimDataDir(dir);
    await plant(dir, { pid: 999_998, host: OTHER_NAMESPACE });
    await claim.release();
    expect(JSON.parse(await readFile(join(dir, CLAIM_FILE), 'utf8'))).toMatchObject({ pid: 999_998 });
  });
});
