import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, BIN, cleanEnv, initDataDir, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { runFlow, STACK_LINE, tokenHash } from '../helpers/oauth-flow.js';
import { expectWholeRecords, readDb } from '../helpers/records.js';

const tmp = useTmpDirs('cupcake-concurrent-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const idOf = (token: string) => `tok_${tokenHash(token).slice(0, 12)}`;

/**
 * These tests start dozens of processes: alone on an idle machine the first takes about 15 s, on
 * a loaded 2-core machine twice that. The budget is for the slow machine, not the fast one.
 */
const MANY_PROCESSES_MS = 240_000;

/** Runs `count` flows, `parallel` at a time; returns each one's tokens as they were issued. */
async function flows(base: string, count: number, parallel: number, onToken: (token: string, clientId: string) => void): Promise<void> {
  let started = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (started < count) {
        started++;
        let clientId = '';
        const flow = await runFlow(base, { onRegistered: (id) => (clientId = id), onToken: (t) => onToken(t, clientId) });
        expect(flow.statuses, `flow: ${flow.statuses.join(' ')}`).toEqual([201, 200, 302, 200]);
      }
    }),
  );
}

describe('concurrent writers (issue 9)', () => {
  it(
    '10 CLI processes revoking tokens while serve registers 100 clients and issues their tokens: every registration and every revocation is there afterwards',
    async () => {
      const dir = await tmp();
      const { dataDir } = await initDataDir(dir);
      const server = await startServe(['--port', '0'], { cwd: dir });
      const base = server.url;

      const doomed: string[] = [];
      await flows(base, 30, 4, (token) => doomed.push(token));
      expect(doomed).toHaveLength(30);

      const issued = new Map<string, string>();
      const cliSpans: Array<[number, number]> = [];
      const issuedAt: number[] = [];
      const burst = flows(base, 100, 5, (token, clientId) => {
        issued.set(token, clientId);
        issuedAt.push(Date.now());
      });
      // Ten CLI processes at once, each revoking three tokens one command at a time.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const lanes = Array.from({ length: 10 }, async (_, lane) => {
        for (const token of doomed.slice(lane * 3, lane * 3 + 3)) {
          const begun = Date.now();
          const result = await runCli(['tokens', 'revoke', idOf(token)], { cwd: dir, timeoutMs: 120_000 });
          cliSpans.push([begun, Date.now()]);
          expect(result.code, result.stderr).toBe(0);
          expect(result.stdout).toContain(`revoked ${idOf(token)}`);
        }
      });
      await Promise.all([burst, ...lanes]);
      // They really overlapped: tokens were issued while CLI processes were writing.
      const cliStart = Math.min(...cliSpans.map((s) => s[0]));
      const cliEnd = Math.max(...cliSpans.map((s) => s[1]));
      expect(issuedAt.filter((t) => t > cliStart && t < cliEnd).length).toBeGreaterThan(5);

      const data = await readDb(dataDir);
      expectWholeRecords(data);
      const clientIds = [...issued.values()];
      expect(new Set(clientIds).size).toBe(100);
      expect(clientIds.filter((id) => !data.clients[id])).toEqual([]);
      expect([...issued.keys()].filter((t) => data.tokens[tokenHash(t)]?.revokedAt !== null)).toEqual([]);
      expect(doomed.filter((t) => typeof data.tokens[tokenHash(t)]?.revokedAt !== 'number')).toEqual([]);

      // serve heard every revocation written by the other processes, and none of the rest.
      for (const token of doomed) expect((await fetch(`${base}/tools`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
      for (const token of [...issued.keys()].slice(0, 20))
        expect((await fetch(`${base}/tools`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      const listed = JSON.parse((await runCli(['clients', 'list', '--json'], { cwd: dir })).stdout) as Array<{ client_id: string }>;
      expect(clientIds.filter((id) => !listed.some((c) => c.client_id === id))).toEqual([]);
      expect((await server.stop()).code).toBe(0);
      expect(server.stderr()).not.toMatch(STACK_LINE);
    },
    MANY_PROCESSES_MS,
  );

  it(
    'two serve processes started at the same moment on one data dir: exactly one serves, the other refuses clearly',
    async () => {
      const dir = await tmp();
      const { dataDir } = await initDataDir(dir);
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(
          [0, 1].map(
            () =>
              new Promise<{ code: number | null; stdout: string; stderr: string; child: ReturnType<typeof spawn> }>((resolve) => {
                const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], { cwd: dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
                let stdout = '';
                let stderr = '';
                child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
                child.stdout!.setEncoding('utf8').on('data', (c: string) => {
                  stdout += c;
                  if (stdout.includes('listening on')) resolve({ code: null, stdout, stderr, child });
                });
                child.on('close', (code) => resolve({ code, stdout, stderr, child }));
              }),
          ),
        );
        const serving = results.filter((r) => r.code === null);
        const refused = results.filter((r) => r.code !== null);
        expect(serving, results.map((r) => r.stderr).join('\n')).toHaveLength(1);
        expect(refused).toHaveLength(1);
        expect(refused[0]!.code).toBe(1);
        expect(refused[0]!.stderr).toContain(`already using ${dataDir}`);
        expect(refused[0]!.stderr).toContain(`pid ${serving[0]!.child.pid}`);
        expect(refused[0]!.stderr).not.toMatch(STACK_LINE);
        const url = /listening on (\S+)/.exec(serving[0]!.stdout)![1]!;
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
        const exited = new Promise((resolve) => serving[0]!.child.on('close', resolve));
        serving[0]!.child.kill('SIGTERM');
        expect(await exited).toBe(0);
      }
      expect(join(dataDir)).toBe(dataDir);
    },
    MANY_PROCESSES_MS,
  );
});
