import type Router from '@koa/router';
import type { Context } from 'koa';
import { parseJSONRPCMessage, type JSONRPCMessage } from '@modelcontextprotocol/server';
import type { McpRuntime } from '../../mcp/runtime.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { audit, type RequestMeta, type VerifiedToken } from '../../oauth/tokens.js';
import { requestMeta, type ServerContext } from '../context.js';
import { readJsonBody } from '../middleware/json-body.js';
import { authInfoFor, requireBearer, requireToolScopes } from '../middleware/bearer.js';
import { batchProblem } from '../middleware/json-rpc-batch.js';
import { rpcError } from '../http.js';

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

  /**
   * A client message for session `id`, on the replica that holds it: the session's owner is
   * checked, the messages go to its transport, the reply goes out on its stream (202 here).
   */
  const deliver = (
    id: string,
    token: VerifiedToken,
    authInfo: AuthInfo,
    meta: RequestMeta,
    isJson: boolean,
    body: unknown,
  ): { status: number; code?: number; message?: string } => {
    const session = id ? mcp.sessions.get(id, 'sse') : undefined;
    if (!session || session.channel.isClosed) return { status: 404, code: -32001, message: 'Session not found' };
    if (!mcp.sessions.admit(session, token)) {
      audit(server, meta, {
        type: 'token.rejected',
        client_id: token.clientId,
        token_id: token.tokenId,
        detail: { reason: 'wrong session owner', path: '/messages' },
      });
      return { status: 404, code: -32001, message: 'Session not found' };
    }
    if (!isJson) return { status: 415, code: -32700, message: 'Unsupported Media Type: send application/json' };
    // Checked before any message is parsed: a 1 MB batch would otherwise block the event loop for seconds.
    const problem = batchProblem(body, session.channel.protocolVersion, server.limits.batchSize);
    if (problem) return { status: 400, code: -32600, message: problem };
    const items = Array.isArray(body) ? body : [body];
    const messages: JSONRPCMessage[] = [];
    for (const item of items) {
      try {
        messages.push(parseJSONRPCMessage(item));
      } catch {
        return { status: 400, code: -32600, message: 'Invalid Request: not a JSON-RPC 2.0 message' };
      }
    }
    for (const message of messages) session.channel.receive(message, { authInfo });
    return { status: 202 };
  };

  // Replicas on one Redis (DESIGN.md §6): a message for a session held here that reached another replica.
  server.relay?.handle('sse-message', async (request) => {
    const { token, meta, isJson, body } = request.payload as { token: VerifiedToken; meta: RequestMeta; isJson: boolean; body: unknown };
    const result = deliver(request.sessionId, token, authInfoFor(token), meta, isJson, body);
    return {
      status: result.status,
      body: result.code === undefined ? 'Accepted' : JSON.stringify({ jsonrpc: '2.0', error: { code: result.code, message: result.message }, id: null }),
    };
  });

  const postMessage = async (ctx: Context) => {
    const token = ctx.state.token!;
    const id = String(ctx.query.session_id ?? ctx.query.sessionId ?? '');
    const meta = requestMeta(ctx);
    const isJson = Boolean(ctx.is('application/json'));
    if (id && !mcp.sessions.get(id, 'sse') && server.relay) {
      // Not held here: relayed to the replica that holds it, whose answer is ours.
      const reply = await server.relay.forward({ kind: 'sse-message', sessionId: id, payload: { token, meta, isJson, body: ctx.request.body } });
      if (reply) {
        ctx.status = reply.status;
        ctx.set('Cache-Control', 'no-store');
        if (reply.status === 202) {
          ctx.type = 'text/plain';
          ctx.body = 'Accepted';
        } else {
          ctx.type = 'application/json';
          ctx.body = reply.body;
        }
        return;
      }
    }
    const result = deliver(id, token, ctx.state.authInfo!, meta, isJson, ctx.request.body);
    if (result.code !== undefined) return rpcError(ctx, result.status, result.code, result.message!);
    ctx.status = 202;
    ctx.type = 'text/plain';
    ctx.body = 'Accepted';
  };
  const toolScopes = requireToolScopes(server, '/sse');
  router.post('/messages', bearer, readJsonBody({ jsonRpc: true }), toolScopes, postMessage);
  router.post('/messages/', bearer, readJsonBody({ jsonRpc: true }), toolScopes, postMessage);
}
