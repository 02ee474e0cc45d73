import type { Context, Next } from 'koa';

export const MAX_JSON_BYTES = 1024 * 1024;

/**
 * Reads a JSON request body (only when the request says it is JSON) into ctx.request.body:
 * over 1 MB → 413, malformed → 400 (DESIGN.md §4). A lean replacement for the general body
 * parser on the MCP hot path: no charset sniffing, one Buffer.concat, one JSON.parse.
 */
export function readJsonBody(options: { jsonRpc?: boolean } = {}) {
  /**
   * On the MCP endpoints every refusal is a JSON-RPC error body (JSON-RPC 2.0 §5.1: -32700 for
   * JSON that cannot be parsed), so that MCP clients can read it like any other.
   */
  const refuse = (ctx: Context, status: number, message: string): void => {
    if (!options.jsonRpc) ctx.throw(status, message);
    if (status === 413) ctx.set('Connection', 'close');
    ctx.status = status;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      jsonrpc: '2.0',
      id: null,
      error: { code: status === 413 ? -32600 : -32700, message: status === 413 ? `Invalid Request: ${message}` : `Parse error: ${message}` },
    };
  };
  return async function jsonBody(ctx: Context, next: Next): Promise<void> {
    if (!ctx.is('application/json') || !ctx.req.readable) return next();
    const declared = Number(ctx.get('Content-Length') || 0);
    if (declared > MAX_JSON_BYTES) return refuse(ctx, 413, 'request body is larger than 1 MB');
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_JSON_BYTES) {
          ctx.set('Connection', 'close');
          return refuse(ctx, 413, 'request body is larger than 1 MB');
        }
        chunks.push(chunk);
      }
    } catch {
      // The client went away or the stream broke mid-body (e.g. a bad chunked encoding).
      return refuse(ctx, 400, 'request body could not be read');
    }
    const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)).toString('utf8');
    if (text.trim() === '') {
      ctx.request.body = undefined;
    } else {
      try {
        ctx.request.body = JSON.parse(text) as unknown;
      } catch {
        return refuse(ctx, 400, 'request body could not be parsed');
      }
    }
    await next();
  };
}
