import type { ClientRecord, Store } from '../store/types.js';
import type { Clock } from '../shared/clock.js';
import { rateLimitKey } from '../shared/ip-address.js';
import { constantTimeEqual, newUuid, randomToken } from '../shared/ids.js';
import { isUrlClientId, MetadataDocumentError, type ClientMetadataDocuments } from './client-metadata-document.js';
import { InvalidRequestError, OAuthError, UnauthorizedClientError, UnsupportedResponseTypeError } from './errors.js';
import { isValidS256Challenge } from './pkce.js';
import { buildRedirect, matchRedirectUri, redirectUriProblem } from './redirect-uri.js';
import { resolveResource } from './resource.js';
import { resolveScopes } from './scopes.js';
import { generateAuthorizationCode, hashSecret, verifyPassword } from './secrets.js';
import type { OAuthSettings } from './settings.js';

/**
 * An authorization request that cannot be sent back to the client, because the client or the
 * redirect URI is not validated (RFC 6749 §4.1.2.1; OAuth 2.1 §4.1.2.1): shown to the person as a
 * page and never redirected.
 */
export class AuthorizationPageError extends Error {
  constructor(
    readonly title: string,
    message: string,
    readonly status = 400,
    /** A link the person may choose to follow (the error for a client the owner never approved). */
    readonly link?: { href: string; label: string },
  ) {
    super(message);
    this.name = 'AuthorizationPageError';
  }
}

/** An error to deliver to a validated redirect URI (RFC 6749 §4.1.2.1, RFC 9207 `iss`). */
export class AuthorizationRedirectError extends Error {
  constructor(
    readonly redirectTo: string,
    readonly error: OAuthError,
    readonly clientId: string,
  ) {
    super(error.message);
    this.name = 'AuthorizationRedirectError';
  }
}

export interface AuthorizationRequest {
  client: ClientRecord;
  redirectUri: string;
  redirectUriProvided: boolean;
  state: string | undefined;
  scopes: string[];
  resource: string;
  codeChallenge: string;
}

const SINGLE_VALUED = ['client_id', 'redirect_uri', 'response_type', 'state', 'scope', 'code_challenge', 'code_challenge_method', 'resource'];
const MAX_STATE = 2048;

type Params = Record<string, string | string[] | undefined>;

function single(params: Params, name: string): string | undefined {
  const value = params[name];
  return Array.isArray(value) ? value[0] : value;
}

export function errorRedirect(redirectUri: string, error: OAuthError, state: string | undefined, issuer: string): string {
  return buildRedirect(redirectUri, { error: error.errorCode, error_description: error.message, state, iss: issuer });
}

/**
 * RFC 6749 §4.1.1 / OAuth 2.1 §4.1.1: checks an authorization request in the order that keeps
 * errors safe: client and redirect URI first (page errors), then everything else (redirected).
 */
export async function validateAuthorizationRequest(
  params: Params,
  deps: { store: Store; settings: OAuthSettings; clientDocuments?: ClientMetadataDocuments | undefined },
): Promise<AuthorizationRequest> {
  const clientId = single(params, 'client_id');
  if (!clientId) throw new AuthorizationPageError('Missing client', 'The request has no client_id, so it cannot be answered.');
  if (Array.isArray(params.client_id)) throw new AuthorizationPageError('Invalid request', 'client_id is given more than once.');
  const client = isUrlClientId(clientId)
    ? await clientFromDocument(clientId, deps.clientDocuments)
    : clientId.length <= 200
      ? await deps.store.getClient(clientId)
      : undefined;
  if (!client) {
    throw new AuthorizationPageError('Unknown application', 'This application is not registered with this server. Remove the connector and add it again.');
  }

  if (Array.isArray(params.redirect_uri)) throw new AuthorizationPageError('Invalid redirect URI', 'redirect_uri is given more than once.');
  const requestedRedirect = params.redirect_uri;
  let redirectUri: string;
  if (requestedRedirect === undefined || requestedRedirect === '') {
    // OAuth 2.1 §4.1.1: optional only when exactly one URI is registered.
    if (client.redirectUris.length !== 1) {
      throw new AuthorizationPageError(
        'Missing redirect URI',
        'This application registered several redirect URIs and the request does not say which one to use.',
      );
    }
    redirectUri = client.redirectUris[0]!;
  } else {
    const matched = matchRedirectUri(requestedRedirect, client.redirectUris);
    if (!matched) {
      throw new AuthorizationPageError(
        'Redirect URI mismatch',
        'The redirect URI of this request is not one this application registered, so the answer is not sent anywhere.',
      );
    }
    redirectUri = matched;
  }
  // A record written before today's registration rules (a non-ASCII or OS-handler URI) is never redirected to.
  if (redirectUriProblem(redirectUri) !== undefined) {
    throw new AuthorizationPageError(
      'Redirect URI not accepted',
      'This application registered a redirect URI this server no longer accepts. Remove the connector and add it again.',
    );
  }
  // A metadata-document client registers nothing, so a closed server checks its redirect here, as /register would.
  if (isUrlClientId(client.clientId) && deps.settings.redirectPolicy && !deps.settings.redirectPolicy.allows(redirectUri)) {
    throw new AuthorizationPageError(
      'Redirect URI not allowed',
      'This server only accepts the redirect URIs its owner allowed (auth.redirectUriAllowlist), and this application’s is not one of them.',
    );
  }
  const redirectUriProvided = requestedRedirect !== undefined && requestedRedirect !== '';
  const state = single(params, 'state');
  const fail = (error: OAuthError): never => {
    const target = errorRedirect(redirectUri, error, state !== undefined && state.length <= MAX_STATE ? state : undefined, deps.settings.issuer);
    if (errorsMayRedirect(client, redirectUri, deps.settings)) throw new AuthorizationRedirectError(target, error, client.clientId);
    // RFC 9700 §4.11.2: anyone can register a redirect URI, so an immediate redirect to it would make
    // this server an open redirector. The person sees the error and chooses whether to go on.
    throw new AuthorizationPageError(
      `This request cannot be answered (${error.errorCode})`,
      `${error.message}. The application that sent you here has not been approved on this server yet, so you are not sent back to it automatically.`,
      400,
      {
        href: target,
        label: `Return to ${redirectHost(redirectUri)} with this error`,
      },
    );
  };

  // RFC 6749 §3.1: request parameters MUST NOT be included more than once.
  const repeated = SINGLE_VALUED.filter((name) => Array.isArray(params[name]));
  if (repeated.length > 0) fail(new InvalidRequestError(`${repeated.join(', ')} must not be repeated (RFC 6749 §3.1)`));
  if (state !== undefined && state.length > MAX_STATE) fail(new InvalidRequestError(`state is longer than ${MAX_STATE} characters`));

  const responseType = single(params, 'response_type');
  if (!responseType) fail(new InvalidRequestError('response_type is required'));
  if (responseType !== 'code') fail(new UnsupportedResponseTypeError('only response_type=code is supported (OAuth 2.1 §4.1)'));
  if (!client.grantTypes.includes('authorization_code')) fail(new UnauthorizedClientError('this client is not registered for the authorization_code grant'));

  // OAuth 2.1 §4.1.1 and RFC 7636 §4.3: PKCE is required, and only S256 is accepted (plain is refused).
  const challenge = single(params, 'code_challenge');
  const method = single(params, 'code_challenge_method');
  if (!challenge) fail(new InvalidRequestError('code_challenge is required (PKCE, RFC 7636)'));
  if (method !== 'S256') fail(new InvalidRequestError(method ? 'code_challenge_method must be S256' : 'code_challenge_method=S256 is required'));
  if (!isValidS256Challenge(challenge!)) fail(new InvalidRequestError('code_challenge must be 43 base64url characters (RFC 7636 §4.2)'));

  let scopes: string[] = [];
  let resource = deps.settings.issuer;
  try {
    scopes = resolveScopes(single(params, 'scope'), deps.settings);
    resource = resolveResource(single(params, 'resource'), deps.settings);
  } catch (error) {
    if (error instanceof OAuthError) fail(error);
    throw error;
  }

  return { client, redirectUri, redirectUriProvided, state, scopes, resource, codeChallenge: challenge! };
}

/**
 * RFC 9700 §4.11.2 / RFC 6749 §10.15: an error found before the owner saw the consent page is
 * redirected only where the owner has vouched for the target: a client approved before, the
 * built-in client, a metadata-document client (its redirect URIs are published at its own URL),
 * or a redirect URI of a trusted-client preset or of the owner's allowlist.
 */
export function errorsMayRedirect(client: ClientRecord, redirectUri: string, settings: OAuthSettings): boolean {
  return (
    client.approvedAt !== undefined ||
    client.firstParty === true ||
    isUrlClientId(client.clientId) ||
    settings.presetRedirects.allows(redirectUri) ||
    (settings.redirectPolicy?.allows(redirectUri) ?? false)
  );
}

function redirectHost(uri: string): string {
  try {
    const url = new URL(uri);
    return url.host || url.protocol;
  } catch {
    return 'the application';
  }
}

/**
 * A client_id that is a URL names its client metadata document (CIMD): the client is what the
 * document says, never a stored record, and a document that cannot be used is shown as a page
 * (RFC 6749 §4.1.2.1: the client is not validated, so nothing is redirected).
 */
async function clientFromDocument(clientId: string, documents: ClientMetadataDocuments | undefined): Promise<ClientRecord> {
  const shown = clientId.length > 200 ? `${clientId.slice(0, 200)}…` : clientId;
  if (!documents) throw new AuthorizationPageError('Unknown application', 'This server does not accept client metadata documents.');
  try {
    return await documents.resolve(clientId);
  } catch (error) {
    if (!(error instanceof MetadataDocumentError)) throw error;
    throw new AuthorizationPageError(
      'Application could not be verified',
      `This application identifies itself with the metadata document at ${shown}, which cannot be used: ${error.message}.`,
    );
  }
}

export interface PendingAuthorization {
  id: string;
  request: AuthorizationRequest;
  /** Value of the hidden form field; must come back with the matching cookie. */
  csrfToken: string;
  /** Value of the browser cookie this form is bound to. */
  browserBinding: string;
  expiresAt: number;
}

/**
 * Consent forms waiting for the owner's answer. Single use, expiring with the code TTL.
 * In memory: a restart only asks the person to start the connection again.
 */
export class PendingAuthorizations {
  private readonly pending = new Map<string, PendingAuthorization>();
  private static readonly MAX = 10_000;

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  create(request: AuthorizationRequest, browserBinding: string): PendingAuthorization {
    this.prune();
    if (this.pending.size >= PendingAuthorizations.MAX) {
      // Oldest first: a flood of unanswered forms must not grow memory without bound.
      const oldest = this.pending.keys().next().value;
      if (oldest !== undefined) this.pending.delete(oldest);
    }
    const entry: PendingAuthorization = { id: randomToken(18), request, csrfToken: randomToken(24), browserBinding, expiresAt: this.clock.now() + this.ttlMs };
    this.pending.set(entry.id, entry);
    return entry;
  }

  /** The pending form if the id, CSRF field and cookie all match; it is not consumed. */
  find(id: string, csrfToken: string, browserBinding: string | undefined): PendingAuthorization | undefined {
    const entry = this.pending.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.pending.delete(id);
      return undefined;
    }
    if (!browserBinding || !constantTimeEqual(csrfToken, entry.csrfToken) || !constantTimeEqual(browserBinding, entry.browserBinding)) return undefined;
    return entry;
  }

  /** Single use: true only for the first caller. */
  consume(id: string): boolean {
    return this.pending.delete(id);
  }

  private prune(): void {
    const now = this.clock.now();
    for (const [id, entry] of this.pending) if (entry.expiresAt <= now) this.pending.delete(id);
  }
}

/**
 * Failed owner-password attempts per client address (IPv6 per /64): 5 in 15 minutes lock the
 * form for that address until the oldest failure is 15 minutes old (DESIGN.md §4). A check in
 * flight counts against the limit from the moment it starts, so concurrent guesses cannot all
 * slip past the lock while scrypt runs.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly inFlight = new Map<string, number>();
  /** DESIGN.md §4: 5 wrong passwords in 15 minutes (config `limits.loginFailures`). */
  static readonly LIMIT = 5;
  static readonly WINDOW_MS = 15 * 60_000;
  readonly limit: number;
  readonly windowMs: number;

  constructor(
    private readonly clock: Clock,
    window: { limit: number; windowMs: number } = { limit: LoginThrottle.LIMIT, windowMs: LoginThrottle.WINDOW_MS },
  ) {
    this.limit = window.limit;
    this.windowMs = window.windowMs;
  }

  /**
   * Failures at or before `at` stop counting: the owner lifted the lockouts (`cupcake-mcp unlock`)
   * or changed the password (`passwd`), possibly from another process.
   */
  forgetBefore(at: number): void {
    if (at <= this.forgottenBefore) return;
    this.forgottenBefore = at;
    for (const [key, list] of this.failures) {
      const kept = list.filter((t) => t > at);
      if (kept.length === 0) this.failures.delete(key);
      else this.failures.set(key, kept);
    }
  }

  private forgottenBefore = 0;

  isLocked(address: string): boolean {
    return this.recent(rateLimitKey(address)).length >= this.limit;
  }

  /** Reserves an attempt; false when failures plus attempts in flight already reach the limit. */
  begin(address: string): boolean {
    const key = rateLimitKey(address);
    const pending = this.inFlight.get(key) ?? 0;
    if (this.recent(key).length + pending >= this.limit) return false;
    this.inFlight.set(key, pending + 1);
    return true;
  }

  /** Ends a reserved attempt, recording it when it failed. Returns true when this failure locked the address. */
  end(address: string, outcome: { failed: boolean }): boolean {
    const key = rateLimitKey(address);
    const pending = (this.inFlight.get(key) ?? 1) - 1;
    if (pending > 0) this.inFlight.set(key, pending);
    else this.inFlight.delete(key);
    if (!outcome.failed) return false;
    const list = this.recent(key);
    list.push(this.clock.now());
    this.failures.set(key, list);
    if (this.failures.size > 100_000) this.sweep();
    return list.length === this.limit;
  }

  retryAfterSeconds(address: string): number {
    const list = this.recent(rateLimitKey(address));
    if (list.length === 0) return 1;
    return Math.max(1, Math.ceil((list[0]! + this.windowMs - this.clock.now()) / 1000));
  }

  private recent(key: string): number[] {
    const cutoff = this.clock.now() - this.windowMs;
    return (this.failures.get(key) ?? []).filter((t) => t > cutoff);
  }

  private sweep(): void {
    for (const key of this.failures.keys()) if (this.recent(key).length === 0) this.failures.delete(key);
  }
}

/** What the consent page says when the form is locked: how to get back in. */
export function lockedMessage(retryAfterSeconds: number): string {
  const minutes = Math.max(1, Math.ceil(retryAfterSeconds / 60));
  return (
    `Too many wrong passwords from this address. Wait ${minutes} minute${minutes === 1 ? '' : 's'} and start again — or, if you are the owner, ` +
    'run "cupcake-mcp unlock" on the server (changing the password with "cupcake-mcp passwd" also lifts the lock).'
  );
}

export function checkOwnerPassword(password: string, store: Store): Promise<boolean> {
  return store.getOwner().then((owner) => verifyPassword(password, owner.passwordHash));
}

/** Issues the authorization code for an approved request; returns it with the redirect (RFC 6749 §4.1.2, RFC 9207). */
export async function issueAuthorizationCode(
  request: AuthorizationRequest,
  deps: { store: Store; clock: Clock; settings: OAuthSettings },
): Promise<{ code: string; grantId: string; redirectTo: string }> {
  const code = generateAuthorizationCode();
  const now = deps.clock.now();
  const grantId = newUuid();
  await deps.store.saveCode({
    codeHash: hashSecret(code),
    clientId: request.client.clientId,
    redirectUri: request.redirectUri,
    redirectUriProvided: request.redirectUriProvided,
    codeChallenge: request.codeChallenge,
    scopes: request.scopes,
    resource: request.resource,
    grantId,
    createdAt: now,
    expiresAt: now + deps.settings.authorizationCodeTtlMs,
    usedAt: null,
  });
  return { code, grantId, redirectTo: buildRedirect(request.redirectUri, { code, state: request.state, iss: deps.settings.issuer }) };
}
