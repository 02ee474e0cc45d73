/**
 * What one client address may do per window, and what memory a client may hold, against floods,
 * guessing and leaks (SECURITY.md). Hosted clients (ChatGPT, Claude) reach a server from shared
 * egress addresses, so the request limits are far above what their flows need: they stop
 * floods, not people. A valid bearer token is never refused by them.
 */

import { LimitsSchema, type Config } from '../config/schema.js';

export interface RateWindow {
  limit: number;
  windowMs: number;
}

export interface AbuseLimits {
  /** POST /register (RFC 7591): each request is a client record on disk. */
  register: RateWindow;
  /** POST /token. */
  token: RateWindow;
  /** POST /revoke. */
  revoke: RateWindow;
  /** GET /authorize: each request is a pending consent form in memory. */
  authorizePage: RateWindow;
  /** POST /authorize (wrong passwords have their own, stricter lock: loginFailures). */
  authorizeForm: RateWindow;
  /** Requests with an unknown or malformed bearer token: guessing, or a client gone wrong. */
  failedBearer: RateWindow;
  /** Wrong owner passwords from one address before the consent form locks for it. */
  loginFailures: RateWindow;
  /**
   * Requests with an expired, revoked or wrong-audience token. Counted apart and more generously:
   * after the owner revokes every token, each connector retries its stale one before signing in again.
   */
  staleBearer: RateWindow;
  /** GET /oauth/start and /oauth/callback (the home page's test sign-in), per address. */
  signIn: RateWindow;
  /**
   * A refusal that proves nothing (a missing, unknown, expired or revoked token, an unknown sign-in
   * state, a consent page opened) is logged once per address, reason and client in this window.
   */
  rejectionLogWindowMs: number;
  /** Open MCP sessions (both transports) of one client; past it, its least recently used one closes. */
  sessionsPerClient: number;
  /** Registrations never approved by the owner that are kept; past it the oldest of them are removed. */
  unapprovedClients: number;
  /** Messages in one JSON-RPC batch, for the MCP revisions before 2025-06-18 (later ones allow none). */
  batchSize: number;
  /** Unsent bytes one event stream (GET /sse, GET /mcp, a POST /mcp answered as a stream) may hold for a client not reading; past it it closes. */
  streamBufferBytes: number;
  /** Requests sent on one connection and not answered yet (HTTP/1.1 pipelining); past it the connection is closed. */
  pipelinedRequests: number;
}

/** The limits a config sets (`limits`, with the defaults of config/schema.ts for what it leaves out). */
export function limitsFromConfig(limits: Config['limits']): AbuseLimits {
  const window = (w: { limit: number; window: number }): RateWindow => ({ limit: w.limit, windowMs: w.window });
  return {
    register: window(limits.register),
    token: window(limits.token),
    revoke: window(limits.revoke),
    authorizePage: window(limits.authorizePage),
    authorizeForm: window(limits.authorizeForm),
    failedBearer: window(limits.failedBearer),
    loginFailures: window(limits.loginFailures),
    staleBearer: window(limits.staleBearer),
    signIn: window(limits.signIn),
    rejectionLogWindowMs: limits.rejectionLogWindow,
    sessionsPerClient: limits.sessionsPerClient,
    unapprovedClients: limits.unapprovedClients,
    batchSize: limits.batchSize,
    streamBufferBytes: limits.streamBufferBytes,
    pipelinedRequests: limits.pipelinedRequests,
  };
}

/** Today's values: what a config without `limits` gets. */
export const DEFAULT_LIMITS: AbuseLimits = limitsFromConfig(LimitsSchema.parse({}));

/** The config's limits, with overrides (tests narrow them to see a limit bite). */
export function resolveLimits(configured: AbuseLimits = DEFAULT_LIMITS, overrides: Partial<AbuseLimits> = {}): AbuseLimits {
  return { ...configured, ...overrides };
}
