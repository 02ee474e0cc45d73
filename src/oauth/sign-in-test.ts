import { createHmac, randomBytes } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import { constantTimeEqual, randomToken } from '../shared/ids.js';
import { s256 } from './pkce.js';
import type { OAuthSettings } from './settings.js';

/**
 * The client half of the home page's test sign-in. The server plays the first-party client: it
 * keeps `state` and the PKCE verifier itself (never in the browser), bound to a cookie of the
 * browser that started, single use, expiring. A callback is only completed for the browser that
 * started it with the state it was given (RFC 6749 §10.12, RFC 9700 §4.7: CSRF on the redirect).
 */
export interface SignInTest {
  state: string;
  codeVerifier: string;
  clientId: string;
  redirectUri: string;
  /** The cookie value of the browser that started. */
  browserBinding: string;
  expiresAt: number;
}

export type TakeSignInResult =
  | { outcome: 'ok'; test: SignInTest }
  /** Never started, already completed, or pruned after expiry. */
  | { outcome: 'unknown' }
  | { outcome: 'expired' }
  /** The state is right but the cookie is not: another browser, or a link passed around. */
  | { outcome: 'wrong browser' };

/** A new test sign-in for the built-in client, valid for `SignInTests.TTL_MS`. */
export function newSignInTest(browserBinding: string, client: { clientId: string; redirectUri: string }, clock: Clock): SignInTest {
  return {
    state: randomToken(24),
    // RFC 7636 §4.1: 32 random octets, base64url: 43 characters.
    codeVerifier: randomToken(32),
    clientId: client.clientId,
    redirectUri: client.redirectUri,
    browserBinding,
    expiresAt: clock.now() + SignInTests.TTL_MS,
  };
}

export class SignInTests {
  private readonly pending = new Map<string, SignInTest>();
  /** Signs the hidden field of forms shown after a sign-in; a new key per process. */
  private readonly formKey = randomBytes(32);
  static readonly MAX = 1_000;
  /** Long enough to read the consent page and find the password. */
  static readonly TTL_MS = 10 * 60_000;

  constructor(private readonly clock: Clock) {}

  start(browserBinding: string, client: { clientId: string; redirectUri: string }): SignInTest {
    this.prune();
    if (this.pending.size >= SignInTests.MAX) {
      const oldest = this.pending.keys().next().value;
      if (oldest !== undefined) this.pending.delete(oldest);
    }
    const test = newSignInTest(browserBinding, client, this.clock);
    this.pending.set(test.state, test);
    return test;
  }

  /** Single use: the first caller with the right state and cookie gets the test, and it is gone. */
  take(state: string, browserBinding: string | undefined): TakeSignInResult {
    const test = this.pending.get(state);
    if (!test) return { outcome: 'unknown' };
    if (test.expiresAt <= this.clock.now()) {
      this.pending.delete(state);
      return { outcome: 'expired' };
    }
    // Not consumed on a wrong cookie: the browser that started can still finish.
    if (!browserBinding || !constantTimeEqual(browserBinding, test.browserBinding)) return { outcome: 'wrong browser' };
    this.pending.delete(state);
    return { outcome: 'ok', test };
  }

  /** The hidden CSRF field of a form that acts on `subject` (a token id) for this browser. */
  formToken(purpose: string, browserBinding: string, subject: string): string {
    return createHmac('sha256', this.formKey).update(`${purpose}\n${browserBinding}\n${subject}`).digest('base64url');
  }

  checkFormToken(token: string, purpose: string, browserBinding: string | undefined, subject: string): boolean {
    if (!browserBinding) return false;
    return constantTimeEqual(token, this.formToken(purpose, browserBinding, subject));
  }

  private prune(): void {
    const now = this.clock.now();
    for (const [state, test] of this.pending) if (test.expiresAt <= now) this.pending.delete(state);
  }
}

/** RFC 6749 §4.1.1 with PKCE S256 (RFC 7636 §4.3) and RFC 8707 `resource`, at the advertised endpoint. */
export function signInAuthorizationUrl(test: SignInTest, settings: OAuthSettings): string {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: test.clientId,
    redirect_uri: test.redirectUri,
    scope: settings.scopes.join(' '),
    state: test.state,
    code_challenge: s256(test.codeVerifier),
    code_challenge_method: 'S256',
    resource: settings.issuer,
  });
  return `${settings.issuer}/authorize?${query}`;
}
