import {
  classifyInboundRequest,
  createMcpHandler,
  ProtocolError,
  SUPPORTED_PROTOCOL_VERSIONS,
  type AuthInfo,
  type InboundClassificationOutcome,
  type InboundModernRoute,
  type McpHttpHandler,
  type Server,
} from '@modelcontextprotocol/server';
import { callToolFor, callerFromAuth, toolListSignature, type McpServerInfo, type ToolAudit } from './session-server.js';
import type { UpstreamCatalog } from './catalog.js';
import type { ToolRegistry } from './tool-registry.js';

/** The revisions served statelessly with the per-request `_meta` envelope (MCP 2026-07-28). */
export const MODERN_PROTOCOL_VERSIONS: readonly string[] = ['2026-07-28'];
/** The 2025-era revisions (`initialize` and sessions) the SDK serves. */
export const LEGACY_PROTOCOL_VERSIONS: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS;
/** Every revision `/mcp` speaks, newest first: what an unsupported-version error lists. */
export const ALL_PROTOCOL_VERSIONS: readonly string[] = [...MODERN_PROTOCOL_VERSIONS, ...LEGACY_PROTOCOL_VERSIONS];

const VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';
const SERVER_INFO_KEY = 'io.modelcontextprotocol/serverInfo';

/** The request headers that decide the era and are checked against the body (MCP 2026-07-28 "Transports"). */
export interface McpRequestHeaders {
  httpMethod: string;
  protocolVersion?: string | undefined;
  mcpMethod?: string | undefined;
  mcpName?: string | undefined;
  sessionId?: string | undefined;
}

/** How to serve one `/mcp` request, decided from its headers and body alone. */
export type McpRouting =
  | { kind: 'reject'; status: number; error: { code: number; message: string; data?: unknown }; id: string | number | null }
  | { kind: 'modern'; route: InboundModernRoute; protocolVersion: string; skew?: string | undefined }
  | { kind: 'legacy'; skew?: string | undefined };

/** The protocol version a body's `_meta` envelope names (MCP 2026-07-28: every request carries it). */
export function envelopeVersionOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const params = (body as { params?: unknown }).params;
  if (typeof params !== 'object' || params === null) return undefined;
  const meta = (params as { _meta?: unknown })._meta;
  if (typeof meta !== 'object' || meta === null) return undefined;
  const version = (meta as Record<string, unknown>)[VERSION_KEY];
  return typeof version === 'string' ? version : undefined;
}

function requestIdOf(body: unknown): string | number | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const id = (body as { id?: unknown }).id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

/**
 * Tells the eras apart as the SDK's `isLegacyRequest` does (it runs the SDK's own classifier),
 * after correcting for the header skew real clients send:
 *
 * - Claude's connectors send a 2026-07-28 body (`_meta` version 2026-07-28) with the header
 *   `MCP-Protocol-Version: 2025-11-25` (anthropics/claude-code#93290). The body's envelope is
 *   the request's own statement of its revision, so it is served by the envelope.
 * - After negotiating a 2025 revision with `initialize`, Claude's connector sends its newest
 *   revision in the header of later requests on the session (OneUptime#3707). A claim-less body
 *   on a session is 2025 traffic and is served at the session's negotiated revision.
 *
 * Everything else is the SDK's ladder unchanged: Mcp-Method/Mcp-Name mismatches stay -32020,
 * a version nobody supports stays -32022, a missing envelope or capabilities stays -32602.
 */
export function routeMcpRequest(headers: McpRequestHeaders, body: unknown): McpRouting {
  let protocolVersion = headers.protocolVersion;
  let skew: string | undefined;
  const claimed = envelopeVersionOf(body);
  if (
    claimed !== undefined &&
    MODERN_PROTOCOL_VERSIONS.includes(claimed) &&
    protocolVersion !== undefined &&
    LEGACY_PROTOCOL_VERSIONS.includes(protocolVersion)
  ) {
    skew = `MCP-Protocol-Version ${protocolVersion} with a ${claimed} body: served by the body`;
    protocolVersion = claimed;
  } else if (claimed === undefined && headers.sessionId && protocolVersion !== undefined && MODERN_PROTOCOL_VERSIONS.includes(protocolVersion)) {
    skew = `MCP-Protocol-Version ${protocolVersion} on a 2025 session: served at the session's revision`;
    protocolVersion = undefined;
  }
  const outcome: InboundClassificationOutcome = classifyInboundRequest({
    httpMethod: headers.httpMethod,
    protocolVersionHeader: protocolVersion,
    mcpMethodHeader: headers.mcpMethod,
    mcpNameHeader: headers.mcpName,
    body,
  });
  if (outcome.kind === 'reject') {
    return {
      kind: 'reject',
      status: outcome.httpStatus,
      error: { code: outcome.code, message: outcome.message, ...(outcome.data === undefined ? {} : { data: outcome.data }) },
      id: requestIdOf(body),
    };
  }
  if (outcome.kind === 'legacy') return { kind: 'legacy', skew };
  return { kind: 'modern', route: outcome, protocolVersion: protocolVersion ?? outcome.classification.revision ?? MODERN_PROTOCOL_VERSIONS[0]!, skew };
}

/** A JSON-RPC answer the hot path produced: the HTTP status and the serialized body. */
export interface FastAnswer {
  status: number;
  json: string;
}

const PLAIN_LIST_PARAMS = new Set(['_meta']);
const PLAIN_CALL_PARAMS = new Set(['name', 'arguments', '_meta']);

function onlyKeys(value: Record<string, unknown>, allowed: Set<string>): boolean {
  for (const key in value) if (!allowed.has(key)) return false;
  return true;
}

/** A plain `tools/list` or `tools/call` the hot path may answer; anything else is undefined. */
export type PlainToolRequest =
  | { id: string | number; kind: 'list' }
  | { id: string | number; kind: 'call'; name: string; args: Record<string, unknown> | undefined };

/**
 * Recognizes the two requests clients send most, in their plain form: no cursor, no progress
 * token, no params beyond name/arguments/_meta, params of the right shape. Everything else is
 * left to the SDK's server, which validates and answers it.
 */
export function plainToolRequest(message: unknown): PlainToolRequest | undefined {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined;
  const request = message as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  if (request.jsonrpc !== '2.0' || (typeof request.id !== 'string' && typeof request.id !== 'number')) return undefined;
  if (request.params !== undefined && (typeof request.params !== 'object' || request.params === null || Array.isArray(request.params))) return undefined;
  const params = (request.params ?? {}) as Record<string, unknown>;
  const meta = params._meta;
  if (meta !== undefined && (typeof meta !== 'object' || meta === null || 'progressToken' in meta)) return undefined;
  if (request.method === 'tools/list') return onlyKeys(params, PLAIN_LIST_PARAMS) ? { id: request.id, kind: 'list' } : undefined;
  if (request.method !== 'tools/call' || typeof params.name !== 'string' || !onlyKeys(params, PLAIN_CALL_PARAMS)) return undefined;
  const args = params.arguments;
  if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) return undefined;
  return { id: request.id, kind: 'call', name: params.name, args: args as Record<string, unknown> | undefined };
}

/**
 * The hot path of both eras: answers a plain `tools/list` or `tools/call` straight from the
 * registry, serialized once per tool list version, without a server instance in between (the
 * SDK v2's Server costs about 12 µs more per request than v1's did). It answers exactly what the
 * SDK's Server answers for the same request in the same era (test/integration/mcp-modern.test.ts
 * sends the same requests to both).
 */
export class ToolFastPath {
  private listCache: { tools: unknown; legacy: string; modern: string } | undefined;
  private readonly serverInfoMeta: Record<string, unknown>;

  constructor(private readonly deps: { registry: ToolRegistry; info: McpServerInfo; audit: ToolAudit }) {
    this.serverInfoMeta = { [SERVER_INFO_KEY]: { name: deps.info.name, version: deps.info.version } };
  }

  /**
   * Whether the hot path may answer this request: not a call of an interactive tool (an upstream
   * server's), whose progress, cancellation and server-to-client requests need the SDK's server,
   * nor a tool list that depends on the client's capabilities.
   */
  serves(request: PlainToolRequest): boolean {
    // A list that differs by the client's capabilities is the SDK path's to answer.
    if (request.kind === 'list') return !this.deps.registry.hasClientFeatureTools;
    return this.deps.registry.get(request.name)?.interactive !== true;
  }

  answer(
    request: PlainToolRequest,
    era: 'legacy' | 'modern',
    authInfo: AuthInfo | undefined,
    sessionId: string | undefined,
    signal: AbortSignal,
  ): FastAnswer | Promise<FastAnswer> {
    if (request.kind === 'list') return { status: 200, json: `{"jsonrpc":"2.0","id":${JSON.stringify(request.id)},"result":${this.toolsList(era)}}` };
    return this.call(request, era, authInfo, sessionId, signal);
  }

  private async call(
    request: Extract<PlainToolRequest, { kind: 'call' }>,
    era: 'legacy' | 'modern',
    authInfo: AuthInfo | undefined,
    sessionId: string | undefined,
    signal: AbortSignal,
  ): Promise<FastAnswer> {
    try {
      const result = await callToolFor(this.deps.registry, this.deps.audit, callerFromAuth(authInfo, sessionId), request.name, request.args, signal);
      // MCP 2026-07-28: every result says it is complete and names the server; a tool's own _meta wins.
      const body = era === 'modern' ? { ...result, resultType: 'complete', _meta: { ...this.serverInfoMeta, ...(result._meta ?? {}) } } : result;
      return { status: 200, json: `{"jsonrpc":"2.0","id":${JSON.stringify(request.id)},"result":${JSON.stringify(body)}}` };
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return {
        status: 200,
        json: JSON.stringify({
          jsonrpc: '2.0',
          id: request.id,
          error: { code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) },
        }),
      };
    }
  }

  /** The `tools/list` result of each era, serialized once per version of the tool list. */
  private toolsList(era: 'legacy' | 'modern'): string {
    const tools = this.deps.registry.list();
    if (this.listCache?.tools !== tools) {
      this.listCache = {
        tools,
        legacy: JSON.stringify({ tools }),
        // MCP 2026-07-28 "Caching" (SEP-2549): list results carry ttlMs and cacheScope. The tool
        // list can change at any time (upstream servers come and go), so nothing may be reused:
        // the SDK's conservative defaults, which its own path emits too.
        modern: JSON.stringify({ tools, resultType: 'complete', ttlMs: 0, cacheScope: 'private', _meta: this.serverInfoMeta }),
      };
    }
    return this.listCache[era];
  }
}

/**
 * 2026-07-28 requests on `/mcp`, stateless. Everything is served by the SDK v2's
 * `createMcpHandler` (strict: 2025 traffic never reaches it) from the factory the 2025 sessions
 * use, except the two requests clients send most, plain `tools/list` and `tools/call`, which a
 * hot path answers without building a server and a web Request per call. The hot path answers
 * byte-for-byte what the SDK answers (test/integration/mcp-modern.test.ts runs both on the same
 * requests); any request it is not sure of (a cursor, a progress token, extra params, params of
 * the wrong shape) goes to the SDK.
 */
/** Resources one listen stream may have subscribed at upstream servers (the rest are not followed). */
const MAX_LISTEN_SUBSCRIPTIONS = 100;

export class ModernEndpoint {
  readonly handler: McpHttpHandler;
  private readonly unfollow: () => void;

  constructor(private readonly deps: { registry: ToolRegistry; fastPath: ToolFastPath; createServer: () => Server; catalog?: UpstreamCatalog | undefined }) {
    this.handler = createMcpHandler(() => deps.createServer(), {
      legacy: 'reject',
      // Called for every refused request too (each already answered with its JSON-RPC error).
      onerror: () => undefined,
    });
    // MCP 2026-07-28: clients hear of tool list changes on their subscriptions/listen stream;
    // the changes of one event-loop turn once, and only when the list differs from the last one announced.
    let announced = toolListSignature(deps.registry);
    let scheduled: NodeJS.Immediate | undefined;
    const off = deps.registry.onChange(() => {
      scheduled ??= setImmediate(() => {
        scheduled = undefined;
        const now = toolListSignature(deps.registry);
        if (now === announced) return;
        announced = now;
        this.handler.notify.toolsChanged();
      });
    });
    const offCatalog = deps.catalog?.onChange((change) =>
      change === 'resources' ? this.handler.notify.resourcesChanged() : this.handler.notify.promptsChanged(),
    );
    const offUpdated = deps.catalog?.onUpdated((uri) => this.handler.notify.resourceUpdated(uri));
    this.unfollow = () => {
      off();
      offCatalog?.();
      offUpdated?.();
      if (scheduled) clearImmediate(scheduled);
    };
  }

  /**
   * The hot path: a JSON answer for a plain `tools/list` or `tools/call`, or undefined when the
   * SDK must serve the request.
   */
  fast(
    route: InboundModernRoute,
    headers: Pick<McpRequestHeaders, 'mcpMethod' | 'mcpName'>,
    authInfo: AuthInfo | undefined,
    signal: AbortSignal,
  ): Promise<FastAnswer> | FastAnswer | undefined {
    if (route.messageKind !== 'request') return undefined;
    // The classifier checked the envelope's shape; the revision it names and the Mcp-Name header
    // are checked later on the SDK's ladder (-32022, -32020): anything but the plain case goes there.
    if (route.classification.revision === undefined || !MODERN_PROTOCOL_VERSIONS.includes(route.classification.revision)) return undefined;
    if (headers.mcpMethod !== route.message.method) return undefined;
    const plain = plainToolRequest(route.message);
    if (!plain || !this.deps.fastPath.serves(plain)) return undefined;
    if (plain.kind === 'list' ? headers.mcpName !== undefined : headers.mcpName !== plain.name) return undefined;
    return this.deps.fastPath.answer(plain, 'modern', authInfo, undefined, signal);
  }

  /**
   * MCP 2026-07-28 subscriptions/listen: the catalog relays updates only of URIs someone has
   * subscribed at their upstream, so the resources a listen stream asks for
   * (`notifications.resourceSubscriptions`) are subscribed there while it is open, as a 2025
   * session's resources/subscribe is. Returns the release to call when the stream ends.
   */
  holdListenSubscriptions(message: unknown): (() => void) | undefined {
    const catalog = this.deps.catalog;
    const uris = (message as { params?: { notifications?: { resourceSubscriptions?: unknown } } } | undefined)?.params?.notifications?.resourceSubscriptions;
    if (!catalog?.enabled || !Array.isArray(uris)) return undefined;
    const stream = {};
    for (const uri of uris.slice(0, MAX_LISTEN_SUBSCRIPTIONS)) {
      // An upstream that refuses is the same as one that never sends: the stream stays open.
      if (typeof uri === 'string' && catalog.canSubscribe(uri)) void catalog.subscribe(uri, stream).catch(() => undefined);
    }
    return () => catalog.dropSubscriber(stream);
  }

  /** The SDK's path: one fresh server from the shared factory serves the request. */
  serve(request: Request, authInfo: AuthInfo | undefined, parsedBody: unknown): Promise<Response> {
    return this.handler.fetch(request, { ...(authInfo ? { authInfo } : {}), parsedBody });
  }

  async close(): Promise<void> {
    this.unfollow();
    await this.handler.close();
  }
}
