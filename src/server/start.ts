import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { CupcakeApp } from './app.js';

export interface RunningServer {
  server: Server;
  /** The address actually bound (port 0 becomes a real port). */
  port: number;
  host: string;
  /**
   * Stops accepting, lets requests and tool calls in flight finish (at most `graceMs`), then ends
   * open streams and sessions and closes every connection.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * How long a client may take to send a request. Node measures `requestTimeout` until the request
 * has been received (headers and body), not while the response streams: an SSE stream or a slow
 * tool call is never cut by it, while a client trickling headers or a body (slowloris) is
 * answered 408 and disconnected. Checked every 2 s instead of Node's 30 s.
 */
export interface ServerTimeouts {
  headersMs: number;
  requestMs: number;
  checkEveryMs: number;
}

export const DEFAULT_TIMEOUTS: ServerTimeouts = { headersMs: 15_000, requestMs: 30_000, checkEveryMs: 2_000 };

/**
 * Listens on host:port, then builds the app for the port actually bound (so that port 0 can
 * still produce correct URLs), and serves it.
 */
export async function startServer(
  buildApp: (port: number) => CupcakeApp,
  options: { host: string; port: number; timeouts?: Partial<ServerTimeouts> },
): Promise<RunningServer> {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const server = createServer({ connectionsCheckingInterval: timeouts.checkEveryMs, headersTimeout: timeouts.headersMs, requestTimeout: timeouts.requestMs });
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
  // Responses not started yet: a request being handled (a token exchange, a tool call). A stream
  // (SSE, the GET /mcp stream) has sent its headers and stays open by design: it does not count.
  const unanswered = new Set<ServerResponse>();
  // HTTP/1.1 pipelining (RFC 9112 §9.3.2): a client may send many requests without reading the
  // answers, which Node parses at once and answers into memory. Past limits.pipelinedRequests
  // unanswered requests on one connection, the connection is closed: no client needs more.
  const inFlight = new WeakMap<Socket, number>();
  const handle = app.callback();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const count = (inFlight.get(socket) ?? 0) + 1;
    inFlight.set(socket, count);
    unanswered.add(res);
    let open = true;
    const done = () => {
      if (!open) return;
      open = false;
      unanswered.delete(res);
      inFlight.set(socket, (inFlight.get(socket) ?? 1) - 1);
    };
    res.once('finish', done);
    res.once('close', done);
    // Node parses a whole pipelined chunk at once: the requests past the bound are never handled.
    if (count > app.context.limits.pipelinedRequests) return socket.destroy();
    handle(req, res);
  });
  const busy = () => app.mcp.callsInFlight > 0 || [...unanswered].some((res) => !res.headersSent);
  let closing: Promise<void> | undefined;
  return {
    server,
    port: address.port,
    host: options.host,
    close(graceMs = 3_000) {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        const deadline = Date.now() + graceMs;
        while (busy() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
        await app.close();
        server.closeIdleConnections();
        // Whatever still runs after the grace (a tool that never returns) is cut.
        const timer = setTimeout(() => server.closeAllConnections(), Math.max(0, deadline - Date.now()) + 250);
        timer.unref();
        await stopped;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
