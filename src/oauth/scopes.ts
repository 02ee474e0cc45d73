import { InvalidScopeError } from './errors.js';
import { OFFLINE_ACCESS, type OAuthSettings } from './settings.js';

/**
 * Scope names that a shipping client sends whatever the server advertises: claude.ai asks for
 * "claudeai" (modelcontextprotocol/modelcontextprotocol#653). RFC 6749 §3.3 lets the server
 * ignore requested scopes, and refusing this one would lock Claude out, so it counts as absent
 * unless the owner configured a scope of that name.
 */
const CLIENT_VOCABULARY = new Set(['claudeai']);

export function parseScope(scope: string | undefined): string[] {
  return scope === undefined ? [] : scope.split(' ').filter((s) => s.length > 0);
}

/**
 * The scopes granted for a request (RFC 6749 §3.3): absent or empty → the configured scopes;
 * a known client's own vocabulary → ignored; any other unknown scope → invalid_scope; `offline_access` kept when refresh tokens are on, dropped
 * otherwise (it asks for something we do not issue, which is not an error).
 */
export function resolveScopes(requested: string | undefined, settings: OAuthSettings): string[] {
  const asked = [...new Set(parseScope(requested))].filter((s) => !CLIENT_VOCABULARY.has(s) || settings.scopes.includes(s));
  if (asked.length === 0) return [...settings.scopes];
  const unknown = asked.filter((s) => s !== OFFLINE_ACCESS && !settings.scopes.includes(s));
  if (unknown.length > 0) {
    throw new InvalidScopeError(
      `unknown scope${unknown.length > 1 ? 's' : ''}: ${unknown
        .map((s) => s.slice(0, 40))
        .join(' ')
        .slice(0, 200)}`,
    );
  }
  const granted = asked.filter((s) => s !== OFFLINE_ACCESS || settings.refreshTokens);
  // Asking only for offline_access still grants access to the resource itself.
  return granted.some((s) => s !== OFFLINE_ACCESS) ? granted : [...settings.scopes, ...granted];
}

/** The scope of the protected resource itself: without it a token reaches no MCP endpoint and no tool. */
export const RESOURCE_SCOPE = 'mcp';

/** Every scope a call of tool `name` needs: "mcp", plus each `auth.toolScopes` scope whose patterns match it. */
export function scopesForTool(name: string, settings: Pick<OAuthSettings, 'toolScopes'>): string[] {
  return [RESOURCE_SCOPE, ...settings.toolScopes.filter((t) => t.matches.test(name)).map((t) => t.scope)];
}

/** The scopes of `needed` that `granted` lacks. */
export function missingScopes(granted: readonly string[], needed: readonly string[]): string[] {
  return needed.filter((s) => !granted.includes(s));
}
