export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** A connection that stayed up this long starts again from `initialMs` when it is lost. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, resetAfterMs: 60_000 };

/** Restart delays for one upstream: doubling from `initialMs` up to `maxMs`. */
export class Backoff {
  private failures = 0;

  constructor(private readonly options: BackoffOptions = DEFAULT_BACKOFF) {}

  /**
   * The wait before the next attempt. `uptimeMs` is how long the connection that just ended was
   * up (0 when the attempt never got ready); a long uptime means the earlier failures are history.
   */
  next(uptimeMs = 0): number {
    if (uptimeMs >= this.options.resetAfterMs) this.failures = 0;
    const delay = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return delay;
  }
}
