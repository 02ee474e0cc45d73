import type { Context, Next } from 'koa';
import type { Clock } from '../../shared/clock.js';

/**
 * A fixed-window request limit per client address. Hosted clients (ChatGPT, Claude) share egress
 * addresses across many users, so limits are generous: they stop floods, not people.
 */
export function rateLimit(options: { limit: number; windowMs: number; clock: Clock; name: string }) {
  const windows = new Map<string, { start: number; count: number }>();
  return async function limitRequests(ctx: Context, next: Next): Promise<void> {
    const now = options.clock.now();
    const key = ctx.ip || 'unknown';
    let entry = windows.get(key);
    if (!entry || now - entry.start >= options.windowMs) {
      if (windows.size > 50_000) {
        for (const [k, w] of windows) if (now - w.start >= options.windowMs) windows.delete(k);
      }
      entry = { start: now, count: 0 };
      windows.set(key, entry);
    }
    entry.count++;
    if (entry.count > options.limit) {
      ctx.status = 429;
      ctx.set('Retry-After', String(Math.max(1, Math.ceil((entry.start + options.windowMs - now) / 1000))));
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { error: 'too_many_requests', error_description: `too many ${options.name} requests from this address; try again later` };
      return;
    }
    await next();
  };
}
