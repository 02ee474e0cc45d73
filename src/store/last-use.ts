/**
 * `last_used_at` in batches (DESIGN.md §6): the bearer check records a use in memory, and the
 * store writes what gathered at most every `delayMs`, not on every request. Shared by every Store.
 */
export class LastUseBatch {
  /** tokenHash → newest use not yet written. */
  private readonly pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** Writes the pending uses (the store's flush); a failure leaves them pending for the next try. */
    private readonly write: () => Promise<void>,
    private readonly delayMs = 5_000,
  ) {}

  /** Requests finish out of order: the newest use wins, as it does when the batch is written. */
  touch(tokenHash: string, at: number): void {
    this.pending.set(tokenHash, Math.max(this.pending.get(tokenHash) ?? 0, at));
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.write().catch(() => {
        /* kept and retried on the next touch or at close */
      });
    }, this.delayMs);
    this.timer.unref?.();
  }

  /** The newest use of a token not yet written, if any. */
  get(tokenHash: string): number | undefined {
    return this.pending.get(tokenHash);
  }

  /** A copy of what is pending, to write; undefined when nothing is. */
  snapshot(): Map<string, number> | undefined {
    return this.pending.size === 0 ? undefined : new Map(this.pending);
  }

  /** After `batch` was written: forgets each use unless a newer one was recorded meanwhile. */
  written(batch: ReadonlyMap<string, number>): void {
    for (const [hash, at] of batch) if ((this.pending.get(hash) ?? Infinity) <= at) this.pending.delete(hash);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
