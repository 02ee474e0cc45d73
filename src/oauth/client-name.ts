import { metadataDocumentHost } from './client-metadata-document.js';
import { TRUSTED_CLIENTS } from './redirect-policy.js';

/**
 * Whether a client's name may be shown on the consent page as who it is, rather than as its own
 * claim. Anyone can register any `client_name` (RFC 7591 §5: the server should warn that it is
 * self-asserted, and RFC 9700 §4.9 lists impersonation through it), so a name vouches for nothing
 * unless something the client cannot fake does:
 *
 * - the redirect URI is one of a hosted preset's (ChatGPT's, Claude's): the answer can only go to
 *   that service, whatever the registration says about itself;
 * - a metadata-document client (its client_id is an https URL) whose document host is the host
 *   its answer goes to (or a parent of it): the name comes from a document published there.
 *
 * The first-party client is the server's own. A loopback redirect (any local program) vouches for
 * nothing.
 */
export function clientNameIsVouched(client: { clientId: string; firstParty?: boolean }, redirectUri: string): boolean {
  if (client.firstParty) return true;
  const documentHost = metadataDocumentHost(client.clientId);
  if (documentHost !== undefined) {
    const redirectHost = hostOf(redirectUri);
    const host = documentHost.toLowerCase().replace(/:\d+$/, '');
    return redirectHost !== undefined && (redirectHost === host || redirectHost.endsWith(`.${host}`));
  }
  return TRUSTED_CLIENTS.chatgpt.allows(redirectUri) || TRUSTED_CLIENTS.claude.allows(redirectUri);
}

function hostOf(uri: string): string | undefined {
  try {
    const url = new URL(uri);
    return url.protocol === 'https:' ? url.hostname.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}
