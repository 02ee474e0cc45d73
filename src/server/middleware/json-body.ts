import type { Context, Next } from 'koa';

export const MAX_JSON_BYTES = 1024 * 1024;

/**
 * Reads a JSON request body (only when the request says it is JSON) into ctx.request.body:
 * over 1 MB → 413, malformed → 400 (DESIGN.md §4). A lean replacement for the general body
 * parser on the MCP hot path: no charset sniffing, one Buffer.concat, one JSON.parse.
 */
export function readJsonBody() {
  return async function jsonBody(ctx: Context, next: Next): Promise<void> {
    if (!ctx.is('application/json') || !ctx.req.readable) return next();
    const declared = Number(ctx.get('Content-Length') || 0);
    if (declared > MAX_JSON_BYTES) ctx.throw(413, 'request body is larger than 1 MB');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_JSON_BYTES) {
        ctx.set('Connection', 'close');
        ctx.throw(413, 'request body is larger than 1 MB');
      }
      chunks.push(chunk);
    }
    const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)).toString('utf8');
    if (text.trim() === '') {
      ctx.request.body = undefined;
    } else {
      try {
        ctx.request.body = JSON.parse(text) as unknown;
      } catch {
        ctx.throw(400, 'request body could not be parsed');
      }
    }
    await next();
  };
}
