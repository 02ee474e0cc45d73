import { describe, expect, it } from 'vitest';
import { isValidCodeVerifier, isValidS256Challenge, s256, verifyCodeVerifier } from '../../../src/oauth/pkce.js';

const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

describe('PKCE (RFC 7636)', () => {
  it('RFC 7636 Appendix B: S256 of dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk is E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', () => {
    expect(s256(VERIFIER)).toBe(CHALLENGE);
    expect(verifyCodeVerifier(VERIFIER, CHALLENGE)).toBe(true);
  });

  it.each([
    [VERIFIER, CHALLENGE, true, 'the appendix B pair'],
    [`${VERIFIER.slice(0, -1)}l`, CHALLENGE, false, 'one character off'],
    [CHALLENGE, CHALLENGE, false, 'RFC 7636 §4.3: the challenge itself (plain) is not a verifier for S256'],
    [VERIFIER, `${CHALLENGE}=`, false, 'padded challenge'],
    [VERIFIER, CHALLENGE.toLowerCase(), false, 'challenge compared case-sensitively'],
    ['short', s256('short'), false, 'RFC 7636 §4.1: a verifier under 43 characters never verifies'],
  ])('RFC 7636 §4.6: verify(%s, %s) is %s (%s)', (verifier, challenge, ok) => {
    expect(verifyCodeVerifier(verifier, challenge)).toBe(ok);
  });

  it.each([
    ['a'.repeat(43), true, '43 characters: the minimum'],
    ['a'.repeat(128), true, '128 characters: the maximum'],
    ['a'.repeat(42), false, '42 characters'],
    ['a'.repeat(129), false, '129 characters'],
    [`${'a'.repeat(40)}-._~`, true, 'every unreserved punctuation'],
    [`${'a'.repeat(42)}+`, false, '"+" is not unreserved'],
    [`${'a'.repeat(42)}/`, false, '"/" is not unreserved'],
    [`${'a'.repeat(42)}=`, false, '"=" is not unreserved'],
    [`${'a'.repeat(42)} `, false, 'space'],
    [`${'a'.repeat(42)}é`, false, 'non-ASCII'],
  ])('RFC 7636 §4.1: verifier %j valid = %s (%s)', (verifier, valid) => {
    expect(isValidCodeVerifier(verifier)).toBe(valid);
  });

  it.each([
    [CHALLENGE, true, 'base64url of 32 bytes, unpadded'],
    [`${CHALLENGE}=`, false, 'padded'],
    [CHALLENGE.slice(1), false, '42 characters'],
    [CHALLENGE.replace('-', '+'), false, 'base64 rather than base64url'],
    ['', false, 'empty'],
  ])('RFC 7636 §4.2: S256 challenge %j valid = %s (%s)', (challenge, valid) => {
    expect(isValidS256Challenge(challenge)).toBe(valid);
  });
});
