import { randomHex, newUuid, sha256Hex, tokenIdFromHash } from '../../src/shared/ids.js';
import type { AccessTokenRecord, ClientRecord, CodeRecord, RefreshTokenRecord } from '../../src/store/types.js';

/** A fixed instant the store tests count from. */
export const T0 = Date.UTC(2026, 0, 1);
export const HOUR = 3_600_000;

/**
 * Realistic records built the way the OAuth layer builds them: the plaintext secret is returned
 * beside the record, which only ever holds its SHA-256.
 */
export function makeClient(overrides: Partial<ClientRecord> = {}): { client: ClientRecord; secret: string } {
  const secret = randomHex(32);
  const client: ClientRecord = {
    clientId: newUuid(),
    clientSecretHash: sha256Hex(secret),
    clientName: 'ChatGPT',
    redirectUris: ['https://chatgpt.com/connector_platform_oauth_redirect'],
    tokenEndpointAuthMethod: 'client_secret_basic',
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    scope: 'mcp',
    extraMetadata: {},
    createdAt: T0,
    lastUsedAt: null,
    ...overrides,
  };
  return { client, secret };
}

export function makeCode(clientId: string, overrides: Partial<CodeRecord> = {}): { record: CodeRecord; code: string } {
  const code = randomHex(32);
  const record: CodeRecord = {
    codeHash: sha256Hex(code),
    clientId,
    redirectUri: 'https://chatgpt.com/connector_platform_oauth_redirect',
    redirectUriProvided: true,
    codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    scopes: ['mcp'],
    resource: 'https://mcp.example.com/mcp',
    grantId: newUuid(),
    createdAt: T0,
    expiresAt: T0 + 5 * 60_000,
    usedAt: null,
    ...overrides,
  };
  return { record, code };
}

export function makeAccessToken(clientId: string, grantId: string, overrides: Partial<AccessTokenRecord> = {}): { record: AccessTokenRecord; token: string } {
  const token = `mcp_${randomHex(16)}`;
  const tokenHash = sha256Hex(token);
  const record: AccessTokenRecord = {
    id: tokenIdFromHash(tokenHash),
    tokenHash,
    clientId,
    grantId,
    scopes: ['mcp'],
    resource: 'https://mcp.example.com/mcp',
    createdAt: T0,
    expiresAt: T0 + 24 * HOUR,
    lastUsedAt: null,
    revokedAt: null,
    ...overrides,
  };
  return { record, token };
}

export function makeRefreshToken(clientId: string, grantId: string, overrides: Partial<RefreshTokenRecord> = {}): { record: RefreshTokenRecord; token: string } {
  const token = `mcpr_${randomHex(32)}`;
  const tokenHash = sha256Hex(token);
  const record: RefreshTokenRecord = {
    id: tokenIdFromHash(tokenHash),
    tokenHash,
    clientId,
    grantId,
    scopes: ['mcp'],
    resource: 'https://mcp.example.com/mcp',
    createdAt: T0,
    expiresAt: T0 + 30 * 24 * HOUR,
    rotatedAt: null,
    revokedAt: null,
    ...overrides,
  };
  return { record, token };
}

/** An access + refresh pair of one grant, as a token response issues them. */
export function makeGrant(clientId: string, grantId = newUuid(), at = T0) {
  const access = makeAccessToken(clientId, grantId, { createdAt: at, expiresAt: at + 24 * HOUR });
  const refresh = makeRefreshToken(clientId, grantId, { createdAt: at, expiresAt: at + 30 * 24 * HOUR });
  return { grantId, access, refresh };
}
