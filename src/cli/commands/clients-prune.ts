import { pruneAbandonedClients, type PrunedClient } from '../../oauth/client-pruning.js';
import { systemClock, toIso, type Clock } from '../../shared/clock.js';
import { formatDistance, parseDuration } from '../../shared/durations.js';
import { relativeTime, shortIdLength, withAdminSession } from '../admin.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { findRunningServer } from '../../store/data-dir-claim.js';
import { escapeFields, formatTable, printJson, println, truncate } from '../output.js';

export interface ClientsPruneOptions {
  dryRun?: boolean;
  olderThan?: string;
  json?: boolean;
}

export const DEFAULT_PRUNE_AGE = '30d';

/** `--json` shape: what was (or, with --dry-run, would be) removed. */
export interface PruneJson {
  dry_run: boolean;
  older_than: string;
  cutoff: string;
  clients: Array<{
    client_id: string;
    client_name: string | null;
    redirect_uris: string[];
    created_at: string | null;
    last_activity_at: string | null;
    reason: string;
    removed: boolean;
  }>;
}

/**
 * `clients prune [--dry-run] [--older-than 30d] [--json]`: removes registrations that never got a
 * token, or whose tokens all expired or were revoked, longer ago than the limit (the rule is
 * Store.listAbandonedClients; `serve` applies the same one daily with auth.pruneAbandonedClientsAfter).
 */
export async function runClientsPrune(ctx: CliContext, options: ClientsPruneOptions, clock: Clock = systemClock): Promise<void> {
  const olderThan = options.olderThan ?? DEFAULT_PRUNE_AGE;
  const olderThanMs = parseDuration(olderThan);
  if (olderThanMs === undefined) throw new CliError(`--older-than: expected a duration like "30d", got "${olderThan}"`, 2);
  await withAdminSession(ctx, async (session) => {
    const dryRun = options.dryRun === true;
    const now = clock.now();
    const results = await pruneAbandonedClients(
      { store: session.store, clock, events: dryRun ? undefined : session.events() },
      { olderThanMs, dryRun, by: 'cli' },
    );
    if (options.json) {
      const json: PruneJson = {
        dry_run: dryRun,
        older_than: olderThan,
        cutoff: toIso(now - olderThanMs)!,
        clients: results.map((r) => ({
          client_id: r.client.clientId,
          client_name: r.client.clientName,
          redirect_uris: [...r.client.redirectUris],
          created_at: toIso(r.client.createdAt),
          last_activity_at: toIso(r.lastActivityAt),
          reason: r.reason,
          removed: r.removed,
        })),
      };
      printJson(ctx.output, json);
      return;
    }
    const age = formatDistance(olderThanMs);
    if (results.length === 0) {
      println(ctx.output, `No abandoned clients: every registration was created or used in the last ${age}.`);
      return;
    }
    const { color } = ctx.output;
    println(
      ctx.output,
      renderPruneTable(
        ctx,
        results.map((r) => ({ ...r, client: escapeFields(r.client) })),
        now,
      ),
    );
    const removed = results.filter((r) => r.removed).length;
    const plural = (n: number) => `${n} client${n === 1 ? '' : 's'}`;
    if (dryRun) {
      println(ctx.output, `${color.yellow('dry run:')} would remove ${plural(results.length)} without a sign of life for ${age}; nothing was changed.`);
      return;
    }
    println(
      ctx.output,
      `${color.green('✓')} removed ${plural(removed)} without a sign of life for ${age}` +
        `${removed < results.length ? ` (${results.length - removed} came back meanwhile and stay)` : ''}.`,
    );
    const server = await findRunningServer(session.dataDir);
    if (server && removed > 0) println(ctx.output, `  the running server (pid ${server.pid}) forgets them within 1 s`);
  });
}

function renderPruneTable(ctx: CliContext, results: PrunedClient[], now: number): string {
  const { color } = ctx.output;
  const idLength = shortIdLength(results.map((r) => r.client.clientId));
  const rows = results.map((r) => [
    r.client.clientId.includes('://') ? truncate(r.client.clientId, 40) : r.client.clientId.slice(0, idLength),
    r.client.clientName === null ? color.dim('(no name)') : truncate(r.client.clientName, 24),
    truncate(r.client.redirectUris[0] ?? '-', 40),
    relativeTime(r.client.createdAt, now),
    relativeTime(r.lastActivityAt, now),
    r.reason,
  ]);
  return formatTable(ctx.output, ['ID', 'NAME', 'REDIRECT URI', 'CREATED', 'LAST ACTIVITY', 'REASON'], rows);
}
