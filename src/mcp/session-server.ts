import {
  CLIENT_CAPABILITIES_META_KEY,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  type AuthInfo,
  type CallToolResult,
  type ClientCapabilities,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { assertClientCapability, declaresClientFeatures, type InteractionStore } from './client-requests.js';
import type { CatalogChange, UpstreamCatalog } from './catalog.js';
import { ToolInputError, UnknownToolError, type ToolCallContext, type ToolCaller, type ToolRegistry } from './tool-registry.js';

/** What a call carries besides caller and signal: the request's `_meta` and a way to report progress. */
export type ToolCallExtras = Pick<ToolCallContext, 'meta' | 'progress' | 'ask'>;

export interface ToolAudit {
  called(caller: ToolCaller, tool: string, ms: number): void;
  failed(caller: ToolCaller, tool: string, reason: string): void;
  /** A call starts; the function returned is called when it ends (graceful shutdown waits for them). */
  begin?(): () => void;
}

/** The caller a verified bearer token stands for, as the bearer middleware hands it to the SDK. */
export function callerFromAuth(auth: AuthInfo | undefined, sessionId: string | undefined): ToolCaller {
  return {
    clientId: auth?.clientId ?? 'unknown',
    tokenId: typeof auth?.extra?.tokenId === 'string' ? auth.extra.tokenId : 'unknown',
    scopes: auth?.scopes ?? [],
    sessionId,
  };
}

/**
 * Runs one `tools/call` for an MCP client, whichever era and path it came by, and records it.
 * An unknown tool is a protocol error (-32602, MCP 2025-11-25 "Tools" §Error Handling); invalid
 * arguments and a tool's own failure are a result with `isError: true`, so that the model sees
 * the message and can correct itself (what the SDK's `McpServer` answers too).
 */
export async function callToolFor(
  registry: ToolRegistry,
  audit: ToolAudit,
  caller: ToolCaller,
  name: string,
  args: unknown,
  signal: AbortSignal,
  extras: ToolCallExtras = {},
): Promise<CallToolResult> {
  const started = Date.now();
  const end = audit.begin?.();
  try {
    const result = await registry.call(name, args, { caller, signal, ...extras });
    if (result.isError) audit.failed(caller, name, 'tool reported an error');
    else audit.called(caller, name, Date.now() - started);
    return result;
  } catch (error) {
    if (error instanceof UnknownToolError) {
      audit.failed(caller, name, error.message);
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${error.toolName.slice(0, 100)}`);
    }
    const message = error instanceof Error ? error.message : String(error);
    audit.failed(caller, name, message);
    if (error instanceof ToolInputError) return { content: [{ type: 'text', text: message }], isError: true };
    return { content: [{ type: 'text', text: `Tool ${name} failed: ${message}` }], isError: true };
  } finally {
    // After the handler returns the SDK sends the result; let it reach the transport first.
    if (end) setImmediate(end);
  }
}

/**
 * The request's `_meta` (the SDK has already lifted the `io.modelcontextprotocol/*` envelope out of
 * it) without the progress token, and a progress reporter when the client sent one (MCP "Progress":
 * notifications carry the client's own token, related to its request so they travel on its stream).
 */
export function callExtras(ctx: ServerContext): ToolCallExtras {
  const { progressToken, ...meta } = ctx.mcpReq._meta ?? {};
  const extras: ToolCallExtras = {};
  if (Object.keys(meta).length > 0) extras.meta = meta;
  if (progressToken !== undefined) {
    extras.progress = (update) => {
      const params = {
        progressToken,
        progress: update.progress,
        ...(update.total !== undefined ? { total: update.total } : {}),
        ...(update.message !== undefined ? { message: update.message } : {}),
      };
      return ctx.mcpReq.notify({ method: 'notifications/progress', params }).catch(() => undefined);
    };
  }
  return extras;
}

/** The longest timer Node arms: a request to a person (an elicitation) waits as long as the call does. */
const NO_TIMEOUT_MS = 2_147_483_647;

/** The client capabilities a 2026-07-28 request states in its `_meta` envelope. */
function envelopeCapabilities(ctx: ServerContext): ClientCapabilities | undefined {
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const capabilities = envelope?.[CLIENT_CAPABILITIES_META_KEY];
  return typeof capabilities === 'object' && capabilities !== null ? (capabilities as ClientCapabilities) : undefined;
}

export interface McpServerInfo {
  name: string;
  version: string;
}

export const serverInstructions = (name: string) => `Tools of ${name}, served by cupcake-mcp.`;

/**
 * One MCP server (SDK v2) for one serving unit: a 2025 session (Streamable HTTP or SSE), or one
 * 2026-07-28 request. The same factory serves both eras, so what a client sees cannot differ by
 * era. Tools come from the shared registry through the low-level handlers, so registry tools with
 * plain JSON schemas (upstream servers) and zod tools are served alike.
 */
export function createSessionServer(
  registry: ToolRegistry,
  info: McpServerInfo,
  audit: ToolAudit,
  catalog?: UpstreamCatalog,
  interactions?: InteractionStore,
): Server {
  const offersCatalog = catalog?.enabled === true;
  const server = new Server(
    { name: info.name, version: info.version },
    {
      capabilities: {
        tools: { listChanged: true },
        // Upstream servers' resources, prompts and completions (DESIGN.md §5), when there are upstreams.
        ...(offersCatalog ? { resources: { subscribe: true, listChanged: true }, prompts: { listChanged: true }, completions: {} } : {}),
      },
      instructions: serverInstructions(info.name),
    },
  );
  server.setRequestHandler('tools/list', (_request, ctx) => {
    noteToolsListed(server, registry);
    // Tools that ask their caller are listed to clients that can answer (as the upstream lists them).
    const capabilities = server.getClientCapabilities() ?? envelopeCapabilities(ctx);
    return { tools: declaresClientFeatures(capabilities) ? registry.list() : registry.listWithoutClientFeatures() };
  });
  server.setRequestHandler('tools/call', (request, ctx) => {
    const caller = callerFromAuth(ctx.http?.authInfo, ctx.sessionId);
    const { name, arguments: args } = request.params;
    const extras = callExtras(ctx);
    const capabilities = server.getClientCapabilities() ?? envelopeCapabilities(ctx);
    const modern = ctx.mcpReq.envelope !== undefined && ctx.sessionId === undefined;
    if (!modern) {
      // 2025 era: a request on the session's stream, related to this call (MCP 2025-11-25 "Client Features").
      extras.ask = (out, signal) => {
        assertClientCapability(capabilities, out.method);
        return ctx.mcpReq.send(out as never, { signal, timeout: NO_TIMEOUT_MS }) as Promise<Record<string, unknown>>;
      };
      return callToolFor(registry, audit, caller, name, args, ctx.mcpReq.signal, extras);
    }
    if (!interactions || registry.get(name)?.interactive !== true || !declaresClientFeatures(capabilities)) {
      extras.ask = async (out) => {
        assertClientCapability(capabilities, out.method);
        throw new ProtocolError(ProtocolErrorCode.InvalidRequest, `${out.method} cannot reach this client`);
      };
      return callToolFor(registry, audit, caller, name, args, ctx.mcpReq.signal, extras);
    }
    // 2026-07-28: the call may take several rounds (input_required); it lives in the store between them.
    return interactions.serve(
      caller.clientId,
      ctx.mcpReq.requestState<string>(),
      ctx.mcpReq.inputResponses,
      { signal: ctx.mcpReq.signal, progress: extras.progress },
      (flow) =>
        callToolFor(registry, audit, caller, name, args, flow.signal, {
          meta: extras.meta,
          progress: flow.progress,
          ask: (out) => {
            assertClientCapability(capabilities, out.method);
            return flow.ask(out);
          },
        }),
    );
  });
  if (catalog && offersCatalog) serveCatalog(server, catalog);
  return server;
}

/** resources/*, prompts/* and completion/complete from the upstream catalog. */
function serveCatalog(server: Server, catalog: UpstreamCatalog): void {
  server.setRequestHandler('resources/list', () => ({ resources: catalog.resources() }));
  server.setRequestHandler('resources/templates/list', () => ({ resourceTemplates: catalog.templates() }));
  server.setRequestHandler('resources/read', (request, ctx) => catalog.read(request.params.uri, ctx.mcpReq.signal));
  server.setRequestHandler('prompts/list', () => ({ prompts: catalog.prompts() }));
  server.setRequestHandler('prompts/get', (request, ctx) => catalog.getPrompt(request.params.name, request.params.arguments, ctx.mcpReq.signal));
  server.setRequestHandler('completion/complete', (request, ctx) => catalog.complete(request.params, ctx.mcpReq.signal));
  // MCP 2025-11-25 "Resources" §Subscriptions: per session; the upstream is subscribed while anyone is.
  server.setRequestHandler('resources/subscribe', async (request) => {
    await catalog.subscribe(request.params.uri, server);
    return {};
  });
  server.setRequestHandler('resources/unsubscribe', async (request) => {
    await catalog.unsubscribe(request.params.uri, server);
    return {};
  });
}

/**
 * Follows catalog changes for a session server: resources and prompts list_changed (the changes of
 * one event-loop turn once per kind) and resources/updated for the URIs it subscribed to.
 */
export function followCatalog(server: Server, catalog: UpstreamCatalog): () => void {
  const pending = new Set<CatalogChange>();
  let scheduled: NodeJS.Immediate | undefined;
  const offChange = catalog.onChange((change) => {
    pending.add(change);
    scheduled ??= setImmediate(() => {
      scheduled = undefined;
      if (pending.has('resources')) server.sendResourceListChanged().catch(() => undefined);
      if (pending.has('prompts')) server.sendPromptListChanged().catch(() => undefined);
      pending.clear();
    });
  });
  const offUpdated = catalog.onUpdated((uri) => {
    if (catalog.isSubscribed(uri, server)) server.sendResourceUpdated({ uri }).catch(() => undefined);
  });
  return () => {
    offChange();
    offUpdated();
    if (scheduled) clearImmediate(scheduled);
    catalog.dropSubscriber(server);
  };
}

/** What a session was last told about the tool list (MCP "Tools" §List Changed Notification). */
interface ToolListView {
  /** The list the session last fetched (or had when it opened), as a signature. */
  seen: string;
  /** A list_changed went out and the session has not listed tools since. */
  stale: boolean;
}

const views = new WeakMap<Server, ToolListView>();
const signatures = new WeakMap<readonly unknown[], string>();

/** The tool list as clients see it, as one string (cached per version of the list). */
export function toolListSignature(registry: ToolRegistry): string {
  const tools = registry.list();
  let signature = signatures.get(tools);
  if (signature === undefined) {
    signature = JSON.stringify(tools);
    signatures.set(tools, signature);
  }
  return signature;
}

/** A session fetched the tool list: later changes are news to it again. */
export function noteToolsListed(server: Server, registry: ToolRegistry): void {
  const view = views.get(server);
  if (!view) return;
  view.seen = toolListSignature(registry);
  view.stale = false;
}

/**
 * Follows registry changes for a session server (2025 era: `notifications/tools/list_changed` on
 * the session); returns the function that stops following. One notification per actual change:
 * changes of one turn of the event loop (an upstream's whole tool set leaving or arriving) are
 * taken together, nothing is sent when the list is what the session last fetched, and after one
 * notification nothing more until the session lists tools again (it knows its list is stale).
 * An upstream restart thus reaches a session as one list_changed, not one per tool.
 */
export function followToolChanges(server: Server, registry: ToolRegistry): () => void {
  const view: ToolListView = { seen: toolListSignature(registry), stale: false };
  views.set(server, view);
  let scheduled: NodeJS.Immediate | undefined;
  const off = registry.onChange(() => {
    scheduled ??= setImmediate(() => {
      scheduled = undefined;
      if (view.stale || toolListSignature(registry) === view.seen) return;
      view.stale = true;
      server.sendToolListChanged().catch(() => undefined);
    });
  });
  return () => {
    off();
    if (scheduled) clearImmediate(scheduled);
    views.delete(server);
  };
}
