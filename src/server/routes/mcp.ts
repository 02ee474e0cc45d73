import type Router from '@koa/router';
import type { Context } from 'koa';
import {
  ALL_PROTOCOL_VERSIONS,
  LEGACY_PROTOCOL_VERSIONS,
  MODERN_PROTOCOL_VERSIONS,
  plainToolRequest,
  routeMcpRequest,
  type FastAnswer,
} from '../../mcp/modern-endpoint.js';
import type { McpRuntime } from '../../mcp/runtime.js';
import { relayEventStream } from '../../mcp/sse-transport.js';
import { noteToolsListed } from '../../mcp/session-server.js';
import type { TransportRefusal } from '../../mcp/streamable-transport.js';
import { audit } from '../../oauth/tokens.js';
import { requestMeta, type ServerContext } from '../context.js';
import { readJsonBody } from '../middleware/json-body.js';
import { requireBearer, requireToolScopes } from '../middleware/bearer.js';
import { limitJsonRpcBatches } from '../middleware/json-rpc-batch.js';
import { rpcError, type RpcId } from '../http.js';

function refuse(ctx: Context, refusal: TransportRefusal): void {
  rpcError(ctx, refusal.status, refusal.code, refusal.message);
}

function idOf(body: unknown): RpcId {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const id = (body as { id?: unknown }).id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

/** The JSON-RPC method of a request body, for a log line (bounded, printable). */
function methodOf(body: unknown): string {
  const method = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { method?: unknown }).method : undefined;
  return typeof method === 'string' ? method.replace(/[^\w/.-]/g, '?').slice(0, 60) : 'event';
}

function header(ctx: Context, name: string): string | undefined {
  const value = ctx.get(name);
  return value === '' ? undefined : value;
}

/**
 * Aborts a tool call whose client hung up before the answer (the response's close, not the
 * request's: a request closes as soon as its body has been read).
 */
function abortOnHangUp(ctx: Context): AbortController {
  const abort = new AbortController();
  ctx.res.once('close', () => {
    if (!ctx.res.writableEnded) abort.abort();
  });
  return abort;
}

function reply(ctx: Context, answer: FastAnswer): void {
  ctx.status = answer.status;
  ctx.type = 'application/json';
  ctx.body = answer.json;
}

/** Hop-by-hop and credential headers never handed on to the SDK's handler. */
const NOT_FORWARDED = new Set(['authorization', 'cookie', 'host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'expect']);

/** Says once per client (bounded) that it sends a protocol version header its body contradicts. */
class SkewLog {
  private readonly seen = new Set<string>();
  constructor(private readonly server: ServerContext) {}

  note(clientId: string, what: string): void {
    if (this.seen.has(clientId)) return;
    if (this.seen.size >= 10_000) this.seen.clear();
    this.seen.add(clientId);
    this.server.logger.warn(`MCP client ${clientId} sends ${what} (a known client quirk; logged once per client)`);
  }
}

/**
 * `/mcp`: MCP 2026-07-28 (stateless, per-request `_meta` envelope) and the 2025 revisions
 * (`initialize`, sessions with `Mcp-Session-Id`) on one URL, told apart per request by the SDK's
 * own classifier (DESIGN.md §4). Every request of either era passes the same bearer middleware
 * first: a revoked or expired token is refused on the next request, whatever its era.
 */
export function mountMcpRoutes(router: Router, server: ServerContext, mcp: McpRuntime): void {
  const skews = new SkewLog(server);
  const mcpUrl = `${server.settings.issuer}/mcp`;

  const handle = async (ctx: Context) => {
    const token = ctx.state.token!;
    if (ctx.method === 'POST' && !ctx.is('application/json')) return rpcError(ctx, 415, -32000, 'Unsupported Media Type: send application/json');
    const body: unknown = ctx.request.body;
    const sessionId = header(ctx, 'Mcp-Session-Id');
    const routing = routeMcpRequest(
      {
        httpMethod: ctx.method,
        protocolVersion: header(ctx, 'MCP-Protocol-Version'),
        mcpMethod: header(ctx, 'Mcp-Method'),
        mcpName: header(ctx, 'Mcp-Name'),
        sessionId,
      },
      body,
    );
    if (routing.kind === 'reject') return rpcError(ctx, routing.status, routing.error.code, routing.error.message, routing.id, routing.error.data);
    if (routing.kind === 'modern') {
      if (routing.skew) skews.note(token.clientId, routing.skew);
      return serveModern(ctx, routing.route, routing.protocolVersion);
    }
    return serveLegacy(ctx, sessionId, body, routing.skew);
  };

  /** MCP 2026-07-28: the hot path for plain tools/list and tools/call, the SDK's handler for the rest. */
  const serveModern = async (ctx: Context, route: Parameters<McpRuntime['modern']['fast']>[0], protocolVersion: string) => {
    const abort = abortOnHangUp(ctx);
    const fast = mcp.modern.fast(route, { mcpMethod: header(ctx, 'Mcp-Method'), mcpName: header(ctx, 'Mcp-Name') }, ctx.state.authInfo, abort.signal);
    if (fast) return reply(ctx, await fast);
    const headers = new Headers();
    for (const [name, value] of Object.entries(ctx.req.headers)) {
      if (value === undefined || NOT_FORWARDED.has(name)) continue;
      headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    }
    // The version the request is served at (the body's, when a client's header contradicts it).
    headers.set('mcp-protocol-version', protocolVersion);
    const request = new Request(mcpUrl, { method: ctx.method, headers, signal: abort.signal });
    const response = await mcp.modern.serve(request, ctx.state.authInfo, ctx.request.body);
    ctx.status = response.status;
    response.headers.forEach((value, name) => {
      if (name !== 'content-length') ctx.set(name, value);
    });
    if (!response.body) {
      ctx.body = '';
      return;
    }
    if ((response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      // subscriptions/listen and streamed results: written here rather than by Koa, because a
      // client that hangs up ends such a stream normally (Koa would log it as an error).
      ctx.set('X-Accel-Buffering', 'no');
      ctx.respond = false;
      ctx.res.writeHead(response.status, ctx.response.headers as Record<string, string>);
      ctx.res.flushHeaders();
      // The bound of every event stream (SECURITY.md): a client that stops reading loses the stream.
      const method = methodOf(ctx.request.body);
      const release = method === 'subscriptions/listen' ? mcp.modern.holdListenSubscriptions(ctx.request.body) : undefined;
      void relayEventStream(response.body, ctx.res, server.limits.streamBufferBytes).then((end) => {
        release?.();
        if (end !== 'overflow') return;
        server.logger.warn(
          `MCP client ${ctx.state.token!.clientId} stopped reading its ${method} stream: ` +
            `closed with more than ${server.limits.streamBufferBytes} bytes unsent (limits.streamBufferBytes)`,
        );
      });
      return;
    }
    ctx.body = Buffer.from(await response.arrayBuffer());
  };

  /** The 2025 revisions: Streamable HTTP sessions (MCP 2025-11-25 "Transports"). */
  const serveLegacy = async (ctx: Context, sessionId: string | undefined, body: unknown, skew: string | undefined) => {
    const token = ctx.state.token!;
    if (sessionId) {
      const session = mcp.sessions.get(sessionId, 'streamable-http');
      if (!session) return rpcError(ctx, 404, -32001, 'Session not found', idOf(body));
      if (!mcp.sessions.admit(session, token)) {
        audit(server, requestMeta(ctx), {
          type: 'token.rejected',
          client_id: token.clientId,
          token_id: token.tokenId,
          detail: { reason: 'wrong session owner', path: '/mcp' },
        });
        return rpcError(ctx, 404, -32001, 'Session not found', idOf(body));
      }
      // MCP 2025-11-25 §Protocol Version Header: a version the server does not support is refused
      // (400); any revision this endpoint speaks is served at the session's negotiated one.
      const version = header(ctx, 'MCP-Protocol-Version');
      if (version !== undefined && !ALL_PROTOCOL_VERSIONS.includes(version)) {
        return rpcError(ctx, 400, -32022, `Unsupported protocol version: ${version.slice(0, 40)}`, idOf(body), {
          supported: ALL_PROTOCOL_VERSIONS,
          requested: version.slice(0, 40),
        });
      }
      if (skew) skews.note(token.clientId, skew);
      else if (version !== undefined && version !== session.server.getNegotiatedProtocolVersion() && LEGACY_PROTOCOL_VERSIONS.includes(version)) {
        skews.note(
          token.clientId,
          `MCP-Protocol-Version ${version} on a ${session.server.getNegotiatedProtocolVersion() ?? '2025'} session: served at the session's revision`,
        );
      }
      if (ctx.method === 'DELETE') {
        await mcp.sessions.close(sessionId, 'client closed');
        ctx.status = 200;
        ctx.body = '';
        return;
      }
      // The hot path: a plain tools/list or tools/call on an initialized session, straight from the registry.
      const plain = ctx.method === 'POST' && session.server.getNegotiatedProtocolVersion() !== undefined ? plainToolRequest(body) : undefined;
      if (plain && mcp.fastPath.serves(plain)) {
        if (plain.kind === 'list') noteToolsListed(session.server, mcp.tools);
        ctx.set('Mcp-Session-Id', session.id);
        return reply(ctx, await mcp.fastPath.answer(plain, 'legacy', ctx.state.authInfo, session.id, abortOnHangUp(ctx).signal));
      }
      const refusal =
        ctx.method === 'GET' ? session.channel.handleGet(ctx.req, ctx.res) : session.channel.handlePost(ctx.res, body, ctx.state.authInfo, ctx.get('Accept'));
      if (refusal) return refuse(ctx, refusal);
      ctx.respond = false;
      return;
    }

    if (ctx.method !== 'POST') {
      // Without a session there is no stream to open or end: MCP 2025-11-25 lets a server answer
      // GET with 405, and 2026-07-28 has no GET or DELETE on the endpoint at all.
      ctx.set('Allow', 'POST');
      return rpcError(ctx, 405, -32000, 'Method not allowed: POST a request (2026-07-28), or initialize a session first (2025 revisions)');
    }
    const message = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as { method?: unknown; params?: unknown };
    if (message.method !== 'initialize') {
      return rpcError(
        ctx,
        400,
        -32000,
        `Bad Request: send an initialize request without Mcp-Session-Id to open a session, or a ${MODERN_PROTOCOL_VERSIONS[0]} request with its _meta envelope`,
        idOf(body),
      );
    }
    const params = message.params as Record<string, unknown> | undefined;
    const missing = ['protocolVersion', 'capabilities', 'clientInfo'].filter(
      (key) => typeof params !== 'object' || params === null || params[key] === undefined,
    );
    if (missing.length > 0) {
      return rpcError(ctx, 400, -32602, `Invalid params: initialize needs params with ${missing.join(', ')}`, idOf(body));
    }
    const session = await mcp.sessions.openStreamable(token, requestMeta(ctx));
    const refusal = session.channel.handlePost(ctx.res, body, ctx.state.authInfo);
    if (refusal) {
      await mcp.sessions.close(session.id, 'client closed');
      return refuse(ctx, refusal);
    }
    ctx.respond = false;
  };

  const bearer = requireBearer(server, '/mcp');
  router.post('/mcp', bearer, readJsonBody({ jsonRpc: true }), limitJsonRpcBatches(server.limits.batchSize), requireToolScopes(server, '/mcp'), handle);
  router.get('/mcp', bearer, handle);
  router.delete('/mcp', bearer, handle);
}
