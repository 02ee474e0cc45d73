import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadlessOAuthClientProvider, type TokenEndpointAuthMethod } from '../helpers/oauth-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let docsDir: string;

beforeAll(async () => {
  docsDir = await mkdtemp(join(tmpdir(), 'cupcake-docs-'));
  await writeFile(join(docsDir, 'refunds.md'), '# Refund policy\n\nCustomers may ask for a refund within 30 days.\n');
  server = await startTestServer({ docsDir });
});
afterAll(async () => {
  await server.close();
  await rm(docsDir, { recursive: true, force: true });
});

type TransportKind = 'streamable-http' | 'sse';

/**
 * What an MCP client does: connect, meet the 401 challenge, run the OAuth flow through the
 * provider (discovery → registration → consent → token), then connect again with the token.
 */
async function connectWithOAuth(kind: TransportKind, provider: HeadlessOAuthClientProvider): Promise<Client> {
  const make = () =>
    kind === 'sse'
      ? new SSEClientTransport(new URL(`${server.url}/sse`), { authProvider: provider })
      : new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { authProvider: provider });
  const client = new Client({ name: `sdk-${kind}`, version: '1.0.0' });
  const first = make();
  await expect(client.connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
  await first.finishAuth(provider.takeAuthorizationCode());
  const authed = new Client({ name: `sdk-${kind}`, version: '1.0.0' });
  await authed.connect(make());
  return authed;
}

describe('the MCP SDK client through the whole OAuth flow', () => {
  const methods: TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'none'];
  for (const kind of ['streamable-http', 'sse'] as const) {
    for (const method of methods) {
      it(`${kind} with ${method}: 401 → discovery → registration → consent → token → listTools → callTool`, async () => {
        const provider = new HeadlessOAuthClientProvider({ authMethod: method });
        const client = await connectWithOAuth(kind, provider);
        try {
          const { tools } = await client.listTools();
          expect(tools.map((t) => t.name).sort()).toEqual(['fetch', 'search', 'whoami']);
          const who = await client.callTool({ name: 'whoami', arguments: {} });
          const info = provider.clientInformation()!;
          expect(who.structuredContent).toMatchObject({ client_id: info.client_id, scopes: ['mcp'] });
          expect(provider.tokens()!.access_token).toMatch(/^mcp_[0-9a-f]{32}$/);
        } finally {
          await client.close();
        }
        const registered = await server.store.getClient(provider.clientInformation()!.client_id);
        expect(registered?.tokenEndpointAuthMethod).toBe(method);
      });
    }
  }

  it('callTool("search") returns structuredContent.results and the same JSON in content[0].text; fetch reads each hit', async () => {
    const provider = new HeadlessOAuthClientProvider({ authMethod: 'client_secret_basic' });
    const client = await connectWithOAuth('streamable-http', provider);
    try {
      const result = await client.callTool({ name: 'search', arguments: { query: 'refund policy' } });
      const structured = result.structuredContent as { results: Array<{ id: string; title: string; url: string }> };
      expect(structured.results[0]).toEqual({ id: 'refunds.md', title: 'Refund policy', url: `${server.url}/docs/refunds.md` });
      const content = result.content as Array<{ type: string; text: string }>;
      expect(content[0]!.type).toBe('text');
      expect(JSON.parse(content[0]!.text)).toEqual(structured);

      const fetched = await client.callTool({ name: 'fetch', arguments: { id: 'refunds.md' } });
      expect(fetched.structuredContent).toMatchObject({ id: 'refunds.md', title: 'Refund policy', url: `${server.url}/docs/refunds.md` });
      expect((fetched.structuredContent as { text: string }).text).toBe(await readFile(join(docsDir, 'refunds.md'), 'utf8'));
      expect(JSON.parse((fetched.content as Array<{ text: string }>)[0]!.text)).toEqual(fetched.structuredContent);
    } finally {
      await client.close();
    }
  });
});
