import type { AuthEvent } from '../store/event-log.js';

/**
 * Auth events as sentences for a person: serve's log and `clients show`'s timeline. Values a
 * client chose (its name, a reason it caused) are quoted; the caller makes the line terminal-safe.
 */

type Detail = Record<string, unknown>;

const str = (value: unknown): string | undefined => (typeof value === 'string' && value ? value : typeof value === 'number' ? String(value) : undefined);
const quoted = (value: string) => JSON.stringify(value.length > 80 ? `${value.slice(0, 79)}…` : value);

function detailOf(event: AuthEvent): Detail {
  return typeof event.detail === 'object' && event.detail !== null ? event.detail : event.detail ? { reason: event.detail } : {};
}

/** How a client is named in a line: its name when known, and the start of its id. */
export type ClientNamer = (clientId: string) => string | undefined;

function who(event: AuthEvent, nameOf: ClientNamer): string {
  if (!event.client_id) return 'an unknown client';
  const id = event.client_id.length > 40 ? `${event.client_id.slice(0, 39)}…` : event.client_id;
  const name = nameOf(event.client_id) ?? str(detailOf(event).client_name);
  return name ? `${quoted(name)} (${id})` : id;
}

const from = (event: AuthEvent) => (event.ip ? ` from ${event.ip}` : '');

/** One sentence for `event`, or undefined for events too frequent for a log line (tool calls). */
export function describeEvent(event: AuthEvent, nameOf: ClientNamer = () => undefined): string | undefined {
  const d = detailOf(event);
  const client = who(event, nameOf);
  const reason = str(d.reason);
  const token = event.token_id ? ` (${event.token_id})` : '';
  switch (event.type) {
    case 'server.started':
      return `server started: cupcake-mcp ${str(d.version) ?? ''} at ${str(d.base_url) ?? '?'}`;
    case 'server.stopped':
      return 'server stopped';
    case 'client.registered': {
      const hosts = Array.isArray(d.redirect_hosts) ? d.redirect_hosts.filter((h) => typeof h === 'string').join(', ') : '';
      const via = d.via ? ` via ${String(d.via)}` : d.first_party ? ' (first-party: home page sign-in, personal tokens)' : '';
      return (
        `client registered: ${client}${via}${hosts ? `, redirects to ${hosts}` : ''}` +
        `${d.token_endpoint_auth_method ? `, authenticates with ${String(d.token_endpoint_auth_method)}` : ''}${from(event)}`
      );
    }
    case 'client.authentication_failed':
      return (
        `client authentication failed for ${client} at ${str(d.endpoint) ?? '?'}` +
        `${d.method ? ` (${String(d.method)})` : ''}${reason ? `: ${reason}` : ''}${from(event)}`
      );
    case 'client.pinned_document_used':
      return `the metadata document of ${client} could not be fetched${reason ? ` (${reason})` : ''}: using the copy shipped with cupcake-mcp`;
    case 'client.updated':
      return `client updated: ${client}`;
    case 'client.removed':
      return `client removed: ${client}${d.revoked_tokens !== undefined ? `, ${String(d.revoked_tokens)} tokens revoked` : ''}`;
    case 'authorization.requested':
      return `consent page shown for ${client}: redirect to ${str(d.redirect_host) ?? '?'}, scope ${str(d.scope) ?? '?'}${from(event)}`;
    case 'authorization.approved':
      return `consent approved for ${client}`;
    case 'authorization.denied':
      return `authorization refused for ${client}: ${[str(d.error), reason].filter(Boolean).join(' — ') || 'denied'}`;
    case 'login.failed':
      return `wrong owner password on the consent page for ${client}${from(event)}`;
    case 'login.locked':
      return `consent form locked${from(event)} after too many wrong passwords; "cupcake-mcp unlock" lifts it`;
    case 'code.issued':
      return `authorization code issued to ${client}`;
    case 'code.replayed':
      return `authorization code used twice by ${client}: its tokens were revoked (RFC 6749 §4.1.2)`;
    case 'token.issued':
      return `token issued to ${client}${token}${d.scope ? `, scope ${String(d.scope)}` : ''}`;
    case 'token.refreshed':
      return `token refreshed for ${client}${token}`;
    case 'token.reuse_detected':
      return `refresh token reused by ${client}${token}: the family was revoked`;
    case 'token.rejected':
      if (d.endpoint)
        return `token request refused for ${client} at ${String(d.endpoint)}: ${str(d.error) ?? 'error'}${reason ? ` (${reason})` : ''}${from(event)}`;
      return (
        `request refused${d.path ? ` at ${String(d.path)}` : ''}${event.client_id ? ` for ${client}` : ''}${token}: ` +
        `${reason && /^(missing|unknown|expired|revoked)$/.test(reason) ? `${reason} token` : (reason ?? 'invalid token')}${from(event)}`
      );
    case 'token.revoked':
      return `token revoked for ${client}${token}${reason ? `: ${reason}` : d.by ? ` by ${String(d.by)}` : ''}`;
    case 'session.opened':
      return `session opened (${str(d.transport) ?? '?'}) by ${client}${token}`;
    case 'session.closed':
      return `session closed (${str(d.transport) ?? '?'}) for ${client}${reason ? `: ${reason}` : ''}`;
    case 'tool.called':
      return undefined;
    case 'tool.failed':
      return `tool ${str(d.tool) ?? '?'} failed for ${client}${reason ? `: ${reason}` : ''}`;
    case 'signin.started':
      return 'test sign-in started from the home page';
    case 'signin.completed':
      return `test sign-in completed${d.tools !== undefined ? `: ${String(d.tools)} tools visible` : ''}`;
    case 'signin.failed':
      return `test sign-in failed${reason ? `: ${reason}` : ''}`;
    default:
      return `${String((event as AuthEvent).type)} ${client}`;
  }
}
