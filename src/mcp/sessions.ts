import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Server } from '@modelcontextprotocol/server';
import type { EventLog } from '../store/event-log.js';
import type { Store, StoreChange } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { DEFAULT_STREAM_BUFFER_BYTES, SSE_KEEPALIVE_MS, SseServerTransport } from './sse-transport.js';
import { StreamableHttpSessionTransport } from './streamable-transport.js';

export type SessionTransport = 'streamable-http' | 'sse';

/** What the resource server knows about the token on a request. */
export interface SessionToken {
  tokenId: string;
  tokenHash: string;
  clientId: string;
  grantId: string;
  expiresAt: number;
}

/** Who opened a session, for the audit log. */
export interface SessionOpener {
  ip?: string | undefined;
  userAgent?: string | undefined;
}

interface SessionBase {
  id: string;
  clientId: string;
  /** The token that opened the session (its id only), for the audit log. */
  tokenId: string;
  /** The token family (grant) that opened the session: MCP security best practices bind sessions to it. */
  grantId: string;
  /** Token hashes that have been used on this session (opening one first). */
  tokenHashes: Set<string>;
  /** Expiry of the newest token used on the session. */
  expiresAt: number;
  openedAt: number;
  /** The last request on the session: the least recently used one is closed first at the per-client cap. */
  lastActiveAt: number;
  /** The MCP server serving the session (SDK v2, bound to the 2025 era by `initialize`). */
  server: Server;
  opener: SessionOpener;
}

export type StreamableSession = SessionBase & { transport: 'streamable-http'; channel: StreamableHttpSessionTransport };
export type SseSession = SessionBase & { transport: 'sse'; channel: SseServerTransport };
export type Session = StreamableSession | SseSession;

export type CloseReason = 'client closed' | 'token revoked' | 'client removed' | 'token expired' | 'server shutdown' | 'session limit' | 'client not reading';

export interface SessionManagerDeps {
  store: Store;
  clock: Clock;
  events: EventLog;
  /** A new MCP server for one session. */
  createServer(): Server;
  /** Starts following whatever a session server must hear about (tool list changes); returns the stop function. */
  follow?(server: Server): () => void;
  sweepMs?: number;
  /** Open sessions one client may hold; opening one more closes its least recently used. */
  maxPerClient?: number;
  /** Unsent bytes a session's event stream may hold before it is closed (limits.streamBufferBytes). */
  streamBufferBytes?: number;
  /** serve's log: where the close of a request's stream is said (it has no event: the session stays). */
  logger?: Logger;
  /**
   * Replicas on one Redis: told where each session lives, so that a request for it reaching
   * another replica is relayed here (DESIGN.md §6).
   */
  locations?: { claim(id: string): void; release(id: string): void };
}

/**
 * The one owner of MCP sessions (2025 Streamable HTTP and legacy SSE): it creates each session's
 * transport and server, wires the transport's close, records `session.opened` and
 * `session.closed` with the same fields, and closes sessions whose token is revoked (by this
 * process or, through the store's change feed, by another), whose client is removed, or whose
 * token expires; each within the sweep interval. Routes only look sessions up.
 */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly unsubscribe: () => void;
  private readonly sweeper: NodeJS.Timeout;
  private readonly maxPerClient: number;

  constructor(private readonly deps: SessionManagerDeps) {
    this.maxPerClient = deps.maxPerClient ?? Number.POSITIVE_INFINITY;
    this.unsubscribe = deps.store.onChange((change) => this.applyChange(change));
    this.sweeper = setInterval(() => this.sweepExpired(), deps.sweepMs ?? 1_000);
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

  /** Opens a 2025 Streamable HTTP session; the caller then hands it the `initialize` POST. */
  async openStreamable(token: SessionToken, opener: SessionOpener): Promise<StreamableSession> {
    const channel = new StreamableHttpSessionTransport(randomUUID(), this.deps.streamBufferBytes);
    channel.onrequeststreamoverflow = () =>
      this.deps.logger?.warn(
        `MCP client ${token.clientId} stopped reading the stream of a request in session ${channel.sessionId}: ` +
          `that stream was closed with more than ${this.deps.streamBufferBytes ?? DEFAULT_STREAM_BUFFER_BYTES} bytes unsent (limits.streamBufferBytes)`,
      );
    return this.open('streamable-http', channel, token, opener) as Promise<StreamableSession>;
  }

  /** Opens a legacy SSE session on `res` (the first event names the message endpoint). */
  async openSse(res: ServerResponse, messagesPath: string, token: SessionToken, opener: SessionOpener): Promise<SseSession> {
    const channel = new SseServerTransport(res, messagesPath, SSE_KEEPALIVE_MS, this.deps.streamBufferBytes);
    return this.open('sse', channel, token, opener) as Promise<SseSession>;
  }

  private async open(
    transport: SessionTransport,
    channel: StreamableHttpSessionTransport | SseServerTransport,
    token: SessionToken,
    opener: SessionOpener,
  ): Promise<Session> {
    const id = channel.sessionId;
    const server = this.deps.createServer();
    const now = this.deps.clock.now();
    const session = {
      id,
      transport,
      channel,
      server,
      clientId: token.clientId,
      tokenId: token.tokenId,
      grantId: token.grantId,
      tokenHashes: new Set([token.tokenHash]),
      expiresAt: token.expiresAt,
      openedAt: now,
      lastActiveAt: now,
      opener,
    } as Session;
    const unfollow = this.deps.follow?.(server);
    // Set before connect: the SDK chains the handler it finds, so its own cleanup still runs.
    channel.onclose = () => {
      unfollow?.();
      this.release(id, 'client closed');
    };
    // A client that posts and never reads its stream: closed, and logged with this reason.
    channel.onoverflow = () => void this.close(id, 'client not reading');
    this.sessions.set(id, session);
    this.deps.locations?.claim(id);
    this.record('session.opened', session);
    await server.connect(channel);
    this.enforceCap(session, id);
    return session;
  }

  /**
   * Caps what one grant of a client holds (a client that reconnects without closing, or streams
   * the server has not yet seen die): the least recently used of its other sessions is closed
   * first. Per grant, so that each personal access token of the built-in client (each its own
   * grant) has a budget of its own; a new grant of any client needs the owner's approval.
   */
  private enforceCap(opened: Session, keep: string): void {
    const own = [...this.sessions.values()].filter((s) => s.clientId === opened.clientId && s.grantId === opened.grantId && s.id !== keep);
    const excess = own.length + 1 - this.maxPerClient;
    if (excess <= 0) return;
    own.sort((a, b) => a.lastActiveAt - b.lastActiveAt);
    for (const session of own.slice(0, excess)) void this.close(session.id, 'session limit');
  }

  get<T extends SessionTransport>(id: string, transport: T): Extract<Session, { transport: T }> | undefined {
    const session = this.sessions.get(id);
    return session?.transport === transport ? (session as Extract<Session, { transport: T }>) : undefined;
  }

  /**
   * Whether `token` may act on `session`: same client and same token family. A refreshed token of
   * the family extends the session to its own expiry.
   */
  admit(session: Session, token: SessionToken): boolean {
    if (token.clientId !== session.clientId || token.grantId !== session.grantId) return false;
    session.lastActiveAt = this.deps.clock.now();
    if (!session.tokenHashes.has(token.tokenHash)) {
      session.tokenHashes.add(token.tokenHash);
      session.expiresAt = Math.max(session.expiresAt, token.expiresAt);
    }
    return true;
  }

  /** Forgets a session whose transport closed and records why, once. */
  private release(id: string, reason: CloseReason): void {
    const session = this.sessions.get(id);
    if (!session) return;
    this.sessions.delete(id);
    this.deps.locations?.release(id);
    this.record('session.closed', session, reason);
  }

  async close(id: string, reason: CloseReason): Promise<void> {
    const session = this.sessions.get(id);
    if (!session) return;
    this.release(id, reason);
    await session.channel.close().catch(() => undefined);
  }

  async closeAll(reason: CloseReason = 'server shutdown'): Promise<void> {
    clearInterval(this.sweeper);
    this.unsubscribe();
    await Promise.all([...this.sessions.keys()].map((id) => this.close(id, reason)));
  }

  private record(type: 'session.opened' | 'session.closed', session: Session, reason?: CloseReason): void {
    this.deps.events.record({
      type,
      client_id: session.clientId,
      token_id: session.tokenId,
      ...(session.opener.ip ? { ip: session.opener.ip } : {}),
      ...(session.opener.userAgent ? { user_agent: session.opener.userAgent } : {}),
      detail: { transport: session.transport, session_id: session.id, ...(reason ? { reason } : {}) },
    });
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
    const now = this.deps.clock.now();
    for (const session of [...this.sessions.values()]) {
      if (session.expiresAt <= now) void this.close(session.id, 'token expired');
    }
  }
}
