import type { Clock } from '../shared/clock.js';

/**
 * Fetching on a client's behalf, seen from the protocol rules: what one GET answers, the fetcher
 * contract, how long an answer stays fresh, and a bounded cache. The network side (SSRF guard,
 * TLS, limits) is the fetcher passed in (server/client-metadata-fetcher.ts), so that this layer
 * stays free of I/O and tests can stand in for the network.
 */

/** §6.6 of the CIMD draft: the document is small; a bigger answer is refused before it is read to the end. */
export const MAX_DOCUMENT_BYTES = 64 * 1024;
/** A host that does not answer within this is treated as unavailable. */
export const FETCH_TIMEOUT_MS = 5_000;

/** The answer to one GET. The fetcher never follows a redirect (CIMD §4). */
export interface FetchedDocument {
  status: number;
  /** `Content-Type`, as sent. */
  contentType: string | undefined;
  /** `Cache-Control`, as sent. */
  cacheControl: string | undefined;
  /** `Age` in seconds, when sent (RFC 9111 §5.1). */
  age: number | undefined;
  /** The body as text; only read when the status is 200. */
  body: string;
}

/**
 * Fetches a client metadata document or a JWK Set. Contract: https only; connects only to public
 * addresses after resolving the host itself (CIMD §6.5 SSRF); never follows redirects (§4); gives
 * up after FETCH_TIMEOUT_MS and beyond MAX_DOCUMENT_BYTES (§6.6). Any failure is a
 * MetadataDocumentError whose message names `what` was fetched.
 */
export interface ClientMetadataFetcher {
  fetch(url: string, what?: string): Promise<FetchedDocument>;
}

const JSON_TYPE = /^application\/(?:[a-z0-9!#$&^_.+-]+\+)?json\s*(?:;.*)?$/i;

/** `application/json` or any `+json` type (`application/jwk-set+json`), parameters allowed. */
export function isJsonContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && JSON_TYPE.test(contentType.trim());
}

export interface DocumentCacheBounds extends FetchCacheBounds {
  /** A document is not fetched again sooner than this, whatever its headers say. */
  minTtlMs: number;
  /** …nor kept longer than this. */
  maxTtlMs: number;
}

export const DEFAULT_CACHE_BOUNDS: DocumentCacheBounds = {
  minTtlMs: 5 * 60_000,
  maxTtlMs: 24 * 3_600_000,
  failureTtlMs: 60_000,
  maxEntries: 1_000,
  maxInFlight: 16,
};

/**
 * CIMD §4.4 / RFC 9111 §5.2.2: how long a fetched document stays fresh: `max-age` less `Age`, held
 * between the bounds. `no-store`, `no-cache` or no `max-age` get the minimum: the document is
 * fetched again no sooner than that, which bounds what one client can make this server fetch.
 */
export function documentLifetime(fetched: Pick<FetchedDocument, 'cacheControl' | 'age'>, bounds: Pick<DocumentCacheBounds, 'minTtlMs' | 'maxTtlMs'>): number {
  const directives = (fetched.cacheControl ?? '').toLowerCase();
  if (/(?:^|,)\s*(?:no-store|no-cache)\b/.test(directives)) return bounds.minTtlMs;
  const maxAge = /(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?/.exec(directives);
  if (!maxAge) return bounds.minTtlMs;
  const seconds = Number(maxAge[1]) - Math.max(0, fetched.age ?? 0);
  return Math.min(bounds.maxTtlMs, Math.max(bounds.minTtlMs, seconds * 1000));
}

/** Why something fetched on a client's behalf cannot be used; `message` is safe to show and to send. */
export class MetadataDocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetadataDocumentError';
  }
}

export interface FetchCacheBounds {
  /** How long a failure (unreachable, refused, invalid) is remembered. */
  failureTtlMs: number;
  /** Entries (and failures) kept at most; the least recently used goes first. */
  maxEntries: number;
  /** Loads running at once; beyond it requests are refused rather than queued. */
  maxInFlight: number;
}

type Entry<T> = { expiresAt: number; loadedAt: number } & ({ value: T } | { error: MetadataDocumentError });

/**
 * What this server fetches for clients (metadata documents, JWK Sets), cached with bounds: a URL
 * is loaded at most once per lifetime, concurrent requests for one URL share one load, failures
 * are remembered for a while, and the number of entries and of loads in flight is capped. One
 * client can therefore make the server fetch a given URL only so often (CIMD §6.6).
 */
export class FetchCache<T> {
  private readonly cache = new Map<string, Entry<T>>();
  private readonly inFlight = new Map<string, Promise<Entry<T>>>();

  constructor(
    private readonly clock: Clock,
    private readonly bounds: FetchCacheBounds,
    /** `busy`: when too many loads run; `failed`: for a load that failed in an unforeseen way. */
    private readonly messages: { busy: string; failed: string },
  ) {}

  /**
   * The value for `key`: cached while fresh, else loaded. `load` answers the value and how long
   * it stays fresh, or throws a MetadataDocumentError (remembered for `failureTtlMs`).
   * `reloadAfterMs`: load again even when fresh, if the entry is at least that old (a JWK Set
   * that lacks the key an assertion names; the minimum age bounds how often that can happen).
   */
  async get(key: string, load: () => Promise<{ value: T; ttlMs: number }>, options: { reloadAfterMs?: number } = {}): Promise<T> {
    let entry = this.fresh(key);
    if (entry && options.reloadAfterMs !== undefined && this.clock.now() - entry.loadedAt >= options.reloadAfterMs) entry = undefined;
    entry ??= await this.load(key, load);
    if ('error' in entry) throw entry.error;
    return entry.value;
  }

  private fresh(key: string): Entry<T> | undefined {
    const entry = this.cache.get(key);
    if (!entry) return undefined;
    this.cache.delete(key);
    if (entry.expiresAt <= this.clock.now()) return undefined;
    this.cache.set(key, entry); // most recently used last
    return entry;
  }

  private load(key: string, load: () => Promise<{ value: T; ttlMs: number }>): Promise<Entry<T>> {
    const running = this.inFlight.get(key);
    if (running) return running;
    if (this.inFlight.size >= this.bounds.maxInFlight) {
      return Promise.resolve({ expiresAt: 0, loadedAt: 0, error: new MetadataDocumentError(this.messages.busy) });
    }
    const run = this.settle(key, load).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, run);
    return run;
  }

  private async settle(key: string, load: () => Promise<{ value: T; ttlMs: number }>): Promise<Entry<T>> {
    let entry: Entry<T>;
    try {
      const { value, ttlMs } = await load();
      const now = this.clock.now();
      entry = { value, loadedAt: now, expiresAt: now + ttlMs };
    } catch (error) {
      const reason = error instanceof MetadataDocumentError ? error : new MetadataDocumentError(this.messages.failed);
      const now = this.clock.now();
      entry = { error: reason, loadedAt: now, expiresAt: now + this.bounds.failureTtlMs };
    }
    this.cache.set(key, entry);
    while (this.cache.size > this.bounds.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    return entry;
  }
}
