import type Router from '@koa/router';
import type { Context } from 'koa';
import { parseJSONRPCMessage, type JSONRPCMessage } from '@modelcontextprotocol/server';
import type { McpRuntime } from '../../mcp/runtime.js';
import { audit } from '../../oauth/tokens.js';
import { requestMeta, type ServerContext } from '../context.js';
import { readJsonBody } from '../middleware/json-body.js';
import { requireBearer, requireToolScopes } from '../middleware/bearer.js';
import { batchProblem } from '../middleware/json-rpc-batch.js';
import { rpcError } from './mcp.js';

/**
 * Legacy HTTP+SSE (MCP 2024-11-05), the transport of the seed flow: GET /sse opens the stream,
 * POST /messages/?session_id=… carries each client message (202), replies go out on the stream.
 */
export function mountSseRoutes(router: Router, server: ServerContext, mcp: McpRuntime): void {
  const bearer = requireBearer(server, '/sse');
  const messagesPath = `${new URL(server.settings.issuer).pathname.replace(/\/$/, '')}/messages/`;

  router.get('/sse', bearer, async (ctx) => {
    // HEAD (which the router routes here) gets the stream's headers, never a session: a HEAD
    // response has no body, so the stream would hold the connection and a session forever.
    if (ctx.method === 'HEAD') {
      ctx.status = 200;
      ctx.type = 'text/event-stream';
      ctx.set('Cache-Control', 'no-cache, no-transform');
      return;
    }
    ctx.respond = false;
    await mcp.sessions.openSse(ctx.res, messagesPath, ctx.state.token!, requestMeta(ctx));
  });

  // Clients that try Streamable HTTP first fall back to SSE on 405 (MCP backwards compatibility).
  router.post('/sse', (ctx) => {
    ctx.set('Allow', 'GET');
    rpcError(ctx, 405, -32000, 'Method not allowed: open the stream with GET /sse, or use Streamable HTTP at /mcp');
  });

  const postMessage = async (ctx: Context) => {
    const token = ctx.state.token!;
    const id = String(ctx.query.session_id ?? ctx.query.sessionId ?? '');
    const session = id ? mcp.sessions.get(id, 'sse') : undefined;
    if (!session || session.channel.isClosed) return rpcError(ctx, 404, -32001, 'Session not found');
    if (!mcp.sessions.admit(session, token)) {
      audit(server, requestMeta(ctx), { type: 'token.rejected', client_id: token.clientId, token_id: token.tokenId, detail: { reason: 'wrong session owner', path: '/messages' } });
      return rpcError(ctx, 404, -32001, 'Session not found');
    }
    if (!ctx.is('application/json')) return rpcError(ctx, 415, -32700, 'Unsupported Media Type: send application/json');
    const body: unknown = ctx.request.body;
    // Checked before any message is parsed: a 1 MB batch would otherwise block the event loop for seconds.
    const problem = batchProblem(body, session.channel.protocolVersion, server.limits.batchSize);
    if (problem) return rpcError(ctx, 400, -32600, problem);
    const items = Array.isArray(body) ? body : [body];
    const messages: JSONRPCMessage[] = [];
    for (const item of items) {
      let message: JSONRPCMessage;
      try {
        message = parseJSONRPCMessage(item);
      } catch {
        return rpcError(ctx, 400, -32600, 'Invalid Request: not a JSON-RPC 2.0 message');
      }
      messages.push(message);
    }
    for (const message of messages) session.channel.receive(message, { authInfo: ctx.state.authInfo! });
    ctx.status = 202;
    ctx.type = 'text/plain';
    ctx.body = 'Accepted';
  };
  const toolScopes = requireToolScopes(server, '/sse');
  router.post('/messages', bearer, readJsonBody({ jsonRpc: true }), toolScopes, postMessage);
  router.post('/messages/', bearer, readJsonBody({ jsonRpc: true }), toolScopes, postMessage);
}
