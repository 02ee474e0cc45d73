/*
 * The Redis client: `@redis/client`, the core of node-redis v5 (the `redis` package without the
 * module add-ons we do not use), chosen over ioredis because:
 * - it is the client Redis itself maintains (ioredis's README sends new projects to node-redis);
 * - pub/sub on a duplicated connection with per-channel listeners, resubscribed after a reconnect;
 * - Lua through EVALSHA/EVAL with typed replies (our one-shot operations are scripts, below);
 * - reconnection with a strategy function, and `disableOfflineQueue` plus a per-command timeout,
 *   so that while Redis is away a write fails at once (503) instead of waiting in a queue;
 * - TLS by the `rediss://` scheme alone, and `/db`, user and password taken from the URL.
 */
import { createClient, type RedisClientType } from '@redis/client';
import type { Logger } from '../../shared/logger.js';
import { StoreUnavailableError } from '../errors.js';
import { describeRedisUrl } from '../../shared/store-url.js';

export { describeRedisUrl };

export type RedisClient = RedisClientType;

/** How long one command may take before the write is answered 503 (Redis hung, network gone). */
export const COMMAND_TIMEOUT_MS = 2_000;
const CONNECT_TIMEOUT_MS = 3_000;

/** The store cannot reach Redis right now: answered 503, and retried by the client on its own. */
export class RedisUnavailableError extends StoreUnavailableError {
  constructor(url: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message || cause.name : String(cause);
    super(`Redis at ${describeRedisUrl(url)} is unavailable (${reason})`);
    this.name = 'RedisUnavailableError';
  }
}

/**
 * Connects, failing within a few seconds with a message naming the server when it does not
 * answer. Once connected, the client reconnects by itself for as long as it lives, and reports
 * an outage to the log once, not on every retry.
 */
export async function connectRedis(url: string, options: { logger: Logger; name: string }): Promise<RedisClient> {
  const { logger } = options;
  let connectedOnce = false;
  let down = false;
  const client = createClient({
    url,
    name: options.name,
    disableOfflineQueue: true,
    commandOptions: { timeout: COMMAND_TIMEOUT_MS },
    socket: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      // Before the first connection: give up quickly so that a wrong URL is reported at once.
      // After it: keep trying, at most a second apart, so the replica recovers when Redis returns.
      reconnectStrategy: (retries: number, cause: Error) => (connectedOnce ? Math.min(50 * 2 ** retries, 1_000) : retries < 2 ? 200 : cause),
    },
  }) as unknown as RedisClient;
  client.on('error', (error: unknown) => {
    if (!connectedOnce || down) return;
    down = true;
    logger.error(`lost the connection to Redis at ${describeRedisUrl(url)}; retrying`, new RedisUnavailableError(url, error));
  });
  client.on('ready', () => {
    if (down) logger.info(`connected to Redis at ${describeRedisUrl(url)} again`);
    down = false;
    connectedOnce = true;
  });
  try {
    await client.connect();
  } catch (error) {
    try {
      client.destroy();
    } catch {
      /* already closed by the failed connect */
    }
    throw new RedisUnavailableError(url, error);
  }
  connectedOnce = true;
  return client;
}

/** Runs a Redis call, turning a connection failure into the store's 503 error. */
export async function guard<T>(url: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw error;
    // A script error is a bug, not an outage: let it be a 500 with its stack in the log.
    if (error instanceof Error && /ERR|WRONGTYPE|NOSCRIPT/.test(error.message) && !/connect|closed|timeout/i.test(error.message)) throw error;
    throw new RedisUnavailableError(url, error);
  }
}
