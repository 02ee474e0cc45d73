import { spawn } from 'node:child_process';
import { chmod, chown, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../src/store/file-store.js';
import { brokenDisk } from '../helpers/broken-disk.js';
import { assertBuilt, BIN, cleanEnv, initDataDir, killChildrenAfterEach, readablePackageCopy, runCli, type ServeProcess, startServe } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { runFlow, STACK_LINE, tokenHash } from '../helpers/oauth-flow.js';
import { expectWholeRecords, readDb } from '../helpers/records.js';
import { startTestServer } from '../helpers/server.js';

const tmp = useTmpDirs('cupcake-disk-');
killChildrenAfterEach();
beforeAll(assertBuilt);

/**
 * The bin that `nobody` runs: a copy of the package in a folder it can read (the checkout may sit
 * in a folder only its owner can enter), or the checkout's own when nothing changes user.
 */
let SERVE_BIN = BIN;
let packageCopy: string | undefined;
beforeAll(async () => {
  if (!AS_ROOT) return;
  const copy = await readablePackageCopy();
  packageCopy = copy.root;
  SERVE_BIN = copy.bin;
}, 120_000);
afterAll(async () => {
  if (packageCopy) await rm(packageCopy, { recursive: true, force: true });
});

/**
 * Permissions do not stop root: when the suite runs as root, serve runs as `nobody` on files it
 * owns, so that a read-only data dir is read-only for it.
 */
const AS_ROOT = process.getuid?.() === 0;
const NOBODY = 65_534;

async function handOver(dir: string): Promise<void> {
  if (!AS_ROOT) return;
  const walk = async (path: string): Promise<void> => {
    await chown(path, NOBODY, NOBODY);
    for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await walk(join(path, entry.name));
      else await chown(join(path, entry.name), NOBODY, NOBODY);
    }
  };
  await walk(dir);
}

const processes: ServeProcess[] = [];
afterEach(() => {
  for (const p of processes.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

/** `serve --port 0` as the unprivileged owner of `dir`; resolves once it listens. */
function serveAs(dir: string): Promise<ServeProcess> {
  const child = spawn(process.execPath, [SERVE_BIN, 'serve', '--port', '0'], {
    cwd: dir,
    env: cleanEnv({ HOME: dir }),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(AS_ROOT ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      const url = /listening on (http:\/\/\S+)/.exec(stdout)?.[1];
      if (url) {
        const p: ServeProcess = {
          child,
          url,
          stdout: () => stdout,
          stderr: () => stderr,
          stop: (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        };
        processes.push(p);
        resolve(p);
      }
    });
    void exited.then(({ code }) => reject(new Error(`serve exited (${code}) before listening\n${stdout}\n${stderr}`)));
  });
}

const unavailable = async (response: Response) => {
  const text = await response.text();
  expect(text).not.toMatch(STACK_LINE);
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: JSON.parse(text) as { error: string } };
};

describe('disk trouble (issue 9)', () => {
  it(
    'the data dir turns read-only while serving: writes answer 503 temporarily_unavailable, ' +
      'reads keep working, db.json is untouched, and writes resume when it is writable again',
    async () => {
      const dir = await tmp();
      const { dataDir } = await initDataDir(dir);
      await handOver(dir);
      const server = await serveAs(dir);
      const base = server.url;
      const first = await runFlow(base);
      expect(first.accessToken).toBeDefined();
      const auth = { authorization: `Bearer ${first.accessToken}` };
      const before = await readFile(join(dataDir, DB_FILE));

      await chmod(dataDir, 0o500);
      try {
        const register = await unavailable(
          await fetch(`${base}/register`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ redirect_uris: ['https://claude.ai/api/mcp/auth_callback'] }),
          }),
        );
        expect(register).toMatchObject({ status: 503, retryAfter: '30', body: { error: 'temporarily_unavailable' } });
        // The consent page is a read; approving it must save a code: 503, not a half-made grant.
        const again = await runFlow(base, { client: { clientId: first.clientId!, clientSecret: first.clientSecret! } });
        expect(again.statuses).toEqual([200, 503]);
        // Reads: discovery, the token on every protected route, a new MCP session.
        expect((await fetch(`${base}/.well-known/oauth-authorization-server`)).status).toBe(200);
        expect((await fetch(`${base}/tools`, { headers: auth })).status).toBe(200);
        const init = await fetch(`${base}/mcp`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 0,
            method: 'initialize',
            params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } },
          }),
        });
        expect(init.status).toBe(200);
        expect(await readFile(join(dataDir, DB_FILE))).toEqual(before);
        expect((await readdir(dataDir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      } finally {
        await chmod(dataDir, 0o700);
      }
      const later = await runFlow(base);
      expect(later.accessToken).toBeDefined();
      const data = await readDb(dataDir);
      expect(Object.keys(data.clients)).toEqual(expect.arrayContaining([first.clientId, later.clientId]));
      expect(data.tokens[tokenHash(later.accessToken!)]).toBeDefined();

      expect(await server.stop()).toEqual({ code: 0, signal: null });
      expect(server.stderr()).toContain(`could not write ${join(dataDir, `${DB_FILE}.lock`)} (EACCES)`);
      expect(server.stderr()).not.toMatch(STACK_LINE);
    },
  );

  it('serve refuses to start on a data dir it cannot write, naming it, exit 1, db.json untouched', async () => {
    const dir = await tmp();
    const { dataDir } = await initDataDir(dir);
    await handOver(dir);
    await chmod(dataDir, 0o500);
    const before = await readFile(join(dataDir, DB_FILE));
    try {
      const child = spawn(process.execPath, [SERVE_BIN, 'serve', '--port', '0'], {
        cwd: dir,
        env: cleanEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(AS_ROOT ? { uid: NOBODY, gid: NOBODY } : {}),
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const code = await new Promise((resolve) => child.on('close', resolve));
      expect(code).toBe(1);
      expect(stdout).not.toContain('listening on');
      expect(stderr).toContain(dataDir);
      expect(stderr).toContain('EACCES');
      expect(stderr).toMatch(/data dir it can write/);
      expect(stderr).not.toMatch(/listen on|port/);
      expect(stderr).not.toMatch(STACK_LINE);
    } finally {
      await chmod(dataDir, 0o700);
    }
    expect(await readFile(join(dataDir, DB_FILE))).toEqual(before);
  });

  it(
    'a full disk (write error injected into the store): 503 for every write, ' + 'half-written temp files removed, db.json intact, recovery without a restart',
    async () => {
      const disk = brokenDisk();
      const server = await startTestServer({ fileSystem: disk.fileSystem });
      try {
        const base = server.url;
        const first = await runFlow(base);
        expect(first.accessToken).toBeDefined();
        const before = await readFile(join(server.dataDir, DB_FILE));

        for (const step of ['temp', 'rename', 'lock'] as const) {
          disk.failing = step;
          const register = await unavailable(
            await fetch(`${base}/register`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ redirect_uris: ['https://claude.ai/api/mcp/auth_callback'] }),
            }),
          );
          expect(register).toMatchObject({ status: 503, body: { error: 'temporarily_unavailable' } });
          const again = await runFlow(base, { client: { clientId: first.clientId!, clientSecret: first.clientSecret! } });
          expect(again.statuses).toEqual([200, 503]);
          const revoke = await fetch(`${base}/revoke`, {
            method: 'POST',
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              authorization: `Basic ${Buffer.from(`${first.clientId}:${first.clientSecret}`).toString('base64')}`,
            },
            body: `token=${first.accessToken}`,
          });
          expect((await unavailable(revoke)).status).toBe(503);
          // Nothing changed: not on disk, not in memory (the token still works).
          expect(await readFile(join(server.dataDir, DB_FILE))).toEqual(before);
          expect((await readdir(server.dataDir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
          expect((await fetch(`${base}/tools`, { headers: { authorization: `Bearer ${first.accessToken}` } })).status).toBe(200);
        }
        expect(new Set(disk.failures)).toEqual(new Set(['temp', 'rename', 'lock']));
        expect(server.logs.filter((l) => l.includes('temporarily') || l.includes('could not write')).length).toBeGreaterThan(0);
        expect(server.logs.join('\n')).not.toMatch(STACK_LINE);

        disk.failing = undefined;
        const later = await runFlow(base);
        expect(later.accessToken).toBeDefined();
        const data = await readDb(server.dataDir);
        expectWholeRecords(data);
        expect(data.clients[later.clientId!]).toBeDefined();
      } finally {
        await server.close();
      }
    },
  );

  it('db.json deleted while serving: reads keep working from memory and the next write puts every record back', async () => {
    const dir = await tmp();
    const { dataDir } = await initDataDir(dir);
    const server = await startServe(['--port', '0'], { cwd: dir });
    const base = server.url;
    const first = await runFlow(base);
    expect(first.accessToken).toBeDefined();
    const before = await readDb(dataDir);

    await rm(join(dataDir, DB_FILE));
    await waitFor(() => server.stderr().includes('was deleted'), { what: 'serve to notice', timeoutMs: 3_000 });
    expect((await fetch(`${base}/tools`, { headers: { authorization: `Bearer ${first.accessToken}` } })).status).toBe(200);
    // A whole new connection: registration writes the document back, the owner password included.
    const second = await runFlow(base);
    expect(second.accessToken).toBeDefined();
    const after = await readDb(dataDir);
    expectWholeRecords(after);
    expect(after.owner).toEqual(before.owner);
    for (const id of Object.keys(before.clients)) expect(after.clients[id]).toEqual(before.clients[id]);
    for (const token of [first.accessToken!, second.accessToken!]) expect(after.tokens[tokenHash(token)]).toBeDefined();
    expect((await server.stop()).code).toBe(0);
    expect(server.stderr()).not.toMatch(STACK_LINE);
  });

  it('db.json damaged by someone else while serving: said once in the log, never written over, writes answer 503 until it is repaired', async () => {
    const server = await startTestServer();
    try {
      const base = server.url;
      const first = await runFlow(base);
      expect(first.accessToken).toBeDefined();
      const path = join(server.dataDir, DB_FILE);
      const good = await readFile(path);
      const damaged = good.subarray(0, good.length >> 1);
      await writeFile(path, damaged);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const register = await unavailable(
        await fetch(`${base}/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ redirect_uris: ['https://claude.ai/api/mcp/auth_callback'] }),
        }),
      );
      expect(register).toMatchObject({ status: 503, body: { error: 'temporarily_unavailable' } });
      expect((await fetch(`${base}/tools`, { headers: { authorization: `Bearer ${first.accessToken}` } })).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await readFile(path)).toEqual(damaged);
      // Polled five times a second: one line, not one per poll.
      const lines = server.logs.filter((l) => l.includes(`${path} cannot be read`));
      expect(lines.length).toBeGreaterThanOrEqual(1);
      expect(lines.length).toBeLessThanOrEqual(3);
      expect(server.logs.join('\n')).not.toMatch(STACK_LINE);
      // Repaired (restored from a backup): back to work, nothing lost.
      await writeFile(path, good);
      const later = await runFlow(base);
      expect(later.accessToken).toBeDefined();
      const data = await readDb(server.dataDir);
      expect(data.clients[first.clientId!]).toBeDefined();
      expect(data.clients[later.clientId!]).toBeDefined();
    } finally {
      await server.close();
    }
  });

  it('the whole data dir removed while serving: writes answer 503, reads keep working, nothing crashes', async () => {
    const dir = await tmp();
    const { dataDir } = await initDataDir(dir);
    const server = await startServe(['--port', '0'], { cwd: dir });
    const first = await runFlow(server.url);
    expect(first.accessToken).toBeDefined();
    await rm(dataDir, { recursive: true, force: true });
    const register = await unavailable(
      await fetch(`${server.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: ['https://claude.ai/api/mcp/auth_callback'] }),
      }),
    );
    expect(register).toMatchObject({ status: 503, body: { error: 'temporarily_unavailable' } });
    expect((await fetch(`${server.url}/tools`, { headers: { authorization: `Bearer ${first.accessToken}` } })).status).toBe(200);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const { code } = await server.stop();
    expect(code).toBe(0);
    expect(server.stderr()).not.toMatch(STACK_LINE);
    // A CLI pointed at it says what is missing instead of failing obscurely.
    const listing = await runCli(['clients', 'list'], { cwd: dir });
    expect(listing.code).toBe(1);
    expect(listing.stderr).toContain(dataDir);
  });
});
