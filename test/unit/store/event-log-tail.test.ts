import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileEventLog, type AuthEvent } from '../../../src/store/event-log.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cupcake-tail-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('EventLog.readLast reads backwards', () => {
  it('returns exactly the newest matching events across many 64 KB chunks, multi-byte text included', async () => {
    const path = join(dir, 'events.jsonl');
    const all: AuthEvent[] = [];
    for (let i = 0; i < 6000; i++) {
      all.push({
        ts: new Date(1_700_000_000_000 + i).toISOString(),
        type: i % 3 === 0 ? 'token.issued' : 'tool.called',
        client_id: `client-${i % 7}`,
        // Lines of varying length with multi-byte characters straddle the chunk boundaries.
        user_agent: `agent ${'é✓'.repeat(i % 50)} ${i}`,
      });
    }
    await writeFile(path, `${all.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const log = createFileEventLog(path);
    for (const n of [1, 20, 777, 6000, 9000]) {
      expect(await log.readLast(n)).toEqual(all.slice(-n));
    }
    const issued = all.filter((e) => e.type === 'token.issued');
    expect(await log.readLast(50, { types: ['token.'] })).toEqual(issued.slice(-50));
    const client3 = all.filter((e) => e.client_id === 'client-3');
    expect(await log.readLast(400, { clientId: 'client-3' })).toEqual(client3.slice(-400));
  });

  it('reads a file without a trailing newline and skips a torn line', async () => {
    const path = join(dir, 'events.jsonl');
    const a = { ts: '2026-01-01T00:00:00.000Z', type: 'server.started' };
    const b = { ts: '2026-01-01T00:00:01.000Z', type: 'server.stopped' };
    await writeFile(path, `${JSON.stringify(a)}\n{"ts":"2026-01-01T00:00:00.500Z","ty\n${JSON.stringify(b)}`);
    expect(await createFileEventLog(path).readLast(10)).toEqual([a, b]);
  });
});
