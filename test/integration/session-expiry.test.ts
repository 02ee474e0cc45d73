import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFixedClock } from '../../src/shared/clock.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SseReader } from '../helpers/sse.js';
import { mintToken } from '../helpers/tokens.js';

const clock = createFixedClock(Date.now());
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ clock });
});
afterAll(async () => {
  await server.close();
});

describe('sessions end with their token (MCP security best practices)', () => {
  it('an SSE stream and a /mcp session close once the token that opened them expires', async () => {
    const { token, record } = await mintToken(server.store, { baseUrl: server.url, expiresAt: clock.now() + 60_000 });
    const sse = await fetch(`${server.url}/sse`, { headers: { Authorization: `Bearer ${token}` } });
    const reader = new SseReader(sse);
    expect((await reader.next()).event).toBe('endpoint');
    const init = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${token}` },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      }),
    });
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    expect(server.app.mcp.sessions.size).toBe(2);

    clock.advance(59_000);
    await new Promise((r) => setTimeout(r, 1_200));
    expect(server.app.mcp.sessions.size).toBe(2);

    clock.advance(2_000);
    await Promise.race([reader.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('SSE stream still open after expiry')), 3_000))]);
    await expect.poll(() => server.app.mcp.sessions.get(sessionId, 'streamable-http'), { timeout: 3_000 }).toBeUndefined();
    await server.events.flush();
    const closed = (await server.events.readLast(50, { types: ['session.closed'], clientId: record.clientId })).map(
      (e) => (e.detail as { reason: string }).reason,
    );
    expect(closed).toEqual(['token expired', 'token expired']);
  });
});
