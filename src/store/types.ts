/**
 * Records kept by a Store. Internal names are camelCase; the HTTP layer maps them to the OAuth
 * wire names. A field that holds a secret always holds its SHA-256 (or scrypt) hash and ends in
 * `Hash`: a stolen store yields no working credential (DESIGN.md §6).
 */

export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none' | 'private_key_jwt';

/** A JSON Web Key as published by a client (RFC 7517 §4): public members only. */
export type PublicJwk = { kty: string; kid?: string; alg?: string; use?: string } & Record<string, unknown>;

export interface ClientRecord {
  clientId: string;
  /** SHA-256 hex of the client secret; null for public clients. */
  clientSecretHash: string | null;
  clientName: string | null;
  redirectUris: string[];
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  grantTypes: string[];
  responseTypes: string[];
  /** Space-separated scope the client registered with, if any. */
  scope: string | null;
  /**
   * `private_key_jwt` clients (RFC 7523 §2.2): their public keys, inline (`jwks`) or at an https
   * URL (`jwks_uri`), exactly one of the two (RFC 7591 §2), and the one signing algorithm they
   * registered, if any (OpenID Connect Registration §2 `token_endpoint_auth_signing_alg`).
   */
  jwks?: { keys: PublicJwk[] };
  jwksUri?: string;
  tokenEndpointAuthSigningAlg?: string;
  /**
   * A metadata-document client whose document also lists `none` in
   * `token_endpoint_auth_methods_supported`: without an assertion it is served as a public client (PKCE).
   */
  acceptsNone?: true;
  /** OpenID Connect Registration §2 `application_type`, when the client stated it. */
  applicationType?: 'web' | 'native';
  /** Other RFC 7591 metadata the client sent (client_uri, logo_uri, contacts, …), echoed back as given. */
  extraMetadata: Record<string, unknown>;
  createdAt: number;
  lastUsedAt: number | null;
  /**
   * The server's own built-in client (home page sign-in test, `tokens create`). Absent on every
   * other client, and on records written before it existed.
   */
  firstParty?: true;
  /**
   * When the owner first approved this client on the consent page (the first code issued to it).
   * Until then an authorization error is never redirected to it (RFC 9700 §4.11.2): anyone can
   * register a redirect URI. Absent on clients never approved and on records written before it existed.
   */
  approvedAt?: number;
}

export interface CodeRecord {
  codeHash: string;
  clientId: string;
  /** The redirect URI the code was delivered to. */
  redirectUri: string;
  /** Whether `redirect_uri` was present in the authorization request (RFC 6749 §4.1.3). */
  redirectUriProvided: boolean;
  codeChallenge: string;
  scopes: string[];
  resource: string;
  /** Every token issued from this code shares the grant id; a replay revokes the grant. */
  grantId: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export interface AccessTokenRecord {
  /** `tok_` + first 12 hex digits of `tokenHash`: safe to show, never the token. */
  id: string;
  tokenHash: string;
  clientId: string;
  grantId: string;
  scopes: string[];
  resource: string;
  createdAt: number;
  expiresAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
  /** A name the owner gave the token (`tokens create --name`); absent on tokens issued over OAuth. */
  label?: string;
}

export interface RefreshTokenRecord {
  id: string;
  tokenHash: string;
  clientId: string;
  grantId: string;
  scopes: string[];
  resource: string;
  createdAt: number;
  expiresAt: number;
  /** When this token was exchanged for a newer one; it stays usable for the grace window after. */
  rotatedAt: number | null;
  revokedAt: number | null;
  /**
   * How the client authenticated when this grant was issued, when it proved itself with a key
   * (RFC 7523): refreshing it takes the same proof. Absent for grants of public and secret clients.
   */
  clientAuthMethod?: 'private_key_jwt';
}

/** A client assertion id that was used once (RFC 7523 §3): remembered until it expires, and no longer. */
export interface AssertionRecord {
  expiresAt: number;
}

export interface OwnerRecord {
  /** scrypt hash of the owner password (see oauth/secrets.ts), null until one is set. */
  passwordHash: string | null;
  passwordChangedAt: number | null;
  /** When the owner last lifted the consent lockouts (`cupcake-mcp unlock`); failures before it no longer count. */
  lockoutsClearedAt?: number | null;
}

export interface AbandonedClient {
  client: ClientRecord;
  /** The last sign of life: creation, last use, or the end (expiry or revocation) of its last code or token. */
  lastActivityAt: number;
  /** Whether any token of it is still on record (expired and revoked tokens are purged after a while). */
  hadTokens: boolean;
}

/** What the token-selection operations accept. At least one field must be set. */
/**
 * Whether a token record is chosen by `selector`; undefined when the selector chooses nothing
 * (no `all`, ids, client or grant), so that an empty selector never revokes every token.
 */
export function tokenSelectorMatcher(selector: TokenSelector): ((t: { id: string; clientId: string; grantId: string }) => boolean) | undefined {
  const ids = new Set(selector.ids ?? []);
  if (!selector.all && ids.size === 0 && selector.clientId === undefined && selector.grantId === undefined) return undefined;
  return (t) =>
    selector.all === true ||
    ids.has(t.id) ||
    (selector.clientId !== undefined && t.clientId === selector.clientId) ||
    (selector.grantId !== undefined && t.grantId === selector.grantId);
}

export interface TokenSelector {
  ids?: string[];
  clientId?: string;
  grantId?: string;
  all?: boolean;
}

export type ConsumeCodeResult =
  | { outcome: 'consumed'; code: CodeRecord }
  | { outcome: 'replayed'; code: CodeRecord }
  /** The code exists but belongs to another client: left untouched (neither used nor revoked). */
  | { outcome: 'other_client' }
  | { outcome: 'unknown' };

export type RotateRefreshResult =
  | { outcome: 'rotated'; previous: RefreshTokenRecord }
  | { outcome: 'reuse_detected'; previous: RefreshTokenRecord; revoked: AccessTokenRecord[] }
  | { outcome: 'invalid' };

/** Sent to change listeners after a mutation, whichever process made it. */
export interface StoreChange {
  /** Access tokens that stopped being valid (revoked, or deleted with their client). */
  revokedTokens: Array<Pick<AccessTokenRecord, 'id' | 'tokenHash' | 'clientId' | 'grantId'>>;
  removedClientIds: string[];
  /** Whether the change was written by another process (picked up from the file). */
  external: boolean;
}

/**
 * The persistence contract shared by `serve` and the CLI.
 *
 * - Every method is atomic with respect to every other writer, in this process or another.
 * - Reads may lag writes of another process by at most ~1 s; writes never lose another's write.
 * - Secrets arrive already hashed; the store never sees a plaintext credential.
 * - Nothing above `store/` may assume the data lives in a local file.
 */
export interface Store {
  getOwner(): Promise<OwnerRecord>;
  setOwnerPasswordHash(passwordHash: string, at: number): Promise<void>;
  /** Lifts every consent lockout: failed password attempts before `at` stop counting, in every process serving this store. */
  clearLoginLockouts(at: number): Promise<void>;

  /**
   * Creates the client. With `keepUnapproved`, registrations the owner never approved (no
   * `approvedAt`, never used, holding no code or token; never the first-party client) are kept to
   * that many in the same write: the oldest go first. Returns the ids removed.
   */
  createClient(client: ClientRecord, options?: { keepUnapproved?: number }): Promise<{ removedClientIds: string[] }>;
  getClient(clientId: string): Promise<ClientRecord | undefined>;
  listClients(): Promise<ClientRecord[]>;
  /**
   * Returns the first-party client (`firstParty: true`), creating it from `candidate` when there is
   * none; an existing one takes the candidate's redirect URIs when they differ. Atomic: concurrent
   * callers, in any process, end up with one first-party client.
   */
  ensureFirstPartyClient(candidate: ClientRecord): Promise<{ client: ClientRecord; outcome: 'created' | 'updated' | 'unchanged' }>;
  /**
   * Creates the client, or replaces the record with its id, keeping `createdAt` and `lastUsedAt`:
   * for clients described elsewhere (a client metadata document), saved when they are approved.
   * Never replaces a first-party client.
   */
  upsertClient(client: ClientRecord): Promise<'created' | 'updated' | 'unchanged'>;
  /**
   * Deletes the client and revokes every token it holds. With `ifAbandonedBefore`, only when the
   * client is still abandoned at that cutoff (see listAbandonedClients), checked in the same write.
   */
  removeClient(
    clientId: string,
    at: number,
    options?: { ifAbandonedBefore?: number },
  ): Promise<{ client: ClientRecord; revokedTokens: AccessTokenRecord[] } | undefined>;
  /**
   * Registrations nobody uses: created before `cutoff`, not used since, and holding no code,
   * access or refresh token that was still valid at `cutoff` (one that never got a token, or
   * whose tokens all expired or were revoked before it). Never the first-party client.
   */
  listAbandonedClients(cutoff: number): Promise<AbandonedClient[]>;

  /**
   * Stores a code. A code is issued only when the owner approved its client, so the client is
   * marked approved (`approvedAt`) in the same write when it was not already.
   */
  saveCode(code: CodeRecord): Promise<void>;
  /** Marks a code used exactly once; a second call reports a replay. */
  consumeCode(codeHash: string, at: number, clientId?: string): Promise<ConsumeCodeResult>;

  /** Stores a new access token and, optionally, the refresh token issued with it. */
  saveTokens(access: AccessTokenRecord, refresh?: RefreshTokenRecord): Promise<void>;
  /** Served from memory: this is the hot path of every protected request. */
  findAccessToken(tokenHash: string): Promise<AccessTokenRecord | undefined>;
  listAccessTokens(): Promise<AccessTokenRecord[]>;
  /** Revokes the selected access tokens and the refresh tokens of their grants. Returns the access tokens newly revoked. */
  revokeAccessTokens(selector: TokenSelector, at: number): Promise<AccessTokenRecord[]>;
  /** Revokes every access and refresh token of a grant (code replay, refresh reuse). */
  revokeGrant(grantId: string, at: number): Promise<AccessTokenRecord[]>;
  /** Records use of an access token; persisted in batches, not per call. */
  touchAccessToken(tokenHash: string, at: number): void;

  findRefreshToken(tokenHash: string): Promise<RefreshTokenRecord | undefined>;
  /** Revokes one refresh token (RFC 7009). Returns whether it was active. */
  revokeRefreshToken(tokenHash: string, at: number): Promise<boolean>;
  /**
   * Exchanges refresh token `tokenHash` for `next` atomically. A token already rotated more than
   * `graceMs` ago is a reuse: the whole grant is revoked.
   */
  rotateRefreshToken(
    tokenHash: string,
    next: { access: AccessTokenRecord; refresh: RefreshTokenRecord },
    at: number,
    graceMs: number,
  ): Promise<RotateRefreshResult>;

  /**
   * Records the use of a client assertion id (`key`: a hash of client id and `jti`) until
   * `expiresAt`. Atomic across processes: of any number of calls with one key while it is
   * remembered, exactly one answers true (RFC 7523 §3 item 7: a `jti` is used once). Ids that
   * expired before `at` are forgotten at once: they are only ever as many as the live assertions.
   */
  useAssertionId(key: string, expiresAt: number, at: number): Promise<boolean>;

  /** Deletes codes, tokens and assertion ids that expired before `before`. Returns how many records went. */
  purgeExpired(before: number): Promise<number>;

  /** Subscribes to changes; returns the unsubscribe function. */
  onChange(listener: (change: StoreChange) => void): () => void;
  /** Writes pending batched updates. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
