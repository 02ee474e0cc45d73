import type { ClientRecord, Store, TokenEndpointAuthMethod } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import { assertionIssuer, JWT_BEARER_ASSERTION_TYPE, verifyClientAssertion } from './client-assertion.js';
import type { ClientKeySets } from './client-keys.js';
import { isUrlClientId, MetadataDocumentError, type ClientMetadataDocuments } from './client-metadata-document.js';
import { InvalidClientError, InvalidRequestError } from './errors.js';
import { secretMatches } from './secrets.js';
import type { OAuthSettings } from './settings.js';

/** How the client presented itself at /token or /revoke. */
export interface ClientCredentials {
  /** The raw `Authorization` header, if any. */
  authorization?: string | undefined;
  /** `client_id` / `client_secret` from the body. */
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  /** RFC 7521 §4.2: `client_assertion` / `client_assertion_type` from the body. */
  clientAssertion?: string | undefined;
  clientAssertionType?: string | undefined;
}

export interface ClientAuthDeps {
  store: Store;
  clock: Clock;
  settings: OAuthSettings;
  clientDocuments?: ClientMetadataDocuments | undefined;
  clientKeys?: ClientKeySets | undefined;
}

const DOCUMENT_CLIENT_SECRET =
  'a client identified by a metadata document has no client_secret: send a client assertion (private_key_jwt) or, for a public client, client_id alone';

/** CIMD: the client is what its document says now (cached); a document that cannot be used is invalid_client. */
async function clientFromDocument(clientId: string, documents: ClientMetadataDocuments | undefined): Promise<ClientRecord> {
  if (!documents) throw new InvalidClientError('this server does not accept client metadata documents');
  try {
    return await documents.resolve(clientId);
  } catch (error) {
    if (error instanceof MetadataDocumentError) throw new InvalidClientError(error.message);
    throw error;
  }
}

/** The client named by `clientId`: a metadata document for a URL, else a registered client. */
async function findClient(clientId: string, deps: ClientAuthDeps): Promise<ClientRecord | undefined> {
  if (isUrlClientId(clientId)) return clientFromDocument(clientId, deps.clientDocuments);
  return clientId.length <= 200 ? deps.store.getClient(clientId) : undefined;
}

/**
 * For the audit log of a refused request: the client the request claims to be (body `client_id`,
 * the Basic user name, or an assertion's unverified `iss`) and how it tried to authenticate.
 * Never used to decide anything.
 */
export function claimedClient(credentials: ClientCredentials): { clientId: string | undefined; method: TokenEndpointAuthMethod } {
  const basic = credentials.authorization && /^basic\b/i.test(credentials.authorization.trim()) ? credentials.authorization.trim() : undefined;
  let clientId = credentials.clientId;
  if (clientId === undefined && basic) {
    try {
      clientId = parseBasic(basic).id;
    } catch {
      /* malformed: no id to name */
    }
  }
  if (clientId === undefined && credentials.clientAssertion) {
    try {
      clientId = assertionIssuer(credentials.clientAssertion);
    } catch {
      /* not a JWT: no id to name */
    }
  }
  const method =
    credentials.clientAssertion !== undefined
      ? 'private_key_jwt'
      : basic
        ? 'client_secret_basic'
        : credentials.clientSecret !== undefined
          ? 'client_secret_post'
          : 'none';
  return { clientId: clientId !== undefined && clientId.length <= 2_000 ? clientId : undefined, method };
}

/** RFC 6749 §2.3.1 / Appendix B: Basic credentials are form-urlencoded before base64. */
function formDecode(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, ' '));
}

function parseBasic(header: string): { id: string; secret: string } {
  const match = /^Basic[ ]+([A-Za-z0-9+/=_-]+)[ ]*$/i.exec(header);
  if (!match) throw new InvalidClientError('malformed Basic credentials');
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new InvalidClientError('malformed Basic credentials');
  try {
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    throw new InvalidClientError('malformed Basic credentials');
  }
}

/**
 * Authenticates the client at the token and revocation endpoints (RFC 6749 §2.3, §3.2.1):
 * HTTP Basic, `client_secret_post`, `private_key_jwt` (RFC 7523 §2.2), or `none` for public
 * clients. Secrets are compared in constant time against their stored hash; every failure is 401
 * invalid_client. `endpoint` is the URL the request was sent to (an assertion may name it as `aud`).
 */
export async function authenticateClient(
  credentials: ClientCredentials,
  endpoint: string,
  deps: ClientAuthDeps,
): Promise<{ client: ClientRecord; method: TokenEndpointAuthMethod }> {
  const header = credentials.authorization;
  const usesBasic = header !== undefined && /^basic\b/i.test(header.trim());
  if (header !== undefined && header.trim() !== '' && !usesBasic) {
    throw new InvalidClientError('unsupported Authorization scheme at this endpoint; use Basic, client_secret_post or a client assertion');
  }
  if (credentials.clientAssertion !== undefined || credentials.clientAssertionType !== undefined) {
    // RFC 6749 §2.3 and §5.2: a client uses one authentication method per request.
    if (usesBasic || credentials.clientSecret !== undefined)
      throw new InvalidRequestError('send either a client assertion or a client secret, not both (RFC 6749 section 2.3)');
    return { client: await authenticateByAssertion(credentials, endpoint, deps), method: 'private_key_jwt' };
  }
  if (usesBasic) {
    const { id, secret } = parseBasic(header!.trim());
    if (isUrlClientId(id)) throw new InvalidClientError(DOCUMENT_CLIENT_SECRET);
    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    if (credentials.clientSecret !== undefined) throw new InvalidRequestError('client credentials were sent both in the Authorization header and in the body');
    if (credentials.clientId !== undefined && credentials.clientId !== id)
      throw new InvalidClientError('client_id in the body differs from the Basic credentials');
    return { client: await authenticateBySecret(id, secret, deps.store), method: 'client_secret_basic' };
  }

  const id = credentials.clientId;
  if (!id) throw new InvalidClientError('client authentication is required: send client_id (and client_secret or a client assertion for confidential clients)');
  if (credentials.clientSecret !== undefined) {
    if (isUrlClientId(id)) throw new InvalidClientError(DOCUMENT_CLIENT_SECRET);
    return { client: await authenticateBySecret(id, credentials.clientSecret, deps.store), method: 'client_secret_post' };
  }
  const client = await findClient(id, deps);
  if (!client) throw new InvalidClientError('client authentication failed');
  if (client.tokenEndpointAuthMethod === 'none' || client.acceptsNone) return { client, method: 'none' };
  // A confidential client must prove who it is (RFC 6749 §3.2.1).
  if (client.tokenEndpointAuthMethod === 'private_key_jwt') {
    throw new InvalidClientError(
      isUrlClientId(id)
        ? 'this client must authenticate with a private_key_jwt client assertion: its metadata document does not list "none" (RFC 7523 section 2.2)'
        : 'this client must authenticate with a private_key_jwt client assertion (RFC 7523 section 2.2)',
    );
  }
  throw new InvalidClientError('this client must authenticate with its client_secret');
}

async function authenticateBySecret(id: string, secret: string, store: Store): Promise<ClientRecord> {
  const client = id.length <= 200 ? await store.getClient(id) : undefined;
  // Hash the presented secret even for unknown clients so both paths cost the same.
  const ok = secretMatches(secret, client?.clientSecretHash ?? '0'.repeat(64));
  if (!client || client.clientSecretHash === null || !ok) throw new InvalidClientError('client authentication failed');
  return client;
}

/** RFC 7521 §4.2, RFC 7523 §2.2: the client is the assertion's `iss` (and `client_id`, when sent). */
async function authenticateByAssertion(credentials: ClientCredentials, endpoint: string, deps: ClientAuthDeps): Promise<ClientRecord> {
  if (credentials.clientAssertionType !== JWT_BEARER_ASSERTION_TYPE) {
    throw new InvalidClientError(`client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE} (RFC 7523 section 2.2)`);
  }
  if (!credentials.clientAssertion) throw new InvalidClientError('client_assertion is required with client_assertion_type (RFC 7521 section 4.2)');
  const issuer = assertionIssuer(credentials.clientAssertion);
  // RFC 7521 §4.2: client_id is optional; when present it must name the client the assertion is for.
  if (credentials.clientId !== undefined && issuer !== undefined && credentials.clientId !== issuer) {
    throw new InvalidClientError('client assertion refused: its iss differs from client_id (RFC 7521 section 4.2)');
  }
  const id = credentials.clientId ?? issuer;
  if (!id) throw new InvalidClientError('client assertion refused: it names no client (iss) and no client_id was sent (RFC 7523 section 3)');
  const client = await findClient(id, deps);
  if (!client) throw new InvalidClientError('client authentication failed');
  if (client.tokenEndpointAuthMethod !== 'private_key_jwt' || !deps.clientKeys) {
    throw new InvalidClientError(
      `client assertion refused: this client is registered for ${client.tokenEndpointAuthMethod}, not private_key_jwt, and has no keys to verify one with`,
    );
  }
  await verifyClientAssertion(credentials.clientAssertion, client, endpoint, {
    store: deps.store,
    clock: deps.clock,
    settings: deps.settings,
    keys: deps.clientKeys,
  });
  return client;
}
