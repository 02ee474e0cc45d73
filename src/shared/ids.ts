import { createHash, hash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

/** Lowercase hex of `bytes` CSPRNG bytes. */
export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** URL-safe base64 of `bytes` CSPRNG bytes. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function newUuid(): string {
  return randomUUID();
}

export function sha256Hex(value: string): string {
  // The one-shot form (Node 20.12+): no Hash object per call, on the path of every bearer check.
  return hash('sha256', value, 'hex');
}

/**
 * Constant-time equality of two strings. Both sides are hashed first so that neither the
 * content nor the length of the secret leaks through timing.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

/** Public id of an access or refresh token: a prefix of its hash, never the token. */
export function tokenIdFromHash(tokenHash: string): string {
  return `tok_${tokenHash.slice(0, 12)}`;
}
