import { randomBytes } from 'node:crypto';
import type { CountWindows, FailureWindow, SharedEphemeralState, SingleUseEntries } from '../ephemeral.js';
import type { RedisClient } from './connection.js';
import { LuaScript } from './scripts.js';

/**
 * KEYS: failures (sorted set of times), attempts in flight (counter).
 * ARGV: now, window, limit, forgotten-before. Drops failures older than the window (or lifted by
 * `unlock` / `passwd`), then admits an attempt only
 * while failures + attempts in flight stay under the limit: concurrent guesses on several
 * replicas cannot all slip past the lock while scrypt runs.
 */
const BEGIN = new LuaScript(`
local now, window, limit, forgotten = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', math.max(now - window, forgotten))
local used = redis.call('ZCARD', KEYS[1]) + tonumber(redis.call('GET', KEYS[2]) or '0')
if used >= limit then return 0 end
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 120000)
return 1
`);

/** KEYS as BEGIN. ARGV: now, window, failed (1/0), a unique member, forgotten-before. Answers the failures in the window. */
const END = new LuaScript(`
local now, window, forgotten = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', math.max(now - window, forgotten))
return redis.call('ZCARD', KEYS[1])
`);

/** KEYS: the window's counter. ARGV: now, window. Answers count and window start. */
const HIT = new LuaScript(`
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
if count == 1 then
  redis.call('HSET', KEYS[1], 'start', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return { count, tonumber(redis.call('HGET', KEYS[1], 'start')) }
`);

/** Shared ephemeral state in Redis: keys under `<prefix>x:`, each with a TTL so nothing piles up. */
export function createRedisEphemeralState(client: RedisClient, prefix: string): SharedEphemeralState {
  const key = (...parts: string[]) => `${prefix}x:${parts.join(':')}`;
  return {
    entries(name): SingleUseEntries {
      return {
        async put(id, value, ttlMs) {
          await client.set(key(name, id), value, { PX: Math.max(1, ttlMs) });
        },
        async get(id) {
          return (await client.get(key(name, id))) ?? undefined;
        },
        async take(id) {
          // DEL answers how many keys it removed: 1 for exactly one of racing callers.
          return (await client.del(key(name, id))) === 1;
        },
      };
    },
    failureWindow(name, limit, windowMs): FailureWindow {
      const keys = (k: string) => [key(name, 'failures', k), key(name, 'inflight', k)];
      return {
        async failures(k, now, forgottenBefore = 0) {
          const times = await client.zRangeByScore(keys(k)[0]!, `(${Math.max(now - windowMs, forgottenBefore)}`, '+inf');
          return times.map((member) => Number(member.split('/')[0]));
        },
        async begin(k, now, forgottenBefore = 0) {
          return (await BEGIN.run<number>(client, keys(k), [String(now), String(windowMs), String(limit), String(forgottenBefore)])) === 1;
        },
        async end(k, failed, now, forgottenBefore = 0) {
          return END.run<number>(client, keys(k), [
            String(now),
            String(windowMs),
            failed ? '1' : '0',
            `${now}/${randomBytes(6).toString('hex')}`,
            String(forgottenBefore),
          ]);
        },
      };
    },
    countWindows(name, windowMs): CountWindows {
      return {
        async hit(k, now) {
          const [count, start] = await HIT.run<[number, number]>(client, [key(name, 'window', k)], [String(now), String(windowMs)]);
          return { count, start };
        },
      };
    },
    async sharedKey(name) {
      const k = key('keys', name);
      await client.set(k, randomBytes(32).toString('base64'), { NX: true });
      return Buffer.from((await client.get(k)) ?? '', 'base64');
    },
  };
}
