import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { aptInstallPlan, ensureTool, thisMachine, type Machine, type ToolLookup } from './debian-package.js';

/**
 * Real Redis for the tests (no mock): Debian's `redis-server`, started per test file on a free
 * port in a temp folder and stopped after. Found as $REDIS_SERVER, on the PATH, or at
 * /usr/bin/redis-server; test/setup/redis.ts installs it first where that is possible.
 */
export const WHAT_TO_INSTALL =
  'no redis-server for the Redis tests: install Redis 7 (Debian/Ubuntu: apt-get install redis-server), or set REDIS_SERVER to a redis-server binary';

export type RedisLookup = ToolLookup;

export const FIXED_CANDIDATES = ['/usr/bin/redis-server', '/usr/sbin/redis-server'];

export function findRedisServer(env: Record<string, string | undefined>, fixed: readonly string[] = FIXED_CANDIDATES): RedisLookup {
  if (env.REDIS_SERVER) {
    return existsSync(env.REDIS_SERVER)
      ? { path: env.REDIS_SERVER }
      : { problem: `REDIS_SERVER=${env.REDIS_SERVER} does not exist: point it at a redis-server binary, or unset it` };
  }
  const candidates = [
    ...(env.PATH ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, 'redis-server')),
    ...fixed,
  ];
  const path = candidates.find((candidate) => existsSync(candidate));
  return path ? { path } : { problem: WHAT_TO_INSTALL };
}

/** The commands that install Debian's redis-server, when this machine may run them (Debian-like, root). */
export const installPlan = (machine: Machine) => aptInstallPlan('redis-server', machine);

export { thisMachine };

/** Finds redis-server, installing Debian's first where the plan allows; otherwise the one line to show. */
export function ensureRedisServer(options: {
  env: Record<string, string | undefined>;
  plan: string[][] | undefined;
  fixed?: readonly string[];
  log?: (line: string) => void;
  run?: (command: string[]) => void;
}): RedisLookup {
  return ensureTool({
    find: () => findRedisServer(options.env, options.fixed),
    explicit: Boolean(options.env.REDIS_SERVER),
    plan: options.plan,
    installing: "Redis tests: no redis-server found; installing Debian's",
    whatToInstall: WHAT_TO_INSTALL,
    run: options.run,
    log: options.log,
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface TestRedis {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SIGTERM, waits for exit); `start` brings it back on the same port and folder. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its folder. */
  close(): Promise<void>;
}

/** Starts a redis-server on a free loopback port in a temp folder, without persistence unless asked. */
export async function startRedis(options: { appendOnly?: boolean; path?: string } = {}): Promise<TestRedis> {
  const found = options.path ? { path: options.path } : findRedisServer(process.env);
  if ('problem' in found) throw new Error(found.problem);
  const dir = await mkdtemp(join(tmpdir(), 'cupcake-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      options.appendOnly ? 'yes' : 'no',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
    ];
    const spawned = spawn(found.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = spawned;
    let output = '';
    spawned.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    spawned.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`redis-server did not start on port ${port}: ${output.slice(-500)}`)), 15_000);
      spawned.once('exit', (code) => {
        clearTimeout(deadline);
        reject(new Error(`redis-server exited (${code}): ${output.slice(-500)}`));
      });
      const poll = () => {
        const socket = createConnection(port);
        socket.once('data', (data) => {
          socket.destroy();
          if (data.toString().startsWith('+PONG')) {
            clearTimeout(deadline);
            resolve();
          } else setTimeout(poll, 50);
        });
        socket.once('error', () => setTimeout(poll, 50));
        socket.write('PING\r\n');
      };
      poll();
    });
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGTERM');
    });
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    start,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A raw socket: the readiness check does not depend on the client under test. */
function createConnection(port: number) {
  return netConnect({ port, host: '127.0.0.1' });
}
