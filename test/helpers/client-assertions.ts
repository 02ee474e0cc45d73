import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/**
 * A client's own signing key and the RFC 7523 client assertions it signs, as ChatGPT's connector
 * does for `private_key_jwt`: RS256 with a `kid`, `iss` = `sub` = client_id, `aud` the token
 * endpoint, a fresh `jti`, a lifetime of a few minutes.
 */
export interface SigningKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  /** The public half, as published in a JWK Set. */
  publicJwk: JWK;
}

export async function createSigningKey(alg = 'RS256', kid = `key-${randomUUID().slice(0, 8)}`): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicJwk };
}

export const jwksOf = (...keys: SigningKey[]) => ({ keys: keys.map((k) => k.publicJwk) });

export interface AssertionOptions {
  clientId: string;
  audience: string | string[];
  /** Claims to add or replace (`undefined` removes one). */
  claims?: Partial<Record<keyof JWTPayload | string, unknown>>;
  /** Header members to replace (e.g. another `kid`). */
  header?: Record<string, unknown>;
  lifetimeSeconds?: number;
  /** Seconds since the epoch the assertion is issued at (default: now). */
  issuedAt?: number;
}

export async function signAssertion(key: SigningKey, options: AssertionOptions): Promise<string> {
  const iat = options.issuedAt ?? Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: options.clientId,
    sub: options.clientId,
    aud: options.audience,
    iat,
    exp: iat + (options.lifetimeSeconds ?? 300),
    jti: randomUUID(),
    ...options.claims,
  };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload as JWTPayload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...options.header } as { alg: string })
    .sign(key.privateKey);
}

/** An unsigned JWT (`alg: none`) with the given claims: what an attacker without the key can make. */
export function unsignedAssertion(payload: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(payload)}.`;
}

/** HS256 signed with the client's published public key as the HMAC secret (the classic key-confusion attack). */
export async function hmacWithPublicKey(key: SigningKey, payload: Record<string, unknown>): Promise<string> {
  const { createHmac } = await import('node:crypto');
  const secret = JSON.stringify(key.publicJwk);
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${part({ alg: 'HS256', typ: 'JWT', kid: key.kid })}.${part(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}
