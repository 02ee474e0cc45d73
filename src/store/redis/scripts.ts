import { createHash } from 'node:crypto';
import type { RedisClient } from './connection.js';

/** A Lua script run by its SHA-1, loaded again when Redis does not know it (a restart, SCRIPT FLUSH). */
export class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run<T>(client: RedisClient, keys: string[], args: string[]): Promise<T> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return (await client.sendCommand(['EVALSHA', this.sha, ...tail])) as T;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return (await client.sendCommand(['EVAL', this.source, ...tail])) as T;
    }
  }
}

/** Markers in a compare-and-set: a field that must be absent, a value not checked, a field to delete, one left as is. */
export const ABSENT = '\u0000absent';
export const ANY = '\u0000any';
export const DELETE = '\u0000delete';
export const KEEP = '\u0000keep';

/**
 * Compare-and-set over hash fields, the one way records change: every field is checked against
 * the value it was read with (or ABSENT / ANY), and only when all still match are the new values
 * written, all at once, and the change message published — Redis runs a script alone, so no
 * other writer interleaves (EVAL is atomic: https://redis.io/docs/latest/develop/interact/programmability/eval-intro/).
 * The caller reads, decides with the same rules as the file store, and retries on 0.
 *
 * ARGV: n, then n × (key index, field, expected, next), then channel and message ('' for none).
 */
export const COMPARE_AND_SET = new LuaScript(`
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local b = 2 + i * 4
  local expected = ARGV[b + 2]
  if expected ~= '\\0any' then
    local current = redis.call('HGET', KEYS[tonumber(ARGV[b])], ARGV[b + 1])
    if expected == '\\0absent' then
      if current then return 0 end
    elseif current ~= expected then
      return 0
    end
  end
end
for i = 0, n - 1 do
  local b = 2 + i * 4
  local key = KEYS[tonumber(ARGV[b])]
  local nextValue = ARGV[b + 3]
  if nextValue == '\\0delete' then
    redis.call('HDEL', key, ARGV[b + 1])
  elseif nextValue ~= '\\0keep' then
    redis.call('HSET', key, ARGV[b + 1], nextValue)
  end
end
local tail = 2 + n * 4
if ARGV[tail] and ARGV[tail] ~= '' then
  redis.call('PUBLISH', ARGV[tail], ARGV[tail + 1])
end
return 1
`);

/**
 * Persists a batch of last-use times: per token, the newest of the stored and the given time,
 * and the same for its client. Tokens that are gone (purged, client removed) are skipped.
 * KEYS: tokens, token last use, client last use. ARGV: pairs of token hash and time.
 */
export const RECORD_USE = new LuaScript(`
for i = 1, #ARGV, 2 do
  local json = redis.call('HGET', KEYS[1], ARGV[i])
  if json then
    local at = tonumber(ARGV[i + 1])
    local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
    if at > seen then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
    local clientId = cjson.decode(json).clientId
    local clientSeen = tonumber(redis.call('HGET', KEYS[3], clientId) or '0')
    if at > clientSeen then redis.call('HSET', KEYS[3], clientId, ARGV[i + 1]) end
  end
end
return 1
`);

/**
 * A client assertion id used once (RFC 7523 §3 item 7). KEYS: the sorted set of used ids scored
 * by expiry. ARGV: key, expiresAt, now. Ids that expired before now are forgotten first (the set
 * never outgrows the live assertions); then the id is accepted only when it is not remembered.
 */
export const USE_ASSERTION = new LuaScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
`);
