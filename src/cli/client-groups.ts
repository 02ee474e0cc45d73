import type { ClientRecord } from '../store/types.js';

/**
 * Registrations a person would call "the same client": the same name, the same redirect URIs (in
 * the same order) and the same authentication method. Claude registers anew on every fresh
 * connection, so these pile up; `clients list` shows each pile as one row.
 */
export function registrationKey(client: ClientRecord): string {
  return JSON.stringify([client.clientName, client.redirectUris, client.tokenEndpointAuthMethod]);
}

/**
 * Byte-identical registrations grouped, each group in the order given (callers pass them oldest
 * first) and the groups in the order of their first member. The first-party client and clients
 * identified by a metadata document URL always stand alone: their id is who they are.
 */
export function groupIdenticalClients(clients: readonly ClientRecord[]): ClientRecord[][] {
  const groups = new Map<string, ClientRecord[]>();
  for (const client of clients) {
    const alone = client.firstParty === true || client.clientId.includes('://');
    const key = alone ? `id:${client.clientId}` : registrationKey(client);
    const group = groups.get(key);
    if (group) group.push(client);
    else groups.set(key, [client]);
  }
  return [...groups.values()];
}
