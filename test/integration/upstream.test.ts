import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/schema.js';
import { createSessionServer } from '../../src/mcp/session-server.js';
import { ToolRegistry, type ToolCallContext } from '../../src/mcp/tool-registry.js';
import { startUpstreams, type UpstreamOptions, type Upstreams } from '../../src/mcp/upstream.js';
import type { Logger } from '../../src/shared/logger.js';
import { BASE_TOOLS, createFixtureServer, LATE_TOOL, PAGE_SIZE } from '../fixtures/upstream-server.mjs';
import { useTmpDirs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/upstream-server.mjs', import.meta.url));
const HANG_FIXTURE = fileURLToPath(new URL('../fixtures/upstream-hang.mjs', import.meta.url));
const tmp = useTmpDirs('cupcake-upstream-');

type Servers = Config['tools']['servers'];

function stdio(overrides: Partial<{ args: string[]; env: Record<string, string>; cwd: string }> = {}): Servers[string] {
  return { command: process.execPath, args: [FIXTURE], env: {}, ...overrides };
}

interface RecordingLogger extends Logger {
  lines: string[];
}

function recordingLogger(): RecordingLogger {
  const lines: string[] = [];
  return {
    lines,
    info: (message) => void lines.push(`info ${message}`),
    warn: (message) => void lines.push(`warn ${message}`),
    error: (message, error) => void lines.push(`error ${message} ${String(error)}`),
  };
}

function context(signal: AbortSignal = new AbortController().signal): ToolCallContext {
  return { caller: { clientId: 'client-1', tokenId: 'token-1', scopes: ['mcp'] }, signal };
}

function textOf(result: CallToolResult): string {
  const first = result.content[0];
  return first?.type === 'text' ? first.text : '';
}

/** Processes of this test worker running a fixture; `ps` is on Linux and macOS alike. */
function fixtureChildren(script = 'upstream-server.mjs'): number[] {
  const out = execFileSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && Number(m[2]) === process.pid && m[3]!.includes(script))
    .map((m) => Number(m[1]));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const running: Upstreams[] = [];
const httpServers: HttpServer[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((upstreams) => upstreams.close()));
  await Promise.all(
    httpServers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

function start(servers: Servers, options: Partial<UpstreamOptions> = {}) {
  const registry = new ToolRegistry();
  const logger = recordingLogger();
  const upstreams = startUpstreams(servers, registry, { logger, ...options });
  running.push(upstreams);
  return { registry, logger, upstreams };
}

async function startReady(servers: Servers, options: Partial<UpstreamOptions> = {}) {
  const started = start(servers, options);
  await waitFor(() => started.upstreams.status().every((s) => s.state === 'ready'), { timeoutMs: 15_000, what: 'upstreams ready' });
  return started;
}

async function whoami(
  registry: ToolRegistry,
  name = 'fx__whoami',
): Promise<{ pid: number; cwd: string; greeting: string | null; parentSecret: string | null }> {
  const result = await registry.call(name, {}, context());
  return result.structuredContent as never;
}

describe('stdio upstream', () => {
  it('exposes every page of the upstream tools as <server>__<tool> with schemas, annotations, title and description kept', async () => {
    expect(BASE_TOOLS.length).toBeGreaterThan(PAGE_SIZE * 2);
    const { registry, upstreams } = await startReady({ fx: stdio() });

    expect(
      registry
        .list()
        .map((tool) => tool.name)
        .sort(),
    ).toEqual(BASE_TOOLS.map((tool) => `fx__${tool.name}`).sort());
    for (const tool of BASE_TOOLS) {
      expect(registry.get(`fx__${tool.name}`)?.definition).toEqual({ ...tool, name: `fx__${tool.name}` });
    }
    expect(upstreams.status()).toEqual([{ name: 'fx', state: 'ready', tools: BASE_TOOLS.length }]);
  });

  it('forwards a call under the upstream name and returns the upstream result as it is', async () => {
    const { registry } = await startReady({ fx: stdio() });
    const result = await registry.call('fx__echo', { text: 'hello upstream' }, context());
    expect(result).toEqual({ content: [{ type: 'text', text: '{"text":"hello upstream"}' }], structuredContent: { text: 'hello upstream' } });
  });

  it('an upstream error becomes a result with isError and the upstream message', async () => {
    const { registry } = await startReady({ fx: stdio() });
    const result = await registry.call('fx__fail', {}, context());
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('the fixture failed on purpose');
  });

  it("a call that outlasts the server's timeout ends as isError naming the server, and the upstream is told to cancel", async () => {
    const { registry, logger } = await startReady({ fx: { ...stdio(), timeout: 300 } as Servers[string] });
    const result = await registry.call('fx__sleep', { ms: 20_000 }, context());
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/upstream server fx did not answer within 300 ms/);
    await waitFor(() => logger.lines.includes('info [fx] sleep cancelled'), { what: 'the upstream to see the cancellation' });
    // The connection stays usable after a timeout.
    expect((await registry.call('fx__echo', { text: 'still here' }, context())).structuredContent).toEqual({ text: 'still here' });
  });

  it("the caller's AbortSignal cancels the forwarded call", async () => {
    const { registry, logger } = await startReady({ fx: stdio() });
    const controller = new AbortController();
    const pending = registry.call('fx__sleep', { ms: 20_000 }, context(controller.signal));
    setTimeout(() => controller.abort(new Error('client went away')), 200);
    const result = await pending;
    expect(result.isError).toBe(true);
    await waitFor(() => logger.lines.includes('info [fx] sleep cancelled'), { what: 'the upstream to see the cancellation' });
  });

  it('tools/list_changed from upstream replaces that server’s tools in the registry, leaving unchanged ones alone', async () => {
    const { registry, logger, upstreams } = await startReady({ fx: stdio() });
    const echoBefore = registry.get('fx__echo');
    let changes = 0;
    registry.onChange(() => changes++);

    await registry.call('fx__add_tool', {}, context());
    const late = await waitFor(() => registry.get('fx__late_tool'), { what: 'the late tool' });
    expect(late.definition).toEqual({ ...LATE_TOOL, name: 'fx__late_tool' });
    expect(changes).toBe(1);
    expect(registry.get('fx__echo')).toBe(echoBefore);
    expect(logger.lines.some((line) => line.startsWith('warn ') && line.includes('"late.tool" exposed as fx__late_tool'))).toBe(true);
    // Forwarded under its upstream name, dot included.
    expect(textOf(await registry.call('fx__late_tool', {}, context()))).toBe('late and here');
    expect(upstreams.status()[0]?.tools).toBe(BASE_TOOLS.length + 1);

    await registry.call('fx__remove_tool', {}, context());
    await waitFor(() => registry.get('fx__late_tool') === undefined, { what: 'the late tool to go' });
    expect(registry.list()).toHaveLength(BASE_TOOLS.length);
  });

  it('a malformed tool listing is left out and logged; the other tools are exposed', async () => {
    const { registry, logger } = await startReady({ fx: stdio({ env: { FIXTURE_BAD_TOOL: '1' } }) });
    expect(registry.list()).toHaveLength(BASE_TOOLS.length);
    expect(registry.get('fx__broken')).toBeUndefined();
    expect(logger.lines.some((line) => line.startsWith('warn upstream fx: tool "broken" is not a valid MCP tool listing'))).toBe(true);
  });

  it('stderr lines go to the log prefixed with the server name', async () => {
    const { logger } = await startReady({ fx: stdio() });
    await waitFor(() => logger.lines.some((line) => /^info \[fx\] fixture upstream started pid=\d+$/.test(line)), { what: 'the stderr line' });
  });

  it('the process gets the configured env over a minimal environment, and the configured cwd', async () => {
    const dir = await tmp();
    process.env.CUPCAKE_TEST_PARENT_SECRET = 'not for upstreams';
    try {
      const { registry } = await startReady({ fx: stdio({ env: { FIXTURE_GREETING: 'hi' }, cwd: dir }) });
      const who = await whoami(registry);
      expect(who.greeting).toBe('hi');
      expect(who.parentSecret).toBeNull();
      expect(realpathSync(who.cwd)).toBe(realpathSync(dir));
    } finally {
      delete process.env.CUPCAKE_TEST_PARENT_SECRET;
    }
  });

  it('an upstream that exits: its tools disappear at once, it is restarted, and they come back', async () => {
    const { registry, upstreams, logger } = await startReady({ fx: stdio() });
    const first = (await whoami(registry)).pid;

    const result = await registry.call('fx__exit', {}, context());
    expect(result.isError).toBe(true);
    expect(registry.list()).toEqual([]);
    expect(upstreams.status()).toEqual([{ name: 'fx', state: 'restarting', tools: 0, error: 'the process exited' }]);
    expect(logger.lines).toContain('info [fx] exiting on request');

    await waitFor(() => registry.get('fx__echo'), { timeoutMs: 15_000, what: 'the tools to come back' });
    expect(upstreams.status()).toEqual([{ name: 'fx', state: 'ready', tools: BASE_TOOLS.length }]);
    const second = (await whoami(registry)).pid;
    expect(second).not.toBe(first);
    expect(isAlive(first)).toBe(false);
    expect((await registry.call('fx__echo', { text: 'back' }, context())).structuredContent).toEqual({ text: 'back' });
  });

  it('close() removes the tools and leaves no child process, even with a call in flight', async () => {
    const { registry, upstreams } = await startReady({ a: stdio(), b: stdio() });
    const pids = [(await whoami(registry, 'a__whoami')).pid, (await whoami(registry, 'b__whoami')).pid];
    expect(fixtureChildren().sort()).toEqual([...pids].sort());
    const inFlight = registry.call('a__sleep', { ms: 20_000 }, context());

    await upstreams.close();
    expect(registry.list()).toEqual([]);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(fixtureChildren()).toEqual([]);
    expect((await inFlight).isError).toBe(true);
  });

  it('close() while an upstream is still starting leaves no child process', async () => {
    const { upstreams } = start({ a: stdio(), b: stdio() });
    await waitFor(() => fixtureChildren().length > 0, { what: 'a child to be spawned' });
    await upstreams.close();
    expect(fixtureChildren()).toEqual([]);
  });

  it('an upstream that never answers initialize fails after connectTimeoutMs, and its process is killed even if it ignores SIGTERM', async () => {
    const { upstreams, logger } = start(
      { hang: { command: process.execPath, args: [HANG_FIXTURE], env: {} } },
      { connectTimeoutMs: 300, backoff: { initialMs: 60_000 } },
    );
    await waitFor(() => fixtureChildren('upstream-hang.mjs').length === 1, { what: 'the hanging child' });
    await waitFor(() => upstreams.status()[0]?.state === 'failed', { what: 'the connect timeout' });
    expect(upstreams.status()[0]?.error).toMatch(/timed out/i);
    await waitFor(() => fixtureChildren('upstream-hang.mjs').length === 0, { timeoutMs: 15_000, what: 'the hanging child to be killed' });
    expect(logger.lines).toContain('info [hang] ignoring the end of stdin');
  });

  it('close() during a connect that hangs kills the process', async () => {
    const { upstreams } = start({ hang: { command: process.execPath, args: [HANG_FIXTURE], env: {} } });
    await waitFor(() => fixtureChildren('upstream-hang.mjs').length === 1, { what: 'the hanging child' });
    await upstreams.close();
    expect(fixtureChildren('upstream-hang.mjs')).toEqual([]);
  });

  it('a command that cannot start is reported as failed and retried with doubling delays', async () => {
    const { upstreams, logger, registry } = start({ broken: { command: '/nonexistent/cupcake-no-such-server', args: [], env: {} } });
    const delays = await waitFor(
      () => {
        const found = logger.lines.flatMap((line) => /could not start: .*; trying again in (\d+) ms$/.exec(line)?.[1] ?? []).map(Number);
        return found.length >= 3 && found;
      },
      { timeoutMs: 15_000, what: 'three failed attempts' },
    );
    expect(delays.slice(0, 3)).toEqual([500, 1000, 2000]);
    const [status] = upstreams.status();
    expect(status).toMatchObject({ name: 'broken', state: 'failed', tools: 0 });
    expect(status?.error).toMatch(/ENOENT/);
    expect(registry.list()).toEqual([]);
  });

  it('one upstream failing does not hold back the others', async () => {
    const { registry, upstreams } = start({ broken: { command: '/nonexistent/cupcake-no-such-server', args: [], env: {} }, fx: stdio() });
    await waitFor(() => registry.get('fx__echo'), { timeoutMs: 15_000, what: 'fx tools' });
    expect(upstreams.status().find((s) => s.name === 'broken')?.state).not.toBe('ready');
  });
});

interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function listen(server: HttpServer): Promise<string> {
  httpServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The fixture over Streamable HTTP (stateful), recording every request it receives. */
async function startStreamableFixture() {
  const seen: SeenRequest[] = [];
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const sessionId = req.headers['mcp-session-id'];
      let transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
      if (!transport) {
        if (sessionId !== undefined) {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}');
          return;
        }
        const created = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, onsessioninitialized: (id) => void sessions.set(id, created) });
        await createFixtureServer().connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res, body ? JSON.parse(body) : undefined);
    })().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });
  const url = `${await listen(server)}/mcp`;
  return {
    url,
    seen,
    /** As if the server restarted: every session forgotten. */
    async dropSessions() {
      const open = [...sessions.values()];
      sessions.clear();
      await Promise.all(open.map((transport) => transport.close()));
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The fixture over the legacy HTTP+SSE transport only: POST to the SSE URL answers 405. */
async function startSseOnlyFixture() {
  const seen: SeenRequest[] = [];
  const sessions = new Map<string, SSEServerTransport>();
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fixture');
      if (req.method === 'GET' && url.pathname === '/sse') {
        seen.push({ method: 'GET', url: req.url ?? '', headers: req.headers, body: '' });
        const transport = new SSEServerTransport('/messages', res);
        sessions.set(transport.sessionId, transport);
        transport.onclose = () => sessions.delete(transport.sessionId);
        await createFixtureServer().connect(transport);
        return;
      }
      const body = await readBody(req);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const transport = sessions.get(url.searchParams.get('sessionId') ?? '');
      if (req.method === 'POST' && url.pathname === '/messages' && transport) {
        await transport.handlePostMessage(req, res, JSON.parse(body));
        return;
      }
      res.writeHead(405).end();
    })().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });
  return { url: `${await listen(server)}/sse`, seen };
}

describe('remote upstream', () => {
  it('Streamable HTTP: tools listed and called with the configured headers, never the caller’s token', async () => {
    const fixture = await startStreamableFixture();
    const { registry, logger } = await startReady({ remote: { url: fixture.url, headers: { 'X-Upstream-Key': 'k-123' } } });
    expect(logger.lines).toContain(`info upstream remote: ready via streamable-http with ${BASE_TOOLS.length} tool(s)`);
    expect(registry.get('remote__echo')?.definition).toEqual({ ...BASE_TOOLS[0], name: 'remote__echo' });

    // A downstream MCP client whose requests carry a bearer token, as /mcp hands them to the session server.
    const token = `mcp_${randomBytes(16).toString('hex')}`;
    const session = createSessionServer(registry, { name: 'gateway', version: '1.0.0' }, { called() {}, failed() {} });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const send = clientSide.send.bind(clientSide);
    clientSide.send = (message, options) =>
      send(message, { ...options, authInfo: { token, clientId: 'client-1', scopes: ['mcp'], extra: { tokenId: 'token-1' } } });
    await session.connect(serverSide);
    const downstream = new Client({ name: 'downstream', version: '1.0.0' });
    await downstream.connect(clientSide);
    try {
      const result = await downstream.callTool({ name: 'remote__echo', arguments: { text: 'through the gateway' } });
      expect(result.structuredContent).toEqual({ text: 'through the gateway' });
    } finally {
      await downstream.close();
    }

    const calls = fixture.seen.filter((request) => request.body.includes('"tools/call"'));
    expect(calls).toHaveLength(1);
    expect(fixture.seen.length).toBeGreaterThan(2);
    for (const request of fixture.seen) {
      expect(request.headers['x-upstream-key']).toBe('k-123');
      expect(request.headers.authorization).toBeUndefined();
      expect(JSON.stringify(request)).not.toContain(token);
    }
  });

  it('Streamable HTTP: tools/list_changed arrives over the stream and updates the registry', async () => {
    const fixture = await startStreamableFixture();
    const { registry } = await startReady({ remote: { url: fixture.url, headers: {} } });
    await registry.call('remote__add_tool', {}, context());
    await waitFor(() => registry.get('remote__late_tool'), { what: 'the late tool' });
  });

  it('a configured Authorization header is sent as configured', async () => {
    const fixture = await startStreamableFixture();
    await startReady({ remote: { url: fixture.url, headers: { Authorization: 'Bearer upstream-secret' } } });
    expect(fixture.seen.length).toBeGreaterThan(0);
    for (const request of fixture.seen) expect(request.headers.authorization).toBe('Bearer upstream-secret');
  });

  it('a remote server that forgot our session (restarted) is connected to again', async () => {
    const fixture = await startStreamableFixture();
    const { registry, upstreams } = await startReady({ remote: { url: fixture.url, headers: {} } });
    await fixture.dropSessions();

    const result = await registry.call('remote__echo', { text: 'lost?' }, context());
    expect(result.isError).toBe(true);
    await waitFor(() => upstreams.status()[0]?.state === 'ready' && registry.get('remote__echo'), { timeoutMs: 15_000, what: 'the reconnection' });
    expect((await registry.call('remote__echo', { text: 'again' }, context())).structuredContent).toEqual({ text: 'again' });
  });

  it('a remote server that goes away is noticed by ping and its tools are hidden', async () => {
    const fixture = await startStreamableFixture();
    const { registry, upstreams } = await startReady({ remote: { url: fixture.url, headers: {} } }, { pingIntervalMs: 200 });
    await fixture.stop();
    await waitFor(() => registry.list().length === 0, { timeoutMs: 10_000, what: 'the tools to be hidden' });
    expect(upstreams.status()[0]?.state).not.toBe('ready');
  });

  it('falls back to the legacy SSE transport when Streamable HTTP is refused, headers included', async () => {
    const fixture = await startSseOnlyFixture();
    const { registry, logger } = await startReady({ legacy: { url: fixture.url, headers: { 'X-Upstream-Key': 'k-sse' } } });
    expect(logger.lines).toContain(`info upstream legacy: ready via sse with ${BASE_TOOLS.length} tool(s)`);
    expect((await registry.call('legacy__echo', { text: 'over sse' }, context())).structuredContent).toEqual({ text: 'over sse' });
    expect(fixture.seen.some((request) => request.method === 'GET')).toBe(true);
    for (const request of fixture.seen) {
      expect(request.headers['x-upstream-key']).toBe('k-sse');
      expect(request.headers.authorization).toBeUndefined();
    }
  });
});
