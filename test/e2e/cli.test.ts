import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { verifyPassword } from '../../src/oauth/secrets.js';
import { DB_FILE } from '../../src/store/file-store.js';
import { EVENTS_FILE, type AuthEvent } from '../../src/store/event-log.js';
import { VERSION } from '../../src/shared/version.js';
import { assertBuilt, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const tmp = useTmpDirs('cupcake-e2e-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const STACK_LINE = /^\s+at .+[:(]/m;
const PASSWORD = 'correct horse battery staple';

/** Every regular file under `dir`, recursively, with its bytes. */
async function allFiles(dir: string): Promise<Array<{ path: string; bytes: Buffer }>> {
  const out: Array<{ path: string; bytes: Buffer }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await allFiles(path)));
    else if (entry.isFile()) out.push({ path, bytes: await readFile(path) });
  }
  return out;
}

const ownerHash = async (dataDir: string) =>
  (JSON.parse(await readFile(join(dataDir, DB_FILE), 'utf8')) as { owner: { passwordHash: string | null } }).owner.passwordHash;

describe('cupcake-mcp (built bin)', () => {
  it('--help lists the command groups and exits 0', async () => {
    const { code, stdout } = await runCli(['--help'], { cwd: await tmp() });
    expect(code).toBe(0);
    for (const command of ['init', 'serve', 'clients', 'tokens', 'events', 'passwd', 'status', 'doctor'])
      expect(stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  it('--version prints the package version', async () => {
    const { code, stdout } = await runCli(['--version'], { cwd: await tmp() });
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(VERSION);
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('DESIGN §2: an unknown command is a usage error (exit 2)', async () => {
    const { code, stderr, stdout } = await runCli(['frobnicate'], { cwd: await tmp() });
    expect(code).toBe(2);
    expect(stderr).toContain("unknown command 'frobnicate'");
    expect(stdout).toBe('');
    expect((await runCli(['serve', '--no-such-flag'], { cwd: await tmp() })).code).toBe(2);
  });

  describe('init', () => {
    it('--yes in an empty folder writes a valid config, a private data dir and an scrypt owner hash; the generated password is in no file', async () => {
      const dir = await tmp();
      const { code, stdout, stderr } = await runCli(['init', '--yes'], { cwd: dir });
      expect(stderr).toBe('');
      expect(code).toBe(0);

      const password = /Owner password \(shown once, keep it safe\): (\S+)/.exec(stdout)?.[1];
      expect(password).toBeDefined();
      expect(password!.length).toBeGreaterThanOrEqual(16);
      expect(stdout.split(password!)).toHaveLength(2); // printed exactly once

      const { config, path } = loadConfig({ cwd: dir, env: {} });
      expect(path).toBe(join(dir, 'cupcake.config.json'));
      expect(config).toMatchObject({ baseUrl: 'http://localhost:8787', port: 8787, host: '127.0.0.1', dataDir: join(dir, '.cupcake') });
      expect(config.tools.docs).toEqual({ dir: join(dir, 'docs') });
      expect((await readdir(join(dir, 'docs'))).length).toBeGreaterThan(0);

      expect(await mode(join(dir, '.cupcake'))).toBe(0o700);
      expect(await mode(join(dir, '.cupcake', DB_FILE))).toBe(0o600);
      const hash = await ownerHash(join(dir, '.cupcake'));
      expect(hash).toMatch(/^scrypt\$/);
      expect(await verifyPassword(password!, hash)).toBe(true);

      for (const file of await allFiles(dir)) expect(file.bytes.includes(password!), file.path).toBe(false);
    });

    it('--password-stdin stores the given password and prints none', async () => {
      const dir = await tmp();
      const { code, stdout } = await runCli(
        ['init', '--yes', '--password-stdin', '--base-url', 'https://mcp.example.com', '--port', '9000', '--name', 'My docs'],
        {
          cwd: dir,
          input: `${PASSWORD}\n`,
        },
      );
      expect(code).toBe(0);
      expect(stdout).not.toContain('Owner password');
      expect(stdout).not.toContain(PASSWORD);
      expect(await verifyPassword(PASSWORD, await ownerHash(join(dir, '.cupcake')))).toBe(true);
      expect(loadConfig({ cwd: dir, env: {} }).config).toMatchObject({ baseUrl: 'https://mcp.example.com', port: 9000, name: 'My docs' });
      for (const file of await allFiles(dir)) expect(file.bytes.includes(PASSWORD), file.path).toBe(false);
    });

    it('CUPCAKE_OWNER_PASSWORD supplies the password non-interactively, into the folder given', async () => {
      const cwd = await tmp();
      const { code, stdout } = await runCli(['init', 'project'], { cwd, env: { CUPCAKE_OWNER_PASSWORD: PASSWORD } });
      expect(code).toBe(0);
      expect(stdout).not.toContain(PASSWORD);
      expect(await verifyPassword(PASSWORD, await ownerHash(join(cwd, 'project', '.cupcake')))).toBe(true);
    });

    it('a password that is too short is refused before anything is written', async () => {
      const dir = await tmp();
      const { code, stderr } = await runCli(['init', '--yes', '--password-stdin'], { cwd: dir, input: 'short\n' });
      expect(code).toBe(1);
      expect(stderr).toMatch(/at least 8 characters/);
      expect(await readdir(dir)).toEqual([]);
    });

    it('refuses to overwrite an existing config (exit 1, file unchanged); --force overwrites', async () => {
      const dir = await tmp();
      expect((await runCli(['init', '--yes', '--name', 'first'], { cwd: dir })).code).toBe(0);
      const configPath = join(dir, 'cupcake.config.json');
      const before = await readFile(configPath);
      const hashBefore = await ownerHash(join(dir, '.cupcake'));

      const again = await runCli(['init', '--yes', '--name', 'second'], { cwd: dir });
      expect(again.code).toBe(1);
      expect(again.stderr).toContain(`${configPath} already exists`);
      expect(again.stderr).toContain('--force');
      expect(again.stdout).not.toContain('Owner password');
      expect(await readFile(configPath)).toEqual(before);
      expect(await ownerHash(join(dir, '.cupcake'))).toBe(hashBefore);

      const forced = await runCli(['init', '--yes', '--force', '--name', 'second'], { cwd: dir });
      expect(forced.code).toBe(0);
      expect(loadConfig({ cwd: dir, env: {} }).config.name).toBe('second');
    });

    it('without --yes, a TTY or a password it says how to proceed (usage error)', async () => {
      const dir = await tmp();
      const { code, stderr } = await runCli(['init'], { cwd: dir });
      expect(code).toBe(2);
      expect(stderr).toMatch(/--yes|--password-stdin|CUPCAKE_OWNER_PASSWORD/);
      expect(await readdir(dir)).toEqual([]);
    });
  });

  describe('bad configuration', () => {
    it('exits 1 with one line per invalid field and no stack trace', async () => {
      const dir = await tmp();
      await writeFile(
        join(dir, 'cupcake.config.json'),
        JSON.stringify({ baseUrl: 'http://mcp.example.com', port: 'eighty', auth: { accessTokenTtl: 'forever' }, transports: { sse: 'yes' } }),
      );
      const { code, stdout, stderr } = await runCli(['serve'], { cwd: dir });
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).not.toMatch(STACK_LINE);
      const lines = stderr
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.trim());
      expect(stderr.split('\n')[0]).toBe('invalid configuration:');
      expect(lines.sort()).toEqual(
        [
          'auth.accessTokenTtl: expected a duration like "24h"',
          'baseUrl: must use https:// unless the host is loopback (OAuth 2.1 §1.5)',
          'port: expected a port number between 0 and 65535',
          'transports.sse: expected true or false',
        ].sort(),
      );
    });

    it('auth.clientMetadataDocuments: a pinned document that breaks the CIMD rules stops serve with one line naming it', async () => {
      const dir = await tmp();
      const good = 'https://chatgpt.com/oauth/app/client.json';
      const bad = 'https://client.example/oauth/client.json';
      await writeFile(
        join(dir, 'cupcake.config.json'),
        JSON.stringify({
          auth: {
            clientMetadataDocuments: {
              [good]: { client_id: good, redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'], token_endpoint_auth_method: 'none' },
              [bad]: { client_id: bad, redirect_uris: ['https://client.example/cb'], token_endpoint_auth_method: 'client_secret_basic' },
            },
          },
        }),
      );
      const { code, stdout, stderr } = await runCli(['serve', '--port', '0'], { cwd: dir, env: { CUPCAKE_OWNER_PASSWORD: 'correct horse battery staple' } });
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).not.toMatch(STACK_LINE);
      expect(stderr.trim().split('\n')).toEqual([
        'invalid configuration:',
        `  auth.clientMetadataDocuments["${bad}"]: the client metadata document asks for client_secret_basic, ` +
          'a shared-secret method a metadata document must not use (CIMD section 4.1)',
      ]);
    });

    it('an explicit config path that does not exist is an error naming it', async () => {
      const dir = await tmp();
      const { code, stderr } = await runCli(['--config', 'missing.json', 'serve'], { cwd: dir });
      expect(code).toBe(1);
      expect(stderr).toContain(join(dir, 'missing.json'));
      expect(stderr).not.toMatch(STACK_LINE);
      const viaEnv = await runCli(['serve'], { cwd: dir, env: { CUPCAKE_CONFIG: 'other.json' } });
      expect(viaEnv.code).toBe(1);
      expect(viaEnv.stderr).toContain(join(dir, 'other.json'));
    });
  });

  describe('serve', () => {
    it('--port 0 prints its URL, answers /healthz, logs start and stop, and exits 0 on SIGTERM', async () => {
      const dir = await tmp();
      expect((await runCli(['init', '--yes', '--password-stdin'], { cwd: dir, input: PASSWORD })).code).toBe(0);
      const server = await startServe(['--port', '0'], { cwd: dir });
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(server.url).not.toMatch(/:0$/);
      expect(server.stdout()).not.toContain('Owner password'); // init already set one

      const response = await fetch(`${server.url}/healthz`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: 'ok', version: VERSION });

      const { code, signal } = await server.stop('SIGTERM');
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(server.stderr()).not.toMatch(STACK_LINE);
      await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();

      const events = (await readFile(join(dir, '.cupcake', EVENTS_FILE), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as AuthEvent);
      // The config init wrote has the local base URL on port 8787: it follows the port bound, so the
      // URLs printed are right and the first-party client's redirect moves with it.
      const port = new URL(server.url).port;
      expect(server.stdout()).toContain(`http://localhost:${port}/mcp`);
      expect(events.map((e) => e.type)).toEqual(['client.registered', 'server.started', 'client.updated', 'server.stopped']);
      expect(events.find((e) => e.type === 'server.started')?.detail).toMatchObject({ base_url: `http://localhost:${port}` });
      expect(await mode(join(dir, '.cupcake', EVENTS_FILE))).toBe(0o600);
      // The running-server marker is gone after a clean stop.
      expect(await readdir(join(dir, '.cupcake'))).not.toContain('serve.json');
    });

    it('with no config runs on the embedded default and prints a generated owner password once', async () => {
      const dir = await tmp();
      const server = await startServe(['--port', '0'], { cwd: dir });
      await waitFor(() => server.stdout().includes('/sse'), { what: 'the whole banner' });
      const password = /Owner password[^:]*: (\S+)/.exec(server.stdout())?.[1];
      expect(password).toBeDefined();
      expect(server.stdout()).toContain('(embedded default)');
      // The printed client URLs follow the port actually bound.
      const port = new URL(server.url).port;
      expect(server.stdout()).toContain(`http://localhost:${port}/mcp`);
      expect(server.stdout()).toContain(`http://localhost:${port}/sse`);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      expect((await server.stop('SIGINT')).code).toBe(0);

      const dataDir = join(dir, '.cupcake');
      expect(await mode(dataDir)).toBe(0o700);
      expect(await verifyPassword(password!, await ownerHash(dataDir))).toBe(true);
      for (const file of await allFiles(dir)) expect(file.bytes.includes(password!), file.path).toBe(false);

      // A second start keeps the password: nothing new is printed.
      const again = await startServe(['--port', '0'], { cwd: dir });
      expect(again.stdout()).not.toContain('Owner password');
      expect((await again.stop()).code).toBe(0);
    });

    it('DESIGN §6: a truncated db.json makes serve exit 1 naming the file, and leaves its bytes unchanged', async () => {
      const dir = await tmp();
      expect((await runCli(['init', '--yes'], { cwd: dir })).code).toBe(0);
      const dbPath = join(dir, '.cupcake', DB_FILE);
      const full = await readFile(dbPath);
      const truncated = full.subarray(0, Math.floor(full.length / 2));
      await writeFile(dbPath, truncated);

      const { code, stdout, stderr } = await runCli(['serve', '--port', '0'], { cwd: dir });
      expect(code).toBe(1);
      expect(stdout).not.toContain('listening on');
      expect(stderr).toContain(dbPath);
      expect(stderr).not.toMatch(STACK_LINE);
      expect(await readFile(dbPath)).toEqual(truncated);
      expect((await readdir(join(dir, '.cupcake'))).filter((n) => n.startsWith('db.json') && n !== 'db.json' && !n.endsWith('.lock'))).toEqual([]);
    });

    it('a second serve on the same data dir refuses with a clear message; the first keeps serving', async () => {
      const dir = await tmp();
      expect((await runCli(['init', '--yes'], { cwd: dir })).code).toBe(0);
      const first = await startServe(['--port', '0'], { cwd: dir });

      const second = await runCli(['serve', '--port', '0'], { cwd: dir });
      expect(second.code).toBe(1);
      expect(second.stdout).not.toContain('listening on');
      expect(second.stderr).toContain('already');
      expect(second.stderr).toContain(join(dir, '.cupcake'));
      expect(second.stderr).toContain(`pid ${first.child.pid}`);
      expect(second.stderr).not.toMatch(STACK_LINE);

      expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
      expect((await first.stop()).code).toBe(0);
      // Once the first has stopped, the data dir is free again.
      const third = await startServe(['--port', '0'], { cwd: dir });
      expect((await third.stop()).code).toBe(0);
    });

    it(
      'container-like setup: a serve in another pid namespace sharing the data dir ' +
        'and host name is respected while its claim is fresh, and replaced once stale',
      async () => {
        const dir = await tmp();
        expect((await runCli(['init', '--yes'], { cwd: dir })).code).toBe(0);
        const dataDir = join(dir, '.cupcake');
        // pid 999999 does not exist here, but lives in the other namespace: only the stale time decides.
        const claimPath = join(dataDir, 'serve.json');
        await writeFile(
          claimPath,
          JSON.stringify({ pid: 999_999, host: `${hostname()} pid:[not-ours]`, started_at: new Date().toISOString(), url: 'http://localhost:8787' }),
        );
        const second = await runCli(['serve', '--port', '0'], { cwd: dir });
        expect(second.code).toBe(1);
        expect(second.stdout).not.toContain('listening on');
        expect(second.stderr).toContain(`already using ${dataDir} (pid 999999, http://localhost:8787, in another container or host)`);
        const status = JSON.parse((await runCli(['status', '--json'], { cwd: dir })).stdout) as { server: { running: boolean; pid: number } };
        expect(status.server).toMatchObject({ running: true, pid: 999_999 });

        const stale = new Date(Date.now() - 60_000);
        await utimes(claimPath, stale, stale);
        const third = await startServe(['--port', '0'], { cwd: dir });
        expect(JSON.parse(await readFile(claimPath, 'utf8'))).toMatchObject({ pid: third.child.pid, url: third.url.replace('127.0.0.1', 'localhost') });
        expect((await third.stop()).code).toBe(0);
      },
    );

    it('a serve killed without cleanup does not block the next one', async () => {
      const dir = await tmp();
      expect((await runCli(['init', '--yes'], { cwd: dir })).code).toBe(0);
      const first = await startServe(['--port', '0'], { cwd: dir });
      await first.stop('SIGKILL');
      const next = await startServe(['--port', '0'], { cwd: dir, timeoutMs: 8_000 });
      expect((await fetch(`${next.url}/healthz`)).status).toBe(200);
      expect((await next.stop()).code).toBe(0);
    });

    it('a port already in use is reported plainly (exit 1)', async () => {
      const dir = await tmp();
      expect((await runCli(['init', '--yes'], { cwd: dir })).code).toBe(0);
      const other = await tmp();
      expect((await runCli(['init', '--yes'], { cwd: other })).code).toBe(0);
      const first = await startServe(['--port', '0'], { cwd: dir });
      const port = new URL(first.url).port;
      const clash = await runCli(['serve', '--port', port], { cwd: other });
      expect(clash.code).toBe(1);
      expect(clash.stderr).toContain(`port ${port}`);
      expect(clash.stderr).not.toMatch(STACK_LINE);
      await waitFor(async () => (await fetch(`${first.url}/healthz`)).ok);
      expect((await first.stop()).code).toBe(0);
    });
  });
});
