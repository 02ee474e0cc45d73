import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { audit } from '../../oauth/tokens.js';
import { requestMeta, type ServerContext } from '../context.js';
import { parseBody } from '../middleware/body.js';
import { requireBearer } from '../middleware/bearer.js';
import type { McpRuntime } from '../../mcp/runtime.js';

/** JSON-RPC error body for transport-level refusals (no request id is known). */
export function rpcError(ctx: Context, status: number, code: number, message: string): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { jsonrpc: '2.0', error: { code, message }, id: null };
}

/**
 * Streamable HTTP (MCP 2025-06-18 "Transports"): POST/GET/DELETE /mcp with stateful sessions.
 * Every request is authenticated and must come from the client and token family that opened the
 * session; unknown or ended sessions answer 404 so that clients start a new one.
 */
export function mountMcpRoutes(router: Router, server: ServerContext, mcp: McpRuntime): void {
  const handle = async (ctx: Context) => {
    const token = ctx.state.token!;
    const sessionId = ctx.get('Mcp-Session-Id');
    const body = ctx.request.body;
    (ctx.req as IncomingMessage & { auth?: AuthInfo }).auth = ctx.state.authInfo;

    if (sessionId) {
      const session = mcp.sessions.get(sessionId, 'streamable-http');
      if (!session) return rpcError(ctx, 404, -32001, 'Session not found');
      if (!mcp.sessions.admit(session, token)) {
        audit(server, requestMeta(ctx), { type: 'token.rejected', client_id: token.clientId, token_id: token.tokenId, detail: { reason: 'wrong session owner', path: '/mcp' } });
        return rpcError(ctx, 404, -32001, 'Session not found');
      }
      const transport = mcp.streamable.get(sessionId)!;
      ctx.respond = false;
      await transport.handleRequest(ctx.req, ctx.res, body);
      return;
    }

    if (ctx.method !== 'POST' || !isInitializeRequest(body)) {
      return rpcError(ctx, 400, -32000, 'Bad Request: send an initialize request without Mcp-Session-Id to open a session');
    }

    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        mcp.streamable.set(id, transport);
        mcp.sessions.open(id, 'streamable-http', token, () => transport.close());
        audit(server, requestMeta(ctx), { type: 'session.opened', client_id: token.clientId, token_id: token.tokenId, detail: { transport: 'streamable-http', session_id: id } });
      },
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      if (!id) return;
      mcp.streamable.delete(id);
      mcp.sessions.release(id, 'client closed');
    };
    const session = mcp.createServer();
    await session.connect(transport);
    ctx.respond = false;
    await transport.handleRequest(ctx.req, ctx.res, body);
    // An initialize that failed never opens a session: nothing should keep the server alive.
    if (!transport.sessionId || !mcp.streamable.has(transport.sessionId)) await session.close().catch(() => undefined);
  };

  const bearer = requireBearer(server, '/mcp');
  router.post('/mcp', bearer, parseBody(), handle);
  router.get('/mcp', bearer, handle);
  router.delete('/mcp', bearer, handle);
}
