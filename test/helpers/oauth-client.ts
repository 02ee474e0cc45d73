import { randomBytes } from 'node:crypto';
import { auth, type OAuthClientProvider, type OAuthDiscoveryState } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { OWNER_PASSWORD } from './server.js';

export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

export interface HeadlessProviderOptions {
  /** What the client registers; the SDK then authenticates at /token with the method the server confirms. */
  authMethod: TokenEndpointAuthMethod;
  /** Where the code is "delivered"; nothing listens there: the provider reads the 302 instead. */
  redirectUrl?: string;
  clientName?: string;
  password?: string;
  decision?: 'approve' | 'deny';
  grantTypes?: string[];
}

/** What the browser saw at the end of the consent step. */
export interface AuthorizationOutcome {
  /** The redirect the server answered the consent form with (RFC 6749 §4.1.2). */
  redirect: URL;
  code: string | undefined;
  state: string | undefined;
}

/**
 * An OAuthClientProvider for the MCP SDK that stands in for the person at the browser:
 * `redirectToAuthorization` opens the consent page keeping its cookie, reads the hidden
 * `request_id` and `csrf_token`, posts the decision with the owner password and captures the
 * code from the 302 `Location`. Everything the SDK saves is kept in memory, stamped as given.
 *
 * Use with `auth()` directly (see `authorizeWithSdk`), or as a transport's `authProvider`
 * followed by `transport.finishAuth(provider.takeAuthorizationCode())`.
 */
export class HeadlessOAuthClientProvider implements OAuthClientProvider {
  private client: OAuthClientInformationMixed | undefined;
  private savedTokens: OAuthTokens | undefined;
  private verifier: string | undefined;
  private discovery: OAuthDiscoveryState | undefined;
  private lastState: string | undefined;
  /** Every consent round trip, oldest first. */
  readonly outcomes: AuthorizationOutcome[] = [];
  /** Every value the SDK saved that must never reach the server's disk (secrets, tokens, codes, verifiers). */
  readonly secrets = new Set<string>();
  readonly invalidations: string[] = [];

  constructor(private readonly options: HeadlessProviderOptions) {}

  get redirectUrl(): string {
    return this.options.redirectUrl ?? (this.options.authMethod === 'none' ? 'http://127.0.0.1:53682/oauth/callback' : 'https://client.example/oauth/callback');
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.options.clientName ?? `SDK client (${this.options.authMethod})`,
      redirect_uris: [this.redirectUrl],
      grant_types: this.options.grantTypes ?? ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: this.options.authMethod,
    };
  }

  state(): string {
    this.lastState = randomBytes(16).toString('hex');
    return this.lastState;
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.client;
  }

  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.client = info;
    if ('client_secret' in info && info.client_secret) this.secrets.add(info.client_secret);
  }

  tokens(): OAuthTokens | undefined {
    return this.savedTokens;
  }

  saveTokens(tokens: OAuthTokens): void {
    this.savedTokens = tokens;
    this.secrets.add(tokens.access_token);
    if (tokens.refresh_token) this.secrets.add(tokens.refresh_token);
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
    this.secrets.add(verifier);
  }

  codeVerifier(): string {
    if (!this.verifier) throw new Error('no code verifier saved');
    return this.verifier;
  }

  saveDiscoveryState(state: OAuthDiscoveryState): void {
    this.discovery = state;
  }

  discoveryState(): OAuthDiscoveryState | undefined {
    return this.discovery;
  }

  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): void {
    this.invalidations.push(scope);
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.savedTokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined;
  }

  /** The person at the browser: GET the consent page, POST the form, read the 302. */
  async redirectToAuthorization(authorizationUrl: URL): Promise<void> {
    const page = await fetch(authorizationUrl, { redirect: 'manual' });
    const html = await page.text();
    if (page.status !== 200) {
      const location = page.headers.get('location');
      if (location) return this.record(new URL(location));
      throw new Error(`consent page answered ${page.status}: ${html.slice(0, 300)}`);
    }
    const cookie = page.headers.getSetCookie()[0]?.split(';')[0];
    const requestId = /name="request_id" value="([^"]+)"/.exec(html)?.[1];
    const csrfToken = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1];
    if (!cookie || !requestId || !csrfToken) throw new Error(`not a consent form: ${html.slice(0, 300)}`);
    const action = new URL('/authorize', authorizationUrl);
    const answer = await fetch(action, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({
        request_id: requestId,
        csrf_token: csrfToken,
        password: this.options.password ?? OWNER_PASSWORD,
        decision: this.options.decision ?? 'approve',
      }),
    });
    const location = answer.headers.get('location');
    if (answer.status !== 302 || !location) throw new Error(`consent form answered ${answer.status}: ${(await answer.text()).slice(0, 300)}`);
    this.record(new URL(location));
  }

  /** The code of the last consent round trip; throws if there was none or it carried an error. */
  takeAuthorizationCode(): string {
    const last = this.outcomes.at(-1);
    if (!last?.code) throw new Error(`no authorization code: ${last?.redirect.href ?? 'the consent step never ran'}`);
    if (last.state !== this.lastState) throw new Error(`state mismatch: sent ${this.lastState}, got ${last.state}`);
    return last.code;
  }

  private record(redirect: URL): void {
    const code = redirect.searchParams.get('code') ?? undefined;
    if (code) this.secrets.add(code);
    this.outcomes.push({ redirect, code, state: redirect.searchParams.get('state') ?? undefined });
  }
}

/**
 * The SDK's whole flow against `serverUrl` (an MCP endpoint such as `<base>/mcp`): discovery,
 * registration and the authorization redirect in the first `auth()` call, the token exchange
 * in the second, exactly as an MCP client does after its redirect comes back.
 */
export async function authorizeWithSdk(serverUrl: string | URL, provider: HeadlessOAuthClientProvider): Promise<OAuthTokens> {
  const first = await auth(provider, { serverUrl });
  if (first === 'AUTHORIZED') return provider.tokens()!;
  const second = await auth(provider, { serverUrl, authorizationCode: provider.takeAuthorizationCode() });
  if (second !== 'AUTHORIZED') throw new Error(`auth() did not complete: ${second}`);
  const tokens = provider.tokens();
  if (!tokens) throw new Error('auth() completed without saving tokens');
  return tokens;
}
