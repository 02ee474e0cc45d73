import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { ToolInputError, type ToolCaller, type ToolRegistry } from './tool-registry.js';

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
 * One MCP server per session (the SDK's Server connects to one transport). Tools come from the
 * shared registry through the low-level handlers, so registry tools with plain JSON schemas
 * (upstream servers) and zod tools are served alike.
 */
export function createSessionServer(registry: ToolRegistry, info: { name: string; version: string }, audit: ToolAudit): Server {
  const server = new Server(
    { name: info.name, version: info.version },
    {
      capabilities: { tools: { listChanged: true } },
      instructions: `Tools of ${info.name}, served by cupcake-mcp.`,
    },
  );
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: registry.list() }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const caller = callerFromAuth(extra.authInfo, extra.sessionId);
    const name = request.params.name;
    const started = Date.now();
    const end = audit.begin?.();
    try {
      const result = await registry.call(name, request.params.arguments, { caller, signal: extra.signal });
      if (result.isError) audit.failed(caller, name, 'tool reported an error');
      else audit.called(caller, name, Date.now() - started);
      return result;
    } catch (error) {
      if (error instanceof ToolInputError) {
        audit.failed(caller, name, error.message);
        throw new McpError(ErrorCode.InvalidParams, error.message);
      }
      const message = error instanceof Error ? error.message : String(error);
      audit.failed(caller, name, message);
      // MCP: a tool's own failure is a result with isError, so the model can see and react to it.
      return { content: [{ type: 'text', text: `Tool ${name} failed: ${message}` }], isError: true };
    } finally {
      // After the handler returns the SDK sends the result; let it reach the transport first.
      if (end) setImmediate(end);
    }
  });
  const unsubscribe = registry.onChange(() => {
    server.sendToolListChanged().catch(() => undefined);
  });
  const previous = server.onclose;
  server.onclose = () => {
    unsubscribe();
    previous?.();
  };
  return server;
}
