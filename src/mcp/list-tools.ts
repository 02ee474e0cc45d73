import {
  isJSONRPCErrorResponse,
  isJSONRPCResultResponse,
  LATEST_PROTOCOL_VERSION,
  specTypeSchemas,
  type AuthInfo,
  type JSONRPCMessage,
  type Server,
  type Tool,
  type Transport,
} from '@modelcontextprotocol/server';

/**
 * A transport that talks to one session server inside this process: each request is handed to
 * the server with the caller's AuthInfo, exactly as the HTTP transports do, and resolves with
 * the server's answer.
 */
class LoopbackTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: ((message: JSONRPCMessage, extra?: { authInfo?: AuthInfo }) => void) | undefined;
  private readonly waiting = new Map<number, { resolve(result: unknown): void; reject(error: Error): void }>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly authInfo: AuthInfo) {}

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage): Promise<void> {
    if (!isJSONRPCResultResponse(message) && !isJSONRPCErrorResponse(message)) return; // notifications to the client: none expected
    const waiter = typeof message.id === 'number' ? this.waiting.get(message.id) : undefined;
    if (!waiter) return;
    this.waiting.delete(message.id as number);
    if (isJSONRPCErrorResponse(message)) waiter.reject(new Error(message.error.message));
    else waiter.resolve(message.result);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiting.values()) waiter.reject(new Error('session closed'));
    this.waiting.clear();
    this.onclose?.();
  }

  request(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.onmessage?.({ jsonrpc: '2.0', id, method, params }, { authInfo: this.authInfo });
    });
  }

  notify(method: string): void {
    this.onmessage?.({ jsonrpc: '2.0', method }, { authInfo: this.authInfo });
  }
}

/**
 * The tools a verified token sees, obtained the way an MCP client obtains them at /mcp: a new
 * session server from the same factory, `initialize`, then `tools/list`, with the token's
 * AuthInfo on every message. Whatever decides what /mcp lists decides this list too.
 */
export async function listToolsAs(createServer: () => Server, authInfo: AuthInfo): Promise<Tool[]> {
  const server = createServer();
  const transport = new LoopbackTransport(authInfo);
  await server.connect(transport);
  try {
    await transport.request('initialize', {
      protocolVersion: LATEST_PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'cupcake-mcp sign-in test', version: '1' },
    });
    transport.notify('notifications/initialized');
    const tools: Tool[] = [];
    let cursor: string | undefined;
    // tools/list may be paginated (MCP "Pagination"); a bounded loop reads every page.
    for (let page = 0; page < 100; page++) {
      const checked = specTypeSchemas.ListToolsResult['~standard'].validate(await transport.request('tools/list', cursor ? { cursor } : {}));
      if (checked.issues !== undefined) throw new Error('tools/list answered with a result that is not a ListToolsResult');
      const result = checked.value;
      tools.push(...result.tools);
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    return tools;
  } finally {
    await server.close();
  }
}
