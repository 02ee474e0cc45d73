import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthInfo, JSONRPCMessage, MessageExtraInfo, RequestId, Transport, TransportSendOptions } from '@modelcontextprotocol/server';
import { DEFAULT_STREAM_BUFFER_BYTES, writeBounded } from './sse-transport.js';

/** A transport-level refusal: HTTP status plus a JSON-RPC error body (no request id is known). */
export interface TransportRefusal {
  status: number;
  code: number;
  message: string;
}

const refusal = (status: number, code: number, message: string): TransportRefusal => ({ status, code, message });

type Incoming = Record<string, unknown>;

const isRequest = (m: Incoming) => typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number');
const isNotification = (m: Incoming) => typeof m.method === 'string' && m.id === undefined;
const isResponse = (m: Incoming) => m.method === undefined && (typeof m.id === 'string' || typeof m.id === 'number') && ('result' in m || 'error' in m);

/** One POST waiting for the responses to the requests it carried. */
interface PendingPost {
  res: ServerResponse;
  batch: boolean;
  waiting: number;
  responses: JSONRPCMessage[];
  /** The client accepts `text/event-stream` on this POST (MCP 2025-11-25 §Sending Messages to the Server). */
  acceptsStream: boolean;
  /** The answer became an SSE stream: a message related to one of its requests went out before the response. */
  streaming: boolean;
}

/**
 * Streamable HTTP for one 2025 session (MCP 2025-11-25 "Transports"), answering POSTed requests with
 * `application/json` (the spec lets the server choose JSON or SSE per POST). Written for the hot
 * path: no conversion to web Request/Response objects, structural checks instead of schema
 * parsing (the MCP server validates each request's params itself), one write per response.
 * A message the server sends about a request still running (progress, an elicitation or sampling
 * request of an upstream server) turns that POST's answer into an SSE stream carrying it and then
 * the response, as the spec allows. GET opens the session's stream for server-initiated messages
 * (tools/list_changed); DELETE ends the session.
 */
export class StreamableHttpSessionTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: ((message: JSONRPCMessage, extra?: MessageExtraInfo) => void) | undefined;
  /** Requests in flight, by id; clients that reuse ids concurrently are answered in order. */
  private readonly pending = new Map<RequestId, PendingPost[]>();
  private stream: ServerResponse | undefined;
  private closed = false;

  /** Called when the GET stream is closed because its client stopped reading (mcp/sse-transport.ts writeBounded). */
  onoverflow?: (() => void) | undefined;
  /** Called when a POST's answer stream is closed because its client stopped reading; the session stays. */
  onrequeststreamoverflow?: (() => void) | undefined;

  constructor(
    readonly sessionId: string,
    private readonly maxBufferedBytes = DEFAULT_STREAM_BUFFER_BYTES,
  ) {}

  async start(): Promise<void> {}

  /**
   * POST: validates the JSON-RPC shape, hands each message to the MCP server, and answers 202 for
   * notifications and responses only, or 200 with the JSON response(s) once every request is answered.
   */
  handlePost(res: ServerResponse, body: unknown, authInfo: AuthInfo | undefined, accept = ''): TransportRefusal | undefined {
    if (this.closed) return refusal(404, -32001, 'Session not found');
    const batch = Array.isArray(body);
    const messages = (batch ? body : [body]) as unknown[];
    if (messages.length === 0) return refusal(400, -32600, 'Invalid Request: empty batch');
    let requests = 0;
    for (const message of messages) {
      if (typeof message !== 'object' || message === null || (message as Incoming).jsonrpc !== '2.0') {
        return refusal(400, -32600, 'Invalid Request: not a JSON-RPC 2.0 message');
      }
      const m = message as Incoming;
      if (isRequest(m)) requests++;
      else if (!isNotification(m) && !isResponse(m)) return refusal(400, -32600, 'Invalid Request: not a JSON-RPC 2.0 message');
    }
    const extra: MessageExtraInfo = { authInfo };
    if (requests === 0) {
      // The reason phrase is given: Koa set 404 on the response before the route took it over.
      res.writeHead(202, 'Accepted').end();
      for (const message of messages) this.onmessage?.(message as JSONRPCMessage, extra);
      return undefined;
    }
    const post: PendingPost = { res, batch, waiting: requests, responses: [], acceptsStream: accept.includes('text/event-stream'), streaming: false };
    for (const message of messages) {
      const m = message as Incoming;
      if (!isRequest(m)) continue;
      const id = m.id as RequestId;
      const queue = this.pending.get(id);
      if (queue) queue.push(post);
      else this.pending.set(id, [post]);
    }
    res.once('close', () => {
      if (post.waiting > 0) this.forget(post);
    });
    for (const message of messages) this.onmessage?.(message as JSONRPCMessage, extra);
    return undefined;
  }

  /** GET: the session's stream for messages the server sends on its own (MCP 2025-06-18 §Listening). */
  handleGet(req: IncomingMessage, res: ServerResponse): TransportRefusal | undefined {
    if (this.closed) return refusal(404, -32001, 'Session not found');
    const accept = String(req.headers.accept ?? '');
    if (!accept.includes('text/event-stream')) return refusal(406, -32000, 'Not Acceptable: GET needs Accept: text/event-stream');
    if (this.stream && !this.stream.writableEnded) return refusal(409, -32000, 'Conflict: this session already has an open stream');
    res.writeHead(200, 'OK', {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'Mcp-Session-Id': this.sessionId,
    });
    res.flushHeaders();
    this.stream = res;
    res.once('close', () => {
      if (this.stream === res) this.stream = undefined;
    });
    return undefined;
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const m = message as unknown as Incoming;
    if (isResponse(m)) {
      const id = m.id as RequestId;
      const queue = this.pending.get(id);
      const post = queue?.shift();
      if (queue && queue.length === 0) this.pending.delete(id);
      if (!post) return;
      post.responses.push(message);
      if (--post.waiting === 0) this.reply(post);
      return;
    }
    // MCP 2025-11-25 §Sending Messages to the Server: before its response, the server may send
    // requests and notifications related to a request on that POST's stream. A client that does
    // not read it loses that POST's stream, not the session (the same bound as other streams).
    const related = options?.relatedRequestId !== undefined ? this.pending.get(options.relatedRequestId)?.[0] : undefined;
    if (related?.acceptsStream && !related.res.writableEnded && !related.res.destroyed) {
      this.openStream(related);
      if (!writeBounded(related.res, `event: message\ndata: ${JSON.stringify(message)}\n\n`, this.maxBufferedBytes)) this.onrequeststreamoverflow?.();
      return;
    }
    // Other notifications and server requests go out on the GET stream when one is open.
    if (
      this.stream &&
      !this.stream.writableEnded &&
      !writeBounded(this.stream, `event: message\ndata: ${JSON.stringify(message)}\n\n`, this.maxBufferedBytes)
    ) {
      this.stream = undefined;
      this.onoverflow?.();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const queue of this.pending.values()) for (const post of queue) if (!post.res.writableEnded) post.res.destroy();
    this.pending.clear();
    if (this.stream && !this.stream.writableEnded) this.stream.end();
    this.stream = undefined;
    this.onclose?.();
  }

  private openStream(post: PendingPost): void {
    if (post.streaming) return;
    post.streaming = true;
    post.res.writeHead(200, 'OK', {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'Mcp-Session-Id': this.sessionId,
    });
    post.res.flushHeaders();
  }

  private reply(post: PendingPost): void {
    if (post.res.writableEnded || post.res.destroyed) return;
    if (post.streaming) {
      for (const response of post.responses) post.res.write(`event: message\ndata: ${JSON.stringify(response)}\n\n`);
      post.res.end();
      return;
    }
    const payload = JSON.stringify(post.batch ? post.responses : post.responses[0]);
    // The reason phrase is given: Koa set 404 on the response before the route took it over.
    post.res.writeHead(200, 'OK', { 'Content-Type': 'application/json', 'Mcp-Session-Id': this.sessionId, 'Content-Length': Buffer.byteLength(payload) });
    post.res.end(payload);
  }

  private forget(post: PendingPost): void {
    for (const [id, queue] of this.pending) {
      const index = queue.indexOf(post);
      if (index >= 0) queue.splice(index, 1);
      if (queue.length === 0) this.pending.delete(id);
    }
  }
}
