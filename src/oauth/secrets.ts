import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { constantTimeEqual, randomHex, sha256Hex } from '../shared/ids.js';

/**
 * scrypt parameters for the owner password. N=2^15, r=8, p=1 costs ~32 MiB and a few tens of
 * milliseconds: an offline guess from a stolen db.json is that expensive, online guessing is held
 * to 5 tries per 15 minutes per address, and the whole flow stays within DESIGN.md §8 P6.
 */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keylen: 32 } as const;
const MAXMEM = 64 * 1024 * 1024;

function scryptAsync(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keylen, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/** `scrypt$N$r$p$<salt b64url>$<hash b64url>`: self-describing, so parameters can grow later. */
export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1024;

/** What is wrong with a new owner password, or undefined: one rule for init, passwd, serve and the API. */
export function ownerPasswordProblem(password: string): string | undefined {
  if (password.length < MIN_PASSWORD_LENGTH) return `the owner password needs at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > MAX_PASSWORD_LENGTH) return `the owner password is longer than ${MAX_PASSWORD_LENGTH} characters`;
  return undefined;
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: MAXMEM });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  if (!stored) return false;
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: MAXMEM,
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A password generated for the owner when none was given: 24 characters from a CSPRNG. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

/** A client secret: 32 bytes as 64 lowercase hex characters (DESIGN.md §4). */
export function generateClientSecret(): string {
  return randomHex(32);
}

/** Access tokens are `mcp_` + 32 lowercase hex (128 bits), as in the seed flow. */
export function generateAccessToken(): string {
  return `mcp_${randomHex(16)}`;
}

export function generateRefreshToken(): string {
  return `mcpr_${randomHex(32)}`;
}

/** Authorization codes: 256 bits, URL-safe. */
export function generateAuthorizationCode(): string {
  return randomBytes(32).toString('base64url');
}

/** SHA-256 of a high-entropy secret (token, code, client secret): what the store keeps. */
export const hashSecret = sha256Hex;

/** Compares a presented secret with a stored SHA-256 in constant time. */
export function secretMatches(presented: string, storedHash: string | null): boolean {
  if (storedHash === null) return false;
  return constantTimeEqual(sha256Hex(presented), storedHash);
}
