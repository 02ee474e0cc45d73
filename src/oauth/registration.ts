import { OAuthClientMetadataSchema } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { ClientRecord, Store, TokenEndpointAuthMethod } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import { newUuid } from '../shared/ids.js';
import { clientKeysFromMetadata } from './client-keys.js';
import { InvalidClientMetadataError, InvalidRedirectUriError } from './errors.js';
import { applicationTypeProblem, redirectUriProblem } from './redirect-uri.js';
import { generateClientSecret, hashSecret } from './secrets.js';
import { parseScope } from './scopes.js';
import { supportedScopes, type OAuthSettings } from './settings.js';

export const TOKEN_ENDPOINT_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt'];
const MAX_REDIRECT_URIS = 20;
const MAX_TEXT = 300;

/** Metadata echoed back as given (RFC 7591 §2); everything else unknown is ignored (RFC 7591 §2). */
export const ECHOED = ['client_uri', 'logo_uri', 'tos_uri', 'policy_uri', 'contacts', 'software_id', 'software_version'] as const;

/** RFC 7591 §3.2.1 response. */
export interface RegistrationResponse {
  client_id: string;
  client_secret?: string;
  client_id_issued_at: number;
  client_secret_expires_at: number;
  redirect_uris: string[];
  token_endpoint_auth_method: TokenEndpointAuthMethod;
  token_endpoint_auth_signing_alg?: string;
  jwks?: ClientRecord['jwks'];
  jwks_uri?: string;
  application_type?: 'web' | 'native';
  grant_types: string[];
  response_types: string[];
  client_name?: string;
  scope?: string;
  [extra: string]: unknown;
}

export interface RegistrationDeps {
  store: Store;
  clock: Clock;
  settings: OAuthSettings;
  /** Registrations never approved by the owner that are kept; past it the oldest of them go (limits.unapprovedClients). */
  keepUnapproved?: number;
}

/**
 * The built-in client's name (oauth/first-party.ts FIRST_PARTY_CLIENT_NAME): another client named
 * so would pass for the server itself on the consent page and in `clients list`.
 */
const RESERVED_NAME = /^cupcake-mcp\s*\(built-in\)$/i;

// eslint-disable-next-line no-control-regex
const UNSAFE_TEXT = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/;
const MAX_URI = 2_000;
const MAX_LIST = 10;
const MAX_EXTRA_BYTES = 4_096;

/**
 * The human-facing part of client metadata (RFC 7591 §2), shared by registration and metadata
 * documents: a name without control, bidi or zero-width characters (it is shown on the consent
 * page and printed in the owner's terminal), the scope we understand, and the echoed metadata
 * bounded in size (it is stored for every unauthenticated registration).
 */
export function describedClient(
  meta: { client_name?: string | undefined; scope?: string | undefined } & Partial<Record<(typeof ECHOED)[number], unknown>>,
  settings: OAuthSettings,
  fail: (message: string) => never,
): { clientName: string | null; scope: string | null; extraMetadata: Record<string, unknown> } {
  const clientName = meta.client_name?.trim();
  if (clientName !== undefined && clientName.length > MAX_TEXT) fail(`client_name: at most ${MAX_TEXT} characters`);
  if (clientName !== undefined && UNSAFE_TEXT.test(clientName)) fail('client_name: must not contain control, bidirectional or invisible characters');
  if (clientName !== undefined && RESERVED_NAME.test(clientName.normalize('NFKC')))
    fail(`client_name: "${clientName}" is the name of this server's built-in client; choose another`);

  // A registered scope is informative only; keep the part we understand.
  const known = supportedScopes(settings);
  const scope = parseScope(meta.scope)
    .filter((s) => known.includes(s))
    .join(' ');

  const extraMetadata: Record<string, unknown> = {};
  for (const key of ECHOED) {
    const value = meta[key];
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    if (Array.isArray(value) && value.length > MAX_LIST) fail(`${key}: at most ${MAX_LIST} entries`);
    for (const item of values) {
      if (typeof item !== 'string' || item.length > (Array.isArray(value) ? MAX_TEXT : MAX_URI) || UNSAFE_TEXT.test(item))
        fail(`${key}: too long or not plain text`);
    }
    extraMetadata[key] = value;
  }
  if (Buffer.byteLength(JSON.stringify(extraMetadata)) > MAX_EXTRA_BYTES) fail(`client metadata: at most ${MAX_EXTRA_BYTES} bytes of ${ECHOED.join(', ')}`);
  return { clientName: clientName || null, scope: scope || null, extraMetadata };
}

/** Drops `null` members: some clients send them for "unset", which RFC 7591 expresses by omission. */
function withoutNulls(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null));
}

/**
 * RFC 7591 §3: validates client metadata, applies the redirect URI policy, creates the client.
 * Confidential clients (the default `client_secret_basic`, or `client_secret_post`) receive a hex
 * secret that is stored only as its SHA-256.
 */
export async function registerClient(
  body: unknown,
  deps: RegistrationDeps,
): Promise<{ client: ClientRecord; response: RegistrationResponse; removedClientIds: string[] }> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidClientMetadataError('the registration request must be a JSON object (RFC 7591 §3.1)');
  }
  const raw = withoutNulls(body) as Record<string, unknown>;
  const parsed = OAuthClientMetadataSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map(String).join('.') || 'metadata';
    if (issue.path[0] === 'redirect_uris')
      throw new InvalidRedirectUriError(`redirect_uris: ${field === 'redirect_uris' ? 'must be an array of URIs' : issue.message}`);
    throw new InvalidClientMetadataError(`${field}: ${issue.message}`);
  }
  const meta = parsed.data;

  // Redirect URIs (RFC 7591 §2, OAuth 2.1 §2.3.1).
  if (meta.redirect_uris.length === 0) throw new InvalidRedirectUriError('redirect_uris: at least one redirect URI is required');
  if (meta.redirect_uris.length > MAX_REDIRECT_URIS) throw new InvalidRedirectUriError(`redirect_uris: at most ${MAX_REDIRECT_URIS} are accepted`);
  for (const uri of meta.redirect_uris) {
    const problem = redirectUriProblem(uri);
    if (problem) throw new InvalidRedirectUriError(`redirect_uris: ${JSON.stringify(uri.slice(0, 100))} ${problem}`);
    // A closed server (auth.redirectUriAllowlist) registers only the trusted clients' shapes and the listed patterns.
    if (deps.settings.redirectPolicy && !deps.settings.redirectPolicy.allows(uri)) {
      throw new InvalidRedirectUriError(`redirect_uris: ${JSON.stringify(uri.slice(0, 100))} is not allowed on this server (auth.redirectUriAllowlist)`);
    }
  }

  // OpenID Connect Registration §2 (asked of clients by MCP 2026-07-28): what kind of app this is
  // decides which redirect URIs it can receive.
  const applicationType = raw.application_type;
  if (applicationType !== undefined) {
    const problem = applicationTypeProblem(applicationType, meta.redirect_uris);
    if (problem) throw problem.startsWith('redirect_uris') ? new InvalidRedirectUriError(problem) : new InvalidClientMetadataError(problem);
  }

  const method = (meta.token_endpoint_auth_method ?? 'client_secret_basic') as TokenEndpointAuthMethod;
  if (!TOKEN_ENDPOINT_AUTH_METHODS.includes(method)) {
    throw new InvalidClientMetadataError(`token_endpoint_auth_method: must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}`);
  }
  // RFC 7523 §2.2: a private_key_jwt client proves itself with assertions signed by the keys it
  // registers here; it gets no secret. Keys sent with another method are not ours to use.
  const keys =
    method === 'private_key_jwt'
      ? clientKeysFromMetadata(raw, (message) => {
          throw new InvalidClientMetadataError(message);
        })
      : {};

  const responseTypes = meta.response_types ?? ['code'];
  if (responseTypes.some((t) => t !== 'code')) throw new InvalidClientMetadataError('response_types: only "code" is supported');

  const grantTypes = [...new Set(meta.grant_types ?? ['authorization_code'])];
  const unsupported = grantTypes.filter((g) => g !== 'authorization_code' && g !== 'refresh_token');
  if (unsupported.length > 0)
    throw new InvalidClientMetadataError(`grant_types: unsupported ${unsupported.map((g) => JSON.stringify(g.slice(0, 60))).join(', ')}`);
  if (!grantTypes.includes('authorization_code')) throw new InvalidClientMetadataError('grant_types: must include "authorization_code"');
  // RFC 7591 §3.2.1: the server may register different values; without refresh tokens we grant none.
  const registeredGrants = deps.settings.refreshTokens ? grantTypes : grantTypes.filter((g) => g !== 'refresh_token');

  const { clientName, scope, extraMetadata } = describedClient(meta, deps.settings, (message) => {
    throw new InvalidClientMetadataError(message);
  });

  const now = deps.clock.now();
  const secret = method === 'none' || method === 'private_key_jwt' ? undefined : generateClientSecret();
  const client: ClientRecord = {
    clientId: newUuid(),
    clientSecretHash: secret === undefined ? null : hashSecret(secret),
    clientName,
    redirectUris: [...meta.redirect_uris],
    tokenEndpointAuthMethod: method,
    ...keys,
    ...(applicationType === 'web' || applicationType === 'native' ? { applicationType } : {}),
    grantTypes: registeredGrants,
    responseTypes: ['code'],
    scope,
    extraMetadata,
    createdAt: now,
    lastUsedAt: null,
  };
  // Anyone can register (RFC 7591 §3): what was never approved is bounded, the oldest pruned first,
  // so that a flood neither grows the store without bound nor shuts registration for real clients.
  const { removedClientIds } = await deps.store.createClient(client, deps.keepUnapproved === undefined ? {} : { keepUnapproved: deps.keepUnapproved });

  const response: RegistrationResponse = {
    ...extraMetadata,
    client_id: client.clientId,
    ...(secret === undefined ? {} : { client_secret: secret }),
    client_id_issued_at: Math.floor(now / 1000),
    // RFC 7591 §3.2.1: 0 means the secret does not expire.
    client_secret_expires_at: 0,
    redirect_uris: client.redirectUris,
    token_endpoint_auth_method: method,
    ...(keys.tokenEndpointAuthSigningAlg ? { token_endpoint_auth_signing_alg: keys.tokenEndpointAuthSigningAlg } : {}),
    ...(keys.jwks ? { jwks: keys.jwks } : {}),
    ...(keys.jwksUri ? { jwks_uri: keys.jwksUri } : {}),
    ...(client.applicationType ? { application_type: client.applicationType } : {}),
    grant_types: registeredGrants,
    response_types: ['code'],
    ...(client.clientName ? { client_name: client.clientName } : {}),
    ...(client.scope ? { scope: client.scope } : {}),
  };
  return { client, response, removedClientIds };
}
