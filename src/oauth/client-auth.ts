import type { ClientRecord, Store, TokenEndpointAuthMethod } from '../store/types.js';
import { isUrlClientId, MetadataDocumentError, type ClientMetadataDocuments } from './client-metadata-document.js';
import { InvalidClientError, InvalidRequestError } from './errors.js';
import { secretMatches } from './secrets.js';

/** How the client presented itself at /token or /revoke. */
export interface ClientCredentials {
  /** The raw `Authorization` header, if any. */
  authorization?: string | undefined;
  /** `client_id` / `client_secret` from the body. */
  clientId?: string | undefined;
  clientSecret?: string | undefined;
}

const PUBLIC_DOCUMENT_CLIENT = 'a client identified by a metadata document is public: send client_id in the body, without a secret';

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
 * HTTP Basic, `client_secret_post`, or `none` for public clients. Secrets are compared in
 * constant time against their stored hash; every failure is 401 invalid_client.
 */
export async function authenticateClient(
  credentials: ClientCredentials,
  store: Store,
  documents?: ClientMetadataDocuments,
): Promise<{ client: ClientRecord; method: TokenEndpointAuthMethod }> {
  const header = credentials.authorization;
  const usesBasic = header !== undefined && /^basic\b/i.test(header.trim());
  if (header !== undefined && header.trim() !== '' && !usesBasic) {
    throw new InvalidClientError('unsupported Authorization scheme at this endpoint; use Basic or client_secret_post');
  }
  if (usesBasic) {
    const { id, secret } = parseBasic(header!.trim());
    if (isUrlClientId(id)) throw new InvalidClientError(PUBLIC_DOCUMENT_CLIENT);
    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    if (credentials.clientSecret !== undefined) throw new InvalidRequestError('client credentials were sent both in the Authorization header and in the body');
    if (credentials.clientId !== undefined && credentials.clientId !== id) throw new InvalidClientError('client_id in the body differs from the Basic credentials');
    const client = id.length <= 200 ? await store.getClient(id) : undefined;
    // Hash the presented secret even for unknown clients so both paths cost the same.
    const ok = secretMatches(secret, client?.clientSecretHash ?? '0'.repeat(64));
    if (!client || client.clientSecretHash === null || !ok) throw new InvalidClientError('client authentication failed');
    return { client, method: 'client_secret_basic' };
  }

  const id = credentials.clientId;
  if (!id) throw new InvalidClientError('client authentication is required: send client_id (and client_secret for confidential clients)');
  if (isUrlClientId(id)) {
    if (credentials.clientSecret !== undefined) throw new InvalidClientError(PUBLIC_DOCUMENT_CLIENT);
    return { client: await clientFromDocument(id, documents), method: 'none' };
  }
  const client = id.length <= 200 ? await store.getClient(id) : undefined;
  if (credentials.clientSecret !== undefined) {
    const ok = secretMatches(credentials.clientSecret, client?.clientSecretHash ?? '0'.repeat(64));
    if (!client || client.clientSecretHash === null || !ok) throw new InvalidClientError('client authentication failed');
    return { client, method: 'client_secret_post' };
  }
  if (!client) throw new InvalidClientError('client authentication failed');
  // A confidential client must prove possession of its secret (RFC 6749 §3.2.1).
  if (client.tokenEndpointAuthMethod !== 'none') throw new InvalidClientError('this client must authenticate with its client_secret');
  return { client, method: 'none' };
}
