import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createFileEventLog, EVENTS_FILE } from '../../src/store/event-log.js';
import { PID_SPACE } from '../../src/store/file-lock.js';
import { DB_FILE } from '../../src/store/file-store.js';
import { assertBuilt, BIN, cleanEnv, initDataDir, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { runFlow, STACK_LINE, tokenHash } from '../helpers/oauth-flow.js';
import { expectWholeRecords, readDb, seedTokens } from '../helpers/records.js';

const tmp = useTmpDirs('cupcake-crash-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const LOCK = `${DB_FILE}.lock`;
const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );
const leftovers = async (dataDir: string) => (await readdir(dataDir)).filter((n) => n.endsWith('.tmp'));

describe('crash safety (issue 9)', () => {
  it('serve killed with SIGKILL in the middle of a burst of registrations and token issuances: db.json parses and holds every 2xx', async () => {
    const dir = await tmp();
    // A base URL of its own (as behind a proxy): the issuer, and so the tokens' audience, stays the
    // same across restarts on new ports (a local base URL on the configured port would follow them).
    const { dataDir } = await initDataDir(dir, { baseUrl: 'http://localhost:1' });
    // A few MB of live tokens: every write takes milliseconds, so the kill lands in one.
    await seedTokens(dataDir, 8_000);
    const registered = new Set<string>();
    const tokens = new Set<string>();

    for (let round = 0; round < 3; round++) {
      const server = await startServe(['--port', '0'], { cwd: dir });
      let stop = false;
      const loops = Array.from({ length: 6 }, async () => {
        while (!stop) {
          try {
            await runFlow(server.url, { onRegistered: (id) => registered.add(id), onToken: (t) => tokens.add(t) });
          } catch {
            return; // the server is gone
          }
        }
      });
      const before = tokens.size;
      await waitFor(() => tokens.size >= before + 4, { timeoutMs: 15_000, what: 'a few tokens issued' });
      await new Promise((resolve) => setTimeout(resolve, 150 + round * 170));
      await server.stop('SIGKILL');
      stop = true;
      await Promise.all(loops);

      const data = await readDb(dataDir);
      expectWholeRecords(data);
      expect([...registered].filter((id) => !data.clients[id])).toEqual([]);
      expect([...tokens].filter((t) => !data.tokens[tokenHash(t)])).toEqual([]);
    }
    expect(registered.size).toBeGreaterThan(10);
    expect(tokens.size).toBeGreaterThan(10);

    // The next serve starts at once on what the killed one left, cleans up its temp files, and
    // every token issued before any of the kills works.
    const server = await startServe(['--port', '0'], { cwd: dir, timeoutMs: 8_000 });
    expect(await leftovers(dataDir)).toEqual([]);
    for (const token of tokens) {
      const response = await fetch(`${server.url}/tools`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(200);
    }
    expect((await server.stop()).code).toBe(0);
    expect(server.stderr()).not.toMatch(STACK_LINE);
  }, 120_000);

  it('a CLI process killed while holding the store lock: the next writer takes ' +
    'the lock over without waiting for it to turn stale (its holder is gone)', async () => {
    const dir = await tmp();
    const { dataDir } = await initDataDir(dir);
    // Big enough that a transaction holds the lock for milliseconds: the kill can land inside.
    await seedTokens(dataDir, 10_000);
    const ids = Object.values((await readDb(dataDir)).tokens).map((t) => t.id);
    const lockPath = join(dataDir, LOCK);

    let caught = false;
    for (let attempt = 0; attempt < 12 && !caught; attempt++) {
      const child = spawn(process.execPath, [BIN, 'tokens', 'revoke', ids[attempt]!], { cwd: dir, env: cleanEnv(), stdio: 'ignore' });
      const exited = new Promise((resolve) => child.on('close', resolve));
      // SIGKILL the moment the CLI has written who holds the lock: it dies holding it.
      const watcher = watch(dataDir, (event, name) => {
        if (event === 'change' && name === `${LOCK}.owner`) child.kill('SIGKILL');
      });
      await exited;
      watcher.close();
      caught = child.signalCode === 'SIGKILL' && (await exists(lockPath));
    }
    expect(caught, 'a CLI was killed while it held the lock').toBe(true);
    // What the dead CLI left: its lock, naming it as the owner.
    expect(JSON.parse(await readFile(`${lockPath}.owner`, 'utf8'))).toMatchObject({ pid: expect.any(Number) });

    // The lock's mtime an hour ahead: it never turns stale, so only "its holder is gone" can free it.
    const future = new Date(Date.now() + 3_600_000);
    await utimes(lockPath, future, future);
    const next = await runCli(['tokens', 'revoke', ids[20]!], { cwd: dir, timeoutMs: 60_000 });
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).toContain(`revoked ${ids[20]}`);
    expect(await exists(lockPath)).toBe(false);
    expectWholeRecords(await readDb(dataDir));
  }, 120_000);

  it('a lock whose holder cannot be checked (another machine or pid namespace, or ' +
    'killed before naming itself) is waited for while fresh and taken over once stale', async () => {
    const dir = await tmp();
    const { dataDir } = await initDataDir(dir);
    await seedTokens(dataDir, 3);
    const id = Object.values((await readDb(dataDir)).tokens)[0]!.id;
    // A lock made just now by a writer that never refreshes it again and left no owner record.
    const lockPath = join(dataDir, LOCK);
    await mkdir(lockPath);
    const now = new Date();
    await utimes(lockPath, now, now);
    // Its owner is a pid of another pid namespace on this host (a container sharing the data dir):
    // gone here, maybe alive there. Only the stale time may decide.
    const st = await stat(lockPath);
    await writeFile(`${lockPath}.owner`, JSON.stringify({ pid: 999_999, host: `${hostname()} pid:[1]`, lock: `${st.ino}:${st.birthtimeMs}` }));

    // While the lock is kept fresh the writer waits, whatever its owner record says; once no one
    // refreshes it, it turns stale and is taken over. Ordering, not durations, is asserted.
    let exited = false;
    const pending = runCli(['tokens', 'revoke', id], { cwd: dir, timeoutMs: 90_000 }).finally(() => (exited = true));
    for (let i = 0; i < 8; i++) {
      const t = new Date();
      await utimes(lockPath, t, t);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(exited, 'the writer took a fresh lock of another pid namespace').toBe(false);
    expect(await exists(lockPath)).toBe(true);
    const next = await pending;
    expect(next.code, next.stderr).toBe(0);
    expect(await exists(lockPath)).toBe(false);
  }, 120_000);

  it('a live holder is never taken over: a second writer waits for it', async () => {
    const dir = await tmp();
    const { dataDir } = await initDataDir(dir);
    await seedTokens(dataDir, 3);
    const id = Object.values((await readDb(dataDir)).tokens)[0]!.id;
    const { FileLock } = await import('../../src/store/file-lock.js');
    // This test process holds the lock for 1.5 s: alive, and refreshing it.
    const release = await new FileLock({ lockPath: join(dataDir, LOCK) }).acquire();
    let exited = false;
    const pending = runCli(['tokens', 'revoke', id], { cwd: dir, timeoutMs: 60_000 }).finally(() => (exited = true));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(exited, 'the second writer finished while the lock was held').toBe(false);
    await release();
    const next = await pending;
    expect(next.code, next.stderr).toBe(0);
  }, 120_000);

  it('the event log’s rotation lock left by a process that died is taken over at once, and rotation happens', async () => {
    const dir = await tmp();
    const path = join(dir, EVENTS_FILE);
    await writeFile(path, `${JSON.stringify({ ts: new Date().toISOString(), type: 'server.started' })}\n`.repeat(20));
    // What a process killed while rotating leaves: the lock, naming it (pid 999999 is gone).
    await mkdir(`${path}.lock`);
    const st = await stat(`${path}.lock`);
    await writeFile(`${path}.lock.owner`, JSON.stringify({ pid: 999_999, host: PID_SPACE, lock: `${st.ino}:${st.birthtimeMs}` }));
    // An hour ahead: never stale, so only "its holder is gone" can free it.
    const future = new Date(Date.now() + 3_600_000);
    await utimes(`${path}.lock`, future, future);
    const log = createFileEventLog(path, { rotateBytes: 1_000 });
    log.record({ type: 'server.stopped' });
    await log.close();
    expect(await exists(`${path}.1`)).toBe(true);
    expect(await exists(`${path}.lock`)).toBe(false);
    expect(
      (await readFile(path, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { type: string }).type),
    ).toEqual(['server.stopped']);
  });

  it('temp files of a writer that died before renaming are removed when the store opens; a live writer’s are kept', async () => {
    const dir = await tmp();
    const { dataDir } = await initDataDir(dir);
    const dead = join(dataDir, `${DB_FILE}.999999.abcd1234.tmp`);
    const live = join(dataDir, `${DB_FILE}.${process.pid}.abcd1234.tmp`);
    await writeFile(dead, '{"schemaVersion":1,"own');
    await writeFile(live, '{"schemaVersion":1,"own');
    const result = await runCli(['tokens', 'revoke', '--all'], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    expect(await exists(dead)).toBe(false);
    expect(await exists(live)).toBe(true);
  });
});
