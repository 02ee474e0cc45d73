import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client as ClientV2, StreamableHTTPClientTransport as StreamableV2, UnauthorizedError as UnauthorizedV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError as UnauthorizedV1 } from '@modelcontextprotocol/sdk/client/auth.js';
import { SSEClientTransport as SseV1 } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport as StreamableV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ProgressNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { HeadlessOAuthClientProvider } from '../helpers/oauth-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// @modelcontextprotocol/server-everything, pinned in devDependencies, run over stdio as people run it.
const require = createRequire(import.meta.url);
const EVERYTHING = join(dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');
const FIXTURE = fileURLToPath(new URL('../fixtures/upstream-server.mjs', import.meta.url));
const everything = (extra: Record<string, unknown> = {}) => ({ command: process.execPath, args: [EVERYTHING, 'stdio'], ...extra });

const LONG = 'trigger-long-running-operation';
/** server-everything's long operation, shortened: `duration` seconds in `steps` progress steps. */
const LONG_ARGS = { duration: 3, steps: 3 };

let server: TestServer;
let v1: ClientV1;
let sse: ClientV1;
let v2: ClientV2;
let direct: ClientV2;
/** Clients that declare elicitation and sampling and answer them: 2025 session, 2026-07-28, and direct. */
let v1ask: ClientV1;
let sseAsk: ClientV1;
let v2ask: ClientV2;
let directAsk: ClientV2;
const asked: Record<'v1' | 'sse' | 'v2' | 'direct', string[]> = { v1: [], sse: [], v2: [], direct: [] };
const inputRequired: string[] = [];

const ELICITED = { action: 'accept' as const, content: { name: 'Ada Lovelace', check: true } };
const SAMPLED = { role: 'assistant' as const, content: { type: 'text' as const, text: 'a sampled answer' }, model: 'test-model', stopReason: 'endTurn' };
const ASKING = { elicitation: { form: {} }, sampling: {} };

function answerV2(client: ClientV2, who: 'v2' | 'direct'): ClientV2 {
  client.setRequestHandler('elicitation/create', async (request) => {
    asked[who].push(`elicit:${request.params.message}`);
    return ELICITED;
  });
  client.setRequestHandler('sampling/createMessage', async (request) => {
    asked[who].push(`sample:${JSON.stringify(request.params.messages[0]?.content)}`);
    return SAMPLED;
  });
  return client;
}

async function connectClients(): Promise<void> {
  const providerV1 = new HeadlessOAuthClientProvider({ authMethod: 'client_secret_basic', clientName: 'SDK v1 client' });
  const providerV2 = new HeadlessOAuthClientProvider({ authMethod: 'none', clientName: 'SDK v2 client' });
  const makeV1 = () => new StreamableV1(new URL(`${server.url}/mcp`), { authProvider: providerV1 });
  const makeV2 = () => new StreamableV2(new URL(`${server.url}/mcp`), { authProvider: providerV2 });
  const firstV1 = makeV1();
  const firstV2 = makeV2();
  await expect(new ClientV1({ name: 'v1', version: '1' }).connect(firstV1)).rejects.toBeInstanceOf(UnauthorizedV1);
  await expect(new ClientV2({ name: 'v2', version: '1' }, { versionNegotiation: { mode: 'auto' } }).connect(firstV2)).rejects.toBeInstanceOf(UnauthorizedV2);
  await firstV1.finishAuth(providerV1.takeAuthorizationCode());
  providerV2.takeAuthorizationCode();
  await firstV2.finishAuth(providerV2.outcomes.at(-1)!.redirect.searchParams);
  v1 = new ClientV1({ name: 'v1', version: '1' });
  await v1.connect(makeV1());
  v2 = new ClientV2({ name: 'v2', version: '1' }, { versionNegotiation: { mode: 'auto' } });
  await v2.connect(makeV2());
  expect(v2.getNegotiatedProtocolVersion()).toBe('2026-07-28');
  const answerV1 = (client: ClientV1, who: 'v1' | 'sse') => {
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked[who].push(`elicit:${request.params.message}`);
      return ELICITED;
    });
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      asked[who].push(`sample:${JSON.stringify(request.params.messages[0]?.content)}`);
      return SAMPLED;
    });
    return client;
  };
  v1ask = answerV1(new ClientV1({ name: 'v1ask', version: '1' }, { capabilities: ASKING }), 'v1');
  await v1ask.connect(makeV1());
  sseAsk = answerV1(new ClientV1({ name: 'sseAsk', version: '1' }, { capabilities: ASKING }), 'sse');
  await sseAsk.connect(new SseV1(new URL(`${server.url}/sse`), { authProvider: providerV1 }));
  v2ask = answerV2(new ClientV2({ name: 'v2ask', version: '1' }, { capabilities: ASKING, versionNegotiation: { mode: 'auto' } }), 'v2');
  // Records the input_required results the gateway answers with (the client fulfils them itself).
  const recordingFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    void response
      .clone()
      .text()
      .then(
        (text) => {
          if (text.includes('"resultType":"input_required"')) inputRequired.push(text);
        },
        () => undefined,
      );
    return response;
  };
  await v2ask.connect(new StreamableV2(new URL(`${server.url}/mcp`), { authProvider: providerV2, fetch: recordingFetch }));
  expect(v2ask.getNegotiatedProtocolVersion()).toBe('2026-07-28');
  sse = new ClientV1({ name: 'sse', version: '1' });
  await sse.connect(new SseV1(new URL(`${server.url}/sse`), { authProvider: providerV1 }));
}

beforeAll(async () => {
  server = await startTestServer({
    config: {
      tools: {
        servers: {
          ev: everything(),
          short: everything({ timeout: '1s' }),
          fx: { command: process.execPath, args: [FIXTURE] },
        },
      },
    },
  });
  for (const started = Date.now(); !server.toolset.upstreams?.status().every((s) => s.state === 'ready'); ) {
    if (Date.now() - started > 30_000) throw new Error(`upstreams not ready: ${JSON.stringify(server.toolset.upstreams?.status())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await connectClients();
  direct = new ClientV2({ name: 'direct', version: '1' });
  await direct.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'] }));
  directAsk = answerV2(new ClientV2({ name: 'direct-ask', version: '1' }, { capabilities: ASKING }), 'direct');
  await directAsk.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'] }));
}, 90_000);

afterAll(async () => {
  await Promise.all([v1?.close(), v2?.close(), sse?.close(), direct?.close(), v1ask?.close(), sseAsk?.close(), v2ask?.close(), directAsk?.close()]);
  await server?.close();
});

interface Progress {
  progress: number;
  total?: number;
  progressToken?: string | number;
}

function recordProgress() {
  const seen = { v1: [] as Progress[], sse: [] as Progress[], v2: [] as Progress[], direct: [] as Progress[] };
  v1.setNotificationHandler(ProgressNotificationSchema, (n) => void seen.v1.push(n.params));
  sse.setNotificationHandler(ProgressNotificationSchema, (n) => void seen.sse.push(n.params));
  v2.setNotificationHandler('notifications/progress', (n) => void seen.v2.push(n.params));
  direct.setNotificationHandler('notifications/progress', (n) => void seen.direct.push(n.params));
  return seen;
}

const progressOf = (seen: Progress[]) => seen.map(({ progress, total }) => ({ progress, total }));
const textOf = (result: unknown) => JSON.stringify((result as { content?: unknown }).content);

describe('progress, timeout and cancellation through the gateway, compared with server-everything spoken to directly', () => {
  it('a long operation reports the same progress and result as direct, to a 2025 session, an SSE session and a 2026-07-28 client', async () => {
    // Progress is recorded by a notification handler of each client: the SDK's onprogress (v1 and
    // v2 alike) loses an update read in the same chunk as the result, directly as much as here.
    const seen = recordProgress();
    const onprogress = () => undefined;
    const expected = await direct.callTool({ name: LONG, arguments: LONG_ARGS }, { onprogress, timeout: 60_000 });
    expect(progressOf(seen.direct)).toEqual([1, 2, 3].map((progress) => ({ progress, total: 3 })));

    const [viaV1, viaSse, viaV2] = await Promise.all([
      v1.callTool({ name: `ev__${LONG}`, arguments: LONG_ARGS }, CallToolResultSchema, { onprogress, timeout: 60_000 }),
      sse.callTool({ name: `ev__${LONG}`, arguments: LONG_ARGS }, CallToolResultSchema, { onprogress, timeout: 60_000 }),
      v2.callTool({ name: `ev__${LONG}`, arguments: LONG_ARGS }, { onprogress, timeout: 60_000 }),
    ]);
    for (const result of [viaV1, viaSse, viaV2]) {
      expect(result.isError ?? false).toBe(false);
      expect(textOf(result)).toBe(textOf(expected));
    }
    const want = progressOf(seen.direct);
    expect({ v1: progressOf(seen.v1), sse: progressOf(seen.sse), v2: progressOf(seen.v2) }).toEqual({ v1: want, sse: want, v2: want });
    // Each client got its own progress token back, whatever token the gateway used upstream.
    for (const key of ['v1', 'sse', 'v2'] as const) expect(new Set(seen[key].map((p) => p.progressToken)).size).toBe(1);
  }, 60_000);

  it('the 70 s operation of the issue completes through a server without a timeout, ' +
    'with all of its progress, in both eras (past the fixed 60 s cut of before)', async () => {
    const seen = recordProgress();
    const onprogress = () => undefined;
    const args = { duration: 70, steps: 7 };
    const [viaV1, viaV2] = await Promise.all([
      v1.callTool({ name: `ev__${LONG}`, arguments: args }, CallToolResultSchema, { onprogress, timeout: 100_000 }),
      v2.callTool({ name: `ev__${LONG}`, arguments: args }, { onprogress, timeout: 100_000 }),
    ]);
    for (const result of [viaV1, viaV2]) expect(result.isError ?? false).toBe(false);
    const want = [1, 2, 3, 4, 5, 6, 7].map((progress) => ({ progress, total: 7 }));
    expect({ v1: progressOf(seen.v1), v2: progressOf(seen.v2) }).toEqual({ v1: want, v2: want });
  }, 120_000);

  it('a server whose timeout the operation outlasts: the call is cancelled upstream and the client gets a tool error naming the server', async () => {
    const [viaV1, viaV2] = await Promise.all([
      v1.callTool({ name: `short__${LONG}`, arguments: { duration: 20, steps: 20 } }, CallToolResultSchema, { timeout: 60_000 }),
      v2.callTool({ name: `short__${LONG}`, arguments: { duration: 20, steps: 20 } }, { timeout: 60_000 }),
    ]);
    for (const result of [viaV1, viaV2]) {
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain('upstream server short did not answer within 1 s');
      expect(textOf(result)).toContain('tools.servers.short');
    }
    // The same server still answers a quick call.
    const echo = await v1.callTool({ name: 'short__echo', arguments: { message: 'still here' } });
    expect(textOf(echo)).toBe(textOf(await direct.callTool({ name: 'echo', arguments: { message: 'still here' } })));
  }, 60_000);

  it("a client's cancellation reaches the upstream: notifications/cancelled on a 2025 session, the hang-up of a 2026-07-28 request", async () => {
    const cancellations = async () =>
      ((await v1.callTool({ name: 'fx__cancellations', arguments: {} })).structuredContent as { cancellations: number }).cancellations;
    const before = await cancellations();
    const abort1 = new AbortController();
    const call1 = v1.callTool({ name: 'fx__sleep', arguments: { ms: 30_000 } }, CallToolResultSchema, { signal: abort1.signal });
    setTimeout(() => abort1.abort('changed my mind'), 300);
    await expect(call1).rejects.toThrow();
    await expect.poll(cancellations, { timeout: 5_000 }).toBe(before + 1);
    const abort2 = new AbortController();
    const call2 = v2.callTool({ name: 'fx__sleep', arguments: { ms: 30_000 } }, { signal: abort2.signal });
    setTimeout(() => abort2.abort('changed my mind'), 300);
    await expect(call2).rejects.toThrow();
    await expect.poll(cancellations, { timeout: 5_000 }).toBe(before + 2);
    await expect.poll(() => server.app.mcp.callsInFlight, { timeout: 5_000 }).toBe(0);
  });
});

describe('_meta through the gateway', () => {
  it('tool _meta is listed unchanged; request _meta reaches the upstream without the progress token or envelope keys; result _meta comes back', async () => {
    for (const client of [v1, v2]) {
      const tool = (await client.listTools()).tools.find((t) => t.name === 'fx__meta');
      expect(tool?._meta).toEqual({ 'openai/outputTemplate': 'ui://widget/card.html', 'com.example/tier': 'gold' });
    }
    const viaV1 = await v1.callTool({ name: 'fx__meta', arguments: {}, _meta: { 'com.example/trace': 'abc' } });
    const viaV2 = await v2.callTool({ name: 'fx__meta', arguments: {}, _meta: { 'com.example/trace': 'def' } });
    expect(viaV1.structuredContent).toEqual({ received: { 'com.example/trace': 'abc' } });
    expect(viaV2.structuredContent).toEqual({ received: { 'com.example/trace': 'def' } });
    expect(viaV1._meta).toMatchObject({ 'openai/widgetState': { seen: true } });
    expect(viaV2._meta).toMatchObject({ 'openai/widgetState': { seen: true } });
  });
});

describe('list_changed coalesced', () => {
  it('one upstream restart reaches each 2025 session (Streamable HTTP and SSE) as one tools/list_changed, not one per tool', async () => {
    const heard = { v1: 0, sse: 0 };
    v1.setNotificationHandler(ToolListChangedNotificationSchema, () => void heard.v1++);
    sse.setNotificationHandler(ToolListChangedNotificationSchema, () => void heard.sse++);
    // Both sessions fetch the list first: what they hold is the list before the restart.
    expect((await v1.listTools()).tools.length).toBeGreaterThan(10);
    await sse.listTools();
    const fx = () => server.toolset.upstreams!.status().find((s) => s.name === 'fx')!;
    await v2.callTool({ name: 'fx__exit', arguments: {} }).catch(() => undefined);
    await expect.poll(() => fx().state, { timeout: 10_000 }).not.toBe('ready');
    await expect.poll(() => fx().state, { timeout: 15_000 }).toBe('ready');
    await expect.poll(() => heard.v1 > 0 && heard.sse > 0, { timeout: 5_000 }).toBe(true);
    // Time for any further notification to arrive (there must be none).
    await new Promise((r) => setTimeout(r, 500));
    expect(heard).toEqual({ v1: 1, sse: 1 });
    // Listing again makes the next change news again.
    await v1.listTools();
    await v2.callTool({ name: 'fx__add_tool', arguments: {} });
    await expect.poll(() => heard.v1, { timeout: 5_000 }).toBe(2);
    await v2.callTool({ name: 'fx__remove_tool', arguments: {} });
  }, 60_000);
});

/** Every page of a list method (the SDK's list helpers return one page). */
async function allPages<T>(
  list: (cursor: string | undefined) => Promise<{ nextCursor?: string | undefined } & Record<string, unknown>>,
  key: string,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    items.push(...(page[key] as T[]));
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

describe('resources, resource templates, prompts and completions of an upstream', () => {
  const named = <T extends { name: string }>(items: T[]) => items.map((item) => ({ ...item, name: `ev__${item.name}` }));

  it('are listed under <server>__ names with everything else as the upstream lists them, to both eras', async () => {
    const resources = await allPages<{ name: string; uri: string }>((cursor) => direct.listResources(cursor ? { cursor } : undefined), 'resources');
    const templates = await allPages<{ name: string }>((cursor) => direct.listResourceTemplates(cursor ? { cursor } : undefined), 'resourceTemplates');
    const prompts = await allPages<{ name: string }>((cursor) => direct.listPrompts(cursor ? { cursor } : undefined), 'prompts');
    expect(resources.length).toBeGreaterThan(0);
    expect(templates.length).toBeGreaterThan(0);
    expect(prompts.length).toBeGreaterThan(0);
    for (const client of [v1, v2] as Array<ClientV1 | ClientV2>) {
      const viaResources = await allPages<{ name: string }>((cursor) => client.listResources(cursor ? { cursor } : undefined), 'resources');
      const viaTemplates = await allPages<{ name: string }>((cursor) => client.listResourceTemplates(cursor ? { cursor } : undefined), 'resourceTemplates');
      const viaPrompts = await allPages<{ name: string }>((cursor) => client.listPrompts(cursor ? { cursor } : undefined), 'prompts');
      // `short` is server-everything too: same URIs, so only ev's (first by name) are listed for them.
      expect(viaResources).toEqual(named(resources));
      expect(viaTemplates.filter((t) => t.name.startsWith('ev__'))).toEqual(named(templates));
      expect(viaTemplates.filter((t) => t.name.startsWith('short__'))).toHaveLength(templates.length);
      expect(viaPrompts.filter((p) => p.name.startsWith('ev__'))).toEqual(named(prompts));
    }
  });

  it('are read, got and completed as the upstream answers them directly', async () => {
    const [first] = await allPages<{ uri: string }>((cursor) => direct.listResources(cursor ? { cursor } : undefined), 'resources');
    const expected = await direct.readResource({ uri: first!.uri });
    for (const client of [v1, v2] as Array<ClientV1 | ClientV2>) {
      expect((await client.readResource({ uri: first!.uri })).contents).toEqual(expected.contents);
      // A templated URI is routed to the server whose template matches it.
      const templated = await client.readResource({ uri: 'demo://resource/dynamic/text/7' });
      expect(templated.contents[0]).toMatchObject({ uri: 'demo://resource/dynamic/text/7', mimeType: 'text/plain' });
      expect(JSON.stringify(templated.contents)).toContain('Resource 7');
      const prompt = await client.getPrompt({ name: 'ev__args-prompt', arguments: { city: 'Lisbon', state: 'Lisboa' } });
      expect(prompt.messages).toEqual((await direct.getPrompt({ name: 'args-prompt', arguments: { city: 'Lisbon', state: 'Lisboa' } })).messages);
      const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'ev__completable-prompt' }, argument: { name: 'department', value: 'S' } });
      expect(completion.completion.values).toEqual(['Sales', 'Support']);
    }
    await expect(v1.readResource({ uri: 'demo://nobody/offers/this' })).rejects.toThrow(/not found/i);
  });

  it('resources/subscribe is passed to the upstream that offers it, and its resources/updated reaches the subscribed session only', async () => {
    const [first] = await allPages<{ uri: string }>((cursor) => direct.listResources(cursor ? { cursor } : undefined), 'resources');
    const updated = { v1: [] as string[], sse: [] as string[] };
    v1.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.v1.push(n.params.uri));
    sse.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.sse.push(n.params.uri));
    await v1.subscribeResource({ uri: first!.uri });
    // server-everything sends updates of subscribed URIs every 5 s once they are switched on.
    await v1.callTool({ name: 'ev__toggle-subscriber-updates', arguments: {} });
    try {
      await expect.poll(() => updated.v1, { timeout: 15_000 }).toContain(first!.uri);
      expect(updated.sse).toEqual([]);
    } finally {
      await v1.unsubscribeResource({ uri: first!.uri });
      await v1.callTool({ name: 'ev__toggle-subscriber-updates', arguments: {} });
    }
  }, 30_000);
});

describe('server-to-client requests of an upstream reach the client whose call caused them', () => {
  for (const [tool, args] of [
    ['trigger-elicitation-request', {}],
    ['trigger-sampling-request', { prompt: 'say hello', maxTokens: 50 }],
  ] as const) {
    it(`${tool}: answered by 2025 SDK clients (a request on the Streamable HTTP call's ` +
      `stream, on the SSE stream) and a 2026-07-28 client (input_required), as directly`, async () => {
      for (const key of ['v1', 'sse', 'v2', 'direct'] as const) asked[key].length = 0;
      inputRequired.length = 0;
      const expected = await directAsk.callTool({ name: tool, arguments: args });
      const viaV1 = await v1ask.callTool({ name: `ev__${tool}`, arguments: args });
      const viaSse = await sseAsk.callTool({ name: `ev__${tool}`, arguments: args });
      const viaV2 = await v2ask.callTool({ name: `ev__${tool}`, arguments: args });
      expect(asked.direct).toHaveLength(1);
      expect(asked).toEqual({ v1: asked.direct, sse: asked.direct, v2: asked.direct, direct: asked.direct });
      expect(viaV1.isError ?? false).toBe(false);
      expect(textOf(viaV1)).toBe(textOf(expected));
      expect(textOf(viaSse)).toBe(textOf(expected));
      expect(textOf(viaV2)).toBe(textOf(expected));
      // The 2026-07-28 client was asked by an input_required result carrying the upstream's request.
      await expect.poll(() => inputRequired.length).toBe(1);
      expect(JSON.parse(inputRequired[0]!).result).toMatchObject({
        resultType: 'input_required',
        inputRequests: expect.any(Object),
        requestState: expect.any(String),
      });
    }, 30_000);
  }

  it('tools the upstream offers only to clients with elicitation or sampling are listed only to such clients, in both eras', async () => {
    const plain = new Set((await direct.listTools()).tools.map((t) => t.name));
    const onlyAsking = (await directAsk.listTools()).tools.map((t) => t.name).filter((name) => !plain.has(name));
    expect(onlyAsking).toEqual(expect.arrayContaining(['trigger-elicitation-request', 'trigger-sampling-request']));
    const exposed = (names: string[]) => names.filter((name) => name.startsWith('ev__')).map((name) => name.slice(4));
    for (const client of [v1, v2] as Array<ClientV1 | ClientV2>) {
      const names = exposed((await client.listTools()).tools.map((t) => t.name));
      for (const name of onlyAsking) expect(names).not.toContain(name);
    }
    for (const client of [v1ask, v2ask] as Array<ClientV1 | ClientV2>) {
      const names = exposed((await client.listTools()).tools.map((t) => t.name));
      expect(names).toEqual(expect.arrayContaining(['trigger-elicitation-request', 'trigger-sampling-request']));
    }
  });

  it(
    'a client that declared no such capability is not asked even when it calls ' +
      'such a tool: the call ends with an error saying which capability is missing',
    async () => {
      const viaV1 = await v1.callTool({ name: 'ev__trigger-elicitation-request', arguments: {} });
      const viaV2 = await v2.callTool({ name: 'ev__trigger-sampling-request', arguments: { prompt: 'x', maxTokens: 5 } });
      expect(viaV1.isError).toBe(true);
      expect(textOf(viaV1)).toContain('did not declare the \\"elicitation\\" capability');
      expect(viaV2.isError).toBe(true);
      expect(textOf(viaV2)).toContain('did not declare the \\"sampling\\" capability');
    },
  );
});
