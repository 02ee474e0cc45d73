import { join } from 'node:path';
import type { Logger } from '../shared/logger.js';
import { isRedisUrl } from '../shared/store-url.js';
import { createFileEventLog, EVENTS_FILE, type AuthEvent, type EventLog } from './event-log.js';
import { openFileStore } from './file-store.js';
import type { Store } from './types.js';
import type { SharedEphemeralState } from './ephemeral.js';
import type { SessionRelay } from './relay.js';

export interface OpenedStore {
  store: Store;
  kind: 'file' | 'redis';
  /** The audit log that goes with the store: events.jsonl in the data dir, or the Redis stream. */
  createEventLog(options: { onError?: (error: unknown) => void; onRecord?: (event: AuthEvent) => void }): EventLog;
  /** Redis only: the ephemeral state replicas share (consents, lockouts, request windows). */
  shared?: SharedEphemeralState;
  /** Redis only, serve only (watch): reaching sessions held by other replicas. */
  relay?: SessionRelay;
}

/**
 * Opens the store a config names (`store`: "file" or a Redis URL, DESIGN.md §6). The Redis
 * implementation (and its client) is loaded only when it is used.
 */
export async function openConfiguredStore(options: { store: string; dataDir: string; watch: boolean; logger: Logger; name?: string }): Promise<OpenedStore> {
  if (isRedisUrl(options.store)) {
    const { openRedisStore } = await import('./redis/redis-store.js');
    const store = await openRedisStore({ url: options.store, watch: options.watch, logger: options.logger, name: options.name });
    let relay: SessionRelay | undefined;
    try {
      relay = options.watch ? await store.createRelay() : undefined;
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
    return { store, kind: 'redis', createEventLog: (o) => store.createEventLog(o), shared: store.ephemeralState(), relay };
  }
  const store = await openFileStore({ dataDir: options.dataDir, watch: options.watch, logger: options.logger });
  return { store, kind: 'file', createEventLog: (o) => createFileEventLog(join(options.dataDir, EVENTS_FILE), o) };
}
