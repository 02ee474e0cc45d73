import type { Context, Next } from 'koa';
import type { Clock } from '../../shared/clock.js';
import { rateLimitKey } from '../../shared/ip-address.js';
import type { RateWindow } from '../limits.js';
import { TooManyRequestsError } from '../../oauth/errors.js';
import { SharedAddressWindows, type AddressCounter } from './shared-windows.js';
import type { SharedEphemeralState } from '../../store/ephemeral.js';

/** Addresses one limiter remembers. Past it, expired windows go, then the oldest ones. */
const MAX_KEYS = 20_000;

/** Fixed windows of counts per key (a client address), bounded in memory. */
export class AddressWindows {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly window: RateWindow,
    private readonly clock: Clock,
  ) {}

  /** Counts one event for `key`; `retryAfter` (seconds) is 0 while within the limit. */
  hit(key: string): { count: number; retryAfter: number } {
    const now = this.clock.now();
    let entry = this.windows.get(key);
    if (!entry || now - entry.start >= this.window.windowMs) {
      if (entry) this.windows.delete(key);
      else if (this.windows.size >= MAX_KEYS) this.shrink(now);
      entry = { start: now, count: 0 };
      // Insertion order is window-start order: the oldest windows come first.
      this.windows.set(key, entry);
    }
    entry.count++;
    const retryAfter = entry.count > this.window.limit ? Math.max(1, Math.ceil((entry.start + this.window.windowMs - now) / 1000)) : 0;
    return { count: entry.count, retryAfter };
  }

  /**
   * A spray of addresses (IPv6 gives an attacker plenty) must not grow memory without bound or
   * make each request scan the map: once full, a tenth is dropped at once, oldest windows first.
   */
  private shrink(now: number): void {
    let drop = Math.ceil(MAX_KEYS / 10);
    for (const [key, w] of this.windows) {
      if (drop <= 0 && now - w.start < this.window.windowMs) break;
      this.windows.delete(key);
      drop--;
    }
  }

  /** How many addresses are remembered (tests). */
  get size(): number {
    return this.windows.size;
  }
}

/**
 * Says whether a key is seen for the first time in the current window: what lets a rejection be
 * logged once per address per window, however often it is repeated. Bounded like AddressWindows.
 */
export class OncePerWindow {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock,
  ) {}

  first(key: string): boolean {
    const now = this.clock.now();
    const last = this.seen.get(key);
    if (last !== undefined && now - last < this.windowMs) return false;
    if (last !== undefined) this.seen.delete(key);
    else if (this.seen.size >= MAX_KEYS) {
      let drop = Math.ceil(MAX_KEYS / 10);
      for (const [k, at] of this.seen) {
        if (drop <= 0 && now - at < this.windowMs) break;
        this.seen.delete(k);
        drop--;
      }
    }
    this.seen.set(key, now);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}

/** 429 with Retry-After and a JSON error (RFC 6585 §4). */
export function tooManyRequests(ctx: Context, retryAfter: number, what: string): void {
  ctx.status = 429;
  ctx.set('Retry-After', String(retryAfter));
  ctx.set('Cache-Control', 'no-store');
  ctx.body = new TooManyRequestsError(`too many ${what} requests from this address; try again later`).toResponseObject();
}

/**
 * A fixed-window request limit per client address. Hosted clients (ChatGPT, Claude) share egress
 * addresses across many users, so limits are generous: they stop floods, not people.
 */
export function rateLimit(options: RateWindow & { clock: Clock; name: string; shared?: SharedEphemeralState }) {
  // Replicas on one Redis count together: behind a round-robin balancer a client meets one limit.
  const windows: AddressCounter = options.shared
    ? new SharedAddressWindows(options.shared, options.name, options, options.clock)
    : new AddressWindows(options, options.clock);
  return async function limitRequests(ctx: Context, next: Next): Promise<void> {
    const { retryAfter } = await windows.hit(rateLimitKey(ctx.ip || 'unknown'));
    if (retryAfter > 0) return tooManyRequests(ctx, retryAfter, options.name);
    await next();
  };
}
