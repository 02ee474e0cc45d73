import { randomUUID } from 'node:crypto';
import { silentLogger, type Logger } from '../../shared/logger.js';
import { abandoned, firstPartyOf, lastActivity, sameList, unapprovedClients } from '../document-store.js';
import { emptyData, isEmptyChange, SCHEMA_VERSION, type StoreData } from '../document.js';
import { StoreUnavailableError } from '../errors.js';
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
} from '../types.js';
import { tokenSelectorMatcher } from '../types.js';
import { connectRedis, describeRedisUrl, guard, type RedisClient } from './connection.js';
import type { Clock } from '../../shared/clock.js';
import type { AuthEvent, EventLog } from '../event-log.js';
import { createRedisEventLog } from './event-log.js';
import type { SharedEphemeralState } from '../ephemeral.js';
import { createRedisEphemeralState } from './ephemeral.js';
import type { SessionRelay } from '../relay.js';
import { LastUseBatch } from '../last-use.js';
import { createRedisRelay } from './relay.js';
import { ABSENT, ANY, COMPARE_AND_SET, DELETE, KEEP, RECORD_USE, USE_ASSERTION } from './scripts.js';

/**
 * Redis layout (DESIGN.md §6), every key under one prefix (`cupcake:` unless told otherwise):
 *   meta          hash: schemaVersion, deployment (a UUID set once: an empty Redis is noticed), owner (JSON), firstParty (client id)
 *   clients       hash: clientId → ClientRecord JSON
 *   codes         hash: codeHash → CodeRecord JSON
 *   tokens        hash: tokenHash → AccessTokenRecord JSON
 *   refresh       hash: tokenHash → RefreshTokenRecord JSON
 *   assertions    sorted set: used assertion id key, scored by its expiry (RFC 7523 §3)
 *   token-used    hash: tokenHash → last use (ms); client-used: clientId → last use (ms)
 *   changes       pub/sub channel: revocations and removals, for every replica's cache and streams
 * Records are whole JSON values changed only by COMPARE_AND_SET (scripts.ts), so the rules are
 * the file store's and every change is atomic. Last use lives beside the records: batched writes
 * of it never conflict with a revocation.
 */

export const DEFAULT_PREFIX = 'cupcake:';
const HEARTBEAT_MS = 5_000;
const REPLICA_STALE_MS = 15_000;
const DEPLOYMENT_CHECK_MS = 2_000;

/** A `serve` process on this Redis, as `status --json` shows it. */
export interface ReplicaInfo {
  id: string;
  pid: number;
  hostname: string;
  data_dir: string;
  url: string;
  listening: string;
  started_at: string;
  seen_at: string;
  version?: string;
  /** Live sessions as the replica last counted them (status shows them). */
  sessions?: { total: number; by_transport: Record<string, number>; by_client: Record<string, number>; at: string };
}
const MAX_ATTEMPTS = 50;
/** Tokens kept in memory for the bearer check; the oldest go first beyond this. */
const CACHE_LIMIT = 100_000;
const RECENT_REVOCATIONS = 10_000;

type Collection = 'meta' | 'clients' | 'codes' | 'tokens' | 'refresh';

interface Op {
  key: Collection;
  field: string;
  /** The JSON read, or ABSENT / ANY. */
  expected: string;
  /** The JSON to write, or DELETE / KEEP. */
  next: string;
}

/** What goes over the `changes` channel. */
interface ChangeMessage {
  origin: string;
  at: number;
  revokedTokens: StoreChange['revokedTokens'];
  removedClientIds: string[];
}

export interface RedisStoreOptions {
  url: string;
  /** Key prefix; tests give each store its own. */
  prefix?: string;
  /** Follow other processes' changes over pub/sub (serve does; one-shot CLI commands need not). */
  watch?: boolean;
  logger?: Logger;
  /** Shown in CLIENT LIST. */
  name?: string;
}

export class RedisStore implements Store {
  private readonly listeners = new Set<(change: StoreChange) => void>();
  private readonly lastUse = new LastUseBatch(() => this.flush());
  /** tokenHash → record: the bearer check's memory, kept true by the change feed. */
  private readonly cache = new Map<string, AccessTokenRecord>();
  /** Tokens the change feed reported revoked lately, whether cached or not: tokenHash → when. */
  private readonly recentlyRevoked = new Map<string, number>();
  private readonly origin = randomUUID();
  private readonly keys: Record<Collection | 'tokenUsed' | 'clientUsed' | 'assertions', string>;
  private readonly channel: string;
  private readonly prefix: string;
  private subscriber: RedisClient | undefined;
  private closed = false;
  private leave: (() => Promise<void>) | undefined;
  private lost = false;
  private deploymentTimer: NodeJS.Timeout | undefined;
  private readonly relays: SessionRelay[] = [];
  /** The deployment id found at open; a Redis that lost it was emptied. */
  deployment = '';

  private constructor(
    private readonly client: RedisClient,
    private readonly url: string,
    prefix: string,
    private readonly logger: Logger,
  ) {
    this.prefix = prefix;
    this.keys = {
      meta: `${prefix}meta`,
      clients: `${prefix}clients`,
      codes: `${prefix}codes`,
      tokens: `${prefix}tokens`,
      refresh: `${prefix}refresh`,
      assertions: `${prefix}assertions`,
      tokenUsed: `${prefix}token-used`,
      clientUsed: `${prefix}client-used`,
    };
    this.channel = `${prefix}changes`;
  }

  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const logger = options.logger ?? silentLogger;
    const client = await connectRedis(options.url, { logger, name: options.name ?? 'cupcake-mcp' });
    const store = new RedisStore(client, options.url, options.prefix ?? DEFAULT_PREFIX, logger);
    try {
      await store.init();
      if (options.watch) {
        await store.subscribe();
        store.watchDeployment();
      }
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
    return store;
  }

  /** The Redis server, password left out: for status and messages. */
  get location(): string {
    return describeRedisUrl(this.url);
  }

  private async init(): Promise<void> {
    await this.run(async () => {
      const version = await this.client.hGet(this.keys.meta, 'schemaVersion');
      if (version !== null && Number(version) > SCHEMA_VERSION) {
        throw new StoreUnavailableError(
          `the data in Redis at ${this.location} was written by a newer cupcake-mcp (schema ${version}; this one reads ${SCHEMA_VERSION}); upgrade cupcake-mcp`,
        );
      }
      await this.client.hSetNX(this.keys.meta, 'schemaVersion', String(SCHEMA_VERSION));
      await this.client.hSetNX(this.keys.meta, 'deployment', randomUUID());
      this.deployment = (await this.client.hGet(this.keys.meta, 'deployment')) ?? '';
    });
  }

  /** The deployment's audit log: a capped stream on this store's Redis, shared by every replica. */
  createEventLog(options: { clock?: Clock; onError?: (error: unknown) => void; onRecord?: (event: AuthEvent) => void } = {}): EventLog {
    return createRedisEventLog(this.client, `${this.prefix}events`, options);
  }

  /**
   * Announces this process as a live replica (`status` lists them): written now and every
   * HEARTBEAT_MS after; the returned function removes it. A replica that died stops refreshing
   * and drops out of the list after REPLICA_STALE_MS.
   */
  async announceReplica(current: () => Omit<ReplicaInfo, 'id' | 'seen_at'>): Promise<() => Promise<void>> {
    const id = this.origin;
    const write = () => this.run(() => this.client.hSet(`${this.prefix}replicas`, id, JSON.stringify({ id, ...current(), seen_at: new Date().toISOString() })));
    await write();
    const timer = setInterval(() => void write().catch(() => undefined), HEARTBEAT_MS);
    timer.unref();
    const stop = async () => {
      clearInterval(timer);
      this.leave = undefined;
      await this.run(() => this.client.hDel(`${this.prefix}replicas`, id)).catch(() => undefined);
    };
    // Closing the store also says goodbye: the store closes before the caller's cleanup runs.
    this.leave = stop;
    return stop;
  }

  /** The replicas that announced themselves recently, oldest first; long-gone ones are forgotten. */
  async listReplicas(now = Date.now()): Promise<ReplicaInfo[]> {
    const all = await this.run(() => this.client.hGetAll(`${this.prefix}replicas`));
    const live: ReplicaInfo[] = [];
    for (const [id, json] of Object.entries(all)) {
      const replica = JSON.parse(json) as ReplicaInfo;
      const age = now - Date.parse(replica.seen_at);
      if (age <= REPLICA_STALE_MS) live.push(replica);
      else if (age > 10 * REPLICA_STALE_MS) await this.run(() => this.client.hDel(`${this.prefix}replicas`, id)).catch(() => undefined);
    }
    return live.sort((a, b) => a.started_at.localeCompare(b.started_at));
  }

  /** Pending consents, lockouts, request windows and form keys, shared by every replica on this Redis. */
  ephemeralState(): SharedEphemeralState {
    const client = this.client;
    const url = this.url;
    const shared = createRedisEphemeralState(client, this.prefix);
    // Every call goes through the outage guard: an unreachable Redis is a 503, never a hang.
    const guarded = <T extends object>(target: T): T =>
      new Proxy(target, {
        get(obj, prop, receiver) {
          const value = Reflect.get(obj, prop, receiver) as unknown;
          return typeof value === 'function'
            ? (...args: unknown[]) => guard(url, () => (value as (...a: unknown[]) => Promise<unknown>).apply(obj, args))
            : value;
        },
      });
    return {
      entries: (name) => guarded(shared.entries(name)),
      failureWindow: (name, limit, windowMs) => guarded(shared.failureWindow(name, limit, windowMs)),
      countWindows: (name, windowMs) => guarded(shared.countWindows(name, windowMs)),
      sharedKey: (name) => guard(url, () => shared.sharedKey(name)),
    };
  }

  /** Where MCP sessions live and how to reach them from another replica; closed with the store. */
  async createRelay(): Promise<SessionRelay> {
    const relay = await createRedisRelay(this.client, this.url, this.prefix, this.logger);
    this.relays.push(relay);
    return relay;
  }

  /**
   * Copies a file store's document in (`store migrate`): every record Redis does not hold yet,
   * never over one it holds (a re-run after replicas have revoked tokens must not bring them
   * back), each collection in batches that are atomic on their own, so a copy stopped half-way
   * is finished by running it again. The owner password is copied only when Redis has none.
   */
  async importDocument(
    data: StoreData,
  ): Promise<Record<'clients' | 'codes' | 'tokens' | 'refreshTokens' | 'assertions' | 'owner', { copied: number; kept: number }>> {
    const sources = { clients: data.clients, codes: data.codes, tokens: data.tokens, refreshTokens: data.refreshTokens };
    const target: Record<keyof typeof sources, Collection> = { clients: 'clients', codes: 'codes', tokens: 'tokens', refreshTokens: 'refresh' };
    const result = {} as Record<'clients' | 'codes' | 'tokens' | 'refreshTokens' | 'assertions' | 'owner', { copied: number; kept: number }>;
    for (const name of Object.keys(sources) as Array<keyof typeof sources>) {
      const entries = Object.entries(sources[name]);
      let copied = 0;
      for (let i = 0; i < entries.length; i += 500) {
        const batch = entries.slice(i, i + 500);
        const multi = this.client.multi();
        for (const [field, record] of batch) multi.hSetNX(this.keys[target[name]], field, JSON.stringify(record));
        const replies = await this.run(() => multi.exec());
        copied += replies.filter((r) => Number(r) === 1).length;
      }
      result[name] = { copied, kept: entries.length - copied };
    }
    const assertions = Object.entries(data.assertions).map(([key, record]) => ({ score: record.expiresAt, value: key }));
    const added = assertions.length > 0 ? await this.run(() => this.client.zAdd(this.keys.assertions, assertions, { condition: 'NX' })) : 0;
    result.assertions = { copied: Number(added), kept: assertions.length - Number(added) };
    const first = firstPartyOf(data);
    if (first) await this.run(() => this.client.hSetNX(this.keys.meta, 'firstParty', first.clientId));
    const owner = data.owner.passwordHash ? await this.run(() => this.client.hSetNX(this.keys.meta, 'owner', JSON.stringify(data.owner))) : 0;
    result.owner = { copied: Number(owner), kept: data.owner.passwordHash ? 1 - Number(owner) : 0 };
    return result;
  }

  /** Whether Redis still holds the data this store opened (false after a restart without persistence). */
  async deploymentIntact(): Promise<boolean> {
    const now = await this.run(() => this.client.hGet(this.keys.meta, 'deployment'));
    return now === this.deployment;
  }

  /**
   * Redis that comes back without this deployment's id was emptied (restarted without
   * persistence, flushed): its owner password, clients and tokens are gone. That is said plainly
   * and writes are refused, rather than served as a new, empty deployment; restoring the data
   * (the id comes back with it) ends it by itself.
   */
  private watchDeployment(): void {
    const check = async () => {
      const intact = await this.deploymentIntact().catch(() => undefined);
      if (intact === undefined || intact === !this.lost) return;
      this.lost = !intact;
      if (this.lost) {
        this.logger.error(
          `Redis at ${this.location} no longer holds this deployment's data (restarted without persistence, or flushed): ` +
            'clients, tokens and the owner password are gone. Changes are refused until the data is restored (from its AOF or RDB file), ' +
            'or stop every replica and start again to begin a new deployment.',
        );
      } else {
        this.logger.info(`Redis at ${this.location} holds this deployment's data again`);
      }
    };
    this.deploymentTimer = setInterval(() => void check(), DEPLOYMENT_CHECK_MS);
    this.deploymentTimer.unref();
  }

  private assertIntact(): void {
    if (this.lost) throw new StoreUnavailableError(`Redis at ${this.location} lost this deployment's data; see the server log`);
  }

  private async subscribe(): Promise<void> {
    const subscriber = this.client.duplicate() as RedisClient;
    subscriber.on('error', () => {
      /* the command connection reports outages; this one reconnects with it */
    });
    let ready = false;
    subscriber.on('ready', () => {
      // Messages sent while we were away are lost: check every cached token once.
      if (ready) void this.reconcile().catch((error) => this.logger.error('could not re-check cached tokens after reconnecting to Redis', error));
      ready = true;
    });
    await this.run(() => subscriber.connect());
    this.subscriber = subscriber;
    await this.run(() => subscriber.subscribe(this.channel, (message: string) => this.receive(message)));
  }

  private receive(text: string): void {
    let message: ChangeMessage;
    try {
      message = JSON.parse(text) as ChangeMessage;
    } catch {
      return;
    }
    if (message.origin === this.origin) return;
    this.applyToCache(
      message.revokedTokens.map((t) => t.tokenHash),
      message.at,
    );
    this.emit({ revokedTokens: message.revokedTokens, removedClientIds: message.removedClientIds, external: true });
  }

  /** After a gap in the feed: tokens revoked or deleted meanwhile are reported as revoked. */
  private async reconcile(): Promise<void> {
    const hashes = [...this.cache.keys()];
    const revoked: StoreChange['revokedTokens'] = [];
    for (let i = 0; i < hashes.length; i += 500) {
      const batch = hashes.slice(i, i + 500);
      const values = await this.run(() => this.client.hmGet(this.keys.tokens, batch));
      batch.forEach((hash, j) => {
        const cached = this.cache.get(hash);
        if (!cached || cached.revokedAt !== null) return;
        const json = values[j];
        const now = json ? (JSON.parse(json) as AccessTokenRecord) : undefined;
        if (now && now.revokedAt === null) return;
        this.cache.set(hash, { ...cached, revokedAt: now?.revokedAt ?? Date.now() });
        revoked.push(pickRef(cached));
      });
    }
    if (revoked.length > 0) this.emit({ revokedTokens: revoked, removedClientIds: [], external: true });
  }

  async getOwner(): Promise<OwnerRecord> {
    const json = await this.run(() => this.client.hGet(this.keys.meta, 'owner'));
    return json ? (JSON.parse(json) as OwnerRecord) : { passwordHash: null, passwordChangedAt: null };
  }

  async setOwnerPasswordHash(passwordHash: string, at: number): Promise<void> {
    await this.updateOwner((owner) => ({ ...owner, passwordHash, passwordChangedAt: at }));
  }

  async clearLoginLockouts(at: number): Promise<void> {
    await this.updateOwner((owner) => ({ ...owner, lockoutsClearedAt: at }));
  }

  /** One field of the owner record changes; the others are kept, whoever writes at the same time. */
  private async updateOwner(change: (owner: OwnerRecord) => OwnerRecord): Promise<void> {
    await this.retry(async () => {
      const json = await this.run(() => this.client.hGet(this.keys.meta, 'owner'));
      const owner: OwnerRecord = json ? (JSON.parse(json) as OwnerRecord) : { passwordHash: null, passwordChangedAt: null };
      return (await this.cas([{ key: 'meta', field: 'owner', expected: json ?? ABSENT, next: JSON.stringify(change(owner)) }])) ? true : undefined;
    });
  }

  async createClient(client: ClientRecord, options: { keepUnapproved?: number } = {}): Promise<{ removedClientIds: string[] }> {
    const create: Op = { key: 'clients', field: client.clientId, expected: ABSENT, next: JSON.stringify(client) };
    const keep = options.keepUnapproved;
    if (keep === undefined) {
      if (!(await this.cas([create]))) throw new Error(`client ${client.clientId} already exists`);
      return { removedClientIds: [] };
    }
    // The file store's rule (document-store.ts unapprovedClients), decided on what was read and
    // written only if none of it changed meanwhile: the removals and the new client in one script.
    const removedClientIds = await this.retry(async () => {
      const raw = await this.readRaw(['clients', 'codes', 'tokens', 'refresh']);
      if (Object.hasOwn(raw.clients, client.clientId)) throw new Error(`client ${client.clientId} already exists`);
      const data = parseAll(raw);
      const used = await this.run(() => this.client.hGetAll(this.keys.clientUsed));
      for (const [id, c] of Object.entries(data.clients)) data.clients[id] = withClientUse(c, used[id]);
      data.clients[client.clientId] = client;
      const unapproved = unapprovedClients(data);
      const excess = unapproved.length - Math.max(1, keep);
      const removed =
        excess <= 0
          ? []
          : unapproved
              .sort((a, b) => a.createdAt - b.createdAt || (a.clientId === client.clientId ? 1 : b.clientId === client.clientId ? -1 : 0))
              .slice(0, excess);
      const ops: Op[] = [create, ...removed.map((c): Op => ({ key: 'clients', field: c.clientId, expected: raw.clients[c.clientId]!, next: DELETE }))];
      // A code issued to one of them meanwhile marks it approved (saveCode), which changes its record: the script then refuses.
      const ok = await this.cas(ops, removed.length > 0 ? { revokedTokens: [], removedClientIds: removed.map((c) => c.clientId), at: Date.now() } : undefined);
      return ok ? removed.map((c) => c.clientId) : undefined;
    });
    if (removedClientIds.length > 0) this.emit({ revokedTokens: [], removedClientIds, external: false });
    return { removedClientIds };
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const [json, used] = await this.run(() => Promise.all([this.client.hGet(this.keys.clients, clientId), this.client.hGet(this.keys.clientUsed, clientId)]));
    return json ? withClientUse(JSON.parse(json) as ClientRecord, used) : undefined;
  }

  async listClients(): Promise<ClientRecord[]> {
    const [all, used] = await this.run(() => Promise.all([this.client.hGetAll(this.keys.clients), this.client.hGetAll(this.keys.clientUsed)]));
    return Object.entries(all).map(([id, json]) => withClientUse(JSON.parse(json) as ClientRecord, used[id]));
  }

  async ensureFirstPartyClient(candidate: ClientRecord): Promise<{ client: ClientRecord; outcome: 'created' | 'updated' | 'unchanged' }> {
    return this.retry(async () => {
      const pointer = await this.run(() => this.client.hGet(this.keys.meta, 'firstParty'));
      let existingJson = pointer ? await this.run(() => this.client.hGet(this.keys.clients, pointer)) : null;
      let existingId = pointer;
      if (!existingJson && !pointer) {
        // Data copied from a file store carries the mark on the record only.
        const all = await this.readAll(['clients']);
        const found = firstPartyOf(all);
        if (found) {
          existingId = found.clientId;
          existingJson = JSON.stringify(found);
          const raw = await this.run(() => this.client.hGet(this.keys.clients, found.clientId));
          existingJson = raw;
        }
      }
      const pointerOp = (next: string): Op => ({ key: 'meta', field: 'firstParty', expected: pointer ?? ABSENT, next });
      if (existingJson && existingId) {
        const existing = JSON.parse(existingJson) as ClientRecord;
        if (sameList(existing.redirectUris, candidate.redirectUris)) {
          const ok =
            pointer === existingId || (await this.cas([pointerOp(existingId), { key: 'clients', field: existingId, expected: existingJson, next: KEEP }]));
          return ok ? { client: await this.mustGetClient(existingId), outcome: 'unchanged' as const } : undefined;
        }
        const moved: ClientRecord = { ...existing, redirectUris: [...candidate.redirectUris] };
        const ok = await this.cas([pointerOp(existingId), { key: 'clients', field: existingId, expected: existingJson, next: JSON.stringify(moved) }]);
        return ok ? { client: await this.mustGetClient(existingId), outcome: 'updated' as const } : undefined;
      }
      if (await this.run(() => this.client.hExists(this.keys.clients, candidate.clientId))) throw new Error(`client ${candidate.clientId} already exists`);
      const created: ClientRecord = { ...structuredClone(candidate), firstParty: true };
      const ok = await this.cas([pointerOp(created.clientId), { key: 'clients', field: created.clientId, expected: ABSENT, next: JSON.stringify(created) }]);
      return ok ? { client: structuredClone(created), outcome: 'created' as const } : undefined;
    });
  }

  async upsertClient(client: ClientRecord): Promise<'created' | 'updated' | 'unchanged'> {
    const same = (existing: ClientRecord) =>
      JSON.stringify({ ...existing, createdAt: 0, lastUsedAt: null, approvedAt: 0 }) ===
      JSON.stringify({ ...client, createdAt: 0, lastUsedAt: null, approvedAt: 0 });
    return this.retry(async () => {
      const json = await this.run(() => this.client.hGet(this.keys.clients, client.clientId));
      const existing = json ? (JSON.parse(json) as ClientRecord) : undefined;
      if (existing?.firstParty) throw new Error(`client ${client.clientId} is the first-party client`);
      if (existing && same(existing)) return 'unchanged' as const;
      const { firstParty: _ignored, approvedAt: _approved, ...described } = structuredClone(client);
      // The approval is the owner's, kept from the stored record; never taken from a description.
      const next = existing
        ? {
            ...described,
            createdAt: existing.createdAt,
            lastUsedAt: existing.lastUsedAt,
            ...(existing.approvedAt === undefined ? {} : { approvedAt: existing.approvedAt }),
          }
        : described;
      const ok = await this.cas([{ key: 'clients', field: client.clientId, expected: json ?? ABSENT, next: JSON.stringify(next) }]);
      if (!ok) return undefined;
      return existing ? ('updated' as const) : ('created' as const);
    });
  }

  async listAbandonedClients(cutoff: number): Promise<AbandonedClient[]> {
    const data = await this.readAll(['clients', 'codes', 'tokens', 'refresh']);
    const used = await this.run(() => this.client.hGetAll(this.keys.clientUsed));
    for (const [id, client] of Object.entries(data.clients)) data.clients[id] = withClientUse(client, used[id]);
    const activity = lastActivity(data);
    return Object.values(data.clients).flatMap((client) => {
      const found = abandoned(client, activity, cutoff);
      return found ? [{ ...found, client }] : [];
    });
  }

  async removeClient(clientId: string, at: number, options: { ifAbandonedBefore?: number } = {}) {
    const result = await this.retry(async () => {
      const raw = await this.readRaw(['clients', 'codes', 'tokens', 'refresh']);
      const json = Object.hasOwn(raw.clients, clientId) ? raw.clients[clientId] : undefined;
      if (!json) return { removed: undefined };
      const data = parseAll(raw);
      const client = data.clients[clientId]!;
      const cutoff = options.ifAbandonedBefore;
      if (cutoff !== undefined) {
        const used = await this.run(() => this.client.hGet(this.keys.clientUsed, clientId));
        if (!abandoned(withClientUse(client, used), lastActivity(data, clientId), cutoff)) return { removed: undefined };
      }
      const { ops, revoked } = revocationOps(raw, data, (t) => t.clientId === clientId, at);
      ops.push({ key: 'clients', field: clientId, expected: json, next: DELETE });
      for (const [hash, code] of Object.entries(data.codes))
        if (code.clientId === clientId) ops.push({ key: 'codes', field: hash, expected: raw.codes[hash]!, next: DELETE });
      const ok = await this.cas(ops, { revokedTokens: revoked.map(pickRef), removedClientIds: [clientId], at });
      return ok ? { removed: { client, revokedTokens: revoked } } : undefined;
    });
    if (!result.removed) return undefined;
    await this.run(() => this.client.hDel(this.keys.clientUsed, clientId)).catch(() => undefined);
    this.afterRevocation(result.removed.revokedTokens, at, [clientId]);
    return result.removed;
  }

  async saveCode(code: CodeRecord): Promise<void> {
    // A code is issued only for an approved client: it is marked approved (approvedAt) with it.
    await this.retry(async () => {
      const json = await this.run(() => this.client.hGet(this.keys.clients, code.clientId));
      const client = json ? (JSON.parse(json) as ClientRecord) : undefined;
      const ops: Op[] = [{ key: 'codes', field: code.codeHash, expected: ANY, next: JSON.stringify(code) }];
      if (client && client.approvedAt === undefined)
        ops.push({ key: 'clients', field: code.clientId, expected: json!, next: JSON.stringify({ ...client, approvedAt: code.createdAt }) });
      return (await this.cas(ops)) ? true : undefined;
    });
  }

  async consumeCode(codeHash: string, at: number, clientId?: string): Promise<ConsumeCodeResult> {
    return this.retry(async (): Promise<ConsumeCodeResult | undefined> => {
      const json = await this.run(() => this.client.hGet(this.keys.codes, codeHash));
      if (!json) return { outcome: 'unknown' };
      const code = JSON.parse(json) as CodeRecord;
      // Another client presenting it neither uses it up nor triggers replay revocation.
      if (clientId !== undefined && code.clientId !== clientId) return { outcome: 'other_client' };
      if (code.usedAt !== null) return { outcome: 'replayed', code };
      const used = { ...code, usedAt: at };
      // RFC 6749 §4.1.2: a code is used once. Of racing exchanges, one compare-and-set wins.
      const ok = await this.cas([{ key: 'codes', field: codeHash, expected: json, next: JSON.stringify(used) }]);
      return ok ? { outcome: 'consumed', code: used } : undefined;
    });
  }

  async saveTokens(access: AccessTokenRecord, refresh?: RefreshTokenRecord): Promise<void> {
    const ops: Op[] = [{ key: 'tokens', field: access.tokenHash, expected: ANY, next: JSON.stringify(access) }];
    if (refresh) ops.push({ key: 'refresh', field: refresh.tokenHash, expected: ANY, next: JSON.stringify(refresh) });
    await this.cas(ops);
    this.remember(copyToken(access));
  }

  async findAccessToken(tokenHash: string): Promise<AccessTokenRecord | undefined> {
    let token = this.cache.get(tokenHash);
    if (!token) {
      // A token issued on another replica works here at once: a miss reads Redis.
      const json = await this.run(() => this.client.hGet(this.keys.tokens, tokenHash));
      if (!json) return undefined;
      token = JSON.parse(json) as AccessTokenRecord;
      this.remember(token);
    }
    const copy = copyToken(token);
    const pending = this.lastUse.get(tokenHash);
    if (pending !== undefined) copy.lastUsedAt = Math.max(copy.lastUsedAt ?? 0, pending);
    return copy;
  }

  async listAccessTokens(): Promise<AccessTokenRecord[]> {
    const [all, used] = await this.run(() => Promise.all([this.client.hGetAll(this.keys.tokens), this.client.hGetAll(this.keys.tokenUsed)]));
    return Object.entries(all).map(([hash, json]) => {
      const token = JSON.parse(json) as AccessTokenRecord;
      const last = Math.max(token.lastUsedAt ?? 0, Number(used[hash] ?? 0), this.lastUse.get(hash) ?? 0);
      return { ...token, lastUsedAt: last > 0 ? last : token.lastUsedAt };
    });
  }

  async revokeAccessTokens(selector: TokenSelector, at: number): Promise<AccessTokenRecord[]> {
    const matches = tokenSelectorMatcher(selector);
    if (!matches) return [];
    const revoked = await this.retry(async () => {
      const raw = await this.readRaw(['tokens', 'refresh']);
      const { ops, revoked } = revocationOps(raw, parseAll(raw), matches, at);
      if (ops.length === 0) return [];
      const ok = await this.cas(ops, revoked.length > 0 ? { revokedTokens: revoked.map(pickRef), removedClientIds: [], at } : undefined);
      return ok ? revoked : undefined;
    });
    this.afterRevocation(revoked, at, []);
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
    const json = await this.run(() => this.client.hGet(this.keys.refresh, tokenHash));
    return json ? (JSON.parse(json) as RefreshTokenRecord) : undefined;
  }

  async revokeRefreshToken(tokenHash: string, at: number): Promise<boolean> {
    return this.retry(async () => {
      const json = await this.run(() => this.client.hGet(this.keys.refresh, tokenHash));
      if (!json) return false;
      const token = JSON.parse(json) as RefreshTokenRecord;
      if (token.revokedAt !== null) return false;
      const ok = await this.cas([{ key: 'refresh', field: tokenHash, expected: json, next: JSON.stringify({ ...token, revokedAt: at }) }]);
      return ok ? true : undefined;
    });
  }

  async rotateRefreshToken(
    tokenHash: string,
    next: { access: AccessTokenRecord; refresh: RefreshTokenRecord },
    at: number,
    graceMs: number,
  ): Promise<RotateRefreshResult> {
    const result = await this.retry(async (): Promise<RotateRefreshResult | undefined> => {
      const json = await this.run(() => this.client.hGet(this.keys.refresh, tokenHash));
      if (!json) return { outcome: 'invalid' };
      const previous = JSON.parse(json) as RefreshTokenRecord;
      if (previous.revokedAt !== null || previous.expiresAt <= at) return { outcome: 'invalid' };
      const clientJson = await this.run(() => this.client.hGet(this.keys.clients, previous.clientId));
      if (!clientJson) return { outcome: 'invalid' };
      const clientStill: Op = { key: 'clients', field: previous.clientId, expected: clientJson, next: KEEP };
      if (previous.rotatedAt !== null && at - previous.rotatedAt > graceMs) {
        // A reuse after the grace window: the whole family goes (OAuth 2.1 §4.3.1).
        const raw = await this.readRaw(['tokens', 'refresh']);
        const { ops, revoked } = revocationOps(raw, parseAll(raw), (t) => t.grantId === previous.grantId, at);
        const ok = await this.cas([...ops, clientStill], revoked.length > 0 ? { revokedTokens: revoked.map(pickRef), removedClientIds: [], at } : undefined);
        return ok ? { outcome: 'reuse_detected', previous, revoked } : undefined;
      }
      // The first rotation starts the grace window; a racing second use inside it does not extend it.
      const rotated = previous.rotatedAt === null ? { ...previous, rotatedAt: at } : previous;
      const ok = await this.cas([
        { key: 'refresh', field: tokenHash, expected: json, next: rotated === previous ? KEEP : JSON.stringify(rotated) },
        clientStill,
        { key: 'tokens', field: next.access.tokenHash, expected: ANY, next: JSON.stringify(next.access) },
        { key: 'refresh', field: next.refresh.tokenHash, expected: ANY, next: JSON.stringify(next.refresh) },
      ]);
      return ok ? { outcome: 'rotated', previous: rotated } : undefined;
    });
    if (result.outcome === 'reuse_detected') this.afterRevocation(result.revoked, at, []);
    if (result.outcome === 'rotated') this.remember(copyToken(next.access));
    return result;
  }

  async useAssertionId(key: string, expiresAt: number, at: number): Promise<boolean> {
    this.assertIntact();
    // RFC 7523 §3 item 7: one script, so of racing uses of one jti exactly one is accepted.
    const accepted = await this.run(() => USE_ASSERTION.run<number>(this.client, [this.keys.assertions], [key, String(expiresAt), String(at)]));
    return accepted === 1;
  }

  async purgeExpired(before: number): Promise<number> {
    const raw = await this.readRaw(['codes', 'tokens', 'refresh']);
    let purged = await this.run(() => this.client.zRemRangeByScore(this.keys.assertions, '-inf', `(${before}`));
    for (const collection of ['codes', 'tokens', 'refresh'] as const) {
      const expired = Object.entries(raw[collection])
        .filter(([, json]) => (JSON.parse(json) as { expiresAt: number }).expiresAt < before)
        .map(([field]) => field);
      for (let i = 0; i < expired.length; i += 500) {
        const batch = expired.slice(i, i + 500);
        purged += await this.run(() => this.client.hDel(this.keys[collection], batch));
        if (collection === 'tokens') {
          await this.run(() => this.client.hDel(this.keys.tokenUsed, batch));
          for (const hash of batch) this.cache.delete(hash);
        }
      }
    }
    return purged;
  }

  onChange(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async flush(): Promise<void> {
    const batch = this.lastUse.snapshot();
    if (!batch) return;
    const args = [...batch].flatMap(([hash, at]) => [hash, String(at)]);
    await this.run(() => RECORD_USE.run(this.client, [this.keys.tokens, this.keys.tokenUsed, this.keys.clientUsed], args));
    for (const [key, at] of batch) {
      const cached = this.cache.get(key);
      if (cached) this.cache.set(key, { ...cached, lastUsedAt: Math.max(cached.lastUsedAt ?? 0, at) });
    }
    // A use recorded meanwhile stays pending.
    this.lastUse.written(batch);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.lastUse.stop();
    if (this.deploymentTimer) clearInterval(this.deploymentTimer);
    try {
      await this.leave?.();
      for (const relay of this.relays.splice(0)) await relay.close().catch(() => undefined);
      await this.flush();
    } finally {
      this.closed = true;
      this.listeners.clear();
      this.cache.clear();
      for (const connection of [this.subscriber, this.client]) {
        if (!connection) continue;
        try {
          if (connection.isOpen) await connection.close();
        } catch {
          connection.destroy();
        }
      }
    }
  }

  /** Runs Redis calls, a lost connection becoming the 503 error. */
  private run<T>(call: () => Promise<T>): Promise<T> {
    return guard(this.url, call);
  }

  /** Runs `attempt` until it settles (a value other than undefined): it returns undefined when its compare-and-set lost a race. */
  private async retry<T>(attempt: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const result = await attempt();
      if (result !== undefined) return result;
    }
    throw new StoreUnavailableError('too many concurrent writers on one record in Redis; try again');
  }

  private async cas(ops: Op[], change?: Omit<ChangeMessage, 'origin'>): Promise<boolean> {
    this.assertIntact();
    const used = [...new Set(ops.map((op) => op.key))];
    const args: string[] = [String(ops.length)];
    for (const op of ops) args.push(String(used.indexOf(op.key) + 1), op.field, op.expected, op.next);
    if (change && !isEmptyChange({ ...change, external: false })) args.push(this.channel, JSON.stringify({ origin: this.origin, ...change }));
    const result = await this.run(() =>
      COMPARE_AND_SET.run<number>(
        this.client,
        used.map((k) => this.keys[k]),
        args,
      ),
    );
    return result === 1;
  }

  private async readRaw<C extends Collection>(collections: C[]): Promise<Record<C, Record<string, string>>> {
    const values = await this.run(() => Promise.all(collections.map((c) => this.client.hGetAll(this.keys[c]))));
    return Object.fromEntries(collections.map((c, i) => [c, values[i]])) as Record<C, Record<string, string>>;
  }

  private async readAll(collections: Array<'clients' | 'codes' | 'tokens' | 'refresh'>): Promise<StoreData> {
    return parseAll(await this.readRaw(collections));
  }

  private async mustGetClient(clientId: string): Promise<ClientRecord> {
    const client = await this.getClient(clientId);
    if (!client) throw new StoreUnavailableError(`client ${clientId} disappeared while it was being changed; try again`);
    return client;
  }

  private remember(token: AccessTokenRecord): void {
    // A read that raced a revocation message must not put the token back as valid.
    const revokedAt = this.recentlyRevoked.get(token.tokenHash);
    if (revokedAt !== undefined && token.revokedAt === null) token = { ...token, revokedAt };
    if (this.recentlyRevoked.size > RECENT_REVOCATIONS) this.recentlyRevoked.delete(this.recentlyRevoked.keys().next().value!);
    if (this.cache.size >= CACHE_LIMIT && !this.cache.has(token.tokenHash)) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(token.tokenHash, token);
  }

  private applyToCache(hashes: string[], at: number): void {
    for (const hash of hashes) {
      this.recentlyRevoked.set(hash, at);
      const cached = this.cache.get(hash);
      if (cached && cached.revokedAt === null) this.cache.set(hash, { ...cached, revokedAt: at });
    }
  }

  private afterRevocation(revoked: AccessTokenRecord[], at: number, removedClientIds: string[]): void {
    this.applyToCache(
      revoked.map((t) => t.tokenHash),
      at,
    );
    this.emit({ revokedTokens: revoked.map(pickRef), removedClientIds, external: false });
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

export function openRedisStore(options: RedisStoreOptions): Promise<RedisStore> {
  return RedisStore.open(options);
}

function copyToken<T extends AccessTokenRecord | RefreshTokenRecord>(token: T): T {
  return { ...token, scopes: [...token.scopes] };
}

function pickRef(t: AccessTokenRecord) {
  return { id: t.id, tokenHash: t.tokenHash, clientId: t.clientId, grantId: t.grantId };
}

function withClientUse(client: ClientRecord, used: string | null | undefined): ClientRecord {
  const at = Number(used ?? 0);
  return at > (client.lastUsedAt ?? 0) ? { ...client, lastUsedAt: at } : client;
}

function parseAll(raw: Partial<Record<Collection, Record<string, string>>>): StoreData {
  const data = emptyData();
  const parse = <T>(entries: Record<string, string> | undefined): Record<string, T> =>
    Object.fromEntries(Object.entries(entries ?? {}).map(([k, v]) => [k, JSON.parse(v) as T]));
  data.clients = parse(raw.clients);
  data.codes = parse(raw.codes);
  data.tokens = parse(raw.tokens);
  data.refreshTokens = parse(raw.refresh);
  return data;
}

/**
 * The file store's revocation rule (document-store.ts revokeWhere) as compare-and-set steps:
 * the active access tokens matching, and every refresh token of their grants or matching itself.
 */
function revocationOps(
  raw: { tokens: Record<string, string>; refresh: Record<string, string> },
  data: StoreData,
  predicate: (t: { id: string; clientId: string; grantId: string }) => boolean,
  at: number,
): { ops: Op[]; revoked: AccessTokenRecord[] } {
  const ops: Op[] = [];
  const revoked: AccessTokenRecord[] = [];
  const grants = new Set<string>();
  for (const [hash, token] of Object.entries(data.tokens)) {
    if (token.revokedAt === null && predicate(token)) {
      const updated = { ...token, revokedAt: at };
      ops.push({ key: 'tokens', field: hash, expected: raw.tokens[hash]!, next: JSON.stringify(updated) });
      grants.add(token.grantId);
      revoked.push(updated);
    }
  }
  for (const [hash, token] of Object.entries(data.refreshTokens)) {
    if (token.revokedAt === null && (grants.has(token.grantId) || predicate(token))) {
      ops.push({ key: 'refresh', field: hash, expected: raw.refresh[hash]!, next: JSON.stringify({ ...token, revokedAt: at }) });
    }
  }
  return { ops, revoked };
}
