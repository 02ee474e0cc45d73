import type Router from '@koa/router';
import type { Context } from 'koa';
import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { SseServerTransport } from '../../mcp/sse-transport.js';
import type { McpRuntime } from '../../mcp/runtime.js';
import { audit } from '../../oauth/tokens.js';
import { requestMeta, type ServerContext } from '../context.js';
import { readJsonBody } from '../middleware/json-body.js';
import { requireBearer } from '../middleware/bearer.js';
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
    const token = ctx.state.token!;
    const transport = new SseServerTransport(ctx.res, messagesPath);
    const id = transport.sessionId;
    mcp.sse.set(id, transport);
    mcp.sessions.open(id, 'sse', token, () => transport.close());
    transport.onclose = () => {
      mcp.sse.delete(id);
      mcp.sessions.release(id, 'client closed');
    };
    ctx.respond = false;
    const session = mcp.createServer();
    await session.connect(transport);
    audit(server, requestMeta(ctx), { type: 'session.opened', client_id: token.clientId, token_id: token.tokenId, detail: { transport: 'sse', session_id: id } });
  });

  // Clients that try Streamable HTTP first fall back to SSE on 405 (MCP backwards compatibility).
  router.post('/sse', (ctx) => {
    ctx.set('Allow', 'GET');
    rpcError(ctx, 405, -32000, 'Method not allowed: open the stream with GET /sse, or use Streamable HTTP at /mcp');
  });

  const postMessage = async (ctx: Context) => {
    const token = ctx.state.token!;
    const id = String(ctx.query.session_id ?? ctx.query.sessionId ?? '');
    const transport = id ? mcp.sse.get(id) : undefined;
    const session = transport ? mcp.sessions.get(id, 'sse') : undefined;
    if (!transport || !session || transport.isClosed) return rpcError(ctx, 404, -32001, 'Session not found');
    if (!mcp.sessions.admit(session, token)) {
      audit(server, requestMeta(ctx), { type: 'token.rejected', client_id: token.clientId, token_id: token.tokenId, detail: { reason: 'wrong session owner', path: '/messages' } });
      return rpcError(ctx, 404, -32001, 'Session not found');
    }
    if (!ctx.is('application/json')) return rpcError(ctx, 415, -32700, 'Unsupported Media Type: send application/json');
    const body: unknown = ctx.request.body;
    const items = Array.isArray(body) ? body : [body];
    const messages: JSONRPCMessage[] = [];
    for (const item of items) {
      const parsed = JSONRPCMessageSchema.safeParse(item);
      if (!parsed.success) return rpcError(ctx, 400, -32600, 'Invalid Request: not a JSON-RPC 2.0 message');
      messages.push(parsed.data);
    }
    for (const message of messages) transport.receive(message, { authInfo: ctx.state.authInfo! });
    ctx.status = 202;
    ctx.type = 'text/plain';
    ctx.body = 'Accepted';
  };
  router.post('/messages', bearer, readJsonBody(), postMessage);
  router.post('/messages/', bearer, readJsonBody(), postMessage);
}
