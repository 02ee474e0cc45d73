import { toIso } from '../shared/clock.js';
import type { AccessTokenRecord } from '../store/types.js';
import { tokenStatus, type TokenStatus } from './admin.js';

export interface TokenJson {
  id: string;
  client_id: string;
  client_name: string | null;
  scope: string;
  resource: string;
  created_at: string | null;
  expires_at: string | null;
  last_used_at: string | null;
  status: TokenStatus;
  /** The name given with `tokens create --name`; null for tokens issued over OAuth. */
  label: string | null;
}

/** DESIGN.md §2 `tokens list --json` shape: the public id, never the token or its hash. */
export function tokenJson(token: AccessTokenRecord, clientNames: Map<string, string | null>, now: number): TokenJson {
  return {
    id: token.id,
    client_id: token.clientId,
    client_name: clientNames.get(token.clientId) ?? null,
    scope: token.scopes.join(' '),
    resource: token.resource,
    created_at: toIso(token.createdAt),
    expires_at: toIso(token.expiresAt),
    last_used_at: toIso(token.lastUsedAt),
    status: tokenStatus(token, now),
    label: token.label ?? null,
  };
}
