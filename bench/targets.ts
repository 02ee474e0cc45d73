/**
 * The peers the bench compares `cupcake-mcp serve` with (serve-target.ts), each started in its own
 * process (target-process.ts) so that the load generator and the server do not share a core's
 * event loop. `cupcake-app` is cupcake's `createApp` in-process with the default limits, kept for
 * P2 (its unauthenticated twin passes `createApp` a token verifier that checks nothing) and to
 * show what serve adds to the app.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { TokenVerifier, VerifiedToken } from '../src/oauth/tokens.js';
import express from 'express';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { isInitializeRequest, type CallToolResult as CallToolResultV1 } from '@modelcontextprotocol/sdk/types.js';
import { createMcpHandler, McpServer as McpServerV2 } from '@modelcontextprotocol/server';
import { requireBearerAuth as requireBearerAuthV2 } from '@modelcontextprotocol/express';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { ConfigSchema } from '../src/config/schema.js';
import { createApp } from '../src/server/app.js';
import { startServer } from '../src/server/start.js';
import { createToolset } from '../src/mcp/toolset.js';
import { openFileStore } from '../src/store/file-store.js';
import { createFileEventLog } from '../src/store/event-log.js';
import { generateAccessToken, hashPassword } from '../src/oauth/secrets.js';
import { DocsIndex } from '../src/mcp/docs/docs-index.js';
import { documentUrl } from '../src/mcp/docs/docs-tools.js';
import { jsonResult } from '../src/mcp/tool-registry.js';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { silentLogger } from '../src/shared/logger.js';
import { BENCH_DOCS, BENCH_OWNER_PASSWORD } from './harness.js';
import { mintToken } from '../test/helpers/tokens.js';

/** The in-process peers; `cupcake` (serve) and `cupcake-redis` (serve on a Redis store, P8) are started by serve-target.ts. */
export type PeerName = 'cupcake-app' | 'cupcake-app-noauth' | 'sdk' | 'sdk-v2' | 'bare';
export type TargetName = 'cupcake' | 'cupcake-redis' | PeerName;

export interface RunningTarget {
  url: string;
  token: string;
  close(): Promise<void>;
}

/**
 * The tools every peer lists and serves, as serve lists them with the bench's config: `search`
 * and `fetch` over bench/docs with serve's own index and answers (src/mcp/docs/docs-tools.ts),
 * `whoami`, and the upstream's `add` (bench/add-server.mjs; serve reaches it over stdio as
 * `bench__add`, the peers run it in their process). The bench calls `search`, so every stack does
 * the same work per call.
 */
interface PeerTool {
  name: string;
  description: string;
  inputSchema: Record<string, z.ZodType>;
  handler(args: Record<string, unknown>, auth: { clientId?: string; scopes?: string[] }): Promise<CallToolResult>;
}

const ADD: PeerTool = {
  name: 'add',
  description: 'Adds two numbers',
  inputSchema: { a: z.number(), b: z.number() },
  handler: async (args) => ({ content: [{ type: 'text', text: String((args.a as number) + (args.b as number)) }] }),
};

async function peerTools(baseUrl: () => string): Promise<{ tools: PeerTool[]; close(): void }> {
  const index = new DocsIndex(BENCH_DOCS, silentLogger);
  await index.start();
  const tools: PeerTool[] = [
    {
      name: 'search',
      description: 'Search the documents. Returns up to 10 results, best first, each with an id, a title and a url.',
      inputSchema: { query: z.string().max(1000) },
      async handler(args) {
        await index.ensureFresh();
        const results = index.search(args.query as string).map((hit) => ({ id: hit.id, title: hit.title, url: documentUrl(baseUrl(), hit.id) }));
        return jsonResult({ results });
      },
    },
    {
      name: 'fetch',
      description: 'Read the full text of one document, by the id that search returned.',
      inputSchema: { id: z.string().max(1000) },
      async handler(args) {
        const doc = await index.read(args.id as string);
        if (!doc) return { content: [{ type: 'text', text: 'No document with that id.' }], isError: true };
        return jsonResult({ id: doc.id, title: doc.title, text: doc.text, url: documentUrl(baseUrl(), doc.id) });
      },
    },
    {
      name: 'whoami',
      description: 'Shows which OAuth client and token this connection uses.',
      inputSchema: {},
      handler: async (_args, auth) => jsonResult({ server: 'bench', client_id: auth.clientId ?? null, scopes: auth.scopes ?? [] }),
    },
    ADD,
  ];
  return { tools, close: () => index.close() };
}

/** A peer listening at `url`: closing it ends what `release` ends, then the HTTP server. */
function peer(url: string, token: string, server: Server, release: () => void | Promise<void>): RunningTarget {
  return {
    url,
    token,
    async close() {
      await release();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startCupcake(disableAuth: boolean): Promise<RunningTarget> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cupcake-bench-'));
  const store = await openFileStore({ dataDir, watch: true });
  await store.setOwnerPasswordHash(await hashPassword(BENCH_OWNER_PASSWORD), Date.now());
  const events = createFileEventLog(join(dataDir, 'events.jsonl'));
  let baseUrl = '';
  // serve's toolset for the bench's config (whoami, the docs index), with the upstream's tool in process.
  const toolset = await createToolset(ConfigSchema.parse({ baseUrl: 'http://127.0.0.1', dataDir, tools: { docs: { dir: BENCH_DOCS } } }), silentLogger);
  toolset.registry.registerTool(ADD.name, { description: ADD.description, inputSchema: ADD.inputSchema }, (args: Record<string, unknown>) =>
    ADD.handler(args, {}),
  );
  // P2's unauthenticated twin: the same route with a verifier that checks nothing.
  const acceptAnyToken = (resource: string): TokenVerifier => {
    const anyone: VerifiedToken = {
      tokenId: 'tok_benchmark',
      tokenHash: 'benchmark',
      clientId: 'benchmark',
      grantId: 'benchmark',
      scopes: ['mcp'],
      resource,
      expiresAt: Number.MAX_SAFE_INTEGER,
    };
    return { verifyAccessToken: async () => anyone };
  };
  const running = await startServer(
    (port) => {
      baseUrl = `http://127.0.0.1:${port}`;
      // The same documented limit serve's P3 config sets (1,000 SSE sessions on one token).
      const config = ConfigSchema.parse({ baseUrl, dataDir, tools: { docs: { dir: BENCH_DOCS } }, limits: { sessionsPerClient: 1_000 } });
      return createApp({
        config,
        store,
        events,
        toolset,
        ...(disableAuth ? { tokenVerifier: acceptAnyToken(config.baseUrl) } : {}),
      });
    },
    { host: '127.0.0.1', port: 0 },
  );
  // Stored as the token endpoint stores one (hash only), for a client of its own.
  const { token } = await mintToken(store, { baseUrl });
  return {
    url: baseUrl,
    token,
    async close() {
      await running.close(500);
      await toolset.close();
      await events.close();
      await store.close();
    },
  };
}

/** An Express app parsing JSON, and the in-memory verifier of `token` the SDK's `requireBearerAuth` takes. */
function expressWithVerifier(token: string) {
  const app = express();
  app.use(express.json());
  const verifier = {
    async verifyAccessToken(presented: string) {
      if (presented !== token) throw new Error('invalid token');
      return { token: presented, clientId: 'bench', scopes: ['mcp'], expiresAt: Math.floor(Date.now() / 1000) + 3600 };
    },
  };
  return { app, verifier };
}

/**
 * The MCP SDK's reference stack: Express + requireBearerAuth with an in-memory verifier +
 * StreamableHTTPServerTransport in stateful mode + McpServer, as its README shows.
 */
async function startSdkReference(): Promise<RunningTarget> {
  const token = generateAccessToken();
  let url = '';
  const { tools, close: closeTools } = await peerTools(() => url);
  const { app, verifier } = expressWithVerifier(token);
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const handle = async (req: express.Request, res: express.Response) => {
    const sessionId = req.headers['mcp-session-id'] as string | undefined;
    let transport = sessionId ? transports.get(sessionId) : undefined;
    if (!transport) {
      if (sessionId || !isInitializeRequest(req.body)) {
        res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request' }, id: null });
        return;
      }
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id: string) => {
          transports.set(id, created);
        },
      });
      const server = new McpServer({ name: 'sdk-reference', version: '1.0.0' });
      for (const tool of tools) {
        server.registerTool(
          tool.name,
          { description: tool.description, inputSchema: tool.inputSchema },
          async (args: Record<string, unknown>, extra) =>
            // The same result object; the v1 SDK types it with its own (equal) schema.
            (await tool.handler(args, extra.authInfo ?? {})) as CallToolResultV1,
        );
      }
      await server.connect(created);
      transport = created;
    }
    await transport!.handleRequest(req, res, req.body);
  };
  const auth = requireBearerAuth({ verifier });
  app.post('/mcp', auth, handle);
  app.get('/mcp', auth, handle);
  app.delete('/mcp', auth, handle);
  const server = createServer(app);
  url = await listen(server);
  return peer(url, token, server, closeTools);
}

/**
 * The SDK v2's reference stack for MCP 2026-07-28, as its docs mount it on Node: Express +
 * `requireBearerAuth` (@modelcontextprotocol/express) with an in-memory verifier in front of
 * `toNodeHandler(createMcpHandler(factory))`, one McpServer per request from the factory.
 */
async function startSdkV2Reference(): Promise<RunningTarget> {
  const token = generateAccessToken();
  let url = '';
  const { tools, close: closeTools } = await peerTools(() => url);
  const { app, verifier } = expressWithVerifier(token);
  const handler = createMcpHandler(() => {
    const server = new McpServerV2({ name: 'sdk-v2-reference', version: '1.0.0' });
    for (const tool of tools) {
      server.registerTool(tool.name, { description: tool.description, inputSchema: z.object(tool.inputSchema) }, (args: Record<string, unknown>, ctx) =>
        tool.handler(args, ctx.http?.authInfo ?? {}),
      );
    }
    return server;
  });
  const serve = toNodeHandler(handler);
  const auth = requireBearerAuthV2({ verifier });
  app.post('/mcp', auth, (req, res) => void serve(req, res, req.body));
  const server = createServer(app);
  url = await listen(server);
  return peer(url, token, server, async () => {
    closeTools();
    await handler.close();
  });
}

/** The runtime's ceiling: node:http answering the same JSON-RPC results with the same tool code, no framework, no MCP stack. */
async function startBare(): Promise<RunningTarget> {
  const token = generateAccessToken();
  const sessionId = randomUUID();
  let url = '';
  const { tools, close: closeTools } = await peerTools(() => url);
  const listed = tools.map((tool) => ({ name: tool.name, description: tool.description, inputSchema: z.toJSONSchema(z.object(tool.inputSchema)) }));
  const server = createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401).end();
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', async () => {
      const message = JSON.parse(body || '{}') as { id?: number; method?: string; params?: { name?: string; arguments?: Record<string, unknown> } };
      let result: unknown = {};
      if (message.method === 'initialize') result = { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'bare', version: '1' } };
      else if (message.method === 'tools/list') result = { tools: listed };
      else if (message.method === 'tools/call') {
        const tool = tools.find((t) => t.name === message.params?.name);
        result = tool ? await tool.handler(message.params?.arguments ?? {}, {}) : { content: [{ type: 'text', text: 'unknown tool' }], isError: true };
      }
      if (message.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': sessionId });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
    });
  });
  url = await listen(server);
  return peer(url, token, server, closeTools);
}

export function startTarget(name: PeerName): Promise<RunningTarget> {
  switch (name) {
    case 'cupcake-app':
      return startCupcake(false);
    case 'cupcake-app-noauth':
      return startCupcake(true);
    case 'sdk':
      return startSdkReference();
    case 'sdk-v2':
      return startSdkV2Reference();
    case 'bare':
      return startBare();
  }
}
