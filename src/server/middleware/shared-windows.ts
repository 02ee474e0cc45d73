import type { CountWindows, SharedEphemeralState } from '../../store/ephemeral.js';
import type { Clock } from '../../shared/clock.js';
import type { RateWindow } from '../limits.js';

/** A per-address request limit, in one process's memory (AddressWindows) or shared by replicas (below). */
export interface AddressCounter {
  /** Counts one event for `key`; `retryAfter` (seconds) is 0 while within the limit. */
  hit(key: string): { count: number; retryAfter: number } | Promise<{ count: number; retryAfter: number }>;
}

/** AddressWindows' fixed windows counted in Redis: behind a round-robin balancer a client meets one limit, not one per replica. */
export class SharedAddressWindows implements AddressCounter {
  private readonly windows: CountWindows;

  constructor(
    shared: SharedEphemeralState,
    name: string,
    private readonly window: RateWindow,
    private readonly clock: Clock,
  ) {
    this.windows = shared.countWindows(`rate:${name}`, window.windowMs);
  }

  async hit(key: string): Promise<{ count: number; retryAfter: number }> {
    const now = this.clock.now();
    const { count, start } = await this.windows.hit(key, now);
    const retryAfter = count > this.window.limit ? Math.max(1, Math.ceil((start + this.window.windowMs - now) / 1000)) : 0;
    return { count, retryAfter };
  }
}
