import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CupcakeApp } from './app.js';

export interface RunningServer {
  server: Server;
  /** The address actually bound (port 0 becomes a real port). */
  port: number;
  host: string;
  /** Stops accepting, ends open streams, waits for in-flight requests (at most `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

/**
 * Listens on host:port, then builds the app for the port actually bound (so that port 0 can
 * still produce correct URLs), and serves it.
 */
export async function startServer(buildApp: (port: number) => CupcakeApp, options: { host: string; port: number }): Promise<RunningServer> {
  const server = createServer();
  // Long-lived SSE streams must not be cut by Node's request timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const app = buildApp(address.port);
  server.on('request', app.callback());
  let closing: Promise<void> | undefined;
  return {
    server,
    port: address.port,
    host: options.host,
    close(graceMs = 5_000) {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await app.close();
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        await stopped;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
