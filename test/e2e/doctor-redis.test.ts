import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createClient } from '@redis/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DoctorCheck } from '../../src/doctor/checks.js';
import { assertBuilt, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { useTmpDirs } from '../helpers/tmp.js';

/**
 * `cupcake-mcp doctor` on a deployment whose config names a Redis store (DESIGN.md §6): the built
 * bin against a real redis-server, whose settings the test changes between runs.
 */
const tmp = useTmpDirs('cupcake-doctor-redis-');
// serve, doctor and their child processes on a loaded 2-core machine: budgets, not durations under test.
vi.setConfig({ testTimeout: 90_000 });
killChildrenAfterEach();
const PASSWORD = 'correct horse battery staple';
let redis: TestRedis;

beforeAll(async () => {
  assertBuilt();
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});

/** CONFIG SET on the test Redis, as an operator would with redis-cli. */
async function configSet(settings: Record<string, string>): Promise<void> {
  const client = createClient({ url: redis.url });
  await client.connect();
  try {
    for (const [name, value] of Object.entries(settings)) await client.configSet(name, value);
  } finally {
    await client.close();
  }
}

async function folderWithStore(store: string): Promise<string> {
  const dir = await tmp();
  await writeFile(join(dir, 'cupcake.config.json'), `${JSON.stringify({ tools: { docs: false }, store })}\n`);
  return dir;
}

function redisChecks(stdout: string): DoctorCheck[] {
  return (JSON.parse(stdout) as DoctorCheck[]).filter((c) => c.check.startsWith('Redis '));
}

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

describe('cupcake-mcp doctor with store: redis://…', () => {
  it('reports the Redis version; no persistence and an evicting maxmemory-policy are warnings that say what to do; fixed settings pass', async () => {
    await configSet({ appendonly: 'no', save: '', 'maxmemory-policy': 'allkeys-lru' });
    const dir = await folderWithStore(`${redis.url}/3`);
    const serve = await startServe(['--port', '0'], { cwd: dir, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD } });
    // Replicas on Redis claim no data dir, so doctor is told which one to check.
    const doctor = ['doctor', '--url', serve.url];

    const risky = await runCli([...doctor, '--json'], { cwd: dir, timeoutMs: 60_000 });
    // Warnings are not failures: the deployment works today.
    expect(risky.code, risky.stderr).toBe(0);
    const [answers, persistence, eviction] = redisChecks(risky.stdout);
    expect(answers).toMatchObject({ check: 'Redis store', status: 'pass', ok: true, fix: null });
    expect(answers!.detail).toMatch(new RegExp(`^Redis 7\\.\\d+\\.\\d+ at redis://127\\.0\\.0\\.1:${redis.port}/3 answered PING in \\d+ ms$`));
    expect(persistence).toMatchObject({ check: 'Redis persistence', status: 'warn', ok: true });
    expect(persistence!.detail).toMatch(/neither AOF nor RDB snapshots are on: a restart of Redis loses every client, token and the owner password/);
    expect(persistence!.fix).toMatch(/appendonly yes/);
    expect(eviction).toMatchObject({ check: 'Redis eviction policy', status: 'warn', ok: true });
    expect(eviction!.detail).toMatch(/^maxmemory-policy allkeys-lru .*drops keys/);
    expect(eviction!.fix).toMatch(/maxmemory-policy noeviction/);

    const text = await runCli(doctor, { cwd: dir, timeoutMs: 60_000 });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^! warn {2}Redis persistence: neither AOF nor RDB/m);
    expect(text.stdout).toMatch(/^! warn {2}Redis eviction policy: .* — fix: set "maxmemory-policy noeviction"/m);
    expect(text.stdout).toMatch(/, 2 warnings \(of \d+ checks\)\./);

    await configSet({ appendonly: 'yes', 'maxmemory-policy': 'noeviction' });
    const safe = await runCli([...doctor, '--json'], { cwd: dir, timeoutMs: 60_000 });
    expect(safe.code, safe.stderr).toBe(0);
    expect(redisChecks(safe.stdout).map((c) => [c.check, c.status])).toEqual([
      ['Redis store', 'pass'],
      ['Redis persistence', 'pass'],
      ['Redis eviction policy', 'pass'],
    ]);
    expect(redisChecks(safe.stdout)[1]!.detail).toMatch(/^AOF on: clients, tokens and the owner password survive a restart$/);

    // RDB snapshots alone keep the data over a restart, not what changed since the last one.
    await configSet({ appendonly: 'no', save: '3600 1' });
    const snapshots = redisChecks((await runCli([...doctor, '--json'], { cwd: dir, timeoutMs: 60_000 })).stdout);
    expect(snapshots[1]).toMatchObject({
      status: 'pass',
      detail: expect.stringMatching(/^RDB snapshots \(save 3600 1\), AOF off: .*a crash loses/) as unknown,
    });
    await configSet({ save: '' });
  });

  it('Redis unreachable or refusing the credentials: a failing check naming the server (never its password) and what to do, no stack, exit 1', async () => {
    const port = await closedPort();
    const dir = await folderWithStore(`redis://:not-for-output@127.0.0.1:${port}/0`);
    // Nothing serves this deployment either: doctor checks a closed port for HTTP too.
    const base = `http://127.0.0.1:${await closedPort()}`;
    const json = await runCli(['doctor', '--json', '--url', base], { cwd: dir, timeoutMs: 60_000 });
    expect(json.code).toBe(1);
    const [store] = redisChecks(json.stdout);
    expect(store).toMatchObject({ check: 'Redis store', status: 'fail', ok: false });
    expect(store!.detail).toMatch(new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${port}/0 is unavailable \\(.+\\)$`));
    expect(store!.fix).toMatch(
      /^start Redis at redis:\/\/127\.0\.0\.1:\d+\/0 .*correct the host, port or \/db in "store" of cupcake\.config\.json \(or CUPCAKE_STORE\)$/,
    );

    const text = await runCli(['doctor', '--url', base], { cwd: dir, timeoutMs: 60_000 });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^✗ FAIL {2}Redis store: Redis at redis:\/\/127\.0\.0\.1:\d+\/0 is unavailable/m);
    // Redis answers, but not to these credentials: the fix is about the password, not about starting Redis.
    const refused = await runCli(['doctor', '--json', '--url', base], {
      cwd: await folderWithStore(`redis://:not-for-output@127.0.0.1:${redis.port}/0`),
      timeoutMs: 60_000,
    });
    expect(refused.code).toBe(1);
    expect(redisChecks(refused.stdout)[0]).toMatchObject({
      check: 'Redis store',
      status: 'fail',
      fix: expect.stringMatching(/refused the credentials: put the password/) as unknown,
    });
    for (const output of [json.stdout, json.stderr, text.stdout, text.stderr, refused.stdout, refused.stderr]) {
      expect(output).not.toContain('not-for-output');
      expect(output).not.toMatch(/^\s+at /m);
    }
  });
});
