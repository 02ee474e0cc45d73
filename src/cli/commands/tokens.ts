import { revokeTokens } from '../../oauth/revoke.js';
import { systemClock, toIso, type Clock } from '../../shared/clock.js';
import { formatDistance, parseDuration } from '../../shared/durations.js';
import type { AccessTokenRecord, ClientRecord } from '../../store/types.js';
import { relativeTime, resolveById, resolveToken, tokenStatus, withAdminSession, type TokenStatus } from '../admin.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { findRunningServer } from '../../store/data-dir-claim.js';
import { escapeFields, formatTable, printErr, printJson, println, truncate, type Output } from '../output.js';
import { tokenJson } from '../token-json.js';

/**
 * A `--client` value: an id or prefix of a registered client, or of a client that was removed but
 * still has (revoked) tokens on record.
 */
function resolveClientId(input: string, clients: ClientRecord[], tokens: AccessTokenRecord[]): string {
  const names = new Map<string, string | null>(clients.map((c) => [c.clientId, c.clientName]));
  for (const t of tokens) if (!names.has(t.clientId)) names.set(t.clientId, null);
  const ids = [...names.keys()];
  return resolveById(input, ids, (id) => id, {
    noun: 'client',
    label: (id) => (clients.some((c) => c.clientId === id) ? (names.get(id) ?? '(no name)') : '(removed)'),
    listCommand: 'clients list',
  });
}

export function renderTokensTable(output: Output, tokens: AccessTokenRecord[], clientNames: Map<string, string | null>, now: number): string {
  const { color } = output;
  const paint: Record<TokenStatus, (s: string) => string> = { active: color.green, revoked: color.red, expired: color.dim };
  // A LABEL column only when some token has one (tokens create --name): OAuth tokens have none.
  const labelled = tokens.some((t) => t.label !== undefined);
  const rows = tokens.map((t) => {
    const status = tokenStatus(t, now);
    const name = clientNames.get(t.clientId);
    return [
      t.id,
      name ? truncate(name, 24) : color.dim(t.clientId.slice(0, 8)),
      ...(labelled ? [t.label === undefined ? color.dim('-') : truncate(t.label, 24)] : []),
      truncate(t.scopes.join(' '), 20),
      relativeTime(t.createdAt, now),
      status === 'revoked' ? `revoked ${relativeTime(t.revokedAt, now)}` : relativeTime(t.expiresAt, now),
      relativeTime(t.lastUsedAt, now),
      paint[status](status),
    ];
  });
  return formatTable(output, ['ID', 'CLIENT', ...(labelled ? ['LABEL'] : []), 'SCOPE', 'CREATED', 'EXPIRES', 'LAST USED', 'STATUS'], rows);
}

export async function runTokensList(ctx: CliContext, options: { client?: string; all?: boolean; json?: boolean }, clock: Clock = systemClock): Promise<void> {
  await withAdminSession(ctx, async ({ store }) => {
    const [clients, all] = await Promise.all([store.listClients(), store.listAccessTokens()]);
    const now = clock.now();
    const clientId = options.client === undefined ? undefined : resolveClientId(options.client, clients, all);
    const names = new Map(clients.map((c) => [c.clientId, c.clientName]));
    const tokens = all
      .filter((t) => (clientId === undefined || t.clientId === clientId) && (options.all || tokenStatus(t, now) === 'active'))
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    if (options.json) {
      printJson(
        ctx.output,
        tokens.map((t) => tokenJson(t, names, now)),
      );
      return;
    }
    if (tokens.length === 0) {
      println(ctx.output, options.all ? 'No tokens.' : 'No active tokens.');
      return;
    }
    println(ctx.output, renderTokensTable(ctx.output, escapeFields(tokens), escapeFields(names), now));
  });
}

export async function runTokensRevoke(ctx: CliContext, ids: string[], options: { client?: string; all?: boolean }, clock: Clock = systemClock): Promise<void> {
  const ways = [ids.length > 0, options.client !== undefined, Boolean(options.all)].filter(Boolean).length;
  if (ways === 0) throw new CliError('say which tokens to revoke: token ids, --client <id> or --all', 2);
  if (ways > 1) throw new CliError('give either token ids, --client <id> or --all, not several', 2);

  await withAdminSession(ctx, async (session) => {
    const { store } = session;
    const [clients, tokens] = await Promise.all([store.listClients(), store.listAccessTokens()]);
    const now = clock.now();
    const names = new Map(clients.map((c) => [c.clientId, c.clientName]));
    const deps = { store, events: session.events(), clock };

    let revoked: AccessTokenRecord[];
    if (ids.length > 0) {
      // Every id is resolved before anything is revoked: one typo revokes nothing.
      const chosen = [...new Map(ids.map((id) => resolveToken(id, tokens, now)).map((t) => [t.id, t])).values()];
      for (const t of chosen) if (t.revokedAt !== null) printErr(ctx.output, `${t.id} was already revoked`);
      const pending = chosen.filter((t) => t.revokedAt === null);
      revoked = pending.length > 0 ? await revokeTokens(deps, { ids: pending.map((t) => t.id) }, { by: 'cli' }) : [];
    } else if (options.client !== undefined) {
      revoked = await revokeTokens(deps, { clientId: resolveClientId(options.client, clients, tokens) }, { by: 'cli' });
    } else {
      revoked = await revokeTokens(deps, { all: true }, { by: 'cli' });
    }

    const { color } = ctx.output;
    if (revoked.length === 0) {
      println(ctx.output, 'No active tokens to revoke.');
      return;
    }
    for (const t of revoked) {
      const name = names.get(t.clientId);
      println(ctx.output, `${color.green('✓')} revoked ${t.id} (${name ?? t.clientId})`);
    }
    const server = await findRunningServer(session.dataDir);
    if (server)
      println(ctx.output, `  the running server (pid ${server.pid}) rejects ${revoked.length === 1 ? 'it' : 'them'} within 1 s and closes their sessions`);
  });
}

export interface TokensCreateOptions {
  name?: string;
  ttl?: string;
  scope?: string;
  json?: boolean;
}

const DEFAULT_PERSONAL_TTL = '30d';

/**
 * `tokens create`: a personal access token of the first-party client (created when missing),
 * written straight to the store and printed once; only its hash is kept.
 */
export async function runTokensCreate(ctx: CliContext, options: TokensCreateOptions, clock: Clock = systemClock): Promise<void> {
  const ttlText = options.ttl ?? DEFAULT_PERSONAL_TTL;
  const ttlMs = parseDuration(ttlText);
  if (ttlMs === undefined) throw new CliError(`--ttl: expected a duration like "30d", "12h" or "90m", got "${ttlText.slice(0, 40)}"`, 2);

  // Loaded here, not up front: the OAuth rules pull in the MCP SDK, which listings do not need (P5).
  const [{ checkPersonalTokenRequest, ensureFirstPartyClient, issuePersonalAccessToken }, { OAuthError }, { createOAuthSettings }] = await Promise.all([
    import('../../oauth/first-party.js'),
    import('../../oauth/errors.js'),
    import('../../oauth/settings.js'),
  ]);
  await withAdminSession(
    ctx,
    async (session) => {
      const running = await findRunningServer(session.dataDir);
      // The audience is the server that will check the token: the running one's base URL (it may
      // follow its port), else the config's.
      const settings = createOAuthSettings({ ...session.config, baseUrl: running?.url ?? session.config.baseUrl });
      const request = { label: options.name, ttlMs, scope: options.scope };
      try {
        checkPersonalTokenRequest(request, settings);
      } catch (error) {
        if (error instanceof OAuthError) throw new CliError(error.message, 2);
        throw error;
      }
      const deps = { store: session.store, events: session.events(), clock, settings };
      const client = await ensureFirstPartyClient(deps, {}, 'cli');
      const { token, record } = await issuePersonalAccessToken(client, request, deps, {});
      if (options.json) {
        printJson(ctx.output, { id: record.id, token, expires_at: toIso(record.expiresAt) });
        return;
      }
      const { color } = ctx.output;
      const named = record.label === undefined ? '' : ` "${record.label}"`;
      println(
        ctx.output,
        `${color.green('✓')} created personal access token ${record.id}${named} for ${settings.issuer}, scope ${record.scopes.join(' ')}, ` +
          `expires ${toIso(record.expiresAt)} (in ${formatDistance(record.expiresAt - record.createdAt)})`,
      );
      println(ctx.output);
      println(ctx.output, `  ${color.bold(token)}`);
      println(ctx.output);
      println(ctx.output, 'Shown once: only its hash is kept. Send it as a bearer token, e.g.:');
      println(ctx.output, `  curl -H "Authorization: Bearer <token>" ${settings.issuer}/tools`);
      println(ctx.output, `Revoke it with: cupcake-mcp tokens revoke ${record.id}`);
    },
    { writable: true },
  );
}
