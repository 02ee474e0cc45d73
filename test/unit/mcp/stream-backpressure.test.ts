import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { relayEventStream } from '../../../src/mcp/sse-transport.js';
import { StreamableHttpSessionTransport } from '../../../src/mcp/streamable-transport.js';
import { waitFor } from '../../helpers/wait.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

describe('the GET stream of /mcp when its client stops reading', () => {
  it('past the buffer bound the stream is destroyed and onoverflow is called once; nothing more is queued', async () => {
    const transport = new StreamableHttpSessionTransport('s-1', 256 * 1024);
    let overflows = 0;
    transport.onoverflow = () => overflows++;
    let streamClosed = false;
    server = createServer((req, res) => {
      res.on('close', () => (streamClosed = true));
      expect(transport.handleGet(req, res)).toBeUndefined();
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.pause(); // never reads
    socket.write(`GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    // biome-ignore lint/complexity/useLiteralKeys: the private stream, read by index on purpose
    await waitFor(() => transport['stream'] !== undefined, { what: 'the GET stream to open' });
    const big = 'x'.repeat(64 * 1024);
    // A bounded loop: far more than the bound if nothing stopped it.
    for (let i = 0; i < 200 && overflows === 0; i++)
      await transport.send({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: big } });
    expect(overflows).toBe(1);
    await waitFor(() => streamClosed, { what: 'the stream to be destroyed' });
    await transport.send({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: big } });
    expect(overflows).toBe(1);
    socket.destroy();
  });
});

describe('the answer stream of a 2025 POST when its client stops reading', () => {
  it('past the bound that stream is destroyed and onrequeststreamoverflow is called once; the session and its GET bound are untouched', async () => {
    const transport = new StreamableHttpSessionTransport('s-2', 256 * 1024);
    let requestOverflows = 0;
    let sessionOverflows = 0;
    transport.onrequeststreamoverflow = () => requestOverflows++;
    transport.onoverflow = () => sessionOverflows++;
    let posted = false;
    server = createServer((_req, res) => {
      expect(transport.handlePost(res, { jsonrpc: '2.0', id: 7, method: 'tools/call' }, undefined, 'application/json, text/event-stream')).toBeUndefined();
      posted = true;
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.pause(); // never reads
    socket.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`);
    await waitFor(() => posted, { what: 'the POST to reach the transport' });
    const big = 'x'.repeat(64 * 1024);
    const progress = { jsonrpc: '2.0' as const, method: 'notifications/message', params: { level: 'info', data: big } };
    // A bounded loop: far more than the bound if nothing stopped it.
    for (let i = 0; i < 200 && requestOverflows === 0; i++) await transport.send(progress, { relatedRequestId: 7 });
    expect(requestOverflows).toBe(1);
    await transport.send(progress, { relatedRequestId: 7 });
    expect(requestOverflows).toBe(1);
    expect(sessionOverflows).toBe(0);
    socket.destroy();
  });
});

describe('an event stream the SDK produces (2026-07-28 subscriptions/listen), relayed to a client', () => {
  /** A source that enqueues whenever asked, as the SDK's listen router does (it ignores desiredSize). */
  function source() {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      cancel: () => {
        cancelled = true;
      },
    });
    return { stream, push: (bytes: number) => controller.enqueue(new Uint8Array(bytes).fill(120)), end: () => controller.close(), cancelled: () => cancelled };
  }

  async function serveOnce(handler: (res: import('node:http').ServerResponse) => void): Promise<number> {
    server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.flushHeaders();
      handler(res);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  it('a client that stops reading: past the bound the response is destroyed, the source cancelled, and the end is "overflow"', async () => {
    const src = source();
    let ended: Promise<string> | undefined;
    const port = await serveOnce((res) => (ended = relayEventStream(src.stream, res, 256 * 1024)));
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.pause(); // never reads
    socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await waitFor(() => ended !== undefined, { what: 'the stream to open' });
    // A bounded loop: far more than the bound and the socket buffers if nothing stopped it.
    let outcome: string | undefined;
    void ended!.then((end) => (outcome = end));
    for (let i = 0; i < 1_000 && outcome === undefined && !src.cancelled(); i++) {
      src.push(64 * 1024);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await ended).toBe('overflow');
    expect(src.cancelled()).toBe(true);
    socket.destroy();
  });

  it('a client that reads gets every byte and the end of the stream ("ended")', async () => {
    const src = source();
    let ended: Promise<string> | undefined;
    const port = await serveOnce((res) => (ended = relayEventStream(src.stream, res, 256 * 1024)));
    const response = fetch(`http://127.0.0.1:${port}/`).then((r) => r.arrayBuffer());
    await waitFor(() => ended !== undefined, { what: 'the stream to open' });
    // Less than the bound in all, so that how fast the client reads cannot matter.
    for (let i = 0; i < 12; i++) src.push(16 * 1024);
    src.end();
    expect((await response).byteLength).toBe(12 * 16 * 1024);
    expect(await ended).toBe('ended');
  });
});
