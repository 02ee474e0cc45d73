import { OAuthClientMetadataSchema } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { ClientRecord } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import { redirectUriProblem } from './redirect-uri.js';
import { describedClient } from './registration.js';
import type { OAuthSettings } from './settings.js';

/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01, "CIMD"; the MCP
 * authorization spec 2025-11-25 §"Client ID Metadata Documents"): a client whose `client_id` is an
 * https URL is described by the JSON document at that URL, fetched when it is needed instead of
 * registered. Section numbers below are those of draft -01.
 *
 * The rules live here; the request itself (DNS, TLS, the SSRF guards) is done by a
 * `ClientMetadataFetcher` passed in (server/client-metadata-fetcher.ts), so that this layer stays
 * free of I/O and tests can stand in for the network.
 */

/** §6.6: the document is small; a bigger answer is refused before it is read to the end. */
export const MAX_DOCUMENT_BYTES = 64 * 1024;
/** A document host that does not answer within this is treated as unavailable. */
export const FETCH_TIMEOUT_MS = 5_000;
const MAX_CLIENT_ID_LENGTH = 2_000;
const MAX_REDIRECT_URIS = 20;

/** The answer to one GET of a document URL. The fetcher never follows a redirect (§4). */
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
 * Fetches a client metadata document. Contract: https only; connects only to public addresses
 * after resolving the host itself (§6.5 SSRF); never follows redirects (§4); gives up after
 * FETCH_TIMEOUT_MS and beyond MAX_DOCUMENT_BYTES (§6.6). Any failure is a MetadataDocumentError.
 */
export interface ClientMetadataFetcher {
  fetch(url: string): Promise<FetchedDocument>;
}

/** Why a metadata document cannot be used; `message` is safe to show and to send. */
export class MetadataDocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetadataDocumentError';
  }
}

/**
 * Whether `clientId` is a URL rather than an id this server issued (a UUID). Such an id is never
 * looked up in the store: it is resolved through its document, or refused.
 */
export function isUrlClientId(clientId: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(clientId) && clientId.includes('//');
}

/** The host a metadata-document client is identified by (shown as its verified identity), or undefined. */
export function metadataDocumentHost(clientId: string): string | undefined {
  if (!isUrlClientId(clientId)) return undefined;
  try {
    return new URL(clientId).host;
  } catch {
    return undefined;
  }
}

/** §3: why `clientId` is not a valid Client Identifier URL, or undefined when it is. */
export function clientIdUrlProblem(clientId: string): string | undefined {
  if (clientId.length > MAX_CLIENT_ID_LENGTH) return `is longer than ${MAX_CLIENT_ID_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f\\<>"{}|^`]/.test(clientId)) return 'contains spaces, control or unsafe characters';
  if (!/^https:\/\//i.test(clientId)) return 'must be an https URL (CIMD section 3)';
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    return 'is not a valid URL';
  }
  if (clientId.includes('#')) return 'must not contain a fragment (CIMD section 3)';
  if (url.username || url.password || /^https:\/\/[^/?#]*@/i.test(clientId)) return 'must not contain a user name or password (CIMD section 3)';
  if (!url.hostname) return 'must name a host';
  // The URL parser removes dot segments, so look at the path as written.
  const path = /^https:\/\/[^/?#]*(\/[^?#]*)?/i.exec(clientId)?.[1] ?? '';
  if (path === '' || path === '/') return 'must have a path, like https://client.example/oauth/metadata.json (CIMD section 3)';
  if (path.split('/').some((segment) => segment === '.' || segment === '..' || /^(%2e|\.){1,2}$/i.test(segment))) {
    return 'must not contain "." or ".." path segments (CIMD section 3)';
  }
  return undefined;
}

const JSON_TYPE = /^application\/(?:[a-z0-9!#$&^_.+-]+\+)?json\s*(?:;.*)?$/i;

/**
 * §4, §4.1: turns a fetched document into the client it describes, or says why it cannot be used.
 * The client is public (`none`): a document cannot carry a shared secret (§4.1), and
 * `private_key_jwt` is not implemented here, so a document asking for it is refused by name.
 */
export function parseClientMetadataDocument(clientId: string, fetched: FetchedDocument, settings: OAuthSettings, now: number): ClientRecord {
  if (fetched.status >= 300 && fetched.status < 400) {
    throw new MetadataDocumentError(`the client metadata document answered with a redirect (HTTP ${fetched.status}); redirects are not followed (CIMD section 4)`);
  }
  if (fetched.status !== 200) throw new MetadataDocumentError(`the client metadata document could not be fetched (HTTP ${fetched.status})`);
  if (!fetched.contentType || !JSON_TYPE.test(fetched.contentType.trim())) {
    throw new MetadataDocumentError('the client metadata document is not served as application/json (CIMD section 4)');
  }
  let body: unknown;
  try {
    body = JSON.parse(fetched.body);
  } catch {
    throw new MetadataDocumentError('the client metadata document is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new MetadataDocumentError('the client metadata document is not a JSON object');
  const doc = body as Record<string, unknown>;

  // §4.1: simple string comparison (RFC 3986 §6.2.1), no normalisation.
  if (doc.client_id !== clientId) {
    throw new MetadataDocumentError(
      typeof doc.client_id === 'string' ? 'the client_id in the client metadata document differs from the URL it was fetched from (CIMD section 4.1)' : 'the client metadata document has no client_id (CIMD section 4.1)',
    );
  }
  // §4.1: no shared secret can be established with a document.
  if (doc.client_secret !== undefined || doc.client_secret_expires_at !== undefined) {
    throw new MetadataDocumentError('the client metadata document contains a client_secret, which a metadata document must not (CIMD section 4.1)');
  }
  const method = doc.token_endpoint_auth_method ?? 'none';
  if (method === 'private_key_jwt') {
    throw new MetadataDocumentError(
      'the client metadata document asks for private_key_jwt client authentication, which this server does not support; it accepts public clients (token_endpoint_auth_method "none") with PKCE',
    );
  }
  if (method !== 'none') {
    throw new MetadataDocumentError(
      typeof method === 'string' && /^client_secret_/.test(method)
        ? `the client metadata document asks for ${method}, a shared-secret method a metadata document must not use (CIMD section 4.1)`
        : 'the client metadata document asks for a token_endpoint_auth_method this server does not support; use "none"',
    );
  }

  const parsed = OAuthClientMetadataSchema.safeParse(Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== null)));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MetadataDocumentError(`the client metadata document is invalid: ${issue.path.map(String).join('.') || 'metadata'}: ${issue.message}`);
  }
  const meta = parsed.data;
  if (meta.redirect_uris.length === 0) throw new MetadataDocumentError('the client metadata document lists no redirect_uris');
  if (meta.redirect_uris.length > MAX_REDIRECT_URIS) throw new MetadataDocumentError(`the client metadata document lists more than ${MAX_REDIRECT_URIS} redirect_uris`);
  for (const uri of meta.redirect_uris) {
    const problem = redirectUriProblem(uri);
    if (problem) throw new MetadataDocumentError(`the client metadata document lists a redirect URI that ${problem}`);
  }
  if ((meta.response_types ?? ['code']).some((t) => t !== 'code')) throw new MetadataDocumentError('the client metadata document asks for response types other than "code"');
  const grantTypes = [...new Set(meta.grant_types ?? ['authorization_code'])];
  if (!grantTypes.includes('authorization_code')) throw new MetadataDocumentError('the client metadata document does not list the authorization_code grant');
  const granted = grantTypes.filter((g) => g === 'authorization_code' || (g === 'refresh_token' && settings.refreshTokens));

  const { clientName, scope, extraMetadata } = describedClient(meta, settings, (message) => {
    throw new MetadataDocumentError(`the client metadata document is invalid: ${message}`);
  });

  return {
    clientId,
    clientSecretHash: null,
    clientName,
    redirectUris: [...meta.redirect_uris],
    tokenEndpointAuthMethod: 'none',
    grantTypes: granted,
    responseTypes: ['code'],
    scope,
    extraMetadata,
    createdAt: now,
    lastUsedAt: null,
  };
}

export interface DocumentCacheBounds {
  /** A document is not fetched again sooner than this, whatever its headers say. */
  minTtlMs: number;
  /** …nor kept longer than this. */
  maxTtlMs: number;
  /** How long a failure (unreachable, refused, invalid) is remembered. */
  failureTtlMs: number;
  /** Documents (and failures) kept at most; the least recently used goes first. */
  maxEntries: number;
  /** Fetches running at once; beyond it requests are refused rather than queued. */
  maxInFlight: number;
}

export const DEFAULT_CACHE_BOUNDS: DocumentCacheBounds = {
  minTtlMs: 5 * 60_000,
  maxTtlMs: 24 * 3_600_000,
  failureTtlMs: 60_000,
  maxEntries: 1_000,
  maxInFlight: 16,
};

/**
 * §4.4 / RFC 9111 §5.2.2: how long a fetched document stays fresh: `max-age` less `Age`, held
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

type CacheEntry = { expiresAt: number } & ({ client: ClientRecord } | { error: MetadataDocumentError });

/**
 * Resolves URL client ids to clients through their documents, with a bounded cache: a document
 * (or a failure) is fetched at most once per lifetime, concurrent requests for one URL share one
 * fetch, and the number of cached entries and of fetches in flight is capped.
 */
export class ClientMetadataDocuments {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<CacheEntry>>();
  private readonly bounds: DocumentCacheBounds;

  constructor(
    private readonly fetcher: ClientMetadataFetcher,
    private readonly deps: { clock: Clock; settings: OAuthSettings },
    bounds: Partial<DocumentCacheBounds> = {},
  ) {
    this.bounds = { ...DEFAULT_CACHE_BOUNDS, ...bounds };
  }

  /** The client `clientId` describes, or a MetadataDocumentError saying why it cannot be used. */
  async resolve(clientId: string): Promise<ClientRecord> {
    const problem = clientIdUrlProblem(clientId);
    if (problem) throw new MetadataDocumentError(`the client_id URL ${problem}`);
    const entry = this.fresh(clientId) ?? (await this.load(clientId));
    if ('error' in entry) throw entry.error;
    return structuredClone(entry.client);
  }

  private fresh(clientId: string): CacheEntry | undefined {
    const entry = this.cache.get(clientId);
    if (!entry) return undefined;
    this.cache.delete(clientId);
    if (entry.expiresAt <= this.deps.clock.now()) return undefined;
    this.cache.set(clientId, entry); // most recently used last
    return entry;
  }

  private load(clientId: string): Promise<CacheEntry> {
    const running = this.inFlight.get(clientId);
    if (running) return running;
    if (this.inFlight.size >= this.bounds.maxInFlight) {
      return Promise.resolve({ expiresAt: 0, error: new MetadataDocumentError('too many client metadata documents are being fetched right now; try again in a moment') });
    }
    const run = this.fetchEntry(clientId).finally(() => this.inFlight.delete(clientId));
    this.inFlight.set(clientId, run);
    return run;
  }

  private async fetchEntry(clientId: string): Promise<CacheEntry> {
    let entry: CacheEntry;
    try {
      const fetched = await this.fetcher.fetch(clientId);
      const now = this.deps.clock.now();
      const client = parseClientMetadataDocument(clientId, fetched, this.deps.settings, now);
      entry = { client, expiresAt: now + documentLifetime(fetched, this.bounds) };
    } catch (error) {
      const reason = error instanceof MetadataDocumentError ? error : new MetadataDocumentError('the client metadata document could not be fetched');
      entry = { error: reason, expiresAt: this.deps.clock.now() + this.bounds.failureTtlMs };
    }
    this.cache.set(clientId, entry);
    while (this.cache.size > this.bounds.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    return entry;
  }
}
