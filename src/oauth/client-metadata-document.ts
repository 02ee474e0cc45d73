import { OAuthClientMetadataSchema } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { ClientRecord } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import { clientKeysFromMetadata } from './client-keys.js';
import {
  DEFAULT_CACHE_BOUNDS,
  documentLifetime,
  FetchCache,
  fetchedJson,
  FetchFailedError,
  MetadataDocumentError,
  type ClientMetadataFetcher,
  type DocumentCacheBounds,
  type FetchedDocument,
} from './fetch-cache.js';
import { PINNED_CLIENT_DOCUMENTS } from './pinned-client-documents.js';
import { applicationTypeProblem, redirectUriProblem } from './redirect-uri.js';
import { describedClient } from './registration.js';
import type { OAuthSettings } from './settings.js';

/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01, "CIMD"; the MCP
 * authorization spec 2025-11-25 §"Client ID Metadata Documents"): a client whose `client_id` is an
 * https URL is described by the JSON document at that URL, fetched when it is needed instead of
 * registered. Section numbers below are those of draft -01.
 *
 * The rules live here; the request itself (DNS, TLS, the SSRF guards) is done by a
 * `ClientMetadataFetcher` passed in (outbound/https-fetcher.ts, adapted in server/client-metadata-fetcher.ts), so that this layer stays
 * free of I/O and tests can stand in for the network. A document may also come from the owner's
 * config (`auth.clientMetadataDocuments`, never fetched) or, when the live fetch fails, from the
 * copies shipped for clients whose documents servers often cannot reach (pinned-client-documents.ts).
 */

export { DEFAULT_CACHE_BOUNDS, documentLifetime, FETCH_TIMEOUT_MS, MAX_DOCUMENT_BYTES, MetadataDocumentError } from './fetch-cache.js';
export type { ClientMetadataFetcher, DocumentCacheBounds, FetchedDocument } from './fetch-cache.js';

const MAX_CLIENT_ID_LENGTH = 2_000;
const MAX_REDIRECT_URIS = 20;

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

/**
 * CIMD §4: the answer to a document fetch, as a JSON object, or why it is not one. Kept apart
 * from the rules on the object so that a failed fetch (which may fall back to a pinned copy) is
 * told apart from a document that was fetched and is wrong (which never does).
 */
function documentBody(fetched: FetchedDocument): Record<string, unknown> {
  if (fetched.status >= 300 && fetched.status < 400) {
    throw new FetchFailedError(`the client metadata document answered with a redirect (HTTP ${fetched.status}); redirects are not followed (CIMD section 4)`);
  }
  const body = fetchedJson(fetched, 'the client metadata document', 'application/json (CIMD section 4)');
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new FetchFailedError('the client metadata document is not a JSON object');
  return body as Record<string, unknown>;
}

/** The client authentication methods a document may ask for (CIMD §4.1: never a shared secret). */
const DOCUMENT_AUTH_METHODS = ['none', 'private_key_jwt'] as const;

/**
 * CIMD §4.1 and §6.2: which methods the document's client may use at the token endpoint.
 * `token_endpoint_auth_method` (RFC 7591 §2) names one; ChatGPT also lists alternatives in
 * `token_endpoint_auth_methods_supported` (and at times only there). A document that names
 * neither is a public client, the usual CIMD case.
 */
function documentAuthMethods(doc: Record<string, unknown>): Array<(typeof DOCUMENT_AUTH_METHODS)[number]> {
  const declared = doc.token_endpoint_auth_method;
  const listed = doc.token_endpoint_auth_methods_supported;
  if (declared !== undefined && typeof declared !== 'string')
    throw new MetadataDocumentError('the client metadata document has a token_endpoint_auth_method that is not a string');
  if (listed !== undefined && (!Array.isArray(listed) || listed.some((m) => typeof m !== 'string'))) {
    throw new MetadataDocumentError('the client metadata document has a token_endpoint_auth_methods_supported that is not a list of strings');
  }
  const named = [...new Set([...(declared === undefined ? [] : [declared]), ...((listed as string[] | undefined) ?? [])])];
  const secret = named.find((m) => /^client_secret_/.test(m));
  if (secret)
    throw new MetadataDocumentError(
      `the client metadata document asks for ${secret.slice(0, 40)}, a shared-secret method a metadata document must not use (CIMD section 4.1)`,
    );
  const usable = named.filter((m): m is (typeof DOCUMENT_AUTH_METHODS)[number] => (DOCUMENT_AUTH_METHODS as readonly string[]).includes(m));
  if (declared !== undefined && !usable.includes(declared as never)) {
    throw new MetadataDocumentError(
      `the client metadata document asks for token_endpoint_auth_method ${JSON.stringify(declared.slice(0, 40))}, ` +
        'which this server does not support; use "none" or "private_key_jwt"',
    );
  }
  if (named.length === 0) return ['none'];
  if (usable.length === 0)
    throw new MetadataDocumentError('the client metadata document lists no client authentication method this server supports; use "none" or "private_key_jwt"');
  return usable;
}

/**
 * CIMD §4, §4.1: turns a document into the client it describes, or says why it cannot be used.
 * A `private_key_jwt` client authenticates with assertions signed by the keys of its document
 * (RFC 7523 §2.2); one whose document also lists `none` may come without one, as a public client.
 */
export function clientFromDocument(clientId: string, doc: Record<string, unknown>, settings: OAuthSettings, now: number): ClientRecord {
  // §4.1: simple string comparison (RFC 3986 §6.2.1), no normalisation.
  if (doc.client_id !== clientId) {
    throw new MetadataDocumentError(
      typeof doc.client_id === 'string'
        ? 'the client_id in the client metadata document differs from the URL it was fetched from (CIMD section 4.1)'
        : 'the client metadata document has no client_id (CIMD section 4.1)',
    );
  }
  // §4.1: no shared secret can be established with a document.
  if (doc.client_secret !== undefined || doc.client_secret_expires_at !== undefined) {
    throw new MetadataDocumentError('the client metadata document contains a client_secret, which a metadata document must not (CIMD section 4.1)');
  }
  const methods = documentAuthMethods(doc);
  const invalid = (message: string): never => {
    throw new MetadataDocumentError(`the client metadata document is invalid: ${message}`);
  };

  const parsed = OAuthClientMetadataSchema.safeParse(Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== null)));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MetadataDocumentError(`the client metadata document is invalid: ${issue.path.map(String).join('.') || 'metadata'}: ${issue.message}`);
  }
  const meta = parsed.data;
  if (meta.redirect_uris.length === 0) throw new MetadataDocumentError('the client metadata document lists no redirect_uris');
  if (meta.redirect_uris.length > MAX_REDIRECT_URIS)
    throw new MetadataDocumentError(`the client metadata document lists more than ${MAX_REDIRECT_URIS} redirect_uris`);
  for (const uri of meta.redirect_uris) {
    const problem = redirectUriProblem(uri);
    if (problem) throw new MetadataDocumentError(`the client metadata document lists a redirect URI that ${problem}`);
  }
  const applicationType = doc.application_type;
  if (applicationType !== undefined) {
    const problem = applicationTypeProblem(applicationType, meta.redirect_uris);
    if (problem) invalid(problem);
  }
  if ((meta.response_types ?? ['code']).some((t) => t !== 'code'))
    throw new MetadataDocumentError('the client metadata document asks for response types other than "code"');
  const grantTypes = [...new Set(meta.grant_types ?? ['authorization_code'])];
  if (!grantTypes.includes('authorization_code')) throw new MetadataDocumentError('the client metadata document does not list the authorization_code grant');
  // Grants we do not issue (Claude lists jwt-bearer) are ignored, as RFC 7591 §3.2.1 lets a server register fewer.
  const granted = grantTypes.filter((g) => g === 'authorization_code' || (g === 'refresh_token' && settings.refreshTokens));

  const { clientName, scope, extraMetadata } = describedClient(meta, settings, invalid);
  // A document offering private_key_jwt beside none but publishing no keys can only be public.
  const publishesKeys = doc.jwks !== undefined || doc.jwks_uri !== undefined;
  const keyed = methods.includes('private_key_jwt') && (publishesKeys || !methods.includes('none'));
  const keys = keyed ? clientKeysFromMetadata(doc, invalid) : {};

  return {
    clientId,
    clientSecretHash: null,
    clientName,
    redirectUris: [...meta.redirect_uris],
    tokenEndpointAuthMethod: keyed ? 'private_key_jwt' : 'none',
    ...keys,
    ...(keyed && methods.includes('none') ? { acceptsNone: true as const } : {}),
    ...(applicationType === 'web' || applicationType === 'native' ? { applicationType } : {}),
    grantTypes: granted,
    responseTypes: ['code'],
    scope,
    extraMetadata,
    createdAt: now,
    lastUsedAt: null,
  };
}

/** CIMD §4, §4.1: a fetched document as the client it describes, or why it cannot be used. */
export function parseClientMetadataDocument(clientId: string, fetched: FetchedDocument, settings: OAuthSettings, now: number): ClientRecord {
  return clientFromDocument(clientId, documentBody(fetched), settings, now);
}

/** Why a client was resolved from a pinned copy rather than its live document (for the audit log). */
export interface PinnedCopyUse {
  clientId: string;
  /** Why the live fetch failed, as shown to the owner. */
  reason: string;
}

export interface ClientMetadataDocumentsOptions {
  clock: Clock;
  settings: OAuthSettings;
  /** `auth.clientMetadataDocuments`: client_id URL → document, used instead of fetching. */
  configured?: Readonly<Record<string, unknown>>;
  /** Documents used when the live fetch fails (default: the shipped copies of pinned-client-documents.ts). */
  pinned?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Told each time a pinned copy stands in for a document that could not be fetched. */
  onPinnedCopyUsed?: (use: PinnedCopyUse) => void;
}

/**
 * `auth.clientMetadataDocuments`, each checked by the same rules as a fetched document: the
 * clients they describe, and one line per document that cannot be used (naming the setting).
 */
export function parseConfiguredDocuments(
  configured: Readonly<Record<string, unknown>>,
  settings: OAuthSettings,
  now: number,
): { clients: Map<string, ClientRecord>; problems: string[] } {
  const clients = new Map<string, ClientRecord>();
  const problems: string[] = [];
  for (const [clientId, doc] of Object.entries(configured)) {
    const field = `auth.clientMetadataDocuments[${JSON.stringify(clientId.slice(0, 200))}]`;
    try {
      const idProblem = clientIdUrlProblem(clientId);
      if (idProblem) throw new MetadataDocumentError(`the client_id URL ${idProblem}`);
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new MetadataDocumentError('expected the document as a JSON object');
      clients.set(clientId, clientFromDocument(clientId, doc as Record<string, unknown>, settings, now));
    } catch (error) {
      if (!(error instanceof MetadataDocumentError)) throw error;
      problems.push(`${field}: ${error.message}`);
    }
  }
  return { clients, problems };
}

/** The owner's configured documents that cannot be used, one line each (`auth.clientMetadataDocuments`). */
export class ConfiguredDocumentsError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfiguredDocumentsError';
  }
}

/**
 * Resolves URL client ids to clients: the owner's configured documents first (never fetched),
 * then the live document through a bounded cache (fetched at most once per lifetime, concurrent
 * requests share one fetch), and a pinned copy when the live fetch fails.
 */
export class ClientMetadataDocuments {
  private readonly configured: Map<string, ClientRecord>;
  private readonly cache: FetchCache<ClientRecord>;
  private readonly bounds: DocumentCacheBounds;
  private readonly pinned: Readonly<Record<string, Readonly<Record<string, unknown>>>>;

  constructor(
    private readonly fetcher: ClientMetadataFetcher,
    private readonly deps: ClientMetadataDocumentsOptions,
    bounds: Partial<DocumentCacheBounds> = {},
  ) {
    this.bounds = { ...DEFAULT_CACHE_BOUNDS, ...bounds };
    this.pinned = deps.pinned ?? PINNED_CLIENT_DOCUMENTS;
    this.cache = new FetchCache(deps.clock, this.bounds, {
      busy: 'too many client metadata documents are being fetched right now; try again in a moment',
      failed: 'the client metadata document could not be fetched',
    });
    const { clients, problems } = parseConfiguredDocuments(deps.configured ?? {}, deps.settings, deps.clock.now());
    this.configured = clients;
    if (problems.length > 0) throw new ConfiguredDocumentsError(problems);
  }

  /** The client `clientId` describes, or a MetadataDocumentError saying why it cannot be used. */
  async resolve(clientId: string): Promise<ClientRecord> {
    const configured = this.configured.get(clientId);
    if (configured) return structuredClone(configured);
    const problem = clientIdUrlProblem(clientId);
    if (problem) throw new MetadataDocumentError(`the client_id URL ${problem}`);
    return structuredClone(await this.cache.get(clientId, () => this.load(clientId)));
  }

  private async load(clientId: string): Promise<{ value: ClientRecord; ttlMs: number }> {
    let fetched: FetchedDocument;
    let doc: Record<string, unknown>;
    try {
      fetched = await this.fetcher.fetch(clientId, 'client metadata document').catch((error: unknown) => {
        throw FetchFailedError.from(error, 'the client metadata document could not be fetched');
      });
      doc = documentBody(fetched);
    } catch (error) {
      // Only a fetch that produced no document falls back (refused, HTTP error, a challenge page,
      // timeout, no network), never a document that was fetched and is wrong: that is parsed below.
      const pinned = Object.hasOwn(this.pinned, clientId) ? this.pinned[clientId] : undefined;
      if (!pinned || !(error instanceof MetadataDocumentError)) throw error;
      const client = clientFromDocument(clientId, { ...pinned }, this.deps.settings, this.deps.clock.now());
      this.deps.onPinnedCopyUsed?.({ clientId, reason: error.message });
      // Tried again after the failure lifetime: the live document wins as soon as it is reachable.
      return { value: client, ttlMs: this.bounds.failureTtlMs };
    }
    return { value: clientFromDocument(clientId, doc, this.deps.settings, this.deps.clock.now()), ttlMs: documentLifetime(fetched, this.bounds) };
  }
}
