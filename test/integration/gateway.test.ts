import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ToolListChangedNotification } from '@modelcontextprotocol/sdk/types.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { HeadlessOAuthClientProvider } from '../helpers/oauth-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/upstream-server.mjs', import.meta.url));

let server: TestServer;
let client: Client;
const listChanged: ToolListChangedNotification[] = [];

beforeAll(async () => {
  server = await startTestServer({
    config: { tools: { servers: { fx: { command: process.execPath, args: [FIXTURE], env: { FIXTURE_GREETING: 'hello' } } } } },
  });
  for (const started = Date.now(); server.toolset.upstreams?.status()[0]?.state !== 'ready'; ) {
    if (Date.now() - started > 15_000) throw new Error(`upstream not ready: ${JSON.stringify(server.toolset.upstreams?.status())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // A real client through the real OAuth flow, with a Streamable HTTP session and its GET stream.
  const provider = new HeadlessOAuthClientProvider({ authMethod: 'client_secret_post' });
  const first = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { authProvider: provider });
  const refused = await new Client({ name: 'gw', version: '1' }).connect(first).catch((error: unknown) => error);
  if (!(refused instanceof UnauthorizedError)) throw new Error(`expected the 401 challenge, got ${String(refused)}`);
  await first.finishAuth(provider.takeAuthorizationCode());
  client = new Client({ name: 'gw', version: '1' });
  client.setNotificationHandler(ToolListChangedNotificationSchema, (n) => {
    listChanged.push(n);
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { authProvider: provider }));
}, 60_000);

afterAll(async () => {
  await client?.close();
  await server?.close();
});

const names = async () => (await client.listTools()).tools.map((t) => t.name);

describe('upstream MCP servers as a gateway (DESIGN.md §5)', () => {
  it('lists the upstream tools as <server>__<tool> beside the built-in ones', async () => {
    const tools = await names();
    expect(tools).toEqual(expect.arrayContaining(['whoami', 'fx__echo', 'fx__sleep', 'fx__exit']));
  });

  it('forwards a call and returns the upstream result; the client token never reaches the upstream', async () => {
    const result = await client.callTool({ name: 'fx__echo', arguments: { text: 'through the gateway' } });
    expect(JSON.stringify(result.content)).toContain('through the gateway');
    const who = await client.callTool({ name: 'fx__whoami', arguments: {} });
    const text = JSON.stringify(who);
    expect(text).toContain('hello');
    expect(text).not.toMatch(/mcp_[0-9a-f]{32}/);
  });

  it('an upstream that exits: its tools disappear, it is restarted, they come back, clients hear list_changed', async () => {
    const before = listChanged.length;
    await client.callTool({ name: 'fx__exit', arguments: {} }).catch(() => undefined);
    await expect.poll(async () => (await names()).some((n) => n.startsWith('fx__')), { timeout: 10_000 }).toBe(false);
    await expect.poll(async () => (await names()).includes('fx__echo'), { timeout: 15_000 }).toBe(true);
    const again = await client.callTool({ name: 'fx__echo', arguments: { text: 'back' } });
    expect(JSON.stringify(again.content)).toContain('back');
    expect(listChanged.length).toBeGreaterThan(before);
  }, 40_000);
});
