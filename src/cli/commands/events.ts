import { EVENT_TYPES, type AuthEvent, type EventFilter, type EventLog } from '../../store/event-log.js';
import { loadAdminConfig, openAdminEventLog, requireStore, resolveById, withAdminSession } from '../admin.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { escapeFields, terminalSafe, type Output } from '../output.js';

export interface EventsTailOptions {
  n?: string;
  follow?: boolean;
  type?: string[];
  client?: string;
  json?: boolean;
}

/** What `-f` waits on; the process edge passes `process`. */
export interface Signals {
  once(signal: 'SIGINT' | 'SIGTERM', fn: () => void): unknown;
  removeListener(signal: 'SIGINT' | 'SIGTERM', fn: () => void): unknown;
}

const TROUBLE = new Set(['login.failed', 'login.locked', 'code.replayed', 'token.reuse_detected', 'token.rejected', 'tool.failed', 'authorization.denied']);
const CHANGE = new Set(['client.removed', 'token.revoked', 'session.closed', 'server.stopped']);

function parseCount(text: string | undefined): number {
  if (text === undefined) return 20;
  if (!/^\d+$/.test(text)) throw new CliError(`-n: expected a number of events, got "${text}"`, 2);
  return Number(text);
}

function checkTypes(types: string[] | undefined): string[] | undefined {
  if (!types || types.length === 0) return undefined;
  for (const type of types) {
    if (!EVENT_TYPES.some((known) => known.startsWith(type))) {
      throw new CliError(`--type: no event type starts with "${type}"; known types: ${EVENT_TYPES.join(', ')}`, 2);
    }
  }
  return types;
}

function formatDetail(detail: AuthEvent['detail']): string {
  if (detail === undefined) return '';
  if (typeof detail === 'string') return detail;
  return Object.entries(detail)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[^\s"]*$/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** One readable line per event: time, type, then whatever the event carries. */
export function formatEventLine(output: Output, logged: AuthEvent): string {
  const { color } = output;
  // Every field may come from an unauthenticated request (an error parameter, a user agent, a tool name).
  const event = escapeFields(logged);
  const paint = TROUBLE.has(event.type) ? color.red : CHANGE.has(event.type) ? color.yellow : (s: string) => s;
  const parts = [color.dim(event.ts), paint(event.type.padEnd(22))];
  if (event.client_id !== undefined) parts.push(`client=${event.client_id}`);
  if (event.token_id !== undefined) parts.push(`token=${event.token_id}`);
  if (event.ip !== undefined) parts.push(`ip=${event.ip}`);
  const detail = formatDetail(event.detail);
  if (detail) parts.push(detail.length > 200 ? `${detail.slice(0, 199)}…` : detail);
  if (event.user_agent !== undefined)
    parts.push(color.dim(`ua=${JSON.stringify(event.user_agent.length > 60 ? `${event.user_agent.slice(0, 59)}…` : event.user_agent)}`));
  return parts.join('  ').trimEnd();
}

/**
 * `--client` accepts an id or unambiguous prefix of a registered client or of a client named in the
 * log (a removed client's events stay searchable); anything else is used as given.
 */
async function resolveClientFilter(ctx: CliContext, input: string, logged: AuthEvent[]): Promise<string> {
  const registered = await withAdminSession(ctx, async ({ store }) => store.listClients());
  const names = new Map<string, string>(registered.map((c) => [c.clientId, c.clientName ?? '(no name)']));
  for (const event of logged) if (event.client_id !== undefined && !names.has(event.client_id)) names.set(event.client_id, '(not registered)');
  try {
    return resolveById(input, [...names.keys()], (id) => id, { noun: 'client', label: (id) => names.get(id) ?? '', listCommand: 'clients list' });
  } catch (error) {
    if (error instanceof CliError && error.message.startsWith('no client')) return input;
    throw error;
  }
}

export async function runEventsTail(ctx: CliContext, options: EventsTailOptions, signals: Signals): Promise<void> {
  const count = parseCount(options.n);
  const types = checkTypes(options.type);
  const admin = loadAdminConfig(ctx);
  await requireStore(ctx, admin);
  const opened = await openAdminEventLog(admin);
  try {
    await tail(ctx, options, signals, opened.log, opened.where, count, types);
  } finally {
    await opened.close();
  }
}

async function tail(
  ctx: CliContext,
  options: EventsTailOptions,
  signals: Signals,
  log: EventLog,
  path: string,
  count: number,
  types: string[] | undefined,
): Promise<void> {
  const filter: EventFilter = {};
  if (types) filter.types = types;
  if (options.client !== undefined) filter.clientId = await resolveClientFilter(ctx, options.client, await log.readLast(Number.MAX_SAFE_INTEGER));
  const write = (event: AuthEvent) => {
    ctx.output.out.write(`${options.json ? JSON.stringify(event) : terminalSafe(formatEventLine(ctx.output, event))}\n`);
  };
  const last = await log.readLast(count, filter);
  for (const event of last) write(event);
  if (!options.follow) {
    if (last.length === 0 && !options.json) ctx.output.err.write(`no events${types || options.client ? ' match' : ' yet'} in ${path}\n`);
    return;
  }

  // Follow until Ctrl-C (or SIGTERM, or the reader of a pipe going away); each ends with exit 0.
  await new Promise<void>((resolve) => {
    const stopFollowing = log.follow(write, filter);
    const stop = () => {
      stopFollowing();
      signals.removeListener('SIGINT', stop);
      signals.removeListener('SIGTERM', stop);
      ctx.output.out.removeListener('error', stop);
      resolve();
    };
    signals.once('SIGINT', stop);
    signals.once('SIGTERM', stop);
    ctx.output.out.once('error', stop);
    ctx.output.err.write(`following ${path} (Ctrl-C to stop)\n`);
  });
}
