import type { FailureWindow, SharedEphemeralState, SingleUseEntries } from '../store/ephemeral.js';
import type { Clock } from '../shared/clock.js';
import { rateLimitKey } from '../shared/ip-address.js';
import { constantTimeEqual, randomToken } from '../shared/ids.js';
import { createHmac } from 'node:crypto';
import { LoginThrottle, type AuthorizationRequest, type PendingAuthorization } from './authorization.js';
import { newSignInTest, SignInTests, type SignInTest, type TakeSignInResult } from './sign-in-test.js';

/**
 * The consent form's state as routes use it, whether one process keeps it in memory
 * (PendingAuthorizations, LoginThrottle) or replicas share it in Redis (the classes below):
 * a form shown by one replica can be answered on another, and the lockout counts every replica.
 */
type Awaitable<T> = T | Promise<T>;

export interface PendingAuthorizationStore {
  create(request: AuthorizationRequest, browserBinding: string): Awaitable<PendingAuthorization>;
  find(id: string, csrfToken: string, browserBinding: string | undefined): Awaitable<PendingAuthorization | undefined>;
  consume(id: string): Awaitable<boolean>;
}

export interface OwnerLoginThrottle {
  readonly limit: number;
  readonly windowMs: number;
  /** Failures at or before `at` stop counting (`unlock`, `passwd`). */
  forgetBefore(at: number): void;
  isLocked(address: string): Awaitable<boolean>;
  begin(address: string): Awaitable<boolean>;
  end(address: string, outcome: { failed: boolean }): Awaitable<boolean>;
  retryAfterSeconds(address: string): Awaitable<number>;
}

/** PendingAuthorizations over shared entries: same rules (single use, code TTL, CSRF field and cookie). */
export class SharedPendingAuthorizations implements PendingAuthorizationStore {
  private readonly entries: SingleUseEntries;

  constructor(
    shared: SharedEphemeralState,
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {
    this.entries = shared.entries('consent');
  }

  async create(request: AuthorizationRequest, browserBinding: string): Promise<PendingAuthorization> {
    const entry: PendingAuthorization = { id: randomToken(18), request, csrfToken: randomToken(24), browserBinding, expiresAt: this.clock.now() + this.ttlMs };
    await this.entries.put(entry.id, JSON.stringify(entry), this.ttlMs);
    return entry;
  }

  async find(id: string, csrfToken: string, browserBinding: string | undefined): Promise<PendingAuthorization | undefined> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return undefined;
    const json = await this.entries.get(id);
    if (!json) return undefined;
    const entry = JSON.parse(json) as PendingAuthorization;
    if (entry.expiresAt <= this.clock.now()) return undefined;
    if (!browserBinding || !constantTimeEqual(csrfToken, entry.csrfToken) || !constantTimeEqual(browserBinding, entry.browserBinding)) return undefined;
    return entry;
  }

  consume(id: string): Promise<boolean> {
    return this.entries.take(id);
  }
}

/** LoginThrottle's rule (`limits.loginFailures` per address, IPv6 per /64) counted across replicas. */
export class SharedLoginThrottle implements OwnerLoginThrottle {
  private readonly window: FailureWindow;
  readonly limit: number;
  readonly windowMs: number;
  private forgottenBefore = 0;

  constructor(
    shared: SharedEphemeralState,
    private readonly clock: Clock,
    window: { limit: number; windowMs: number } = { limit: LoginThrottle.LIMIT, windowMs: LoginThrottle.WINDOW_MS },
  ) {
    this.limit = window.limit;
    this.windowMs = window.windowMs;
    this.window = shared.failureWindow('login', this.limit, this.windowMs);
  }

  forgetBefore(at: number): void {
    this.forgottenBefore = Math.max(this.forgottenBefore, at);
  }

  async isLocked(address: string): Promise<boolean> {
    return (await this.window.failures(rateLimitKey(address), this.clock.now(), this.forgottenBefore)).length >= this.limit;
  }

  begin(address: string): Promise<boolean> {
    return this.window.begin(rateLimitKey(address), this.clock.now(), this.forgottenBefore);
  }

  async end(address: string, outcome: { failed: boolean }): Promise<boolean> {
    const count = await this.window.end(rateLimitKey(address), outcome.failed, this.clock.now(), this.forgottenBefore);
    return outcome.failed && count === this.limit;
  }

  async retryAfterSeconds(address: string): Promise<number> {
    const now = this.clock.now();
    const list = await this.window.failures(rateLimitKey(address), now, this.forgottenBefore);
    if (list.length === 0) return 1;
    return Math.max(1, Math.ceil((list[0]! + this.windowMs - now) / 1000));
  }
}

/** The home page's test sign-in as its routes use it: SignInTests in memory, or shared (below). */
export interface SignInTestStore {
  start(browserBinding: string, client: { clientId: string; redirectUri: string }): Awaitable<SignInTest>;
  take(state: string, browserBinding: string | undefined): Awaitable<TakeSignInResult>;
  formToken(purpose: string, browserBinding: string, subject: string): Awaitable<string>;
  checkFormToken(token: string, purpose: string, browserBinding: string | undefined, subject: string): Awaitable<boolean>;
}

/**
 * SignInTests' rules across replicas: the test started on one replica is finished on another
 * (single use, expiring, bound to the browser's cookie), and the sign-out form is signed with a
 * key every replica shares.
 */
export class SharedSignInTests implements SignInTestStore {
  private readonly entries: SingleUseEntries;
  private key: Promise<Buffer> | undefined;

  constructor(
    private readonly shared: SharedEphemeralState,
    private readonly clock: Clock,
  ) {
    this.entries = shared.entries('signin');
  }

  async start(browserBinding: string, client: { clientId: string; redirectUri: string }): Promise<SignInTest> {
    const test = newSignInTest(browserBinding, client, this.clock);
    await this.entries.put(test.state, JSON.stringify(test), SignInTests.TTL_MS);
    return test;
  }

  async take(state: string, browserBinding: string | undefined): Promise<TakeSignInResult> {
    if (!/^[A-Za-z0-9_-]{1,200}$/.test(state)) return { outcome: 'unknown' };
    const json = await this.entries.get(state);
    if (!json) return { outcome: 'unknown' };
    const test = JSON.parse(json) as SignInTest;
    if (test.expiresAt <= this.clock.now()) return { outcome: 'expired' };
    // Not consumed on a wrong cookie: the browser that started can still finish.
    if (!browserBinding || !constantTimeEqual(browserBinding, test.browserBinding)) return { outcome: 'wrong browser' };
    // Single use: of two callbacks racing on two replicas, one takes it.
    if (!(await this.entries.take(state))) return { outcome: 'unknown' };
    return { outcome: 'ok', test };
  }

  async formToken(purpose: string, browserBinding: string, subject: string): Promise<string> {
    this.key ??= this.shared.sharedKey('signin-forms');
    return createHmac('sha256', await this.key)
      .update(`${purpose}\n${browserBinding}\n${subject}`)
      .digest('base64url');
  }

  async checkFormToken(token: string, purpose: string, browserBinding: string | undefined, subject: string): Promise<boolean> {
    if (!browserBinding) return false;
    return constantTimeEqual(token, await this.formToken(purpose, browserBinding, subject));
  }
}
