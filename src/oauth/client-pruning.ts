import type { EventLog } from '../store/event-log.js';
import type { AbandonedClient, Store } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import { removeClient } from './revoke.js';

/**
 * Removing abandoned registrations. Clients that register on every connection (Claude does)
 * leave one registration per connection behind; `clients prune` and `serve` (with
 * `auth.pruneAbandonedClientsAfter`) remove those nobody uses. Which ones, is decided by
 * Store.listAbandonedClients, in one place; this only names the reason and writes the events.
 */

export type PruneReason = 'never used' | 'inactive';

export interface PrunedClient extends AbandonedClient {
  /** `never used`: no token on record and no use; `inactive`: every token expired or was revoked before the cutoff. */
  reason: PruneReason;
  /** False in a dry run, or when the client came back to life between the listing and the removal. */
  removed: boolean;
}

export interface PruneOptions {
  /** Registrations with no sign of life for this long are removed. */
  olderThanMs: number;
  /** List what would go, change nothing. */
  dryRun?: boolean;
  /** Who prunes, for the event log. */
  by: 'cli' | 'serve';
}

export function pruneReason(found: AbandonedClient): PruneReason {
  return !found.hadTokens && found.client.lastUsedAt === null ? 'never used' : 'inactive';
}

/**
 * Removes (or, in a dry run, lists) the registrations abandoned for `olderThanMs`, oldest activity
 * first, and records `client.removed` with the reason for each one removed. The check is repeated
 * inside each removal, so a client that gets a token meanwhile stays.
 */
export async function pruneAbandonedClients(
  deps: { store: Store; clock: Clock; events?: EventLog | undefined },
  options: PruneOptions,
): Promise<PrunedClient[]> {
  const now = deps.clock.now();
  const cutoff = now - options.olderThanMs;
  const found = (await deps.store.listAbandonedClients(cutoff)).sort(
    (a, b) => a.lastActivityAt - b.lastActivityAt || a.client.clientId.localeCompare(b.client.clientId),
  );
  const results: PrunedClient[] = [];
  for (const candidate of found) {
    const reason = pruneReason(candidate);
    if (options.dryRun) {
      results.push({ ...candidate, reason, removed: false });
      continue;
    }
    const extra = { reason, last_activity_at: new Date(candidate.lastActivityAt).toISOString(), older_than_ms: options.olderThanMs };
    const removed = await removeClient(deps, candidate.client.clientId, options.by, extra, { ifAbandonedBefore: cutoff });
    results.push({ ...candidate, reason, removed: removed !== undefined });
  }
  return results;
}
