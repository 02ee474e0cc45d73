import type { AccessTokenRecord, AssertionRecord, ClientRecord, CodeRecord, OwnerRecord, RefreshTokenRecord, StoreChange } from './types.js';

export const SCHEMA_VERSION = 1;

/** The whole data set as one document: the shape of `db.json`. Collections are keyed by their primary key. */
export interface StoreData {
  schemaVersion: number;
  owner: OwnerRecord;
  clients: Record<string, ClientRecord>;
  /** Keyed by codeHash. */
  codes: Record<string, CodeRecord>;
  /** Keyed by tokenHash. */
  tokens: Record<string, AccessTokenRecord>;
  /** Keyed by tokenHash. */
  refreshTokens: Record<string, RefreshTokenRecord>;
  /**
   * Client assertion ids already used (RFC 7523 §3 item 7), keyed by the SHA-256 of client id
   * and `jti`, kept until the assertion expires. Absent in files written before it existed.
   */
  assertions: Record<string, AssertionRecord>;
}

export function emptyData(): StoreData {
  return {
    schemaVersion: SCHEMA_VERSION,
    owner: { passwordHash: null, passwordChangedAt: null },
    clients: {},
    codes: {},
    tokens: {},
    refreshTokens: {},
    assertions: {},
  };
}

export class StoreFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreFormatError';
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Checks the outline of a parsed document; a document that fails is never written over. */
export function checkData(value: unknown): StoreData {
  if (!isObject(value)) throw new StoreFormatError('not a JSON object');
  const version = value.schemaVersion;
  if (typeof version !== 'number') throw new StoreFormatError('schemaVersion is missing');
  if (version > SCHEMA_VERSION) {
    throw new StoreFormatError(`schemaVersion ${version} was written by a newer cupcake-mcp (this one reads ${SCHEMA_VERSION}); upgrade cupcake-mcp`);
  }
  for (const key of ['owner', 'clients', 'codes', 'tokens', 'refreshTokens'] as const) {
    if (!isObject(value[key])) throw new StoreFormatError(`"${key}" is missing or not an object`);
  }
  // Added after schema version 1 shipped: an older file simply has none yet.
  if (value.assertions === undefined) value.assertions = {};
  else if (!isObject(value.assertions)) throw new StoreFormatError('"assertions" is not an object');
  return value as unknown as StoreData;
}

/** What changed for listeners between two versions of the document written by someone else. */
export function diffData(before: StoreData, after: StoreData): StoreChange {
  const revokedTokens: StoreChange['revokedTokens'] = [];
  for (const [hash, old] of Object.entries(before.tokens)) {
    if (old.revokedAt !== null) continue;
    const now = after.tokens[hash];
    if (!now || now.revokedAt !== null) {
      revokedTokens.push({ id: old.id, tokenHash: old.tokenHash, clientId: old.clientId, grantId: old.grantId });
    }
  }
  const removedClientIds = Object.keys(before.clients).filter((id) => !(id in after.clients));
  return { revokedTokens, removedClientIds, external: true };
}

export function isEmptyChange(change: StoreChange): boolean {
  return change.revokedTokens.length === 0 && change.removedClientIds.length === 0;
}
