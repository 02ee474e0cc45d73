import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
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
