import { removeClient } from '../../oauth/revoke.js';
import { systemClock, toIso, type Clock } from '../../shared/clock.js';
import type { AccessTokenRecord, ClientRecord, TokenEndpointAuthMethod } from '../../store/types.js';
import { relativeTime, resolveClient, shortIdLength, tokenStatus, withAdminSession } from '../admin.js';
import { groupIdenticalClients } from '../client-groups.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { escapeFields, fieldText, formatTable, printJson, println, truncate, type Output } from '../output.js';
import { findRunningServer } from '../../store/data-dir-claim.js';
import { tokenJson } from '../token-json.js';
import { describeEvent } from '../event-lines.js';
import type { AuthEvent } from '../../store/event-log.js';

export interface ClientJson {
  client_id: string;
  client_name: string | null;
  redirect_uris: string[];
  token_endpoint_auth_method: TokenEndpointAuthMethod;
  created_at: string | null;
  last_used_at: string | null;
  active_tokens: number;
}

function activeTokenCount(clientId: string, tokens: AccessTokenRecord[], now: number): number {
  return tokens.filter((t) => t.clientId === clientId && tokenStatus(t, now) === 'active').length;
}

/** The last use of a client: its own record, or a newer use of one of its tokens not yet rolled up. */
function lastUsedAt(client: ClientRecord, tokens: AccessTokenRecord[]): number | null {
  let last = client.lastUsedAt;
  for (const t of tokens) if (t.clientId === client.clientId && t.lastUsedAt !== null && (last === null || t.lastUsedAt > last)) last = t.lastUsedAt;
  return last;
}

/** DESIGN.md §2 `clients list --json` shape. */
export function clientJson(client: ClientRecord, tokens: AccessTokenRecord[], now: number): ClientJson {
  return {
    client_id: client.clientId,
    client_name: client.clientName,
    redirect_uris: [...client.redirectUris],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    created_at: toIso(client.createdAt),
    last_used_at: toIso(lastUsedAt(client, tokens)),
    active_tokens: activeTokenCount(client.clientId, tokens, now),
  };
}

const AUTH_LABEL: Record<TokenEndpointAuthMethod, string> = {
  client_secret_basic: 'basic',
  client_secret_post: 'post',
  none: 'public',
  private_key_jwt: 'key',
};

function sortClients(clients: ClientRecord[]): ClientRecord[] {
  return [...clients].sort((a, b) => a.createdAt - b.createdAt || a.clientId.localeCompare(b.clientId));
}

/** The readable `clients list` table. Ids are shortened: any unambiguous prefix is accepted. */
export function renderClientsTable(output: Output, clients: ClientRecord[], tokens: AccessTokenRecord[], now: number): string {
  const { color } = output;
  // Metadata-document clients show their URL; the short ids are computed over the UUIDs alone.
  const isUrl = (id: string) => id.includes('://');
  const idLength = shortIdLength(clients.map((c) => c.clientId).filter((id) => !isUrl(id)));
  const groups = groupIdenticalClients(sortClients(clients));
  const rows = groups.map((members) => {
    // One row per pile of identical registrations: the newest one's id and dates, the pile's totals.
    const client = members[members.length - 1]!;
    const active = members.reduce((sum, m) => sum + activeTokenCount(m.clientId, tokens, now), 0);
    const lastUsed = members.reduce<number | null>((last, m) => {
      const at = lastUsedAt(m, tokens);
      return at !== null && (last === null || at > last) ? at : last;
    }, null);
    const [first, ...more] = client.redirectUris;
    const redirect = first === undefined ? '-' : `${truncate(first, 40)}${more.length ? color.dim(` +${more.length}`) : ''}`;
    const row = [
      isUrl(client.clientId) ? truncate(client.clientId, 40) : client.clientId.slice(0, idLength),
      `${client.clientName === null ? color.dim('(no name)') : truncate(client.clientName, 24)}${client.firstParty ? color.cyan(' first-party') : ''}`,
      redirect,
      AUTH_LABEL[client.tokenEndpointAuthMethod],
      relativeTime(client.createdAt, now),
      relativeTime(lastUsed, now),
      active > 0 ? color.green(String(active)) : color.dim('0'),
    ];
    if (members.length > 1) row[1] += ` ×${members.length}`;
    return row;
  });
  const table = formatTable(output, ['ID', 'NAME', 'REDIRECT URI', 'AUTH', 'CREATED', 'LAST USED', 'TOKENS'], rows);
  if (groups.every((g) => g.length === 1)) return table;
  const legend =
    '×N: N registrations with the same name, redirect URIs and authentication (the newest is shown); ' +
    '--json lists each one, "clients prune" removes the abandoned ones.';
  return `${table}\n${color.dim(legend)}`;
}

export async function runClientsList(ctx: CliContext, options: { json?: boolean }, clock: Clock = systemClock): Promise<void> {
  await withAdminSession(ctx, async ({ store }) => {
    const [clients, tokens] = await Promise.all([store.listClients(), store.listAccessTokens()]);
    const now = clock.now();
    if (options.json) {
      printJson(
        ctx.output,
        sortClients(clients).map((c) => clientJson(c, tokens, now)),
      );
      return;
    }
    if (clients.length === 0) {
      println(ctx.output, 'No clients registered yet. They appear here once an MCP client registers at /register.');
      return;
    }
    println(ctx.output, renderClientsTable(ctx.output, escapeFields(clients), tokens, now));
  });
}

const ERRORS = new Set([
  'client.authentication_failed',
  'authorization.denied',
  'login.failed',
  'login.locked',
  'token.rejected',
  'token.reuse_detected',
  'code.replayed',
  'tool.failed',
]);
const MCP_USE = new Set(['session.opened', 'tool.called']);

/**
 * The client's sign-in as the event log tells it, for "why does this client not connect": the
 * steps (registered, consent, tokens issued or refused and why), its first MCP request and its
 * last error. Tool calls are summed up, not listed.
 */
export function signInTimeline(events: AuthEvent[]): { steps: AuthEvent[]; firstMcpRequest: AuthEvent | null; lastError: AuthEvent | null } {
  const firstMcpRequest = events.find((e) => MCP_USE.has(e.type)) ?? null;
  const lastError = [...events].reverse().find((e) => ERRORS.has(e.type)) ?? null;
  const steps = events.filter((e) => e.type !== 'tool.called' && e.type !== 'session.closed').slice(-TIMELINE_STEPS);
  return { steps, firstMcpRequest, lastError };
}
const TIMELINE_STEPS = 20;

export async function runClientsShow(ctx: CliContext, id: string, options: { json?: boolean }, clock: Clock = systemClock): Promise<void> {
  await withAdminSession(ctx, async ({ store, events: eventLog }) => {
    const [clients, tokens] = await Promise.all([store.listClients(), store.listAccessTokens()]);
    const client = resolveClient(id, clients);
    const timeline = signInTimeline(await eventLog().readLast(1_000, { clientId: client.clientId }));
    const shown = escapeFields(client);
    const now = clock.now();
    const own = tokens.filter((t) => t.clientId === client.clientId).sort((a, b) => a.createdAt - b.createdAt);
    const names = new Map([[client.clientId, client.clientName]]);
    if (options.json) {
      printJson(ctx.output, {
        ...clientJson(client, tokens, now),
        first_party: client.firstParty === true,
        grant_types: [...client.grantTypes],
        response_types: [...client.responseTypes],
        scope: client.scope,
        metadata: { ...client.extraMetadata },
        tokens: own.map((t) => tokenJson(t, names, now)),
        sign_in: { steps: timeline.steps, first_mcp_request: timeline.firstMcpRequest, last_error: timeline.lastError },
      });
      return;
    }
    const { color } = ctx.output;
    const lines: Array<[string, string]> = [
      ['client id', client.clientId],
      ['name', `${shown.clientName ?? color.dim('(no name)')}${client.firstParty ? ' (first-party: home page sign-in, personal access tokens)' : ''}`],
      ['auth method', client.tokenEndpointAuthMethod],
      ['grant types', client.grantTypes.join(', ') || '-'],
      ['scope', shown.scope ?? color.dim('(default)')],
      ['created', `${toIso(client.createdAt)} (${relativeTime(client.createdAt, now)})`],
      ['last used', lastUsedAt(client, tokens) === null ? 'never' : `${toIso(lastUsedAt(client, tokens))} (${relativeTime(lastUsedAt(client, tokens), now)})`],
    ];
    for (const [key, value] of Object.entries(shown.extraMetadata)) {
      lines.push([key.replace(/_/g, ' '), truncate(typeof value === 'string' ? value : JSON.stringify(value), 100)]);
    }
    const width = Math.max(...lines.map(([k]) => k.length), 'redirect uris'.length);
    for (const [key, value] of lines) println(ctx.output, `${color.bold(key.padEnd(width))}  ${value}`);
    for (const [i, uri] of shown.redirectUris.entries()) println(ctx.output, `${color.bold((i === 0 ? 'redirect uris' : '').padEnd(width))}  ${uri}`);
    const active = own.filter((t) => tokenStatus(t, now) === 'active');
    println(ctx.output, `${color.bold('tokens'.padEnd(width))}  ${active.length} active, ${own.length - active.length} revoked or expired`);
    for (const t of active) {
      println(
        ctx.output,
        `${' '.repeat(width)}  ${t.id}  created ${relativeTime(t.createdAt, now)}, ` +
          `expires ${relativeTime(t.expiresAt, now)}, last used ${relativeTime(t.lastUsedAt, now)}`,
      );
    }
    const nameOf = (clientId: string) => (clientId === client.clientId ? (shown.clientName ?? undefined) : undefined);
    const line = (logged: AuthEvent) => {
      const event = escapeFields(logged);
      return `${color.dim(event.ts)}  ${describeEvent(event, nameOf) ?? event.type}`;
    };
    println(ctx.output);
    println(ctx.output, color.bold('sign-in timeline (events.jsonl)'));
    if (timeline.steps.length === 0)
      println(ctx.output, color.dim('  no events for this client (registered before the log began, or the log was rotated away)'));
    for (const event of timeline.steps) println(ctx.output, `  ${line(event)}`);
    println(ctx.output, `${color.bold('first MCP request'.padEnd(width))}  ${timeline.firstMcpRequest ? line(timeline.firstMcpRequest) : 'none yet'}`);
    println(ctx.output, `${color.bold('last error'.padEnd(width))}  ${timeline.lastError ? line(timeline.lastError) : 'none'}`);
  });
}

export async function runClientsRemove(ctx: CliContext, id: string, options: { force?: boolean } = {}, clock: Clock = systemClock): Promise<void> {
  await withAdminSession(ctx, async (session) => {
    const client = resolveClient(id, await session.store.listClients());
    if (client.firstParty && !options.force) {
      throw new CliError(
        `${client.clientId} is the first-party client: the home page's test sign-in and "tokens create" use it, ` +
          'and removing it revokes every personal access token. ' +
          `Run "cupcake-mcp clients remove ${client.clientId} --force" to remove it anyway (it is created anew on the next start or "tokens create").`,
      );
    }
    const result = await removeClient({ store: session.store, events: session.events(), clock }, client.clientId, 'cli');
    const { color } = ctx.output;
    if (!result) {
      // Removed by someone else between our read and our write.
      println(ctx.output, `client ${client.clientId} was already removed`);
      return;
    }
    const n = result.revokedTokens.length;
    println(
      ctx.output,
      `${color.green('✓')} removed client ${fieldText(client.clientId)}` +
        `${client.clientName ? ` (${fieldText(client.clientName)})` : ''}; revoked ${n} token${n === 1 ? '' : 's'}`,
    );
    const server = await findRunningServer(session.dataDir);
    if (server) println(ctx.output, `  the running server (pid ${server.pid}) stops accepting them within 1 s`);
  });
}
