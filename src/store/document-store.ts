import { emptyData, isEmptyChange, type StoreData } from './document.js';
import { LastUseBatch } from './last-use.js';
import type {
  AbandonedClient,
  AccessTokenRecord,
  ClientRecord,
  CodeRecord,
  ConsumeCodeResult,
  OwnerRecord,
  RefreshTokenRecord,
  RotateRefreshResult,
  Store,
  StoreChange,
  TokenSelector,
} from './types.js';
import { tokenSelectorMatcher } from './types.js';

/**
 * Where a document-shaped store keeps its data.
 * Contract: `current()` is the latest document this process knows (never stale by more than the
 * backend's watch interval); `transact(fn)` runs `fn` on the freshest document under an exclusive
 * lock across processes and persists its result before resolving; `fn` must validate before it
 * mutates, and if persisting fails the in-memory document is restored from durable storage.
 * Records are values: `fn` replaces a record with a new object and never changes one in place
 * (the file backend serialises each record once and reuses the text while the object lives).
 */
export interface DocumentBackend {
  current(): StoreData;
  transact<T>(fn: (data: StoreData) => T): Promise<T>;
  /** Called when another writer's change is loaded. */
  onExternalChange(listener: (change: StoreChange) => void): void;
  /** Loads another writer's change now if there is one (a file store's watch may not have fired yet). */
  catchUp?(): Promise<void>;
  close(): Promise<void>;
}

/** The Store operations over one JSON document; shared by the file (lowdb) and memory stores. */
export class DocumentStore implements Store {
  private readonly listeners = new Set<(change: StoreChange) => void>();
  /** tokenHash → last use not yet persisted. */
  private readonly lastUse = new LastUseBatch(() => this.flush());
  private closed = false;

  constructor(private readonly backend: DocumentBackend) {
    backend.onExternalChange((change) => this.emit(change));
  }

  async getOwner(): Promise<OwnerRecord> {
    return { ...this.backend.current().owner };
  }

  async setOwnerPasswordHash(passwordHash: string, at: number): Promise<void> {
    await this.backend.transact((data) => {
      data.owner = { ...data.owner, passwordHash, passwordChangedAt: at };
    });
  }

  async clearLoginLockouts(at: number): Promise<void> {
    await this.backend.transact((data) => {
      data.owner = { ...data.owner, lockoutsClearedAt: at };
    });
  }

  async createClient(client: ClientRecord, options: { keepUnapproved?: number } = {}): Promise<{ removedClientIds: string[] }> {
    const removedClientIds = await this.backend.transact((data) => {
      if (data.clients[client.clientId]) throw new Error(`client ${client.clientId} already exists`);
      data.clients[client.clientId] = copyClient(client);
      const keep = options.keepUnapproved;
      if (keep === undefined) return [];
      const unapproved = unapprovedClients(data);
      const excess = unapproved.length - Math.max(1, keep);
      if (excess <= 0) return [];
      // Oldest first; the one just created is the newest and stays.
      const removed = unapproved
        .sort((a, b) => a.createdAt - b.createdAt || (a.clientId === client.clientId ? 1 : b.clientId === client.clientId ? -1 : 0))
        .slice(0, excess);
      for (const c of removed) delete data.clients[c.clientId];
      return removed.map((c) => c.clientId);
    });
    if (removedClientIds.length > 0) this.emit({ revokedTokens: [], removedClientIds, external: false });
    return { removedClientIds };
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const client = Object.hasOwn(this.backend.current().clients, clientId) ? this.backend.current().clients[clientId] : undefined;
    return client ? copyClient(client) : undefined;
  }

  async listClients(): Promise<ClientRecord[]> {
    return Object.values(this.backend.current().clients).map(copyClient);
  }

  async ensureFirstPartyClient(candidate: ClientRecord): Promise<{ client: ClientRecord; outcome: 'created' | 'updated' | 'unchanged' }> {
    const settled = (client: ClientRecord | undefined) => client !== undefined && sameList(client.redirectUris, candidate.redirectUris);
    // Every start and every `tokens create` asks; only a missing or moved client costs a write.
    const known = firstPartyOf(this.backend.current());
    if (settled(known)) return { client: copyClient(known!), outcome: 'unchanged' };
    return this.backend.transact((data) => {
      const existing = firstPartyOf(data);
      if (existing && settled(existing)) return { client: copyClient(existing), outcome: 'unchanged' as const };
      if (existing) {
        const moved: ClientRecord = { ...existing, redirectUris: [...candidate.redirectUris] };
        data.clients[existing.clientId] = moved;
        return { client: copyClient(moved), outcome: 'updated' as const };
      }
      if (Object.hasOwn(data.clients, candidate.clientId)) throw new Error(`client ${candidate.clientId} already exists`);
      const created: ClientRecord = { ...copyClient(candidate), firstParty: true };
      data.clients[created.clientId] = created;
      return { client: copyClient(created), outcome: 'created' as const };
    });
  }

  async upsertClient(client: ClientRecord): Promise<'created' | 'updated' | 'unchanged'> {
    const same = (existing: ClientRecord) =>
      JSON.stringify({ ...existing, createdAt: 0, lastUsedAt: null, approvedAt: 0 }) ===
      JSON.stringify({ ...client, createdAt: 0, lastUsedAt: null, approvedAt: 0 });
    const known = Object.hasOwn(this.backend.current().clients, client.clientId) ? this.backend.current().clients[client.clientId] : undefined;
    if (known && same(known)) return 'unchanged';
    return this.backend.transact((data) => {
      const existing = Object.hasOwn(data.clients, client.clientId) ? data.clients[client.clientId] : undefined;
      if (existing?.firstParty) throw new Error(`client ${client.clientId} is the first-party client`);
      if (existing && same(existing)) return 'unchanged' as const;
      const { firstParty: _ignored, ...rest } = copyClient(client);
      const { approvedAt: _approved, ...described } = rest;
      data.clients[client.clientId] = existing
        ? {
            ...described,
            createdAt: existing.createdAt,
            lastUsedAt: existing.lastUsedAt,
            ...(existing.approvedAt === undefined ? {} : { approvedAt: existing.approvedAt }),
          }
        : described;
      return existing ? ('updated' as const) : ('created' as const);
    });
  }

  async listAbandonedClients(cutoff: number): Promise<AbandonedClient[]> {
    const data = this.backend.current();
    const activity = lastActivity(data);
    return Object.values(data.clients).flatMap((client) => {
      const found = abandoned(client, activity, cutoff);
      return found ? [{ ...found, client: copyClient(client) }] : [];
    });
  }

  async removeClient(clientId: string, at: number, options: { ifAbandonedBefore?: number } = {}) {
    const result = await this.backend.transact((data) => {
      const client = Object.hasOwn(data.clients, clientId) ? data.clients[clientId] : undefined;
      if (!client) return undefined;
      const cutoff = options.ifAbandonedBefore;
      if (cutoff !== undefined && !abandoned(client, lastActivity(data, clientId), cutoff)) return undefined;
      const revokedTokens = revokeWhere(data, (t) => t.clientId === clientId, at);
      for (const [hash, code] of Object.entries(data.codes)) if (code.clientId === clientId) delete data.codes[hash];
      delete data.clients[clientId];
      return { client, revokedTokens };
    });
    if (result) this.emit({ revokedTokens: result.revokedTokens.map(pickRef), removedClientIds: [clientId], external: false });
    return result;
  }

  async saveCode(code: CodeRecord): Promise<void> {
    await this.backend.transact((data) => {
      data.codes[code.codeHash] = copyCode(code);
      const client = Object.hasOwn(data.clients, code.clientId) ? data.clients[code.clientId] : undefined;
      if (client && client.approvedAt === undefined) data.clients[code.clientId] = { ...client, approvedAt: code.createdAt };
    });
  }

  async consumeCode(codeHash: string, at: number, clientId?: string): Promise<ConsumeCodeResult> {
    return this.backend.transact((data): ConsumeCodeResult => {
      const code = Object.hasOwn(data.codes, codeHash) ? data.codes[codeHash] : undefined;
      if (!code) return { outcome: 'unknown' };
      // Another client presenting it neither uses it up nor triggers replay revocation.
      if (clientId !== undefined && code.clientId !== clientId) return { outcome: 'other_client' };
      if (code.usedAt !== null) return { outcome: 'replayed', code: copyCode(code) };
      const used = { ...code, usedAt: at };
      data.codes[codeHash] = used;
      return { outcome: 'consumed', code: copyCode(used) };
    });
  }

  async saveTokens(access: AccessTokenRecord, refresh?: RefreshTokenRecord): Promise<void> {
    await this.backend.transact((data) => {
      data.tokens[access.tokenHash] = copyToken(access);
      if (refresh) data.refreshTokens[refresh.tokenHash] = copyToken(refresh);
    });
  }

  async findAccessToken(tokenHash: string): Promise<AccessTokenRecord | undefined> {
    let token = this.storedToken(tokenHash);
    if (!token && this.backend.catchUp) {
      // A token another process issued a moment ago (`tokens create` beside a running serve) is
      // accepted at once, not when the watch next fires: an unknown token costs one stat.
      await this.backend.catchUp().catch(() => undefined);
      token = this.storedToken(tokenHash);
    }
    if (!token) return undefined;
    const pending = this.lastUse.get(tokenHash);
    const copy = copyToken(token);
    if (pending !== undefined) copy.lastUsedAt = pending;
    return copy;
  }

  async listAccessTokens(): Promise<AccessTokenRecord[]> {
    return Object.values(this.backend.current().tokens).map((t) => {
      const pending = this.lastUse.get(t.tokenHash);
      const copy = copyToken(t);
      if (pending !== undefined) copy.lastUsedAt = pending;
      return copy;
    });
  }

  private storedToken(tokenHash: string): AccessTokenRecord | undefined {
    const tokens = this.backend.current().tokens;
    return Object.hasOwn(tokens, tokenHash) ? tokens[tokenHash] : undefined;
  }

  async revokeAccessTokens(selector: TokenSelector, at: number): Promise<AccessTokenRecord[]> {
    const matches = tokenSelectorMatcher(selector);
    if (!matches) return [];
    const revoked = await this.backend.transact((data) => revokeWhere(data, matches, at));
    this.emitRevoked(revoked);
    return revoked;
  }

  async revokeGrant(grantId: string, at: number): Promise<AccessTokenRecord[]> {
    return this.revokeAccessTokens({ grantId }, at);
  }

  touchAccessToken(tokenHash: string, at: number): void {
    if (this.closed) return;
    this.lastUse.touch(tokenHash, at);
  }

  async findRefreshToken(tokenHash: string): Promise<RefreshTokenRecord | undefined> {
    const all = this.backend.current().refreshTokens;
    const token = Object.hasOwn(all, tokenHash) ? all[tokenHash] : undefined;
    return token ? copyToken(token) : undefined;
  }

  async revokeRefreshToken(tokenHash: string, at: number): Promise<boolean> {
    return this.backend.transact((data) => {
      const token = Object.hasOwn(data.refreshTokens, tokenHash) ? data.refreshTokens[tokenHash] : undefined;
      if (!token || token.revokedAt !== null) return false;
      data.refreshTokens[tokenHash] = { ...token, revokedAt: at };
      return true;
    });
  }

  async rotateRefreshToken(
    tokenHash: string,
    next: { access: AccessTokenRecord; refresh: RefreshTokenRecord },
    at: number,
    graceMs: number,
  ): Promise<RotateRefreshResult> {
    const result = await this.backend.transact((data): RotateRefreshResult => {
      const previous = Object.hasOwn(data.refreshTokens, tokenHash) ? data.refreshTokens[tokenHash] : undefined;
      if (!previous || previous.revokedAt !== null || previous.expiresAt <= at || !Object.hasOwn(data.clients, previous.clientId)) {
        return { outcome: 'invalid' };
      }
      if (previous.rotatedAt !== null && at - previous.rotatedAt > graceMs) {
        const revoked = revokeWhere(data, (t) => t.grantId === previous.grantId, at);
        return { outcome: 'reuse_detected', previous: copyToken(previous), revoked };
      }
      // The first rotation starts the grace window; a racing second use inside it does not extend it.
      const rotated = previous.rotatedAt === null ? { ...previous, rotatedAt: at } : previous;
      data.refreshTokens[tokenHash] = rotated;
      data.tokens[next.access.tokenHash] = copyToken(next.access);
      data.refreshTokens[next.refresh.tokenHash] = copyToken(next.refresh);
      return { outcome: 'rotated', previous: copyToken(rotated) };
    });
    if (result.outcome === 'reuse_detected') this.emitRevoked(result.revoked);
    return result;
  }

  async useAssertionId(key: string, expiresAt: number, at: number): Promise<boolean> {
    return this.backend.transact((data) => {
      const seen = Object.hasOwn(data.assertions, key) ? data.assertions[key] : undefined;
      if (seen && seen.expiresAt >= at) return false;
      for (const [old, assertion] of Object.entries(data.assertions)) if (assertion.expiresAt < at) delete data.assertions[old];
      data.assertions[key] = { expiresAt };
      return true;
    });
  }

  async purgeExpired(before: number): Promise<number> {
    return this.backend.transact((data) => {
      let purged = 0;
      const tables: Array<Record<string, { expiresAt: number }>> = [data.assertions, data.codes, data.tokens, data.refreshTokens];
      for (const table of tables) {
        for (const [key, record] of Object.entries(table)) {
          if (record.expiresAt < before) {
            delete table[key];
            purged++;
          }
        }
      }
      return purged;
    });
  }

  onChange(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async flush(): Promise<void> {
    const batch = this.lastUse.snapshot();
    if (!batch) return;
    await this.backend.transact((data) => {
      for (const [hash, at] of batch) {
        const token = Object.hasOwn(data.tokens, hash) ? data.tokens[hash] : undefined;
        if (!token) continue;
        data.tokens[hash] = { ...token, lastUsedAt: Math.max(token.lastUsedAt ?? 0, at) };
        const client = Object.hasOwn(data.clients, token.clientId) ? data.clients[token.clientId] : undefined;
        if (client) data.clients[token.clientId] = { ...client, lastUsedAt: Math.max(client.lastUsedAt ?? 0, at) };
      }
    });
    this.lastUse.written(batch);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.lastUse.stop();
    try {
      await this.flush();
    } finally {
      this.closed = true;
      this.listeners.clear();
      await this.backend.close();
    }
  }

  private emitRevoked(revoked: AccessTokenRecord[]): void {
    if (revoked.length > 0) this.emit({ revokedTokens: revoked.map(pickRef), removedClientIds: [], external: false });
  }

  private emit(change: StoreChange): void {
    if (isEmptyChange(change)) return;
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        /* a listener's failure must not break the writer */
      }
    }
  }
}

/*
 * Records go in and come out as copies, so that a caller changing an object it saved or read
 * cannot change the store behind the lock (and the memory store behaves like the file store).
 * Tokens are copied by hand: findAccessToken is on the path of every protected request.
 */
/** Registrations the owner never approved: no approval, no use, no code or token on record; never the first-party client. */
export function unapprovedClients(data: StoreData): ClientRecord[] {
  const holding = new Set<string>();
  for (const t of Object.values(data.tokens)) holding.add(t.clientId);
  for (const t of Object.values(data.refreshTokens)) holding.add(t.clientId);
  for (const c of Object.values(data.codes)) holding.add(c.clientId);
  return Object.values(data.clients).filter((c) => c.approvedAt === undefined && c.lastUsedAt === null && !c.firstParty && !holding.has(c.clientId));
}

function copyClient(client: ClientRecord): ClientRecord {
  return structuredClone(client);
}

function copyCode(code: CodeRecord): CodeRecord {
  return { ...code, scopes: [...code.scopes] };
}

function copyToken<T extends AccessTokenRecord | RefreshTokenRecord>(token: T): T {
  return { ...token, scopes: [...token.scopes] };
}

/** The oldest client marked first-party (there is one, unless the file was edited by hand). */
export function firstPartyOf(data: StoreData): ClientRecord | undefined {
  let found: ClientRecord | undefined;
  for (const client of Object.values(data.clients)) {
    if (client.firstParty === true && (found === undefined || client.createdAt < found.createdAt)) found = client;
  }
  return found;
}

export function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function pickRef(t: AccessTokenRecord) {
  return { id: t.id, tokenHash: t.tokenHash, clientId: t.clientId, grantId: t.grantId };
}

/**
 * Revokes the active access tokens matching `predicate` and every refresh token of their grants
 * (or matching the predicate itself), so that a revoked access cannot be refreshed back
 * (RFC 7009 §2.1 allows revoking related tokens). Returns the newly revoked access tokens.
 */
function revokeWhere(data: StoreData, predicate: (t: { id: string; clientId: string; grantId: string }) => boolean, at: number): AccessTokenRecord[] {
  const revoked: AccessTokenRecord[] = [];
  const grants = new Set<string>();
  for (const [hash, token] of Object.entries(data.tokens)) {
    if (token.revokedAt === null && predicate(token)) {
      const updated = { ...token, revokedAt: at };
      data.tokens[hash] = updated;
      grants.add(token.grantId);
      revoked.push(copyToken(updated));
    }
  }
  for (const [hash, token] of Object.entries(data.refreshTokens)) {
    if (token.revokedAt === null && (grants.has(token.grantId) || predicate(token))) data.refreshTokens[hash] = { ...token, revokedAt: at };
  }
  return revoked;
}

/**
 * Per client, the latest time anything it held was valid: the end (expiry, or revocation when
 * earlier) of each code, access and refresh token. One pass over the tokens, not one per client.
 */
export function lastActivity(data: StoreData, onlyClientId?: string): Map<string, { at: number; tokens: boolean }> {
  const latest = new Map<string, { at: number; tokens: boolean }>();
  const note = (clientId: string, end: number, token: boolean) => {
    if (onlyClientId !== undefined && clientId !== onlyClientId) return;
    const seen = latest.get(clientId);
    latest.set(clientId, { at: Math.max(seen?.at ?? 0, end), tokens: (seen?.tokens ?? false) || token });
  };
  for (const t of Object.values(data.tokens)) note(t.clientId, Math.min(t.expiresAt, t.revokedAt ?? Infinity), true);
  for (const t of Object.values(data.refreshTokens)) note(t.clientId, Math.min(t.expiresAt, t.revokedAt ?? Infinity), true);
  for (const c of Object.values(data.codes)) note(c.clientId, c.usedAt ?? c.expiresAt, false);
  return latest;
}

/** The abandonment rule (Store.listAbandonedClients), in one place for listing and removing. */
export function abandoned(
  client: ClientRecord,
  activity: Map<string, { at: number; tokens: boolean }>,
  cutoff: number,
): Omit<AbandonedClient, 'client'> | undefined {
  if (client.firstParty) return undefined;
  const held = activity.get(client.clientId);
  const lastActivityAt = Math.max(client.createdAt, client.lastUsedAt ?? 0, held?.at ?? 0);
  if (lastActivityAt >= cutoff) return undefined;
  return { lastActivityAt, hadTokens: held?.tokens ?? false };
}

/** An in-memory backend: for tests and for embedding without persistence. */
export function createMemoryBackend(initial: StoreData = emptyData()): DocumentBackend {
  let data = initial;
  let queue: Promise<unknown> = Promise.resolve();
  return {
    current: () => data,
    transact<T>(fn: (d: StoreData) => T): Promise<T> {
      const run = queue.then(() => fn(data));
      queue = run.catch(() => undefined);
      return run;
    },
    onExternalChange() {},
    async close() {
      data = emptyData();
    },
  };
}
