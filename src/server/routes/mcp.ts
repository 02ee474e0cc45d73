import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { McpRuntime } from '../../mcp/runtime.js';
import { StreamableHttpSessionTransport, type TransportRefusal } from '../../mcp/streamable-transport.js';
import { audit } from '../../oauth/tokens.js';
import { requestMeta, type ServerContext } from '../context.js';
import { readJsonBody } from '../middleware/json-body.js';
import { requireBearer } from '../middleware/bearer.js';

/** JSON-RPC error body for transport-level refusals (no request id is known). */
export function rpcError(ctx: Context, status: number, code: number, message: string): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { jsonrpc: '2.0', error: { code, message }, id: null };
}

function refuse(ctx: Context, refusal: TransportRefusal): void {
  rpcError(ctx, refusal.status, refusal.code, refusal.message);
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
    if (ctx.method === 'POST' && !ctx.is('application/json')) return rpcError(ctx, 415, -32000, 'Unsupported Media Type: send application/json');
    const body: unknown = ctx.request.body;

    if (sessionId) {
      const session = mcp.sessions.get(sessionId, 'streamable-http');
      const transport = mcp.streamable.get(sessionId);
      if (!session || !transport) return rpcError(ctx, 404, -32001, 'Session not found');
      if (!mcp.sessions.admit(session, token)) {
        audit(server, requestMeta(ctx), { type: 'token.rejected', client_id: token.clientId, token_id: token.tokenId, detail: { reason: 'wrong session owner', path: '/mcp' } });
        return rpcError(ctx, 404, -32001, 'Session not found');
      }
      const versionProblem = StreamableHttpSessionTransport.checkProtocolVersion(ctx.req);
      if (versionProblem) return refuse(ctx, versionProblem);
      if (ctx.method === 'DELETE') {
        await mcp.sessions.close(sessionId, 'client closed');
        ctx.status = 200;
        ctx.body = '';
        return;
      }
      const refusal = ctx.method === 'GET' ? transport.handleGet(ctx.req, ctx.res) : transport.handlePost(ctx.req, ctx.res, body, ctx.state.authInfo);
      if (refusal) return refuse(ctx, refusal);
      ctx.respond = false;
      return;
    }

    if (ctx.method !== 'POST' || !isInitializeRequest(body)) {
      return rpcError(ctx, 400, -32000, 'Bad Request: send an initialize request without Mcp-Session-Id to open a session');
    }
    const id = randomUUID();
    const transport = new StreamableHttpSessionTransport(id);
    // Set before connect: the SDK chains the handler it finds, so its own cleanup (and the
    // session server's unsubscribe from the tool registry) still runs when the session ends.
    transport.onclose = () => {
      mcp.streamable.delete(id);
      mcp.sessions.release(id, 'client closed');
    };
    const session = mcp.createServer();
    await session.connect(transport);
    mcp.streamable.set(id, transport);
    mcp.sessions.open(id, 'streamable-http', token, () => transport.close());
    audit(server, requestMeta(ctx), { type: 'session.opened', client_id: token.clientId, token_id: token.tokenId, detail: { transport: 'streamable-http', session_id: id } });
    const refusal = transport.handlePost(ctx.req, ctx.res, body, ctx.state.authInfo);
    if (refusal) return refuse(ctx, refusal);
    ctx.respond = false;
  };

  const bearer = requireBearer(server, '/mcp');
  router.post('/mcp', bearer, readJsonBody(), handle);
  router.get('/mcp', bearer, handle);
  router.delete('/mcp', bearer, handle);
}
