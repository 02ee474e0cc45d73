import { createRedirectUriPolicy, TRUSTED_CLIENTS, type RedirectUriPolicy, type TrustedClient } from './redirect-policy.js';

/** What the protocol rules need to know about this server, derived once from the config. */
export interface OAuthSettings {
  /** The issuer: the base URL, no trailing slash (RFC 8414 §2). */
  issuer: string;
  /** Resource URLs this server serves (RFC 8707): origin, /mcp, /sse. */
  resources: string[];
  /** Scopes a client may ask for, and the default when it asks for none. */
  scopes: string[];
  refreshTokens: boolean;
  accessTokenTtlMs: number;
  authorizationCodeTtlMs: number;
  refreshTokenTtlMs: number;
  /** A rotated refresh token stays usable this long: clients with several egress nodes race. */
  refreshGraceMs: number;
  /** The redirect URIs a closed server accepts (`auth.redirectUriAllowlist`); null when registration is open. */
  redirectPolicy: RedirectUriPolicy | null;
  /**
   * Redirect URIs of the trusted-client presets (`auth.trustedClients`: ChatGPT's, Claude's, loopback),
   * open server or closed: an authorization error may be sent to them before the owner approved the client.
   */
  presetRedirects: RedirectUriPolicy;
  /** `auth.toolScopes`: the tools that need a scope besides "mcp" (oauth/scopes.ts scopesForTool). */
  toolScopes: Array<{ scope: string; patterns: string[]; matches: RegExp }>;
}

export const OFFLINE_ACCESS = 'offline_access';

export function createOAuthSettings(config: {
  baseUrl: string;
  auth: {
    scopes: string[];
    refreshTokens: boolean;
    accessTokenTtl: number;
    authorizationCodeTtl: number;
    refreshTokenTtl: number;
    trustedClients?: readonly TrustedClient[];
    redirectUriAllowlist?: readonly string[] | undefined;
    toolScopes?: Record<string, string[]>;
  };
}): OAuthSettings {
  const issuer = config.baseUrl;
  return {
    issuer,
    resources: [issuer, `${issuer}/mcp`, `${issuer}/sse`],
    scopes: [...config.auth.scopes],
    refreshTokens: config.auth.refreshTokens,
    accessTokenTtlMs: config.auth.accessTokenTtl,
    authorizationCodeTtlMs: config.auth.authorizationCodeTtl,
    refreshTokenTtlMs: config.auth.refreshTokenTtl,
    refreshGraceMs: 60_000,
    redirectPolicy: createRedirectUriPolicy(config.auth.trustedClients ?? [], config.auth.redirectUriAllowlist),
    presetRedirects: { allows: (uri) => (config.auth.trustedClients ?? []).some((name) => TRUSTED_CLIENTS[name].allows(uri)) },
    toolScopes: Object.entries(config.auth.toolScopes ?? {}).map(([scope, patterns]) => ({
      scope,
      patterns,
      matches: new RegExp(
        `^(?:${patterns
          .map((p) =>
            p
              .split('*')
              .map((part) => part.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&'))
              .join('.*'),
          )
          .join('|')})$`,
      ),
    })),
  };
}

/** Scopes we advertise: `offline_access` only when refresh tokens are on (DESIGN.md §4). */
export function supportedScopes(settings: OAuthSettings): string[] {
  return settings.refreshTokens ? [...settings.scopes, OFFLINE_ACCESS] : [...settings.scopes];
}
