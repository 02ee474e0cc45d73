import { describe, expect, it } from 'vitest';
import { Backoff } from '../../../src/mcp/upstream/backoff.js';

describe('upstream restart backoff', () => {
  it('doubles from 0.5 s and stays at 30 s', () => {
    const backoff = new Backoff();
    expect(Array.from({ length: 10 }, () => backoff.next())).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  });

  it('starts again from 0.5 s after a connection that stayed up 60 s', () => {
    const backoff = new Backoff();
    backoff.next();
    backoff.next();
    backoff.next();
    expect(backoff.next(60_000)).toBe(500);
    expect(backoff.next(5_000)).toBe(1000);
  });

  it('keeps doubling after a connection that stayed up less than 60 s', () => {
    const backoff = new Backoff();
    backoff.next();
    expect(backoff.next(59_999)).toBe(1000);
  });

  it('takes other limits', () => {
    const backoff = new Backoff({ initialMs: 10, maxMs: 25, resetAfterMs: 100 });
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next(100)]).toEqual([10, 20, 25, 10]);
  });
});
