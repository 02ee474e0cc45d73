import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, initDataDir, killChildrenAfterEach, runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { startTestServer } from '../helpers/server.js';
import { mintToken } from '../helpers/tokens.js';
import { SseReader } from '../helpers/sse.js';
import { waitFor } from '../helpers/wait.js';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENTS_FILE } from '../../src/store/event-log.js';

const tmp = useTmpDirs('cupcake-bounds-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const MB = 1024 * 1024;
const FLOOD_FIXTURE = fileURLToPath(new URL('../fixtures/upstream-flood.mjs', import.meta.url));

/** Resident memory of a process (Linux /proc), in bytes. */
function rss(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/** The highest RSS of `pid` over `samples` samples 100 ms apart: a bounded, self-stopping loop. */
async function peakRss(pid: number, samples: number): Promise<number> {
  let peak = rss(pid);
  for (let i = 0; i < samples; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    peak = Math.max(peak, rss(pid));
  }
  return peak;
}

/** `cupcake-mcp serve` as shipped (init --yes, default config, loopback, port 0). */
async function serveAsShipped(): Promise<ServeProcess & { port: number }> {
  const dir = await tmp();
  const init = await runCli(['init', '--yes', '--password-stdin'], { cwd: dir, input: 'the owner password\n' });
  expect(init.code, init.stderr).toBe(0);
  const serve = await startServe(['--port', '0'], { cwd: dir });
  return Object.assign(serve, { port: Number(new URL(serve.url).port) });
}

describe('what an internet client can make serve hold (SECURITY.md: memory is bounded)', () => {
  it('HTTP pipelining: 10 connections that each pipeline 64 KB of GET / and never read do not grow serve by more than a few tens of MB', async () => {
    const serve = await serveAsShipped();
    const pid = serve.child.pid!;
    // Warm up (JIT, the home page) so that the baseline is a running server.
    for (let i = 0; i < 20; i++) await (await fetch(`http://127.0.0.1:${serve.port}/`)).text();
    const before = rss(pid);
    const request = `GET / HTTP/1.1\r\nHost: localhost:${serve.port}\r\n\r\n`;
    const chunk = request.repeat(Math.ceil((64 * 1024) / request.length));
    const sockets: Socket[] = [];
    for (let i = 0; i < 10; i++) {
      const socket = connect(serve.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.pause(); // never reads an answer
      socket.write(chunk);
      sockets.push(socket);
    }
    const peak = await peakRss(pid, 30);
    for (const socket of sockets) socket.destroy();
    // Unbounded, this grew serve by about 400 MB (each request answered into memory).
    expect((peak - before) / MB).toBeLessThan(150);
    expect((await fetch(`http://127.0.0.1:${serve.port}/healthz`)).status).toBe(200);
    expect(await serve.stop()).toEqual({ code: 0, signal: null });
  });
});

/**
 * `serve` with the flood upstream (test/fixtures/upstream-flood.mjs), a personal access token, and
 * a 2025-11-25 session subscribed to the upstream's resource: each `flood()` makes the upstream send
 * 32 notifications/resources/updated of 64 KB (2 MB) for it. An upstream is subscribed while a 2025
 * session is (mcp/catalog.ts); a 2026-07-28 listen stream hears the updates of the URIs it names.
 */
async function serveWithFloodingUpstream() {
  const dir = await tmp();
  const { dataDir } = await initDataDir(dir, { tools: { docs: false, servers: { up: { command: process.execPath, args: [FLOOD_FIXTURE] } } } });
  const serve = await startServe(['--port', '0'], { cwd: dir });
  // A personal access token of the running serve (its audience is serve's URL).
  const created = await runCli(['tokens', 'create', '--name', 'stalled', '--json'], { cwd: dir });
  expect(created.code, created.stderr).toBe(0);
  const { token } = JSON.parse(created.stdout) as { token: string };
  const auth = { authorization: `Bearer ${token}` };
  const json = { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  // A 2025-11-25 session, as an SDK client opens it.
  const openSession = async () => {
    const response = await fetch(`${serve.url}/mcp`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'stalled', version: '1' } },
      }),
    });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    const id = response.headers.get('mcp-session-id')!;
    const headers = { ...json, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
    const post = async (message: unknown) => {
      const answer = await fetch(`${serve.url}/mcp`, { method: 'POST', headers, body: JSON.stringify(message) });
      return { status: answer.status, body: await answer.text() };
    };
    expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    return { id, headers, post };
  };
  // serve reads the new token from db.json within a second, and lists the upstream's tools once it is ready.
  const ready = async () => {
    const listed = await fetch(`${serve.url}/tools`, { headers: auth });
    if (listed.status !== 200) return false;
    return ((await listed.json()) as { tools: Array<{ name: string }> }).tools.some((t) => t.name === 'up__flood');
  };
  await waitFor(ready, { timeoutMs: 10_000, intervalMs: 200, what: 'the token to be known and the upstream ready' });
  const session = await openSession();
  const listed = await session.post({ jsonrpc: '2.0', id: 1, method: 'resources/list' });
  const uri = (JSON.parse(listed.body) as { result: { resources: Array<{ uri: string }> } }).result.resources[0]!.uri;
  expect(uri.length).toBeGreaterThan(64_000);
  expect(JSON.parse((await session.post({ jsonrpc: '2.0', id: 2, method: 'resources/subscribe', params: { uri } })).body)).toMatchObject({ result: {} });
  let id = 10;
  const flood = (count = 32) => session.post({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'up__flood', arguments: { count } } });
  // Warm up while no stream listens (the notifications go nowhere) so that the baseline is a running server.
  for (let i = 0; i < 4; i++) expect(JSON.parse((await flood()).body)).toMatchObject({ result: { content: [{ text: 'sent 32' }] } });
  return { serve, dataDir, token, auth, pid: serve.child.pid!, port: Number(new URL(serve.url).port), openSession, session, uri, flood };
}

/** A raw connection that sends `request`, reads until `until` has arrived, and then never reads again. */
async function stopReadingAfter(port: number, request: string, until: string): Promise<{ socket: Socket; head: string; closed: () => boolean }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.write(request);
  let head = '';
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes(until)) return;
      socket.off('data', onData);
      socket.pause();
      resolve();
    };
    socket.on('data', onData);
  });
  return { socket, head, closed: () => closed };
}

/** The highest RSS of `pid` seen while `step` runs at most `max` times, stopping early when it answers true. */
async function peakWhile(pid: number, max: number, step: () => Promise<boolean>): Promise<{ peak: number; steps: number }> {
  let peak = rss(pid);
  let steps = 0;
  while (steps < max) {
    steps++;
    const stop = await step();
    peak = Math.max(peak, rss(pid));
    if (stop) break;
  }
  return { peak: Math.max(peak, rss(pid)), steps };
}

describe('event streams whose client stops reading (SECURITY.md: memory is bounded)', () => {
  it(
    'GET /sse: a client that posts tools/call fetch of a 1.9 MB document and never reads ' +
      'its stream has the stream closed and logged as session.closed "client not reading"',
    async () => {
      const docsDir = join(await tmp(), 'docs');
      await mkdir(docsDir);
      await writeFile(join(docsDir, 'big.md'), `# Big\n\n${'All work and no play makes a big document. '.repeat(45_000)}\n`);
      const server = await startTestServer({ docsDir });
      try {
        const { token } = await mintToken(server.store, { baseUrl: server.url, resource: server.url });
        const port = Number(new URL(server.url).port);
        const socket = connect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        socket.write(`GET /sse HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`);
        // Read until the endpoint event names the session, then never read again.
        let head = '';
        const sessionId = await new Promise<string>((resolve) => {
          const onData = (chunk: Buffer) => {
            head += chunk.toString('utf8');
            const match = /session_id=([0-9a-f-]{36})/.exec(head);
            if (match) {
              socket.off('data', onData);
              socket.pause();
              resolve(match[1]!);
            }
          };
          socket.on('data', onData);
        });
        const post = (body: unknown) =>
          fetch(`${server.url}/messages/?session_id=${sessionId}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
          });
        expect(
          (
            await post({
              jsonrpc: '2.0',
              id: 0,
              method: 'initialize',
              params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'stalled', version: '1' } },
            })
          ).status,
        ).toBe(202);
        await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
        // A bounded loop that stops as soon as the server has let the session go (404).
        let accepted = 0;
        for (let i = 1; i <= 100; i++) {
          const response = await post({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'fetch', arguments: { id: 'big.md' } } });
          await response.arrayBuffer();
          if (response.status !== 202) {
            expect(response.status).toBe(404);
            break;
          }
          accepted++;
        }
        expect(accepted, 'the server let the session go before all 100 answers were queued').toBeLessThan(100);
        // 8 MB of unsent answers is about four of these documents: the session goes once they are written.
        const closedForNotReading = async () => {
          await server.events.flush();
          const closed = await server.events.readLast(100, { types: ['session.closed'] });
          return closed.some(
            (e) => (e.detail as { session_id: string }).session_id === sessionId && (e.detail as { reason: string }).reason === 'client not reading',
          );
        };
        await waitFor(closedForNotReading, { what: 'the stalled SSE session to be closed as "client not reading"' });
        expect((await post({ jsonrpc: '2.0', id: 999, method: 'tools/list' })).status).toBe(404);
        socket.destroy();
      } finally {
        await server.close();
      }
    },
  );

  it('GET /mcp: a stalled GET stream fed by an upstream closes with its session, logged as session.closed "client not reading"', async () => {
    const { serve, dataDir, token, pid, port, openSession, session, uri, flood } = await serveWithFloodingUpstream();
    const before = rss(pid);
    const stalled = await stopReadingAfter(
      port,
      `GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n` +
        `Mcp-Session-Id: ${session.id}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n`,
      '\r\n\r\n',
    );
    expect(stalled.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(stalled.head.toLowerCase()).toContain('content-type: text/event-stream');

    // At most 64 calls (128 MB), stopping as soon as the server has let the session go: the call in
    // flight when it closes is cut off with it, a later one answers 404.
    const { peak, steps } = await peakWhile(pid, 64, async () => (await flood().catch(() => undefined))?.status !== 200);
    // Bounded, the session goes after about 10 MB (the bound and what the sockets hold) and serve grows by 6 to 20 MB;
    // unbounded, serve held every notification and grew by about 170 MB when the loop ran out.
    expect(steps).toBeLessThan(64);
    expect((peak - before) / MB).toBeLessThan(48);

    const closedForNotReading = async () => {
      const lines = (await readFile(join(dataDir, EVENTS_FILE), 'utf8')).split('\n').filter(Boolean);
      return lines
        .map((line) => JSON.parse(line) as { type: string; detail: { session_id?: string; reason?: string; transport?: string } })
        .find((e) => e.type === 'session.closed' && e.detail.session_id === session.id && e.detail.reason === 'client not reading');
    };
    expect(await waitFor(closedForNotReading, { timeoutMs: 10_000, what: 'session.closed "client not reading" in events.jsonl' })).toMatchObject({
      detail: { transport: 'streamable-http' },
    });
    // The server closed the stream: what the socket still holds drains, then it ends.
    stalled.socket.resume();
    await waitFor(stalled.closed, { timeoutMs: 10_000, what: 'the server to close the GET stream' });

    // The session is gone with its stream (SECURITY.md); serve and the upstream go on serving.
    expect((await session.post({ jsonrpc: '2.0', id: 999, method: 'tools/list' })).status).toBe(404);
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
    // A client that reads its GET stream gets the same notifications, well within the bound.
    const next = await openSession();
    expect(JSON.parse((await next.post({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri } })).body)).toMatchObject({ result: {} });
    const stream = await fetch(`${serve.url}/mcp`, { headers: { ...next.headers, accept: 'text/event-stream' } });
    expect(stream.status).toBe(200);
    const reader = new SseReader(stream);
    const called = await next.post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'up__flood', arguments: { count: 3 } } });
    expect(JSON.parse(called.body)).toMatchObject({ result: { content: [{ text: 'sent 3' }] } });
    for (let i = 0; i < 3; i++) {
      expect(JSON.parse((await reader.next(10_000)).data)).toEqual({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri } });
    }
    expect(await serve.stop()).toEqual({ code: 0, signal: null });
  });

  it('MCP 2026-07-28 subscriptions/listen: a stalled listen stream fed by an upstream is closed and logged', async () => {
    const { serve, token, auth, pid, port, flood, uri } = await serveWithFloodingUpstream();
    const before = rss(pid);
    const listen = (id: string) =>
      JSON.stringify({
        jsonrpc: '2.0',
        id,
        method: 'subscriptions/listen',
        params: {
          notifications: { resourceSubscriptions: [uri] },
          _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
        },
      });
    const modern = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'subscriptions/listen',
    };
    const body = listen('stalled');
    const stalled = await stopReadingAfter(
      port,
      `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
        `${Object.entries(modern)
          .map(([name, value]) => `${name}: ${value}\r\n`)
          .join('')}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      'notifications/subscriptions/acknowledged',
    );
    expect(stalled.head).toMatch(/^HTTP\/1\.1 200 /);

    // At most 64 calls (128 MB), stopping as soon as serve has said it closed the stream.
    const overflowed = () =>
      /warn MCP client \S+ stopped reading its subscriptions\/listen stream: closed with more than 8388608 bytes unsent/.test(serve.stderr());
    const { peak, steps } = await peakWhile(pid, 64, async () => {
      expect((await flood()).status).toBe(200);
      return overflowed();
    });
    // Bounded, serve grows by about as much as for the GET stream of a 2025 session; piped with
    // backpressure (as before), the SDK queued every notification and serve grew by about 190 MB.
    expect(steps).toBeLessThan(64);
    expect((peak - before) / MB).toBeLessThan(48);
    stalled.socket.resume();
    await waitFor(stalled.closed, { timeoutMs: 10_000, what: 'the server to close the listen stream' });

    // serve goes on serving: a listen stream that reads gets the updates.
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
    const reading = await fetch(`${serve.url}/mcp`, { method: 'POST', headers: { ...auth, ...modern }, body: listen('reading') });
    expect(reading.status).toBe(200);
    const reader = new SseReader(reading);
    expect(JSON.parse((await reader.next(10_000)).data)).toMatchObject({ method: 'notifications/subscriptions/acknowledged' });
    expect(JSON.parse((await flood(3)).body)).toMatchObject({ result: { content: [{ text: 'sent 3' }] } });
    for (let i = 0; i < 3; i++) {
      expect(JSON.parse((await reader.next(10_000)).data)).toMatchObject({ method: 'notifications/resources/updated', params: { uri } });
    }
    expect(await serve.stop()).toEqual({ code: 0, signal: null });
  });
});
