import type { Context, Next } from 'koa';
import type { McpRuntime } from '../../mcp/runtime.js';
import type { RelayReply, SessionRelay } from '../../store/relay.js';
import type { ServerContext } from '../context.js';
import { requireBearer } from './bearer.js';
import { readJsonBody } from './json-body.js';

/** Request headers the holding replica needs to handle a relayed /mcp request as its own. */
const FORWARDED_HEADERS = ['authorization', 'content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'user-agent'];
/** Response headers brought back. */
const RETURNED_HEADERS = ['content-type', 'mcp-session-id', 'cache-control', 'www-authenticate', 'retry-after'];

interface RelayedHttp {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/**
 * Replicas on one Redis, no sticky routing (DESIGN.md §6): a 2025 `/mcp` request whose
 * `Mcp-Session-Id` names a session held by another replica is authenticated here, sent to the
 * holder through Redis, handled there by its own server exactly as if it had arrived there
 * (bearer check and session owner included), and the holder's whole answer is the response.
 * Where each session lives is recorded by the SessionManager (its `locations`).
 *
 * A standalone GET stream cannot be carried this way: it is answered 405, which the 2025
 * transport allows (the client then receives everything on its POST responses).
 */
export function relayForeignSessions(server: ServerContext, mcp: McpRuntime) {
  const relay = server.relay;
  const bearer = requireBearer(server, '/mcp');
  const body = readJsonBody();
  return async function relaySessions(ctx: Context, next: Next): Promise<void> {
    if (!relay || ctx.path !== '/mcp' || ctx.method === 'OPTIONS') return next();
    const sessionId = ctx.get('Mcp-Session-Id');
    if (sessionId && !mcp.sessions.get(sessionId, 'streamable-http')) {
      return bearer(ctx, () =>
        body(ctx, async () => {
          if (ctx.method === 'GET') {
            ctx.status = 405;
            ctx.set('Allow', 'POST, DELETE');
            ctx.body = {
              jsonrpc: '2.0',
              error: { code: -32000, message: 'Method not allowed: this session’s stream is served by another replica; results arrive on POST responses' },
              id: null,
            };
            return;
          }
          const headers: Record<string, string> = {};
          for (const name of FORWARDED_HEADERS) {
            const value = ctx.get(name);
            if (value) headers[name] = value;
          }
          // The holder sees the client's address, as this replica does.
          if (ctx.ip) headers['x-forwarded-for'] = ctx.ip;
          const request: RelayedHttp = {
            method: ctx.method,
            path: '/mcp',
            headers,
            body: ctx.request.body === undefined ? undefined : JSON.stringify(ctx.request.body),
          };
          const reply = await relay.forward({ kind: 'http', sessionId, payload: request });
          if (!reply) {
            ctx.status = 404;
            ctx.set('Cache-Control', 'no-store');
            ctx.body = { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null };
            return;
          }
          ctx.status = reply.status;
          for (const [name, value] of Object.entries(reply.headers ?? {})) ctx.set(name, value);
          ctx.body = reply.body;
        }),
      );
    }
    await next();
  };
}

/**
 * The holding replica's side: a relayed /mcp request is sent to this replica's own listener on
 * loopback, so that it goes through every check a direct request does.
 */
export function serveRelayedRequests(relay: SessionRelay, localUrl: string): void {
  relay.handle('http', async (request): Promise<RelayReply> => {
    const http = request.payload as RelayedHttp;
    const response = await fetch(`${localUrl}${http.path}`, { method: http.method, headers: http.headers, body: http.body });
    const text = await response.text();
    if (response.status === 404) await relay.release(request.sessionId);
    const headers: Record<string, string> = {};
    for (const name of RETURNED_HEADERS) {
      const value = response.headers.get(name);
      if (value) headers[name] = value;
    }
    return { status: response.status, headers, body: text };
  });
}
