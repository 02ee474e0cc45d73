import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import { matchesFilter, stamp, type AuthEvent, type EventLog } from '../event-log.js';
import type { RedisClient } from './connection.js';

/** About the size of the file log's two 10 MB files; Redis trims the oldest past it. */
export const STREAM_MAX_EVENTS = 100_000;
/** Events held in memory while Redis is away; the oldest are dropped past it (and that is said). */
const BACKLOG_LIMIT = 10_000;

/**
 * The audit log of a Redis deployment: one capped stream (`<prefix>events`, XADD with an
 * approximate MAXLEN) that every replica appends to, so `events tail` on any machine shows every
 * replica's events in the order Redis received them. Same contract as the file log (EventLog):
 * `record` never throws or blocks; while Redis is away events wait in memory and go out in
 * order when it is back.
 */
export function createRedisEventLog(
  client: RedisClient,
  key: string,
  options: { clock?: Clock; onError?: (error: unknown) => void; maxEvents?: number; /** Each event as recorded, in this process (serve's log). */ onRecord?: (event: AuthEvent) => void } = {},
): EventLog {
  const clock = options.clock ?? systemClock;
  const maxEvents = options.maxEvents ?? STREAM_MAX_EVENTS;
  let pending: string[] = [];
  let writing: Promise<void> = Promise.resolve();
  let dropped = 0;
  let retry: NodeJS.Timeout | undefined;

  async function drain(): Promise<void> {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        const multi = client.multi();
        for (const line of batch) multi.xAdd(key, '*', { e: line }, { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: maxEvents } });
        await multi.exec();
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
          writing = writing.then(drain);
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
      pending.push(JSON.stringify(stamped));
      if (options.onRecord) {
        try {
          options.onRecord(stamped);
        } catch {
          /* a listener never breaks recording */
        }
      }
      if (pending.length === 1 && !retry) writing = writing.then(drain);
    },
    async flush() {
      await writing;
      if (pending.length > 0 && !retry) {
        writing = writing.then(drain);
        await writing;
      }
    },
    async close() {
      await this.flush();
      if (retry) clearTimeout(retry);
      retry = undefined;
    },
    async readLast(n, filter) {
      if (n <= 0) return [];
      const found: AuthEvent[] = [];
      let end = '+';
      // Newest first, a page at a time, until n match or the stream is read.
      while (found.length < n) {
        const page = await client.xRevRange(key, end, '-', { COUNT: 500 });
        for (const entry of page) {
          const event = parse(entry.message as Record<string, string>);
          if (event && matchesFilter(event, filter)) found.push(event);
          if (found.length >= n) break;
        }
        if (page.length < 500) break;
        end = `(${page[page.length - 1]!.id}`;
      }
      return found.reverse();
    },
    follow(onEvent, filter) {
      // XREAD BLOCK holds its connection: a connection of its own, started from the stream's
      // end as it is now, so an event written right after follow() returns is not missed.
      const reader = client.duplicate();
      reader.on('error', () => undefined);
      let stopped = false;
      void (async () => {
        let last = '$';
        try {
          await reader.connect();
          const newest = await reader.xRevRange(key, '+', '-', { COUNT: 1 });
          last = newest[0]?.id ?? '0-0';
        } catch (error) {
          options.onError?.(error);
        }
        while (!stopped) {
          try {
            const reply = (await reader.xRead({ key, id: last }, { BLOCK: 1_000, COUNT: 100 })) as Array<{ messages: Array<{ id: string; message: Record<string, string> }> }> | null;
            for (const stream of reply ?? []) {
              for (const entry of stream.messages) {
                last = entry.id;
                const event = parse(entry.message);
                if (event && matchesFilter(event, filter) && !stopped) onEvent(event);
              }
            }
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
