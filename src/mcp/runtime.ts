import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { EventLog } from '../store/event-log.js';
import type { Store } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import { VERSION } from '../shared/version.js';
import { createSessionServer, type ToolAudit } from './session-server.js';
import { SessionManager } from './sessions.js';
import type { SseServerTransport } from './sse-transport.js';
import type { StreamableHttpSessionTransport } from './streamable-transport.js';
import type { ToolRegistry } from './tool-registry.js';

/** The MCP side of a running app: tools, open sessions and their transports. */
export interface McpRuntime {
  tools: ToolRegistry;
  sessions: SessionManager;
  streamable: Map<string, StreamableHttpSessionTransport>;
  sse: Map<string, SseServerTransport>;
  /** A new MCP server for one session. */
  createServer(): Server;
  toolAudit: ToolAudit;
  /** Tool calls running now, over MCP on any transport. */
  readonly callsInFlight: number;
  close(): Promise<void>;
}

export function createMcpRuntime(deps: { name: string; tools: ToolRegistry; store: Store; events: EventLog; clock: Clock; sessionsPerClient?: number }): McpRuntime {
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
      deps.events.record({ type: 'tool.called', client_id: caller.clientId, token_id: caller.tokenId, detail: { tool, ms, ...(caller.sessionId ? { session_id: caller.sessionId } : {}) } });
    },
    failed(caller, tool, reason) {
      deps.events.record({ type: 'tool.failed', client_id: caller.clientId, token_id: caller.tokenId, detail: { tool, reason: reason.slice(0, 200) } });
    },
  };
  const sessions = new SessionManager(
    deps.store,
    deps.clock,
    (session, reason) => {
      deps.events.record({ type: 'session.closed', client_id: session.clientId, detail: { transport: session.transport, session_id: session.id, reason } });
    },
    1_000,
    deps.sessionsPerClient,
  );
  return {
    tools: deps.tools,
    sessions,
    streamable: new Map(),
    sse: new Map(),
    toolAudit,
    get callsInFlight() {
      return callsInFlight;
    },
    createServer: () => createSessionServer(deps.tools, { name: deps.name, version: VERSION }, toolAudit),
    close: () => sessions.closeAll('server shutdown'),
  };
}
