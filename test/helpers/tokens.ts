import { randomUUID } from 'node:crypto';
import { generateAccessToken, hashSecret } from '../../src/oauth/secrets.js';
import type { AccessTokenRecord, ClientRecord, Store } from '../../src/store/types.js';
import { tokenIdFromHash } from '../../src/shared/ids.js';

/** A public client stored directly: for tests of the resource server, not of registration. */
export async function seedClient(store: Store, overrides: Partial<ClientRecord> = {}): Promise<ClientRecord> {
  const client: ClientRecord = {
    clientId: randomUUID(),
    clientSecretHash: null,
    clientName: 'Test client',
    redirectUris: ['http://127.0.0.1/callback'],
    tokenEndpointAuthMethod: 'none',
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    scope: null,
    extraMetadata: {},
    createdAt: Date.now(),
    lastUsedAt: null,
    ...overrides,
  };
  await store.createClient(client);
  return client;
}

/**
 * An access token stored as the token endpoint would store it (hash only), returned with its
 * plaintext so a test can present it. `resource` defaults to the server's /mcp resource.
 */
export async function mintToken(
  store: Store,
  options: { baseUrl: string; clientId?: string; resource?: string; expiresAt?: number; grantId?: string; revoked?: boolean; scopes?: string[] },
): Promise<{ token: string; record: AccessTokenRecord }> {
  const clientId = options.clientId ?? (await seedClient(store)).clientId;
  const token = generateAccessToken();
  const tokenHash = hashSecret(token);
  const now = Date.now();
  const record: AccessTokenRecord = {
    id: tokenIdFromHash(tokenHash),
    tokenHash,
    clientId,
    grantId: options.grantId ?? randomUUID(),
    scopes: options.scopes ?? ['mcp'],
    resource: options.resource ?? `${options.baseUrl}/mcp`,
    createdAt: now,
    expiresAt: options.expiresAt ?? now + 3_600_000,
    lastUsedAt: null,
    revokedAt: options.revoked ? now : null,
  };
  await store.saveTokens(record);
  return { token, record };
}
