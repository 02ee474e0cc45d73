import type { Store, StoreChange } from '../store/types.js';
import type { Clock } from '../shared/clock.js';

export type SessionTransport = 'streamable-http' | 'sse';

/** What the resource server knows about the token on a request. */
export interface SessionToken {
  tokenId: string;
  tokenHash: string;
  clientId: string;
  grantId: string;
  expiresAt: number;
}

export interface Session {
  id: string;
  transport: SessionTransport;
  clientId: string;
  /** The token family (grant) that opened the session: MCP security best practices bind sessions to it. */
  grantId: string;
  /** Token hashes that have been used on this session (opening one first). */
  tokenHashes: Set<string>;
  /** Expiry of the newest token used on the session. */
  expiresAt: number;
  openedAt: number;
  /** The last request on the session: the least recently used one is closed first at the per-client cap. */
  lastActiveAt: number;
  /** Ends the transport; the manager records the close once. */
  end(): Promise<void>;
}

export type CloseReason = 'client closed' | 'token revoked' | 'client removed' | 'token expired' | 'server shutdown' | 'session limit';

/**
 * Open MCP sessions of both transports. Closes sessions whose token is revoked (by this process
 * or, through the store's change feed, by another), whose client is removed, or whose token
 * expires; each within the sweep interval.
 */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly unsubscribe: () => void;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    store: Store,
    private readonly clock: Clock,
    private readonly onClosed: (session: Session, reason: CloseReason) => void,
    sweepMs = 1_000,
    /** Open sessions one client may hold; opening one more closes its least recently used. */
    private readonly maxPerClient = Number.POSITIVE_INFINITY,
  ) {
    this.unsubscribe = store.onChange((change) => this.applyChange(change));
    this.sweeper = setInterval(() => this.sweepExpired(), sweepMs);
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Live sessions counted per transport and per client (for `status`). */
  summary(): { byTransport: Record<string, number>; byClient: Record<string, number> } {
    const byTransport: Record<string, number> = {};
    const byClient: Record<string, number> = {};
    for (const session of this.sessions.values()) {
      byTransport[session.transport] = (byTransport[session.transport] ?? 0) + 1;
      byClient[session.clientId] = (byClient[session.clientId] ?? 0) + 1;
    }
    return { byTransport, byClient };
  }

  open(id: string, transport: SessionTransport, token: SessionToken, end: () => Promise<void>): Session {
    const session: Session = {
      id,
      transport,
      clientId: token.clientId,
      grantId: token.grantId,
      tokenHashes: new Set([token.tokenHash]),
      expiresAt: token.expiresAt,
      openedAt: this.clock.now(),
      lastActiveAt: this.clock.now(),
      end,
    };
    this.sessions.set(id, session);
    this.enforceCap(session.clientId, id);
    return session;
  }

  /**
   * Caps what one client holds (a client that reconnects without closing, or streams the server
   * has not yet seen die): the least recently used of its other sessions is closed first.
   */
  private enforceCap(clientId: string, keep: string): void {
    const own = [...this.sessions.values()].filter((s) => s.clientId === clientId && s.id !== keep);
    const excess = own.length + 1 - this.maxPerClient;
    if (excess <= 0) return;
    own.sort((a, b) => a.lastActiveAt - b.lastActiveAt);
    for (const session of own.slice(0, excess)) void this.close(session.id, 'session limit');
  }

  get(id: string, transport: SessionTransport): Session | undefined {
    const session = this.sessions.get(id);
    return session?.transport === transport ? session : undefined;
  }

  /**
   * Whether `token` may act on `session`: same client and same token family. A refreshed token of
   * the family extends the session to its own expiry.
   */
  admit(session: Session, token: SessionToken): boolean {
    if (token.clientId !== session.clientId || token.grantId !== session.grantId) return false;
    session.lastActiveAt = this.clock.now();
    if (!session.tokenHashes.has(token.tokenHash)) {
      session.tokenHashes.add(token.tokenHash);
      session.expiresAt = Math.max(session.expiresAt, token.expiresAt);
    }
    return true;
  }

  /** Forgets a session whose transport closed; returns whether it was still open. */
  release(id: string, reason: CloseReason = 'client closed'): void {
    const session = this.sessions.get(id);
    if (!session) return;
    this.sessions.delete(id);
    this.onClosed(session, reason);
  }

  async close(id: string, reason: CloseReason): Promise<void> {
    const session = this.sessions.get(id);
    if (!session) return;
    this.release(id, reason);
    await session.end().catch(() => undefined);
  }

  async closeAll(reason: CloseReason = 'server shutdown'): Promise<void> {
    clearInterval(this.sweeper);
    this.unsubscribe();
    await Promise.all([...this.sessions.keys()].map((id) => this.close(id, reason)));
  }

  private applyChange(change: StoreChange): void {
    if (this.sessions.size === 0) return;
    const revoked = new Set(change.revokedTokens.map((t) => t.tokenHash));
    const removed = new Set(change.removedClientIds);
    for (const session of [...this.sessions.values()]) {
      if (removed.has(session.clientId)) void this.close(session.id, 'client removed');
      else if ([...session.tokenHashes].some((hash) => revoked.has(hash))) void this.close(session.id, 'token revoked');
    }
  }

  private sweepExpired(): void {
    const now = this.clock.now();
    for (const session of [...this.sessions.values()]) {
      if (session.expiresAt <= now) void this.close(session.id, 'token expired');
    }
  }
}
