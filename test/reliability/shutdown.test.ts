import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AuthEvent } from '../../src/store/event-log.js';
import { EVENTS_FILE } from '../../src/store/event-log.js';
import { assertBuilt, initDataDir, killChildrenAfterEach, startServe } from '../helpers/cli.js';
import { SseReader } from '../helpers/sse.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { runFlow, STACK_LINE, tokenHash } from '../helpers/oauth-flow.js';
import { readDb } from '../helpers/records.js';

const tmp = useTmpDirs('cupcake-shutdown-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const FIXTURE = fileURLToPath(new URL('../fixtures/upstream-server.mjs', import.meta.url));
const INIT = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'shutdown-test', version: '1' } },
};
const INITIALIZED = { jsonrpc: '2.0', method: 'notifications/initialized' };
const sleepCall = (id: number, ms: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'slow__sleep', arguments: { ms } } });

describe('graceful shutdown (issue 9)', () => {
  it('SIGTERM during open SSE streams and in-flight tool calls: calls finish, streams close, the store is flushed, exit 0 within 5 s', async () => {
    const dir = await tmp();
    const { dataDir } = await initDataDir(dir, { tools: { docs: false, servers: { slow: { command: process.execPath, args: [FIXTURE] } } } });
    const server = await startServe(['--port', '0'], { cwd: dir });
    const base = server.url;
    const flow = await runFlow(base);
    const token = flow.accessToken!;
    expect(token).toBeDefined();
    const auth = { authorization: `Bearer ${token}` };
    await waitFor(
      async () =>
        ((await (await fetch(`${base}/tools`, { headers: auth })).json()) as { tools: Array<{ name: string }> }).tools.some((t) => t.name === 'slow__sleep'),
      {
        timeoutMs: 10_000,
        what: 'the upstream tools',
      },
    );

    // Three legacy SSE sessions, initialized.
    const streams: Array<{ reader: SseReader; endpoint: string }> = [];
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${base}/sse`, { headers: { ...auth, accept: 'text/event-stream' } });
      expect(response.status).toBe(200);
      const reader = new SseReader(response);
      const endpoint = (await reader.next()).data;
      const post = (message: unknown) =>
        fetch(`${base}${endpoint}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(message) });
      expect((await post(INIT)).status).toBe(202);
      expect(JSON.parse((await reader.next()).data)).toMatchObject({ id: 0, result: { serverInfo: expect.any(Object) } });
      expect((await post(INITIALIZED)).status).toBe(202);
      streams.push({ reader, endpoint });
    }
    // A Streamable HTTP session with its GET stream open.
    const opened = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(INIT),
    });
    expect(opened.status).toBe(200);
    await opened.arrayBuffer();
    const sessionId = opened.headers.get('mcp-session-id')!;
    const mcpHeaders = {
      ...auth,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-06-18',
    };
    await fetch(`${base}/mcp`, { method: 'POST', headers: mcpHeaders, body: JSON.stringify(INITIALIZED) });
    const getStream = await fetch(`${base}/mcp`, { headers: { ...mcpHeaders, accept: 'text/event-stream' } });
    expect(getStream.status).toBe(200);
    const mcpStream = new SseReader(getStream);

    // Tool calls in flight on every transport when the signal arrives.
    const overMcp = fetch(`${base}/mcp`, { method: 'POST', headers: mcpHeaders, body: JSON.stringify(sleepCall(7, 1_200)) }).then(async (r) => ({
      status: r.status,
      body: await r.text(),
    }));
    const overHttp = fetch(`${base}/tools/slow__sleep`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ ms: 1_200 }),
    }).then(async (r) => ({ status: r.status, body: await r.text() }));
    const sse = streams[0]!;
    expect(
      (
        await fetch(`${base}${sse.endpoint}`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify(sleepCall(8, 1_200)),
        })
      ).status,
    ).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const started = Date.now();
    const exit = await server.stop('SIGTERM');
    const took = Date.now() - started;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeLessThan(5_000);

    // The calls that were running finished and were answered.
    const mcpAnswer = await overMcp;
    expect(mcpAnswer.status).toBe(200);
    expect(JSON.parse(mcpAnswer.body)).toMatchObject({ id: 7, result: { content: [{ text: 'slept 1200 ms' }] } });
    const httpAnswer = await overHttp;
    expect(httpAnswer.status).toBe(200);
    expect(JSON.parse(httpAnswer.body)).toMatchObject({ content: [{ text: 'slept 1200 ms' }] });
    expect(JSON.parse((await sse.reader.next(1_000)).data)).toMatchObject({ id: 8, result: { content: [{ text: 'slept 1200 ms' }] } });
    // Every stream was ended by the server.
    await Promise.all([...streams.map((s) => s.reader.closed), mcpStream.closed]);

    // Pending writes reached the disk: the batched last use of the token, and every event.
    const db = await readDb(dataDir);
    expect(db.tokens[tokenHash(token)]!.lastUsedAt).toEqual(expect.any(Number));
    const events = (await readFile(join(dataDir, EVENTS_FILE), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuthEvent);
    const closed = events.filter((e) => e.type === 'session.closed');
    expect(closed).toHaveLength(4);
    expect(closed.every((e) => (e.detail as { reason: string }).reason === 'server shutdown')).toBe(true);
    expect(events.filter((e) => e.type === 'tool.called' && (e.detail as { tool: string }).tool === 'slow__sleep')).toHaveLength(3);
    expect(events.at(-1)!.type).toBe('server.stopped');
    // Nothing left behind that would make the next start wait or doubt.
    expect(
      (await readdir(dataDir)).filter((n) => n.endsWith('.lock') || n.endsWith('.tmp') || n.endsWith('.owner') || n === 'serve.json' || n === 'serve.pid'),
    ).toEqual([]);
    expect(server.stderr()).not.toMatch(STACK_LINE);
  });
});
