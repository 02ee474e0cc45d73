import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import { matchesFilter, REJECTION_TYPES, stamp, type AuthEvent, type EventLog } from '../event-log.js';
import type { RedisClient } from './connection.js';
import { LuaScript } from './scripts.js';

/**
 * Appends a batch in order. KEYS: records stream, rejections stream, the log's counter. ARGV:
 * cap, then pairs of (1 = record, 2 = rejection) and the event's JSON. Each entry carries `n`, one
 * counter for both streams: the order events were written across them (stream ids alone tie
 * within a millisecond). The batch takes its block of `n` with one INCRBY; as the script runs
 * alone, no other replica's events come between them.
 */
const APPEND = new LuaScript(`
local count = (#ARGV - 1) / 2
local n = redis.call('INCRBY', KEYS[3], count) - count
for i = 2, #ARGV, 2 do
  n = n + 1
  redis.call('XADD', KEYS[tonumber(ARGV[i])], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i + 1], 'n', n)
end
return 1
`);

/** About the size of the file log's two 10 MB files; Redis trims the oldest past it. */
export const STREAM_MAX_EVENTS = 100_000;
/** Events held in memory while Redis is away; the oldest are dropped past it (and that is said). */
const BACKLOG_LIMIT = 10_000;
/**
 * Writes start at most this often. An event recorded after a quiet spell goes out at once; under
 * load (a `tool.called` per request) what gathers meanwhile goes in the next write, so Redis is
 * woken and the script run once per batch, not once per request.
 */
export const BATCH_INTERVAL_MS = 10;
/** Events in one script call: a longer one would hold Redis (which runs scripts alone) too long. */
const MAX_BATCH = 500;

/**
 * The audit log of a Redis deployment: capped streams (XADD with an approximate MAXLEN) that every
 * replica appends to, so `events tail` on any machine shows every replica's events in the order
 * Redis received them. As in the file log, rejections (REJECTION_TYPES) go to a stream of their
 * own (`<key>:rejections`) with its own cap, so a flood of refusals cannot trim away what was
 * granted; reading and following see both, in order. Same contract as the file log (EventLog):
 * `record` never throws or blocks; while Redis is away events wait in memory and go out in
 * order when it is back. Writes are batched (BATCH_INTERVAL_MS); `flush` and `close` write what
 * is pending at once.
 */
export function createRedisEventLog(
  client: RedisClient,
  key: string,
  options: {
    clock?: Clock;
    onError?: (error: unknown) => void;
    maxEvents?: number /** Each event as recorded, in this process (serve's log). */;
    onRecord?: (event: AuthEvent) => void;
  } = {},
): EventLog {
  const clock = options.clock ?? systemClock;
  const maxEvents = options.maxEvents ?? STREAM_MAX_EVENTS;
  const rejectionsKey = `${key}:rejections`;
  const streamOf = (event: AuthEvent) => (REJECTION_TYPES.has(event.type) ? '2' : '1');
  let pending: Array<{ stream: string; line: string }> = [];
  let writing: Promise<void> = Promise.resolve();
  let dropped = 0;
  let retry: NodeJS.Timeout | undefined;
  /** A drain is queued or running: it takes whatever record() adds meanwhile. */
  let draining = false;
  /** When the last write started (performance.now()); the next waits until BATCH_INTERVAL_MS after it. */
  let lastWrite = -Infinity;
  /** flush() or close() calls waiting: while any is, writes go at once, without the batching pause. */
  let urgent = 0;
  let pause: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  const startDrain = () => {
    draining = true;
    writing = writing.then(drain);
  };

  /** Waits until BATCH_INTERVAL_MS after the last write started, or until a flush asks to write now. */
  function waitForBatch(): Promise<void> {
    const wait = lastWrite + BATCH_INTERVAL_MS - performance.now();
    if (urgent > 0 || wait <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      pause = {
        resolve,
        timer: setTimeout(() => {
          pause = undefined;
          resolve();
        }, wait),
      };
    });
  }

  function hurry(): void {
    urgent++;
    if (!pause) return;
    clearTimeout(pause.timer);
    pause.resolve();
    pause = undefined;
  }

  async function drain(): Promise<void> {
    try {
      await drainPending();
    } finally {
      draining = false;
    }
  }

  async function drainPending(): Promise<void> {
    while (pending.length > 0) {
      await waitForBatch();
      const batch = pending.length > MAX_BATCH ? pending.slice(0, MAX_BATCH) : pending;
      pending = pending.length > MAX_BATCH ? pending.slice(MAX_BATCH) : [];
      lastWrite = performance.now();
      try {
        await APPEND.run(client, [key, rejectionsKey, `${key}:n`], [String(maxEvents), ...batch.flatMap((entry) => [entry.stream, entry.line])]);
      } catch (error) {
        // Kept for the next attempt, oldest first; bounded so an outage cannot exhaust memory.
        pending = [...batch, ...pending];
        if (pending.length > BACKLOG_LIMIT) {
          dropped += pending.length - BACKLOG_LIMIT;
          pending = pending.slice(-BACKLOG_LIMIT);
        }
        options.onError?.(error);
        retry ??= setTimeout(() => {
          retry = undefined;
          startDrain();
        }, 1_000);
        retry.unref?.();
        return;
      }
      if (dropped > 0) {
        options.onError?.(new Error(`${dropped} audit events were dropped while Redis was unavailable`));
        dropped = 0;
      }
    }
  }

  const parse = (fields: Record<string, string>): AuthEvent | undefined => {
    try {
      const event = JSON.parse(fields.e ?? '') as AuthEvent;
      return typeof event === 'object' && event !== null && typeof event.type === 'string' ? event : undefined;
    } catch {
      return undefined;
    }
  };

  return {
    record(event) {
      const stamped = stamp(event, clock);
      pending.push({ stream: streamOf(stamped), line: JSON.stringify(stamped) });
      if (options.onRecord) {
        try {
          options.onRecord(stamped);
        } catch {
          /* a listener never breaks recording */
        }
      }
      if (!draining && !retry) startDrain();
    },
    async flush() {
      hurry();
      try {
        await writing;
        if (pending.length > 0 && !retry) {
          startDrain();
          await writing;
        }
      } finally {
        urgent--;
      }
    },
    async close() {
      await this.flush();
      if (retry) clearTimeout(retry);
      retry = undefined;
    },
    async readLast(n, filter) {
      if (n <= 0) return [];
      // The newest n of each stream, merged by stream id (the order Redis received them).
      const newest = async (stream: string) => {
        const found: Array<{ n: number; event: AuthEvent }> = [];
        let end = '+';
        while (found.length < n) {
          const page = await client.xRevRange(stream, end, '-', { COUNT: 500 });
          for (const entry of page) {
            const event = parse(entry.message as Record<string, string>);
            if (event && matchesFilter(event, filter)) found.push({ n: Number((entry.message as Record<string, string>).n ?? 0), event });
            if (found.length >= n) break;
          }
          if (page.length < 500) break;
          end = `(${page[page.length - 1]!.id}`;
        }
        return found;
      };
      const both = [...(await newest(key)), ...(await newest(rejectionsKey))].sort((a, b) => a.n - b.n);
      return both.slice(-n).map((e) => e.event);
    },
    follow(onEvent, filter) {
      // XREAD BLOCK holds its connection: a connection of its own, started from each stream's
      // end as it is now, so an event written right after follow() returns is not missed.
      const reader = client.duplicate();
      reader.on('error', () => undefined);
      let stopped = false;
      void (async () => {
        const last: Record<string, string> = { [key]: '0-0', [rejectionsKey]: '0-0' };
        try {
          await reader.connect();
          for (const stream of [key, rejectionsKey]) {
            const newest = await reader.xRevRange(stream, '+', '-', { COUNT: 1 });
            last[stream] = newest[0]?.id ?? '0-0';
          }
        } catch (error) {
          options.onError?.(error);
        }
        while (!stopped) {
          try {
            const reply = (await reader.xRead(
              [key, rejectionsKey].map((stream) => ({ key: stream, id: last[stream]! })),
              { BLOCK: 1_000, COUNT: 100 },
            )) as Array<{ name: string; messages: Array<{ id: string; message: Record<string, string> }> }> | null;
            const arrived: Array<{ n: number; event: AuthEvent }> = [];
            for (const stream of reply ?? []) {
              for (const entry of stream.messages) {
                last[stream.name] = entry.id;
                const event = parse(entry.message);
                if (event && matchesFilter(event, filter)) arrived.push({ n: Number(entry.message.n ?? 0), event });
              }
            }
            arrived.sort((a, b) => a.n - b.n);
            for (const { event } of arrived) if (!stopped) onEvent(event);
          } catch {
            if (!stopped) await new Promise((resolve) => setTimeout(resolve, 500));
          }
        }
      })();
      return () => {
        stopped = true;
        reader.destroy();
      };
    },
  };
}
