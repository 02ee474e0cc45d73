/**
 * The servers the bench compares, each started in its own process (target-process.ts) so that
 * the load generator and the server do not share a core's event loop.
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
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createMcpHandler, McpServer as McpServerV2 } from '@modelcontextprotocol/server';
import { requireBearerAuth as requireBearerAuthV2 } from '@modelcontextprotocol/express';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { ConfigSchema } from '../src/config/schema.js';
import { createApp } from '../src/server/app.js';
import { startServer } from '../src/server/start.js';
import { ToolRegistry } from '../src/mcp/tool-registry.js';
import { openFileStore } from '../src/store/file-store.js';
import { createFileEventLog } from '../src/store/event-log.js';
import { generateAccessToken, hashPassword } from '../src/oauth/secrets.js';
import { mintToken } from '../test/helpers/tokens.js';
import { startRedis } from '../test/helpers/redis-server.js';
import { openConfiguredStore, type OpenedStore } from '../src/store/open.js';
import { silentLogger } from '../src/shared/logger.js';

export type TargetName = 'cupcake' | 'cupcake-noauth' | 'sdk' | 'sdk-v2' | 'bare' | 'cupcake-redis';

export interface RunningTarget {
  url: string;
  token: string;
  close(): Promise<void>;
}

export const BENCH_OWNER_PASSWORD = 'bench owner password';

/** The tool every stack serves: the same name, schema and answer. */
export const BENCH_TOOL = { name: 'add', description: 'Adds two numbers', text: (a: number, b: number) => String(a + b) };

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** P8: the same app on the Redis store, with a redis-server of its own (started like the tests start theirs). */
async function startCupcakeOnRedis(): Promise<RunningTarget> {
  const redis = await startRedis();
  const opened = await openConfiguredStore({ store: redis.url, dataDir: '', watch: true, logger: silentLogger });
  const target = await startCupcake(false, opened);
  return {
    ...target,
    async close() {
      await target.close();
      await redis.close();
    },
  };
}

async function startCupcake(disableAuth: boolean, onRedis?: OpenedStore): Promise<RunningTarget> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cupcake-bench-'));
  const store = onRedis?.store ?? (await openFileStore({ dataDir, watch: true }));
  await store.setOwnerPasswordHash(await hashPassword(BENCH_OWNER_PASSWORD), Date.now());
  const events = onRedis ? onRedis.createEventLog({}) : createFileEventLog(join(dataDir, 'events.jsonl'));
  const registry = new ToolRegistry();
  registry.registerTool(BENCH_TOOL.name, { description: BENCH_TOOL.description, inputSchema: { a: z.number(), b: z.number() } }, ({ a, b }) => ({
    content: [{ type: 'text', text: BENCH_TOOL.text(a, b) }],
  }));
  let baseUrl = '';
  // P2's unauthenticated twin: the same route with a verifier that checks nothing.
  const acceptAnyToken = (resource: string): TokenVerifier => {
    const anyone: VerifiedToken = { tokenId: 'tok_benchmark', tokenHash: 'benchmark', clientId: 'benchmark', grantId: 'benchmark', scopes: ['mcp'], resource, expiresAt: Number.MAX_SAFE_INTEGER };
    return { verifyAccessToken: async () => anyone };
  };
  const running = await startServer(
    (port) => {
      baseUrl = `http://127.0.0.1:${port}`;
      const config = ConfigSchema.parse({ baseUrl, dataDir, tools: { docs: false } });
      // P3 holds 1,000 SSE sessions with one token: above the per-client cap a deployment gets by default.
      return createApp({
        config,
        store,
        events,
        toolset: { registry, docs: undefined, close: async () => {} },
        limits: { sessionsPerClient: 10_000 },
        ...(disableAuth ? { tokenVerifier: acceptAnyToken(config.baseUrl) } : {}),
        ...(onRedis ? { shared: onRedis.shared, relay: onRedis.relay } : {}),
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
      await events.close();
      await store.close();
    },
  };
}

/**
 * The MCP SDK's reference stack: Express + requireBearerAuth with an in-memory verifier +
 * StreamableHTTPServerTransport in stateful mode + McpServer, as its README shows.
 */
async function startSdkReference(): Promise<RunningTarget> {
  const token = generateAccessToken();
  const app = express();
  app.use(express.json());
  const verifier = {
    async verifyAccessToken(presented: string) {
      if (presented !== token) throw new Error('invalid token');
      return { token: presented, clientId: 'bench', scopes: ['mcp'], expiresAt: Math.floor(Date.now() / 1000) + 3600 };
    },
  };
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
      server.registerTool(BENCH_TOOL.name, { description: BENCH_TOOL.description, inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
        content: [{ type: 'text', text: BENCH_TOOL.text(a, b) }],
      }));
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
  const url = await listen(server);
  return { url, token, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * The SDK v2's reference stack for MCP 2026-07-28, as its docs mount it on Node: Express +
 * `requireBearerAuth` (@modelcontextprotocol/express) with an in-memory verifier in front of
 * `toNodeHandler(createMcpHandler(factory))`, one McpServer per request from the factory.
 */
async function startSdkV2Reference(): Promise<RunningTarget> {
  const token = generateAccessToken();
  const app = express();
  app.use(express.json());
  const verifier = {
    async verifyAccessToken(presented: string) {
      if (presented !== token) throw new Error('invalid token');
      return { token: presented, clientId: 'bench', scopes: ['mcp'], expiresAt: Math.floor(Date.now() / 1000) + 3600 };
    },
  };
  const handler = createMcpHandler(() => {
    const server = new McpServerV2({ name: 'sdk-v2-reference', version: '1.0.0' });
    server.registerTool(BENCH_TOOL.name, { description: BENCH_TOOL.description, inputSchema: z.object({ a: z.number(), b: z.number() }) }, async ({ a, b }) => ({
      content: [{ type: 'text', text: BENCH_TOOL.text(a, b) }],
    }));
    return server;
  });
  const serve = toNodeHandler(handler);
  const auth = requireBearerAuthV2({ verifier });
  app.post('/mcp', auth, (req, res) => void serve(req, res, req.body));
  const server = createServer(app);
  const url = await listen(server);
  return {
    url,
    token,
    async close() {
      await handler.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The runtime's ceiling: node:http answering the same JSON-RPC results, no framework, no MCP stack. */
async function startBare(): Promise<RunningTarget> {
  const token = generateAccessToken();
  const sessionId = randomUUID();
  const tools = [{ name: BENCH_TOOL.name, description: BENCH_TOOL.description, inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] } }];
  const server = createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401).end();
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const message = JSON.parse(body || '{}') as { id?: number; method?: string; params?: { arguments?: { a: number; b: number } } };
      let result: unknown = {};
      if (message.method === 'initialize') result = { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'bare', version: '1' } };
      else if (message.method === 'tools/list') result = { tools };
      else if (message.method === 'tools/call') {
        const { a, b } = message.params?.arguments ?? { a: 0, b: 0 };
        result = { content: [{ type: 'text', text: BENCH_TOOL.text(a, b) }] };
      }
      if (message.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json', 'Mcp-Session-Id': sessionId });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
    });
  });
  const url = await listen(server);
  return { url, token, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export function startTarget(name: TargetName): Promise<RunningTarget> {
  switch (name) {
    case 'cupcake':
      return startCupcake(false);
    case 'cupcake-noauth':
      return startCupcake(true);
    case 'sdk':
      return startSdkReference();
    case 'sdk-v2':
      return startSdkV2Reference();
    case 'bare':
      return startBare();
    case 'cupcake-redis':
      return startCupcakeOnRedis();
  }
}
