import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, killChildrenAfterEach, runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { startTestServer } from '../helpers/server.js';
import { mintToken } from '../helpers/tokens.js';
import { waitFor } from '../helpers/wait.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const tmp = useTmpDirs('cupcake-bounds-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const MB = 1024 * 1024;

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

describe('event streams whose client stops reading (SECURITY.md: memory is bounded)', () => {
  it('GET /sse: a client that posts tools/call fetch of a 1.9 MB document and never reads its stream has the stream closed and logged as session.closed "client not reading"', async () => {
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
  });
});
