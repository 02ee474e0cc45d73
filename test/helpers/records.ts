import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { checkData, type StoreData } from '../../src/store/document.js';
import { DB_FILE } from '../../src/store/file-store.js';
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

export function makeRefreshToken(
  clientId: string,
  grantId: string,
  overrides: Partial<RefreshTokenRecord> = {},
): { record: RefreshTokenRecord; token: string } {
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

// ---------------------------------------------------------------------------------------------
// db.json on disk (written while no process runs).

export async function readDb(dataDir: string): Promise<StoreData> {
  return checkData(JSON.parse(await readFile(join(dataDir, DB_FILE), 'utf8')));
}

/** Adds `count` live access tokens of one client to db.json (written while no process runs). */
export async function seedTokens(dataDir: string, count: number): Promise<void> {
  const data = await readDb(dataDir);
  const now = Date.now();
  const { client } = makeClient({ clientName: 'ballast', scope: null, createdAt: now });
  data.clients[client.clientId] = client;
  for (let i = 0; i < count; i++) {
    const { record } = makeAccessToken(client.clientId, newUuid(), { resource: 'http://127.0.0.1/mcp', createdAt: now, expiresAt: now + 24 * HOUR });
    data.tokens[record.tokenHash] = record;
  }
  await writeFile(join(dataDir, DB_FILE), JSON.stringify(data), { mode: 0o600 });
}

/** Every field of every record has the type db.json promises: nothing half-written. */
export function expectWholeRecords(data: StoreData): void {
  const problems: string[] = [];
  const str = (v: unknown) => typeof v === 'string' && v.length > 0;
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  const numOrNull = (v: unknown) => v === null || num(v);
  for (const [id, c] of Object.entries(data.clients)) {
    if (c.clientId !== id || !Array.isArray(c.redirectUris) || !num(c.createdAt) || !numOrNull(c.lastUsedAt) || !str(c.tokenEndpointAuthMethod))
      problems.push(`client ${id}`);
  }
  for (const [hash, t] of Object.entries(data.tokens)) {
    if (
      t.tokenHash !== hash ||
      !/^[0-9a-f]{64}$/.test(hash) ||
      !str(t.id) ||
      !str(t.clientId) ||
      !str(t.grantId) ||
      !num(t.expiresAt) ||
      !numOrNull(t.revokedAt)
    )
      problems.push(`token ${hash}`);
  }
  for (const [hash, c] of Object.entries(data.codes)) {
    if (c.codeHash !== hash || !str(c.clientId) || !num(c.expiresAt) || !numOrNull(c.usedAt)) problems.push(`code ${hash}`);
  }
  expect(problems).toEqual([]);
}
