import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { JSONRPCMessage, MessageExtraInfo, Transport } from '@modelcontextprotocol/server';

export const SSE_KEEPALIVE_MS = 15_000;

/**
 * Writes to a long-lived stream, or reports that its client stopped reading: `res.write()` queues
 * in memory whatever the socket cannot take, so a client that posts requests and never reads
 * their answers would grow the server without bound. Past `maxBufferedBytes` unsent, the stream
 * is destroyed (its queued data freed) and false is returned.
 */
export function writeBounded(res: ServerResponse, chunk: string | Uint8Array, maxBufferedBytes: number): boolean {
  if (res.destroyed || res.writableEnded) return false;
  res.write(chunk);
  if (res.writableLength <= maxBufferedBytes) return true;
  res.destroy();
  return false;
}

/** Unsent bytes one stream may hold (limits.streamBufferBytes). */
export const DEFAULT_STREAM_BUFFER_BYTES = 8 * 1024 * 1024;

/** How a relayed event stream ended: its source finished, the client went away, or it stopped reading. */
export type RelayEnd = 'ended' | 'closed' | 'overflow';

/**
 * Hands an event stream the SDK produced (MCP 2026-07-28 subscriptions/listen, a streamed result)
 * to `res`. The SDK enqueues every notification whether or not anyone reads (its listen router
 * ignores the stream's desiredSize), so piping with backpressure would only move the pile into
 * the SDK's queue: the source is read as fast as it produces and written with writeBounded.
 * Past `maxBufferedBytes` unsent, `res` is destroyed and the source cancelled (which ends the
 * subscription); the promise says how the stream ended.
 */
export async function relayEventStream(source: ReadableStream<Uint8Array>, res: ServerResponse, maxBufferedBytes: number): Promise<RelayEnd> {
  const reader = source.getReader();
  const cancel = () => void reader.cancel().catch(() => undefined);
  res.once('close', cancel);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (res.destroyed) return 'closed';
      if (done) {
        res.end();
        return 'ended';
      }
      if (!writeBounded(res, value, maxBufferedBytes)) {
        cancel();
        return 'overflow';
      }
    }
  } catch {
    res.destroy();
    return 'closed';
  }
}

/**
 * The legacy HTTP+SSE transport (MCP 2024-11-05) as ChatGPT uses it: the first event names the
 * message endpoint with `session_id=` (the SDK's SSEServerTransport says `sessionId=`), replies
 * go out as `message` events, and a comment every 15 s keeps proxies from closing the stream.
 */
export class SseServerTransport implements Transport {
  readonly sessionId = randomUUID();
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: ((message: JSONRPCMessage, extra?: MessageExtraInfo) => void) | undefined;
  /** Called once when the stream is closed because its client stopped reading (before onclose). */
  onoverflow?: (() => void) | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  private closed = false;
  /** The MCP revision agreed at initialize (from the server's answer), once there was one. */
  protocolVersion: string | undefined;

  constructor(
    private readonly res: ServerResponse,
    /** Path of the message endpoint, e.g. `/messages/`. */
    private readonly messagesPath: string,
    private readonly keepAliveMs = SSE_KEEPALIVE_MS,
    private readonly maxBufferedBytes = DEFAULT_STREAM_BUFFER_BYTES,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  async start(): Promise<void> {
    if (this.res.headersSent) throw new Error('SSE transport already started');
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      // nginx and similar proxies otherwise buffer the stream and the endpoint event never arrives.
      'X-Accel-Buffering': 'no',
    });
    this.res.flushHeaders();
    this.res.on('close', () => void this.close());
    this.res.on('error', (error) => this.onerror?.(error));
    this.write(`event: endpoint\ndata: ${this.messagesPath}?session_id=${this.sessionId}\n\n`);
    this.keepAlive = setInterval(() => this.write(': keep-alive\n\n'), this.keepAliveMs);
    this.keepAlive.unref();
  }

  /** Hands a message POSTed to the message endpoint to the MCP server. */
  receive(message: JSONRPCMessage, extra?: MessageExtraInfo): void {
    this.onmessage?.(message, extra);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) throw new Error('SSE stream is closed');
    const result = (message as { result?: { protocolVersion?: unknown; serverInfo?: unknown } }).result;
    if (this.protocolVersion === undefined && typeof result?.protocolVersion === 'string' && result.serverInfo !== undefined)
      this.protocolVersion = result.protocolVersion;
    this.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.keepAlive) clearInterval(this.keepAlive);
    if (!this.res.writableEnded) this.res.end();
    this.onclose?.();
  }

  private write(chunk: string): void {
    if (this.closed || this.res.writableEnded) return;
    if (!writeBounded(this.res, chunk, this.maxBufferedBytes)) {
      this.onoverflow?.();
      void this.close();
    }
  }
}
