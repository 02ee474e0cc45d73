import { writeFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureRedisServer, findRedisServer, installPlan, WHAT_TO_INSTALL } from '../helpers/redis-server.js';
import { useTmpDirs } from '../helpers/tmp.js';

/** The Redis tests need a redis-server on a fresh machine: found, installed where allowed, else one line. */
const tmp = useTmpDirs('cupcake-redis-lookup-');
const noPath = { PATH: '/nonexistent' };

describe('finding redis-server for the tests', () => {
  it('REDIS_SERVER wins; a wrong one is reported, not papered over', async () => {
    const dir = await tmp();
    const binary = join(dir, 'redis-server');
    await writeFile(binary, '#!/bin/sh\n');
    await chmod(binary, 0o755);
    expect(findRedisServer({ ...noPath, REDIS_SERVER: binary }, [])).toEqual({ path: binary });
    expect(findRedisServer({ ...noPath, REDIS_SERVER: join(dir, 'missing') }, [])).toEqual({ problem: expect.stringContaining('REDIS_SERVER=') });
    // On the PATH.
    expect(findRedisServer({ PATH: dir }, [])).toEqual({ path: binary });
  });

  it('installs Debian’s redis-server only as root on a Debian-like machine with apt-get, apt-get update first', () => {
    expect(installPlan({ uid: 0, debianLike: true, hasAptGet: true })).toEqual([
      ['apt-get', 'update'],
      ['apt-get', 'install', '-y', '--no-install-recommends', 'redis-server'],
    ]);
    expect(installPlan({ uid: 1000, debianLike: true, hasAptGet: true })).toBeUndefined();
    expect(installPlan({ uid: 0, debianLike: false, hasAptGet: true })).toBeUndefined();
  });

  it('runs the plan when redis-server is missing, and says in one line what to install when that is not possible or fails', async () => {
    const ran: string[][] = [];
    const dir = await tmp();
    const installed = ensureRedisServer({
      env: { PATH: dir },
      fixed: [],
      plan: [
        ['apt-get', 'update'],
        ['apt-get', 'install', 'redis-server'],
      ],
      run: (command) => {
        ran.push(command);
        if (command.includes('install')) return writeFileSyncExecutable(join(dir, 'redis-server'));
      },
    });
    expect(ran.map((c) => c.join(' '))).toEqual(['apt-get update', 'apt-get install redis-server']);
    expect(installed).toEqual({ path: join(dir, 'redis-server') });

    expect(ensureRedisServer({ env: noPath, fixed: [], plan: undefined })).toEqual({ problem: WHAT_TO_INSTALL });
    const failed = ensureRedisServer({
      env: noPath,
      fixed: [],
      plan: [['apt-get', 'update']],
      run: () => {
        throw new Error('E: Could not open lock file\nmore');
      },
    });
    expect(failed).toEqual({ problem: `${WHAT_TO_INSTALL} (installing it failed: E: Could not open lock file)` });
  });
});

function writeFileSyncExecutable(path: string): void {
  writeFileSync(path, '#!/bin/sh\n', { mode: 0o755 });
}
