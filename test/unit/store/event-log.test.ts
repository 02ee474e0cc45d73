import { appendFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFileEventLog, EVENT_TYPES, EVENTS_FILE, rejectionsPathFor, type AuthEvent, type NewEvent } from '../../../src/store/event-log.js';
import { createFixedClock } from '../../../src/shared/clock.js';
import { useTmpDirs } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

const tmp = useTmpDirs('cupcake-events-');
const logPath = async () => join(await tmp(), EVENTS_FILE);
const lines = async (path: string) =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuthEvent);

const A = '3f1c2e9a-1111-4a4a-8b8b-000000000001';
const B = '3f1c2e9a-2222-4a4a-8b8b-000000000002';

describe('file event log', () => {
  it('declares every event type of DESIGN §7 once', () => {
    expect(new Set(EVENT_TYPES).size).toBe(EVENT_TYPES.length);
    expect(EVENT_TYPES).toContain('token.reuse_detected');
    expect(EVENT_TYPES).toContain('server.started');
  });

  it('appends one JSON object per line, stamped with the clock, in the order recorded', async () => {
    const path = await logPath();
    const clock = createFixedClock(Date.UTC(2026, 0, 1, 12));
    const log = createFileEventLog(path, { clock });
    log.record({ type: 'client.registered', client_id: A, ip: '203.0.113.7', user_agent: 'openai-mcp/1.0' });
    clock.advance(1000);
    log.record({ type: 'token.refreshed', client_id: A, token_id: 'tok_0123456789ab', detail: { previous_refresh_token: 'tok_ba9876543210', scope: 'mcp' } });
    await log.flush();
    expect(await lines(path)).toEqual([
      { ts: '2026-01-01T12:00:00.000Z', type: 'client.registered', client_id: A, ip: '203.0.113.7', user_agent: 'openai-mcp/1.0' },
      {
        ts: '2026-01-01T12:00:01.000Z',
        type: 'token.refreshed',
        client_id: A,
        token_id: 'tok_0123456789ab',
        detail: { previous_refresh_token: 'tok_ba9876543210', scope: 'mcp' },
      },
    ]);
  });

  it('bounds strings a client controls so one request cannot flood the log', async () => {
    const path = await logPath();
    const log = createFileEventLog(path);
    log.record({ type: 'client.registered', user_agent: 'x'.repeat(10_000), client_id: 'c'.repeat(10_000), detail: { client_name: 'd'.repeat(10_000) } });
    await log.flush();
    const [event] = await lines(path);
    expect(event!.user_agent!.length).toBeLessThanOrEqual(300);
    expect(event!.client_id!.length).toBeLessThanOrEqual(200);
    expect((event!.detail as { client_name: string }).client_name.length).toBeLessThanOrEqual(500);
  });

  it('rejections go to events.rejections.jsonl with a rotation budget of their own; readLast and follow see both in time order', async () => {
    const path = await logPath();
    const clock = createFixedClock(Date.UTC(2026, 0, 1, 12));
    const log = createFileEventLog(path, { clock, rotateBytes: 4_096 });
    log.record({ type: 'client.registered', client_id: A });
    clock.advance(1);
    for (let i = 0; i < 200; i++) {
      log.record({ type: 'token.rejected', ip: `10.0.0.${i}`, detail: { reason: 'unknown' } });
      if (i % 20 === 19) await log.flush();
    }
    clock.advance(1);
    log.record({ type: 'token.issued', client_id: A, token_id: 'tok_0123456789ab' });
    await log.flush();
    expect((await lines(path)).map((e) => e.type)).toEqual(['client.registered', 'token.issued']);
    expect((await stat(rejectionsPathFor(path))).mode & 0o777).toBe(0o600);
    expect((await stat(`${rejectionsPathFor(path)}.1`)).size).toBeGreaterThan(0);
    const last = await log.readLast(3);
    expect(last.map((e) => e.type)).toEqual(['token.rejected', 'token.rejected', 'token.issued']);
    expect((await log.readLast(10_000, { types: ['client.', 'token.issued'] })).map((e) => e.type)).toEqual(['client.registered', 'token.issued']);
  });

  it('DESIGN §6: events.jsonl is created with mode 0600', async () => {
    const path = await logPath();
    const log = createFileEventLog(path);
    log.record({ type: 'server.started' });
    await log.flush();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('readLast returns the newest N matching events, oldest first, filtered by type prefix and client', async () => {
    const path = await logPath();
    const log = createFileEventLog(path);
    const recorded: NewEvent[] = [
      { type: 'server.started' },
      { type: 'client.registered', client_id: A },
      { type: 'token.issued', client_id: A, token_id: 'tok_aaaaaaaaaaa1' },
      { type: 'client.registered', client_id: B },
      { type: 'token.issued', client_id: B, token_id: 'tok_bbbbbbbbbbb1' },
      { type: 'token.revoked', client_id: A, token_id: 'tok_aaaaaaaaaaa1' },
      { type: 'login.failed', ip: '198.51.100.1' },
      { type: 'token.rejected', detail: { reason: 'missing' } },
    ];
    for (const event of recorded) log.record(event);
    await log.flush();

    const types = (events: AuthEvent[]) => events.map((e) => `${e.type}${e.client_id ? `@${e.client_id.slice(-1)}` : ''}`);
    expect(types(await log.readLast(3))).toEqual(['token.revoked@1', 'login.failed', 'token.rejected']);
    expect(await log.readLast(100)).toHaveLength(8);
    expect(await log.readLast(0)).toEqual([]);
    expect(types(await log.readLast(10, { types: ['token.'] }))).toEqual(['token.issued@1', 'token.issued@2', 'token.revoked@1', 'token.rejected']);
    expect(types(await log.readLast(2, { types: ['token.'] }))).toEqual(['token.revoked@1', 'token.rejected']);
    expect(types(await log.readLast(10, { types: ['client.', 'login.'] }))).toEqual(['client.registered@1', 'client.registered@2', 'login.failed']);
    expect(types(await log.readLast(10, { clientId: A }))).toEqual(['client.registered@1', 'token.issued@1', 'token.revoked@1']);
    expect(types(await log.readLast(10, { clientId: B, types: ['token.'] }))).toEqual(['token.issued@2']);
  });

  it('readLast on a log that does not exist yet is empty, and skips a torn last line', async () => {
    const path = await logPath();
    const log = createFileEventLog(path);
    expect(await log.readLast(5)).toEqual([]);
    log.record({ type: 'server.started' });
    await log.flush();
    const { appendFile } = await import('node:fs/promises');
    await appendFile(path, '{"ts":"2026-01-01T00:00:00.000Z","type":"serv');
    expect((await log.readLast(5)).map((e) => e.type)).toEqual(['server.started']);
  });

  it('rotates to events.jsonl.1 past rotateBytes, and readLast spans both files', async () => {
    const path = await logPath();
    const log = createFileEventLog(path, { rotateBytes: 1_000 });
    for (let i = 0; i < 15; i++) {
      log.record({ type: 'tool.called', client_id: A, detail: { tool: `t${i}`, ms: i } });
      await log.flush();
    }
    const current = await lines(path);
    const rotated = await lines(`${path}.1`);
    expect((await stat(path)).size).toBeLessThanOrEqual(1_000);
    expect((await stat(`${path}.1`)).size).toBeLessThanOrEqual(1_000);
    expect((await stat(`${path}.1`)).mode & 0o777).toBe(0o600);
    expect(current.length).toBeGreaterThan(0);
    expect(rotated.length).toBeGreaterThan(0);
    const n = (e: AuthEvent) => (e.detail as { ms: number }).ms;
    // The two files hold the newest events, contiguous and in order.
    const both = [...rotated, ...current].map(n);
    expect(both).toEqual(both.map((_, i) => 15 - both.length + i));

    const spanning = await log.readLast(current.length + 2);
    expect(spanning.map(n)).toEqual(both.slice(-(current.length + 2)));
    expect((await log.readLast(100)).map(n)).toEqual(both);
  });

  it('follow() reports lines another log instance writes, with filters, until stopped', async () => {
    const path = await logPath();
    const writer = createFileEventLog(path);
    writer.record({ type: 'server.started' });
    await writer.flush();

    const reader = createFileEventLog(path);
    const seen: AuthEvent[] = [];
    const tokenEvents: AuthEvent[] = [];
    const stop = reader.follow((e) => seen.push(e));
    const stopTokens = reader.follow((e) => tokenEvents.push(e), { types: ['token.'] });
    // A line another process writes the moment follow() returns is reported; the older one is not.
    appendFileSync(path, `${JSON.stringify({ ts: new Date().toISOString(), type: 'login.failed', ip: '192.0.2.1' })}\n`);

    writer.record({ type: 'client.registered', client_id: A });
    writer.record({ type: 'token.issued', client_id: A });
    await writer.flush();
    await waitFor(() => seen.length >= 3, { timeoutMs: 2_000, what: 'followed events' });
    expect(seen.map((e) => e.type)).toEqual(['login.failed', 'client.registered', 'token.issued']);
    expect(tokenEvents.map((e) => e.type)).toEqual(['token.issued']);

    stop();
    stopTokens();
    writer.record({ type: 'token.revoked', client_id: A });
    await writer.flush();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(seen).toHaveLength(3);
  });

  it('follow() on a log that does not exist yet reports its first lines', async () => {
    const path = await logPath();
    const seen: string[] = [];
    const stop = createFileEventLog(path).follow((e) => seen.push(e.type));
    try {
      const writer = createFileEventLog(path);
      writer.record({ type: 'server.started' });
      writer.record({ type: 'client.registered', client_id: A });
      await writer.flush();
      await waitFor(() => seen.length >= 2, { timeoutMs: 2_000, what: 'followed events' });
      expect(seen).toEqual(['server.started', 'client.registered']);
    } finally {
      stop();
    }
  });

  it('follow() keeps up across rotation without losing or repeating a line', async () => {
    const path = await logPath();
    const writer = createFileEventLog(path, { rotateBytes: 800 });
    for (let i = 0; i < 4; i++) writer.record({ type: 'tool.called', detail: { tool: 't', ms: -1 - i } });
    await writer.flush();

    const reader = createFileEventLog(path);
    const seen: number[] = [];
    const stop = reader.follow((e) => seen.push((e.detail as { ms: number }).ms));
    try {
      for (let i = 0; i < 12; i++) {
        writer.record({ type: 'tool.called', client_id: B, detail: { tool: `t${i}`, ms: i } });
        await writer.flush();
        if (i % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 30));
      }
      await waitFor(() => seen.length >= 12, { timeoutMs: 3_000, what: 'all followed events' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => i));
      // It did rotate (at least once) while we followed.
      expect((await lines(`${path}.1`)).length).toBeGreaterThan(0);
    } finally {
      stop();
    }
  });
});
