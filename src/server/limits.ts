/**
 * What one client address may do per window, and what memory a client may hold, against floods,
 * guessing and leaks (SECURITY.md). Hosted clients (ChatGPT, Claude) reach a server from shared
 * egress addresses, so the request limits are far above what their flows need: they stop
 * floods, not people. A valid bearer token is never refused by them.
 */

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
  /** POST /authorize (wrong passwords have their own, stricter lock: 5 in 15 minutes). */
  authorizeForm: RateWindow;
  /** Requests with an unknown or malformed bearer token: guessing, or a client gone wrong. */
  failedBearer: RateWindow;
  /** Open MCP sessions (both transports) of one client; past it, its least recently used one closes. */
  sessionsPerClient: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export const DEFAULT_LIMITS: AbuseLimits = {
  register: { limit: 300, windowMs: HOUR },
  token: { limit: 1_200, windowMs: HOUR },
  revoke: { limit: 1_200, windowMs: HOUR },
  authorizePage: { limit: 600, windowMs: 15 * MINUTE },
  authorizeForm: { limit: 300, windowMs: 15 * MINUTE },
  failedBearer: { limit: 60, windowMs: 15 * MINUTE },
  sessionsPerClient: 100,
};

export function resolveLimits(overrides: Partial<AbuseLimits> = {}): AbuseLimits {
  return { ...DEFAULT_LIMITS, ...overrides };
}
