import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { mintToken } from '../helpers/tokens.js';
import { SseReader } from '../helpers/sse.js';
import { waitFor } from '../helpers/wait.js';

const FLOOD = fileURLToPath(new URL('../fixtures/upstream-flood.mjs', import.meta.url));
const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

let server: TestServer;
let headers: Record<string, string>;

beforeAll(async () => {
  server = await startTestServer({
    config: { tools: { servers: { up: { command: process.execPath, args: [FLOOD], env: { FLOOD_URI_BYTES: '16' } } } } },
  });
  await waitFor(() => server.toolset.upstreams?.status()[0]?.state === 'ready', { timeoutMs: 15_000, what: 'the upstream to be ready' });
  const { token } = await mintToken(server.store, { baseUrl: server.url });
  headers = {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28',
  };
}, 30_000);

afterAll(async () => {
  await server?.close();
});

/** A 2026-07-28 request: no session, the envelope in `_meta`, Mcp-Method (and Mcp-Name) headers. */
function modern(method: string, params: Record<string, unknown>, name?: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers: { ...headers, 'mcp-method': method, ...(name ? { 'mcp-name': name } : {}) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: META } }),
    ...(signal ? { signal } : {}),
  });
}

async function flood(count: number): Promise<string> {
  const answer = (await (await modern('tools/call', { name: 'up__flood', arguments: { count } }, 'up__flood')).json()) as {
    result: { content: Array<{ text: string }> };
  };
  return answer.result.content[0]!.text;
}

describe('MCP 2026-07-28 subscriptions/listen through the gateway (DESIGN.md §5)', () => {
  it('a listen stream that asks for a resource subscribes it at its upstream while open, and unsubscribes when it ends', async () => {
    const listed = (await (await modern('resources/list', {})).json()) as { result: { resources: Array<{ uri: string }> } };
    const uri = listed.result.resources[0]!.uri;
    // No session anywhere has subscribed: the upstream sends nothing.
    expect(await flood(2)).toBe('sent 0');

    const hangUp = new AbortController();
    const listen = await modern('subscriptions/listen', { notifications: { resourceSubscriptions: [uri] } }, undefined, hangUp.signal);
    expect(listen.status).toBe(200);
    const reader = new SseReader(listen);
    expect(JSON.parse((await reader.next(10_000)).data)).toMatchObject({
      method: 'notifications/subscriptions/acknowledged',
      params: { notifications: { resourceSubscriptions: [uri] } },
    });
    // The upstream's subscription is made in the background: wait until it sends.
    await waitFor(async () => (await flood(2)) === 'sent 2', { timeoutMs: 10_000, what: 'the upstream to be subscribed' });
    for (let i = 0; i < 2; i++) {
      expect(JSON.parse((await reader.next(10_000)).data)).toMatchObject({ method: 'notifications/resources/updated', params: { uri } });
    }

    // The client hangs up: the subscription at the upstream ends with the stream.
    hangUp.abort();
    await waitFor(async () => (await flood(1)) === 'sent 0', { timeoutMs: 10_000, what: 'the upstream to be unsubscribed' });
  });
});
