import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { assertBuilt, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { useTmpDirs } from '../helpers/tmp.js';

/**
 * Every command against a Redis store (DESIGN.md §2, §6), as a person runs them: the built bin,
 * a real redis-server, the store named by the config's `store` or by $CUPCAKE_STORE.
 */
const tmp = useTmpDirs('cupcake-redis-cli-');
// Each test runs many CLI processes: budgets for a loaded 2-core machine, not durations under test.
vi.setConfig({ testTimeout: 90_000 });
killChildrenAfterEach();
let redis: TestRedis;
let db = 0;

beforeAll(async () => {
  assertBuilt();
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});

/** A folder with `init --yes` done, and a database of its own on the test Redis. */
async function deployment(where: 'config' | 'env') {
  const dir = await tmp();
  const init = await runCli(['init', '--yes', '--port', '0', '--password-stdin'], { cwd: dir, input: 'correct-horse-battery\n' });
  expect(init.code, init.stderr).toBe(0);
  const url = `${redis.url}/${++db}`;
  // Replicas share one public base URL (the load balancer's), as every replica of a deployment must.
  const env: Record<string, string> = { CUPCAKE_BASE_URL: 'http://localhost:8999', ...(where === 'env' ? { CUPCAKE_STORE: url } : {}) };
  if (where === 'config') {
    const path = join(dir, 'cupcake.config.json');
    const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(path, JSON.stringify({ ...config, store: url }, null, 2));
  }
  return { dir, url, env };
}

describe('CLI with store: redis://…', () => {
  it('several serve processes share one Redis (no data-dir claim); status lists them; clients, tokens, events and passwd work against it', async () => {
    const { dir, env } = await deployment('config');
    const serveEnv = { ...env, CUPCAKE_OWNER_PASSWORD: 'correct-horse-battery' };
    const a = await startServe(['--port', '0'], { cwd: dir, env: serveEnv });
    const b = await startServe(['--port', '0'], { cwd: dir, env: serveEnv });
    await expect.poll(() => a.stdout()).toContain('store:     redis://127.0.0.1:');

    const status = await runCli(['status', '--json'], { cwd: dir, env });
    expect(status.code, status.stderr).toBe(0);
    const parsed = JSON.parse(status.stdout) as {
      server: { running: boolean; pid: number };
      store: string;
      replicas: Array<{ pid: number; listening: string }>;
    };
    expect(parsed.store).toMatch(/^redis:\/\/127\.0\.0\.1:\d+\/\d+$/);
    expect(parsed.replicas.map((r) => r.listening).sort()).toEqual([a.url, b.url].sort());
    expect(parsed.server.running).toBe(true);
    expect([a.child.pid, b.child.pid]).toContain(parsed.server.pid);

    const created = await runCli(['tokens', 'create', '--name', 'ci', '--json'], { cwd: dir, env });
    expect(created.code, created.stderr).toBe(0);
    const { token, id } = JSON.parse(created.stdout) as { token: string; id: string };
    // A token written by the CLI works on both replicas at once.
    for (const replica of [a, b]) {
      const res = await fetch(`${replica.url}/tools`, { headers: { Authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
    }
    const listed = JSON.parse((await runCli(['tokens', 'list', '--json'], { cwd: dir, env })).stdout) as Array<{ id: string; status: string }>;
    expect(listed).toEqual([expect.objectContaining({ id, status: 'active' })]);
    const clients = JSON.parse((await runCli(['clients', 'list', '--json'], { cwd: dir, env })).stdout) as Array<{ client_name: string }>;
    expect(clients.map((c) => c.client_name)).toEqual(['cupcake-mcp (built-in)']);

    const revoked = await runCli(['tokens', 'revoke', id], { cwd: dir, env });
    expect(revoked.code, revoked.stderr).toBe(0);
    for (const replica of [a, b]) {
      await expect
        .poll(async () => (await fetch(`${replica.url}/tools`, { headers: { Authorization: `Bearer ${token}` } })).status, { timeout: 2_000, interval: 100 })
        .toBe(401);
    }

    const events = await runCli(['events', 'tail', '-n', '50', '--json'], { cwd: dir, env });
    expect(events.code, events.stderr).toBe(0);
    const lines = events.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; detail?: { pid?: number } });
    // Both replicas' events, in one log.
    expect(
      lines
        .filter((e) => e.type === 'server.started')
        .map((e) => e.detail?.pid)
        .sort(),
    ).toEqual([a.child.pid, b.child.pid].sort());
    expect(lines.map((e) => e.type)).toEqual(expect.arrayContaining(['token.issued', 'token.revoked']));

    const passwd = await runCli(['passwd', '--password-stdin'], { cwd: dir, env, input: 'another-long-password\n' });
    expect(passwd.code, passwd.stderr).toBe(0);

    await Promise.all([a.stop(), b.stop()]);
    const after = JSON.parse((await runCli(['status', '--json'], { cwd: dir, env })).stdout) as { server: { running: boolean }; replicas: unknown[] };
    expect(after.server.running).toBe(false);
    expect(after.replicas).toEqual([]);
  });

  it('$CUPCAKE_STORE overrides the config, and the /db of the URL keeps deployments apart', async () => {
    const first = await deployment('env');
    const second = await deployment('env');
    expect((await runCli(['tokens', 'create', '--json'], { cwd: first.dir, env: first.env })).code).toBe(0);
    const inFirst = JSON.parse((await runCli(['tokens', 'list', '--json'], { cwd: first.dir, env: first.env })).stdout) as unknown[];
    const inSecond = JSON.parse((await runCli(['tokens', 'list', '--json'], { cwd: first.dir, env: second.env })).stdout) as unknown[];
    expect(first.url).not.toBe(second.url);
    expect(inFirst).toHaveLength(1);
    expect(inSecond).toHaveLength(0);
    // The file store of the folder was never used.
    const fileStore = JSON.parse((await runCli(['tokens', 'list', '--json'], { cwd: first.dir, env: { CUPCAKE_STORE: 'file' } })).stdout) as unknown[];
    expect(fileStore).toHaveLength(0);
  });

  it('an unreachable Redis is one line naming the server (never the password) and exit 1', async () => {
    const dir = await tmp();
    for (const args of [['clients', 'list'], ['status'], ['events', 'tail']]) {
      const result = await runCli(args, { cwd: dir, env: { CUPCAKE_STORE: 'redis://:hunter2@127.0.0.1:1/0' } });
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('redis://127.0.0.1:1/0');
      expect(result.stderr).not.toContain('hunter2');
    }
    const serve = await runCli(['serve', '--port', '0'], { cwd: dir, env: { CUPCAKE_STORE: 'redis://127.0.0.1:1/0' } });
    expect(serve.code).toBe(1);
    expect(serve.stderr).toContain('Redis at redis://127.0.0.1:1/0 is unavailable');
  });

  it('a store setting that is neither "file" nor a Redis URL is a config error on one line', async () => {
    const dir = await tmp();
    const result = await runCli(['clients', 'list'], { cwd: dir, env: { CUPCAKE_STORE: 'postgres://db/cupcake' } });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n').slice(1)).toEqual(['  store: expected "file" or a URL starting with redis:// or rediss://']);
  });
});

describe('store migrate --to <redis-url>', () => {
  it(
    'copies the file store into Redis and switches the config; existing tokens ' + 'keep working; a re-run keeps what Redis holds (a revocation stays)',
    async () => {
      const dir = await tmp();
      const init = await runCli(['init', '--yes', '--port', '0', '--password-stdin'], { cwd: dir, input: 'correct-horse-battery\n' });
      expect(init.code, init.stderr).toBe(0);
      const env = { CUPCAKE_BASE_URL: 'http://localhost:8999' };
      const mint = async (name: string) =>
        JSON.parse((await runCli(['tokens', 'create', '--name', name, '--json'], { cwd: dir, env })).stdout) as { token: string; id: string };
      const kept = await mint('kept');
      const later = await mint('revoked later');

      // Refused while serve runs on the file store: its writes during the copy would be lost.
      const fileServe = await startServe(['--port', '0'], { cwd: dir, env });
      const url = `${redis.url}/${++db}`;
      const refused = await runCli(['store', 'migrate', '--to', url], { cwd: dir, env });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('stop it first');
      await fileServe.stop();

      const migrated = await runCli(['store', 'migrate', '--to', url], { cwd: dir, env });
      expect(migrated.code, migrated.stderr).toBe(0);
      expect(migrated.stdout).toMatch(/tokens\s+2 copied/);
      const config = JSON.parse(await readFile(join(dir, 'cupcake.config.json'), 'utf8')) as { store: string };
      expect(config.store).toBe(url);

      const serve = await startServe(['--port', '0'], { cwd: dir, env });
      await expect.poll(() => serve.stdout()).toContain('store:     redis://');
      for (const t of [kept, later]) expect((await fetch(`${serve.url}/tools`, { headers: { Authorization: `Bearer ${t.token}` } })).status).toBe(200);
      expect((await runCli(['tokens', 'revoke', later.id], { cwd: dir, env })).code).toBe(0);

      // Safe to re-run: nothing is copied over what Redis holds.
      const again = await runCli(['store', 'migrate', '--to', url], { cwd: dir, env });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/tokens\s+0 copied, 2 already in Redis/);
      await expect
        .poll(async () => (await fetch(`${serve.url}/tools`, { headers: { Authorization: `Bearer ${later.token}` } })).status, { timeout: 2_000 })
        .toBe(401);
      expect((await fetch(`${serve.url}/tools`, { headers: { Authorization: `Bearer ${kept.token}` } })).status).toBe(200);
      const listed = JSON.parse((await runCli(['tokens', 'list', '--all', '--json'], { cwd: dir, env })).stdout) as Array<{ id: string; status: string }>;
      expect(Object.fromEntries(listed.map((t) => [t.id, t.status]))).toEqual({ [kept.id]: 'active', [later.id]: 'revoked' });
      await serve.stop();
    },
  );

  it('--to must be a Redis URL (usage error), and an unreachable Redis leaves the config as it was', async () => {
    const dir = await tmp();
    expect((await runCli(['init', '--yes', '--password-stdin'], { cwd: dir, input: 'correct-horse-battery\n' })).code).toBe(0);
    expect((await runCli(['tokens', 'create', '--json'], { cwd: dir })).code).toBe(0);
    const bad = await runCli(['store', 'migrate', '--to', 'file'], { cwd: dir });
    expect(bad.code).toBe(2);
    const down = await runCli(['store', 'migrate', '--to', 'redis://127.0.0.1:1/0'], { cwd: dir });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('Redis at redis://127.0.0.1:1/0 is unavailable');
    const config = JSON.parse(await readFile(join(dir, 'cupcake.config.json'), 'utf8')) as { store?: string };
    expect(config.store).toBeUndefined();
  });
});

describe('init --store <redis-url>', () => {
  it('writes the store into the config after checking that Redis answers; a second replica’s init keeps the deployment’s owner password', async () => {
    const url = `${redis.url}/${++db}`;
    const first = await tmp();
    const made = await runCli(['init', '--yes', '--store', url, '--password-stdin'], { cwd: first, input: 'correct-horse-battery\n' });
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`store ${url} answers (owner password stored as an scrypt hash)`);
    const config = JSON.parse(await readFile(join(first, 'cupcake.config.json'), 'utf8')) as { store: string };
    expect(config.store).toBe(url);

    const second = await tmp();
    const again = await runCli(['init', '--yes', '--store', url, '--password-stdin'], { cwd: second, input: 'another-long-password\n' });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('it already had an owner password: kept');
    // Both folders name one deployment: one first-party client, seen from either.
    const clients = JSON.parse((await runCli(['clients', 'list', '--json'], { cwd: second })).stdout) as unknown[];
    expect(clients).toHaveLength(1);
  });

  it('an unreachable Redis stops init before anything is written; a bad URL is a usage error', async () => {
    const dir = await tmp();
    const down = await runCli(['init', '--yes', '--store', 'redis://127.0.0.1:1/0'], { cwd: dir });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('Redis at redis://127.0.0.1:1/0 is unavailable');
    await expect(readFile(join(dir, 'cupcake.config.json'), 'utf8')).rejects.toThrow();
    const bad = await runCli(['init', '--yes', '--store', 'memcached://cache'], { cwd: dir });
    expect(bad.code).toBe(2);
  });
});
