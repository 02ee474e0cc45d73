import type { Context, Next } from 'koa';

/** The first MCP revision that removed JSON-RPC batching (MCP 2025-06-18 changelog: "Remove support for JSON-RPC batching"). */
export const FIRST_REVISION_WITHOUT_BATCHES = '2025-06-18';

/**
 * Why a JSON-RPC body cannot be handled as a batch, or undefined. Revisions from 2025-06-18 on
 * forbid batches; the earlier ones allow them (JSON-RPC 2.0 §6), capped at `limit` messages so that
 * one 1 MB body cannot carry 20,000 requests (the SDK's own client caps at 100 too).
 */
export function batchProblem(body: unknown, revision: string | undefined, limit: number): string | undefined {
  if (!Array.isArray(body)) return undefined;
  // Revisions are dates (YYYY-MM-DD): they compare as strings.
  if (revision !== undefined && revision >= FIRST_REVISION_WITHOUT_BATCHES)
    return `Invalid Request: MCP ${revision.slice(0, 20)} does not allow JSON-RPC batches; send one message per request`;
  if (body.length === 0) return 'Invalid Request: an empty batch';
  if (body.length > limit) return `Invalid Request: at most ${limit} messages per batch`;
  return undefined;
}

/**
 * POST /mcp: refuses batches before the transport sees them, by the revision the request names
 * (MCP-Protocol-Version; without it a 2025-03-26 client is assumed, MCP 2025-06-18 §Protocol Version Header).
 */
export function limitJsonRpcBatches(limit: number) {
  return async function jsonRpcBatches(ctx: Context, next: Next): Promise<void> {
    const problem = batchProblem(ctx.request.body, ctx.get('MCP-Protocol-Version') || undefined, limit);
    if (!problem) return next();
    ctx.status = 400;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { jsonrpc: '2.0', error: { code: -32600, message: problem }, id: null };
  };
}
