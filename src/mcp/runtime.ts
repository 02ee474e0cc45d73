import type { Server } from '@modelcontextprotocol/server';
import type { EventLog } from '../store/event-log.js';
import type { Store } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { VERSION } from '../shared/version.js';
import { ModernEndpoint, ToolFastPath } from './modern-endpoint.js';
import type { UpstreamCatalog } from './catalog.js';
import { InteractionStore } from './client-requests.js';
import { createSessionServer, followCatalog, followToolChanges, type ToolAudit } from './session-server.js';
import { SessionManager, type SessionManagerDeps } from './sessions.js';
import type { ToolRegistry } from './tool-registry.js';

/** The MCP side of a running app: tools, 2025 sessions and the stateless 2026-07-28 endpoint. */
export interface McpRuntime {
  tools: ToolRegistry;
  /** 2025-era sessions (Streamable HTTP and SSE): the one owner of their life. */
  sessions: SessionManager;
  /** 2026-07-28 requests on /mcp: stateless, served per request. */
  modern: ModernEndpoint;
  /** Plain tools/list and tools/call of either era, answered from the registry. */
  fastPath: ToolFastPath;
  /** A new MCP server (SDK v2) from the factory both eras share. */
  createServer(): Server;
  toolAudit: ToolAudit;
  /** Tool calls running now, over MCP on any transport. */
  readonly callsInFlight: number;
  close(): Promise<void>;
}

export function createMcpRuntime(deps: {
  name: string;
  tools: ToolRegistry;
  catalog?: UpstreamCatalog | undefined;
  store: Store;
  events: EventLog;
  clock: Clock;
  sessionsPerClient?: number;
  streamBufferBytes?: number;
  logger?: Logger;
  sessionLocations?: SessionManagerDeps['locations'];
}): McpRuntime {
  let callsInFlight = 0;
  const toolAudit: ToolAudit = {
    begin() {
      callsInFlight++;
      let ended = false;
      return () => {
        if (!ended) callsInFlight--;
        ended = true;
      };
    },
    called(caller, tool, ms) {
      deps.events.record({
        type: 'tool.called',
        client_id: caller.clientId,
        token_id: caller.tokenId,
        detail: { tool, ms, ...(caller.sessionId ? { session_id: caller.sessionId } : {}) },
      });
    },
    failed(caller, tool, reason) {
      deps.events.record({ type: 'tool.failed', client_id: caller.clientId, token_id: caller.tokenId, detail: { tool, reason: reason.slice(0, 200) } });
    },
  };
  const info = { name: deps.name, version: VERSION };
  const interactions = new InteractionStore();
  const createServer = () => createSessionServer(deps.tools, info, toolAudit, deps.catalog, interactions);
  const sessions = new SessionManager({
    store: deps.store,
    clock: deps.clock,
    events: deps.events,
    createServer,
    follow: (server) => {
      const unfollowTools = followToolChanges(server, deps.tools);
      const unfollowCatalog = deps.catalog?.enabled ? followCatalog(server, deps.catalog) : undefined;
      return () => {
        unfollowTools();
        unfollowCatalog?.();
      };
    },
    maxPerClient: deps.sessionsPerClient,
    ...(deps.streamBufferBytes === undefined ? {} : { streamBufferBytes: deps.streamBufferBytes }),
    locations: deps.sessionLocations,
    logger: deps.logger,
  });
  const fastPath = new ToolFastPath({ registry: deps.tools, info, audit: toolAudit });
  const modern = new ModernEndpoint({ registry: deps.tools, fastPath, createServer, catalog: deps.catalog });
  return {
    tools: deps.tools,
    sessions,
    modern,
    fastPath,
    toolAudit,
    get callsInFlight() {
      return callsInFlight;
    },
    createServer,
    async close() {
      await sessions.closeAll('server shutdown');
      interactions.close();
      await modern.close();
    },
  };
}
