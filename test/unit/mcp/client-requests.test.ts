import { describe, expect, it } from 'vitest';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { InteractionStore } from '../../../src/mcp/client-requests.js';

const leg = () => ({ signal: new AbortController().signal });
const ELICIT = { method: 'elicitation/create', params: { message: 'Name?', requestedSchema: { type: 'object', properties: {} } } };

/** A tool that asks its caller once and answers with what it got; resolves `cancelled` when aborted. */
function askingTool(cancelled: string[]) {
  return async ({ signal, ask }: { signal: AbortSignal; ask: (r: typeof ELICIT) => Promise<Record<string, unknown>> }): Promise<CallToolResult> => {
    signal.addEventListener('abort', () => cancelled.push(String(signal.reason)));
    const answer = await ask(ELICIT);
    return { content: [{ type: 'text', text: JSON.stringify(answer) }] };
  };
}

describe('multi-round-trip tool calls (MCP 2026-07-28 input_required)', () => {
  it('a call that asks its caller answers input_required; the retry with the answer completes it', async () => {
    const store = new InteractionStore();
    const first = (await store.serve('client-a', undefined, undefined, leg(), askingTool([]))) as Record<string, any>;
    expect(first).toMatchObject({ resultType: 'input_required', inputRequests: { r1: ELICIT } });
    const done = (await store.serve(
      'client-a',
      first.requestState,
      { r1: { action: 'accept', content: { name: 'Ada' } } },
      leg(),
      askingTool([]),
    )) as CallToolResult;
    expect(done.content).toEqual([{ type: 'text', text: '{"action":"accept","content":{"name":"Ada"}}' }]);
    expect(store.size).toBe(0);
  });

  it("MRTR server requirement 5: another client's retry with a valid requestState is refused like an unknown one, and the call stays its owner's", async () => {
    const store = new InteractionStore();
    const first = (await store.serve('client-a', undefined, undefined, leg(), askingTool([]))) as Record<string, any>;
    await expect(store.serve('client-b', first.requestState, { r1: { action: 'accept' } }, leg(), askingTool([]))).rejects.toThrow(
      /requestState is unknown or expired/,
    );
    await expect(store.serve('client-a', 'made-up', { r1: { action: 'accept' } }, leg(), askingTool([]))).rejects.toThrow(/requestState is unknown or expired/);
    const done = (await store.serve('client-a', first.requestState, { r1: { action: 'decline' } }, leg(), askingTool([]))) as CallToolResult;
    expect(done.content).toEqual([{ type: 'text', text: '{"action":"decline"}' }]);
  });

  it('a call whose client never comes back is cancelled after the time limit and its handle forgotten', async () => {
    const store = new InteractionStore(50);
    const cancelled: string[] = [];
    const first = (await store.serve('client-a', undefined, undefined, leg(), askingTool(cancelled))) as Record<string, any>;
    await expect.poll(() => cancelled).toEqual(['Error: the client did not answer in time']);
    expect(store.size).toBe(0);
    await expect(store.serve('client-a', first.requestState, { r1: { action: 'accept' } }, leg(), askingTool([]))).rejects.toThrow(/unknown or expired/);
  });
});
