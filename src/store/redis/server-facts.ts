import { createClient } from '@redis/client';
import { RedisUnavailableError, type RedisClient } from './connection.js';

/** What `doctor` reports about the Redis server a deployment stores its data in. */
export interface RedisServerFacts {
  /** `redis_version` from INFO server. */
  version: string;
  /** How long PING took to answer, in ms. */
  pingMs: number;
  /** Append-only file on (INFO persistence `aof_enabled`). */
  aof: boolean;
  /**
   * The RDB snapshot rules (`CONFIG GET save`): '' when snapshots are off; undefined when the server
   * does not allow CONFIG (managed Redis often renames or disables it), so it cannot be told here.
   */
  rdbSave: string | undefined;
  /** `maxmemory_policy` from INFO memory: what Redis does when it reaches `maxmemory`. */
  maxmemoryPolicy: string;
  /** `maxmemory` in bytes (0: no limit). */
  maxmemory: number;
}

/** One `field:value` line of an INFO reply. */
function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/**
 * Connects to `url` once (no retries), sends PING and reads the version, persistence and eviction
 * settings; every step must answer within `timeoutMs`, else RedisUnavailableError says why.
 * Read-only: it changes nothing on the server.
 */
export async function inspectRedisServer(url: string, options: { timeoutMs?: number } = {}): Promise<RedisServerFacts> {
  const timeoutMs = options.timeoutMs ?? 3_000;
  const client = createClient({
    url,
    name: 'cupcake-mcp-doctor',
    disableOfflineQueue: true,
    commandOptions: { timeout: timeoutMs },
    socket: { connectTimeout: timeoutMs, reconnectStrategy: false },
  }) as unknown as RedisClient;
  client.on('error', () => {
    /* reported by the command that fails */
  });
  try {
    await client.connect();
  } catch (error) {
    close(client);
    throw new RedisUnavailableError(url, error);
  }
  try {
    const started = performance.now();
    await client.ping();
    const pingMs = performance.now() - started;
    const [server, persistence, memory] = await Promise.all([client.info('server'), client.info('persistence'), client.info('memory')]);
    let rdbSave: string | undefined;
    try {
      const reply = (await client.sendCommand(['CONFIG', 'GET', 'save'])) as unknown;
      // RESP2 answers [name, value]; RESP3 a map.
      const value = Array.isArray(reply) ? reply[1] : reply instanceof Map ? reply.get('save') : (reply as Record<string, unknown> | null)?.save;
      rdbSave = typeof value === 'string' ? value.trim() : undefined;
    } catch {
      rdbSave = undefined;
    }
    return {
      version: infoField(server, 'redis_version') ?? 'unknown',
      pingMs,
      aof: infoField(persistence, 'aof_enabled') === '1',
      rdbSave,
      maxmemoryPolicy: infoField(memory, 'maxmemory_policy') ?? 'unknown',
      maxmemory: Number(infoField(memory, 'maxmemory') ?? 0),
    };
  } catch (error) {
    throw new RedisUnavailableError(url, error);
  } finally {
    close(client);
  }
}

function close(client: RedisClient): void {
  try {
    client.destroy();
  } catch {
    /* never opened, or already closed */
  }
}
