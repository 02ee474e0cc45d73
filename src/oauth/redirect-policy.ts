import { isLoopbackRedirect } from './redirect-uri.js';

/**
 * Which redirect URIs a closed server accepts (`auth.redirectUriAllowlist`): the shapes of the
 * trusted-client presets plus the owner's patterns. Without an allowlist the server is open and
 * any redirect URI that passes redirect-uri.ts is accepted, as RFC 7591 dynamic registration
 * expects; the presets then change nothing.
 */

export type TrustedClient = 'chatgpt' | 'claude' | 'loopback';

function parse(uri: string): URL | undefined {
  try {
    return new URL(uri);
  } catch {
    return undefined;
  }
}

/** The redirect URIs each preset stands for, as the clients send them. */
export const TRUSTED_CLIENTS: Record<TrustedClient, { description: string; allows(uri: string): boolean }> = {
  chatgpt: {
    description: 'https://chatgpt.com/connector_platform_oauth_redirect and https://chatgpt.com/connector/oauth/<id>',
    allows: (uri) =>
      uri === 'https://chatgpt.com/connector_platform_oauth_redirect' || /^https:\/\/chatgpt\.com\/connector\/oauth\/[A-Za-z0-9_-]{1,128}$/.test(uri),
  },
  claude: {
    description: 'https://claude.ai/api/mcp/auth_callback and https://claude.com/api/mcp/auth_callback',
    allows: (uri) => uri === 'https://claude.ai/api/mcp/auth_callback' || uri === 'https://claude.com/api/mcp/auth_callback',
  },
  loopback: {
    // RFC 8252 §7.3: native apps and local tools (MCP Inspector, Claude Code, mcp-remote) listen on a port of their choosing.
    description: 'http://localhost, http://127.0.0.1 and http://[::1], any port and path',
    allows: (uri) => {
      const url = parse(uri);
      return url !== undefined && isLoopbackRedirect(url) && !url.username && !url.password;
    },
  },
};

/**
 * An allowlist pattern: the URI exactly, except that `*` stands for one or more characters of a
 * single host label (in the authority: no `.`, `:`, `@`) or of a single path or query segment
 * (elsewhere: no `/`, `?`, `#`). `https://*.example.com/oauth/callback` allows
 * `https://app.example.com/oauth/callback` but not `https://a.b.example.com/…` or `https://example.com/…`.
 */
export function compileRedirectPattern(pattern: string): RegExp {
  const escapeRegExp = (text: string) => text.replace(/[.+?^${}()|[\]\\/]/g, '\\$&');
  const authorityStart = pattern.indexOf('://');
  const authorityEnd = authorityStart < 0 ? -1 : pattern.slice(authorityStart + 3).search(/[/?]/);
  const splitAt = authorityStart < 0 ? 0 : authorityEnd < 0 ? pattern.length : authorityStart + 3 + authorityEnd;
  const compile = (part: string, star: string) => part.split('*').map(escapeRegExp).join(star);
  return new RegExp(`^${compile(pattern.slice(0, splitAt), '[^/?#.:@]+')}${compile(pattern.slice(splitAt), '[^/?#]+')}$`);
}

export interface RedirectUriPolicy {
  allows(uri: string): boolean;
}

/** The policy of a closed server, or null when there is no allowlist (an open server). */
export function createRedirectUriPolicy(trusted: readonly TrustedClient[], allowlist: readonly string[] | undefined): RedirectUriPolicy | null {
  if (allowlist === undefined) return null;
  const presets = trusted.map((name) => TRUSTED_CLIENTS[name]);
  const patterns = allowlist.map(compileRedirectPattern);
  return { allows: (uri) => presets.some((p) => p.allows(uri)) || patterns.some((p) => p.test(uri)) };
}
