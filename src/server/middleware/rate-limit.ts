import type { Context, Next } from 'koa';
import type { Clock } from '../../shared/clock.js';
import type { RateWindow } from '../limits.js';

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
      // Expired windows are dropped in bulk once the map is large: a spray of addresses cannot grow it without bound.
      if (this.windows.size > 50_000) {
        for (const [k, w] of this.windows) if (now - w.start >= this.window.windowMs) this.windows.delete(k);
      }
      entry = { start: now, count: 0 };
      this.windows.set(key, entry);
    }
    entry.count++;
    const retryAfter = entry.count > this.window.limit ? Math.max(1, Math.ceil((entry.start + this.window.windowMs - now) / 1000)) : 0;
    return { count: entry.count, retryAfter };
  }
}

/** 429 with Retry-After and a JSON error (RFC 6585 §4). */
export function tooManyRequests(ctx: Context, retryAfter: number, what: string): void {
  ctx.status = 429;
  ctx.set('Retry-After', String(retryAfter));
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error: 'too_many_requests', error_description: `too many ${what} requests from this address; try again later` };
}

/**
 * A fixed-window request limit per client address. Hosted clients (ChatGPT, Claude) share egress
 * addresses across many users, so limits are generous: they stop floods, not people.
 */
export function rateLimit(options: RateWindow & { clock: Clock; name: string }) {
  const windows = new AddressWindows(options, options.clock);
  return async function limitRequests(ctx: Context, next: Next): Promise<void> {
    const { retryAfter } = windows.hit(ctx.ip || 'unknown');
    if (retryAfter > 0) return tooManyRequests(ctx, retryAfter, options.name);
    await next();
  };
}
