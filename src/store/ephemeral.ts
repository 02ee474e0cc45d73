/**
 * Short-lived state that must hold across `serve` replicas but need not outlive them (DESIGN.md
 * §6): pending consent forms, failed-password counts, per-address request windows, forms' HMAC
 * keys. One process keeps it in memory (the classes in oauth/ and server/ that use these shapes);
 * several replicas on one Redis share it through these operations, each atomic in Redis.
 */

/** Values kept for a while and taken exactly once. */
export interface SingleUseEntries {
  put(id: string, value: string, ttlMs: number): Promise<void>;
  get(id: string): Promise<string | undefined>;
  /** Removes the entry; true for exactly one caller while it existed. */
  take(id: string): Promise<boolean>;
}

/** Failures per key in a sliding window, with attempts in flight counted against the limit. */
export interface FailureWindow {
  /** Times of the failures of `key` within the window and after `forgottenBefore`, oldest first. */
  failures(key: string, now: number, forgottenBefore?: number): Promise<number[]>;
  /** Reserves an attempt; false when failures plus attempts in flight reach the limit. Failures at or before `forgottenBefore` are dropped. */
  begin(key: string, now: number, forgottenBefore?: number): Promise<boolean>;
  /** Ends a reserved attempt, recording it when it failed; answers the failures now in the window. */
  end(key: string, failed: boolean, now: number, forgottenBefore?: number): Promise<number>;
}

/** Fixed windows of counts per key. */
export interface CountWindows {
  /** Counts one event; answers the count and the start of its window. */
  hit(key: string, now: number): Promise<{ count: number; start: number }>;
}

export interface SharedEphemeralState {
  entries(name: string): SingleUseEntries;
  failureWindow(name: string, limit: number, windowMs: number): FailureWindow;
  countWindows(name: string, windowMs: number): CountWindows;
  /** A random key shared by every replica (created by the first to ask), e.g. for HMACs of forms. */
  sharedKey(name: string): Promise<Buffer>;
}
