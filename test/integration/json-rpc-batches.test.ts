import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SseReader } from '../helpers/sse.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { mintToken } from '../helpers/tokens.js';

/**
 * JSON-RPC batches (MCP 2025-06-18 removed them; JSON-RPC 2.0 §6 for the earlier revisions):
 * refused where the negotiated revision forbids them, capped at 100 messages otherwise, on both
 * POST /messages and POST /mcp, before any message of the batch is handled.
 */
type RpcError = { error: { code: number; message: string } };

describe('JSON-RPC batches', () => {
  let server: TestServer;
  let auth: Record<string, string>;

  beforeAll(async () => {
    server = await startTestServer();
    const { token } = await mintToken(server.store, { baseUrl: server.url, resource: server.url });
    auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  });
  afterAll(() => server.close());

  const ping = (id: number) => ({ jsonrpc: '2.0', id, method: 'ping' });
  const batch = (n: number) => Array.from({ length: n }, (_, i) => ping(i + 1));
  const initialize = (protocolVersion: string) => ({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'batcher', version: '1' } },
  });

  /** An SSE session initialized at `protocolVersion`; returns a poster for its /messages endpoint. */
  async function sseSession(protocolVersion: string) {
    const abort = new AbortController();
    const stream = await fetch(`${server.url}/sse`, { headers: { authorization: auth.authorization! }, signal: abort.signal });
    const reader = new SseReader(stream);
    const endpoint = (await reader.next()).data;
    const post = (body: unknown) => fetch(`${server.url}${endpoint}`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
    expect((await post(initialize(protocolVersion))).status).toBe(202);
    expect(JSON.parse((await reader.next()).data).result.protocolVersion).toBe(protocolVersion);
    return { post, reader, close: () => abort.abort() };
  }

  it('POST /messages: a 1 MB batch of 20,000 requests is refused at once with 400 -32600, none of it handled', async () => {
    const session = await sseSession('2024-11-05');
    const response = await session.post(batch(20_000));
    expect(response.status).toBe(400);
    expect(((await response.json()) as RpcError).error).toMatchObject({ code: -32600, message: expect.stringContaining('at most 100') });
    session.close();
  });

  it('POST /messages: before 2025-06-18 a batch of up to 100 is answered; after it (2025-06-18 negotiated) a batch is refused', async () => {
    const old = await sseSession('2024-11-05');
    expect((await old.post(batch(100))).status).toBe(202);
    const answers = new Set<number>();
    while (answers.size < 100) answers.add(JSON.parse((await old.reader.next()).data).id as number);
    expect((await old.post(batch(101))).status).toBe(400);
    old.close();

    const current = await sseSession('2025-06-18');
    const refused = await current.post(batch(2));
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as RpcError).error.message).toContain('does not allow JSON-RPC batches');
    expect((await current.post(ping(7))).status).toBe(202);
    current.close();
  });

  it("the cap is the config's limits.batchSize", async () => {
    const narrow = await startTestServer({ config: { limits: { batchSize: 3 } } });
    try {
      const { token } = await mintToken(narrow.store, { baseUrl: narrow.url, resource: narrow.url });
      const headers = { ...auth, authorization: `Bearer ${token}` };
      const init = await fetch(`${narrow.url}/mcp`, { method: 'POST', headers, body: JSON.stringify(initialize('2025-03-26')) });
      const session = { 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-03-26' };
      await init.text();
      const refused = await fetch(`${narrow.url}/mcp`, { method: 'POST', headers: { ...headers, ...session }, body: JSON.stringify(batch(4)) });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as RpcError).error.message).toContain('at most 3');
    } finally {
      await narrow.close();
    }
  });

  it('POST /mcp: a batch is refused under MCP-Protocol-Version 2025-06-18 or later, capped at 100 under 2025-03-26', async () => {
    const init = await fetch(`${server.url}/mcp`, { method: 'POST', headers: auth, body: JSON.stringify(initialize('2025-03-26')) });
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    const post = (body: unknown, version: string) =>
      fetch(`${server.url}/mcp`, {
        method: 'POST',
        headers: { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': version },
        body: JSON.stringify(body),
      });
    const big = await post(batch(101), '2025-03-26');
    expect(big.status).toBe(400);
    expect(((await big.json()) as RpcError).error.code).toBe(-32600);
    const small = await post(batch(3), '2025-03-26');
    expect(small.status).toBe(200);
    await small.text();
    const forbidden = await post(batch(2), '2025-06-18');
    expect(forbidden.status).toBe(400);
    expect(((await forbidden.json()) as RpcError).error.message).toContain('does not allow JSON-RPC batches');
  });
});
