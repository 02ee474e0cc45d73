import { createOAuthSettings, type OAuthSettings } from '../../../src/oauth/settings.js';

export const BASE = 'https://mcp.example.com';

/** The settings a default config produces for BASE, with overrides. */
export function testSettings(overrides: { refreshTokens?: boolean; scopes?: string[]; baseUrl?: string } = {}): OAuthSettings {
  return createOAuthSettings({
    baseUrl: overrides.baseUrl ?? BASE,
    auth: {
      scopes: overrides.scopes ?? ['mcp'],
      refreshTokens: overrides.refreshTokens ?? false,
      accessTokenTtl: 86_400_000,
      authorizationCodeTtl: 300_000,
      refreshTokenTtl: 30 * 86_400_000,
      trustedClients: ['chatgpt', 'claude', 'loopback'],
    },
  });
}
