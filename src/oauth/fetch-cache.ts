import type { Clock } from '../shared/clock.js';

/**
 * Fetching on a client's behalf, seen from the protocol rules: what one GET answers, the fetcher
 * contract, how long an answer stays fresh, and a bounded cache. The network side (SSRF guard,
 * TLS, limits) is the fetcher passed in (outbound/https-fetcher.ts, adapted in server/client-metadata-fetcher.ts), so that this layer
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
  maxStaleMs: 24 * 3_600_000,
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

/**
 * A fetch that produced no answer to judge: unreachable, timed out, refused, an HTTP error, not
 * JSON. Unlike an answer that was read and found invalid, it may be passing, so a good answer
 * fetched before may stand in for it.
 */
export class FetchFailedError extends MetadataDocumentError {
  static from(error: unknown, fallback: string): FetchFailedError {
    return new FetchFailedError(error instanceof MetadataDocumentError ? error.message : fallback);
  }
}

/**
 * The JSON value of a fetched answer, or FetchFailedError naming `what`: only a 200 served with a
 * JSON media type (`types` says which, for the message) and that parses counts as fetched; a
 * challenge page served with 200 is a failed fetch too (anthropics/claude-ai-mcp#96).
 */
export function fetchedJson(fetched: FetchedDocument, what: string, types: string): unknown {
  if (fetched.status !== 200) throw new FetchFailedError(`${what} could not be fetched (HTTP ${fetched.status})`);
  if (!isJsonContentType(fetched.contentType)) throw new FetchFailedError(`${what} is not served as ${types}`);
  try {
    return JSON.parse(fetched.body);
  } catch {
    throw new FetchFailedError(`${what} is not valid JSON`);
  }
}

export interface FetchCacheBounds {
  /** How long a failure (unreachable, refused, invalid) is remembered. */
  failureTtlMs: number;
  /**
   * How long after it was fetched a good answer may still stand in when fetching it again fails
   * (stale-if-error, RFC 5861 §4): a host that blinks does not lock its clients out.
   */
  maxStaleMs: number;
  /** Entries (and failures) kept at most; the least recently used goes first. */
  maxEntries: number;
  /** Loads running at once; beyond it requests are refused rather than queued. */
  maxInFlight: number;
}

interface Entry<T> {
  /** Until when the entry answers without a new load. */
  expiresAt: number;
  /** When the last load was tried (bounds forced reloads). */
  triedAt: number;
  /** The last good answer and when it was loaded, if any. */
  good?: { value: T; loadedAt: number };
  /** Why the last load failed, when there is no good answer to stand in. */
  error?: MetadataDocumentError;
}

/**
 * What this server fetches for clients (metadata documents, JWK Sets), cached with bounds: a URL
 * is loaded at most once per lifetime, concurrent requests for one URL share one load, failures
 * are remembered for a while, and the number of entries and of loads in flight is capped. One
 * client can therefore make the server fetch a given URL only so often (CIMD §6.6). A good answer
 * is never replaced by a failure while it may still stand in.
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
   * `reloadAfterMs`: load again even when fresh, if the last load was tried at least that long ago
   * (a JWK Set that lacks the key an assertion names: the interval bounds how often anyone can
   * make the server fetch).
   */
  async get(key: string, load: () => Promise<{ value: T; ttlMs: number }>, options: { reloadAfterMs?: number } = {}): Promise<T> {
    const now = this.clock.now();
    let entry = this.touch(key);
    const forced = entry !== undefined && options.reloadAfterMs !== undefined && now - entry.triedAt >= options.reloadAfterMs;
    if (!entry || entry.expiresAt <= now || forced) entry = await this.load(key, load, entry);
    if (entry.good) return entry.good.value;
    throw entry.error;
  }

  private touch(key: string): Entry<T> | undefined {
    const entry = this.cache.get(key);
    if (entry) {
      this.cache.delete(key);
      this.cache.set(key, entry); // most recently used last
    }
    return entry;
  }

  private load(key: string, load: () => Promise<{ value: T; ttlMs: number }>, previous: Entry<T> | undefined): Promise<Entry<T>> {
    const running = this.inFlight.get(key);
    if (running) return running;
    if (this.inFlight.size >= this.bounds.maxInFlight) {
      return Promise.resolve(this.failed(previous, new MetadataDocumentError(this.messages.busy), false));
    }
    const run = this.settle(key, load, previous).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, run);
    return run;
  }

  private async settle(key: string, load: () => Promise<{ value: T; ttlMs: number }>, previous: Entry<T> | undefined): Promise<Entry<T>> {
    let entry: Entry<T>;
    try {
      const { value, ttlMs } = await load();
      const now = this.clock.now();
      entry = { good: { value, loadedAt: now }, triedAt: now, expiresAt: now + ttlMs };
    } catch (error) {
      entry = this.failed(previous, error instanceof MetadataDocumentError ? error : new MetadataDocumentError(this.messages.failed), true);
    }
    this.cache.set(key, entry);
    while (this.cache.size > this.bounds.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    return entry;
  }

  /**
   * After a load that failed or could not start: the previous good answer while it may stand in
   * (not when the answer was read and found invalid), else the error.
   */
  private failed(previous: Entry<T> | undefined, error: MetadataDocumentError, tried: boolean): Entry<T> {
    const now = this.clock.now();
    const passing = error instanceof FetchFailedError || !tried;
    const good = passing && previous?.good && now - previous.good.loadedAt < this.bounds.maxStaleMs ? previous.good : undefined;
    return { ...(good ? { good } : { error }), triedAt: tried ? now : (previous?.triedAt ?? 0), expiresAt: tried ? now + this.bounds.failureTtlMs : 0 };
  }
}
