import { z } from 'zod';
import type { CallToolResult, Tool, ToolAnnotations } from '@modelcontextprotocol/server';

/** Who is calling a tool: the verified token's client, never the token itself. */
export interface ToolCaller {
  clientId: string;
  tokenId: string;
  scopes: string[];
  sessionId?: string | undefined;
}

/** A progress update for the caller's request (MCP "Progress": the token is the caller's, added on the way out). */
export interface ToolProgress {
  progress: number;
  total?: number | undefined;
  message?: string | undefined;
}

/** A request to the caller on a tool's behalf (elicitation/create, sampling/createMessage, roots/list). */
export interface ClientRequestOut {
  method: string;
  params?: Record<string, unknown> | undefined;
}

export interface ToolCallContext {
  caller: ToolCaller;
  signal: AbortSignal;
  /**
   * The request's `_meta` as the client sent it, without the progress token and the reserved
   * `io.modelcontextprotocol/*` envelope keys (those belong to this hop). Absent when there was none.
   */
  meta?: Record<string, unknown> | undefined;
  /**
   * Sends a progress notification to the caller; present only when the caller asked for progress.
   * Settles once it is handed to the transport: a tool awaits it before returning, so that the
   * last update is not overtaken by the result (a client drops progress of a finished request).
   */
  progress?: ((update: ToolProgress) => Promise<void>) | undefined;
  /**
   * Asks the caller (MCP "Client Features"): on a 2025 session a request on its stream, for a
   * 2026-07-28 client an `input_required` round. Rejects when the caller did not declare the
   * capability the request needs.
   */
  ask?: ((request: ClientRequestOut, signal: AbortSignal) => Promise<Record<string, unknown>>) | undefined;
}

/** A tool as the registry holds it: the MCP `Tool` listing plus the function that runs it. */
export interface RegisteredTool {
  definition: Tool;
  /**
   * The tool talks to its caller while it runs (progress, cancellation, server-to-client requests:
   * an upstream server's tool). Such calls are served by the SDK's server, never the hot path.
   */
  interactive?: boolean;
  /**
   * The tool exists only for clients that can answer server-to-client requests (an upstream offers
   * it only to a client declaring elicitation, sampling or roots): hidden from clients declaring none.
   */
  needsClientFeatures?: boolean;
  run(args: Record<string, unknown>, context: ToolCallContext): Promise<CallToolResult>;
}

/** A tool call the registry refuses before running it (JSON-RPC InvalidParams). */
export class ToolInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolInputError';
  }
}

export class UnknownToolError extends ToolInputError {
  constructor(readonly toolName: string) {
    super(`unknown tool: ${toolName.slice(0, 100)}`);
    this.name = 'UnknownToolError';
  }
}

/** MCP tool names (SEP-986): 1–64 of letters, digits, `_`, `-`, `.`. */
export const TOOL_NAME = /^[a-zA-Z0-9_.-]{1,64}$/;

export interface ZodToolConfig<In extends z.ZodRawShape, Out extends z.ZodRawShape> {
  title?: string;
  description?: string;
  inputSchema?: In;
  outputSchema?: Out;
  annotations?: ToolAnnotations;
}

/**
 * The tools every transport serves (Streamable HTTP, SSE, /tools): one list, so what a client
 * sees cannot differ by transport. Listeners hear about changes (→ notifications/tools/list_changed).
 */
export class ToolRegistry {
  private readonly tools = new Map<string, RegisteredTool>();
  private readonly listeners = new Set<() => void>();
  private cachedList: Tool[] | undefined;
  private cachedPlainList: Tool[] | undefined;

  add(tool: RegisteredTool): () => void {
    const name = tool.definition.name;
    if (!TOOL_NAME.test(name)) throw new Error(`invalid tool name ${JSON.stringify(name)}: use 1-64 letters, digits, "_", "-" or "."`);
    if (this.tools.has(name)) throw new Error(`a tool named ${name} is already registered`);
    this.tools.set(name, tool);
    this.changed();
    return () => {
      if (this.tools.get(name) === tool) {
        this.tools.delete(name);
        this.changed();
      }
    };
  }

  /** McpServer-style registration with zod shapes; arguments are validated before the handler runs. */
  registerTool<In extends z.ZodRawShape, Out extends z.ZodRawShape>(
    name: string,
    config: ZodToolConfig<In, Out>,
    handler: (args: z.infer<z.ZodObject<In>>, context: ToolCallContext) => CallToolResult | Promise<CallToolResult>,
  ): () => void {
    const input = z.object(config.inputSchema ?? ({} as In));
    const definition: Tool = {
      name,
      ...(config.title ? { title: config.title } : {}),
      ...(config.description ? { description: config.description } : {}),
      inputSchema: toToolSchema(input),
      ...(config.outputSchema ? { outputSchema: toToolSchema(z.object(config.outputSchema)) } : {}),
      ...(config.annotations ? { annotations: config.annotations } : {}),
    };
    return this.add({
      definition,
      async run(args, context) {
        const parsed = input.safeParse(args);
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          throw new ToolInputError(`invalid arguments for ${name}: ${issue.path.join('.') || 'arguments'}: ${issue.message}`);
        }
        return handler(parsed.data as z.infer<z.ZodObject<In>>, context);
      },
    });
  }

  list(): Tool[] {
    this.cachedList ??= [...this.tools.values()].map((t) => t.definition);
    return this.cachedList;
  }

  /** The list a client sees that declares no client features (elicitation, sampling, roots). */
  listWithoutClientFeatures(): Tool[] {
    this.cachedPlainList ??= [...this.tools.values()].filter((t) => t.needsClientFeatures !== true).map((t) => t.definition);
    return this.cachedPlainList;
  }

  /** Whether some tool is listed only to clients with client features (the lists then differ by client). */
  get hasClientFeatureTools(): boolean {
    return this.list().length !== this.listWithoutClientFeatures().length;
  }

  get(name: string): RegisteredTool | undefined {
    return this.tools.get(name);
  }

  async call(name: string, args: unknown, context: ToolCallContext): Promise<CallToolResult> {
    const tool = this.tools.get(name);
    if (!tool) throw new UnknownToolError(name);
    if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
      throw new ToolInputError('tool arguments must be a JSON object');
    }
    return tool.run((args ?? {}) as Record<string, unknown>, context);
  }

  /** How many listeners (one per open session) follow changes. */
  get listenerCount(): number {
    return this.listeners.size;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    this.cachedList = undefined;
    this.cachedPlainList = undefined;
    for (const listener of this.listeners) listener();
  }
}

function toToolSchema(schema: z.ZodObject): Tool['inputSchema'] {
  const json = z.toJSONSchema(schema, { target: 'draft-7', io: 'input' }) as Record<string, unknown>;
  delete json.$schema;
  return { ...json, type: 'object' } as Tool['inputSchema'];
}

/** A result carrying structured content and the same JSON as text, for clients that read only text. */
export function jsonResult(value: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value };
}
