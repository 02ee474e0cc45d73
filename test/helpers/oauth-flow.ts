import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { OWNER_PASSWORD, type TestServer } from './server.js';

/**
 * Fetch-level helpers for the OAuth integration tests: an HTTP client that records every
 * response (to prove that none was a 5xx or carried a stack trace) and every credential it saw
 * (to prove that none of them reached db.json or events.jsonl in plaintext), plus the steps of
 * the authorization-code flow as a browser and a client perform them.
 */

export interface RecordedResponse {
  method: string;
  url: string;
  status: number;
  headers: Headers;
  body: string;
}

/** A response whose body was already read: `text` and `json()` are synchronous. */
export interface ReadResponse {
  status: number;
  headers: Headers;
  text: string;
  json<T = any>(): T;
  location(): URL;
}

const SECRET_FIELDS = ['client_secret', 'access_token', 'refresh_token'];

export class RecordingHttp {
  readonly responses: RecordedResponse[] = [];
  readonly secrets = new Set<string>();

  constructor(readonly baseUrl: string) {}

  /** Remembers a credential that must never be written to disk in plaintext. */
  secret(value: string | undefined | null): void {
    if (value) this.secrets.add(value);
  }

  async request(path: string, init: RequestInit = {}): Promise<ReadResponse> {
    const url = path.startsWith('http') ? path : `${this.baseUrl}${path}`;
    const response = await fetch(url, { redirect: 'manual', ...init });
    const text = await response.text();
    const method = init.method ?? 'GET';
    this.responses.push({ method, url, status: response.status, headers: response.headers, body: text });
    this.harvest(response.headers, text);
    return {
      status: response.status,
      headers: response.headers,
      text,
      json: () => JSON.parse(text),
      location: () => {
        const location = response.headers.get('location');
        if (!location) throw new Error(`expected a Location header on ${method} ${url} (status ${response.status}): ${text.slice(0, 300)}`);
        return new URL(location, url);
      },
    };
  }

  get(path: string, headers: Record<string, string> = {}): Promise<ReadResponse> {
    return this.request(path, { headers });
  }

  postJson(path: string, body: unknown, headers: Record<string, string> = {}): Promise<ReadResponse> {
    return this.request(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  }

  postForm(path: string, form: Record<string, string | undefined>, headers: Record<string, string> = {}): Promise<ReadResponse> {
    const body = new URLSearchParams();
    for (const [key, value] of Object.entries(form)) if (value !== undefined) body.append(key, value);
    return this.request(path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
  }

  private harvest(headers: Headers, text: string): void {
    const location = headers.get('location');
    if (location) {
      try {
        this.secret(new URL(location).searchParams.get('code'));
      } catch {
        /* not a URL: nothing to harvest */
      }
    }
    for (const cookie of headers.getSetCookie()) this.secret(cookie.split(';')[0]!.split('=')[1]);
    for (const match of text.matchAll(/name="(?:csrf_token|request_id)" value="([^"]+)"/g)) this.secret(match[1]);
    if ((headers.get('content-type') ?? '').includes('json')) {
      try {
        const value = JSON.parse(text) as Record<string, unknown>;
        for (const field of SECRET_FIELDS) if (typeof value[field] === 'string') this.secret(value[field] as string);
      } catch {
        /* not JSON after all */
      }
    }
  }
}

/** A line of a Node stack trace, as it would appear in a response or a log. */
export const STACK_LINE = /^\s+at .+[:(]/m;

/** Text that only a leaked stack trace or internal error would put in a response. */
const STACK_TRACE = /\n\s+at\s|\bat\s+\S+\s+\(.*:\d+:\d+\)|node_modules|\.ts:\d+|\.js:\d+:\d+|\b(TypeError|ReferenceError|SyntaxError|RangeError):/;

/** DESIGN.md §4: no request ever produces a 5xx or a stack trace in a response. */
export function expectNoServerErrors(http: RecordingHttp): void {
  expect(http.responses.length).toBeGreaterThan(0);
  const bad = http.responses.filter((r) => r.status >= 500 || STACK_TRACE.test(r.body));
  expect(bad.map((r) => `${r.method} ${r.url} → ${r.status} ${r.body.slice(0, 200)}`)).toEqual([]);
}

/** RFC 6749 §4.1.2.1, §5.2: the character set of `error` and `error_description`. */
const ERROR_CHARS = /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * RFC 6749 §4.1.2.1 and §5.2: every OAuth error the suite received, in a JSON body or on a
 * redirect, has an `error` code and a description made only of the allowed characters.
 */
export function expectWellFormedErrors(http: RecordingHttp): void {
  const errors: Array<{ where: string; error: unknown; description: unknown }> = [];
  for (const r of http.responses) {
    const location = r.headers.get('location');
    if (location) {
      const params = new URL(location, r.url).searchParams;
      if (params.has('error'))
        errors.push({ where: `${r.method} ${r.url} → ${location}`, error: params.get('error'), description: params.get('error_description') });
    }
    if ((r.headers.get('content-type') ?? '').includes('json') && r.status >= 400) {
      const body = JSON.parse(r.body) as Record<string, unknown>;
      errors.push({ where: `${r.method} ${r.url} → ${r.status}`, error: body.error, description: body.error_description });
    }
  }
  expect(errors.length).toBeGreaterThan(0);
  const bad = errors.filter(
    (e) =>
      typeof e.error !== 'string' ||
      !/^[a-z_]+$/.test(e.error) ||
      (e.description !== undefined && e.description !== null && (typeof e.description !== 'string' || !ERROR_CHARS.test(e.description))),
  );
  expect(bad.map((e) => `${e.where}: ${String(e.error)} ${JSON.stringify(e.description)}`)).toEqual([]);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/**
 * DESIGN.md §6/§7: db.json and events.jsonl hold no token, code, secret or password in plaintext.
 * Flushes first, checks that the files really hold the records (so that the grep cannot pass on
 * an empty directory), then greps every file of the data dir for every secret seen.
 */
export async function expectNoSecretsAtRest(server: TestServer, secrets: Iterable<string>): Promise<void> {
  await server.store.flush();
  await server.events.flush();
  const files = await filesUnder(server.dataDir);
  const contents = await Promise.all(files.map(async (path) => ({ path, text: await readFile(path, 'utf8') })));
  const db = contents.find((f) => f.path.endsWith('db.json'));
  const events = contents.find((f) => f.path.endsWith('events.jsonl'));
  expect(db?.text).toContain('"clientSecretHash"');
  expect(events?.text).toContain('"client.registered"');
  const all = [...new Set(secrets)].filter((s) => s.length >= 8);
  expect(all.length).toBeGreaterThan(3);
  const leaks: string[] = [];
  for (const secret of all) {
    for (const file of contents) if (file.text.includes(secret)) leaks.push(`${file.path}: ${secret.slice(0, 6)}…`);
  }
  expect(leaks).toEqual([]);
}

// ---------------------------------------------------------------------------------------------
// PKCE and client credentials, computed here independently of src/oauth.

export function newVerifier(): string {
  return randomBytes(32).toString('base64url');
}

export function challengeOf(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** The SHA-256 hex under which db.json keys a token (DESIGN.md §6). */
export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

/** RFC 6749 §2.3.1: HTTP Basic with the id and secret form-urlencoded first. */
export function basic(clientId: string, secret: string, { encode = false }: { encode?: boolean } = {}): string {
  const form = (s: string) => (encode ? encodeURIComponent(s).replace(/%20/g, '+') : s);
  return `Basic ${Buffer.from(`${form(clientId)}:${form(secret)}`, 'utf8').toString('base64')}`;
}

// ---------------------------------------------------------------------------------------------
// The flow.

export const CHATGPT_REDIRECT = 'https://chatgpt.com/connector_platform_oauth_redirect';
export const CLAUDE_REDIRECT = 'https://claude.ai/api/mcp/auth_callback';

export interface RegisteredClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  token_endpoint_auth_method: string;
  grant_types: string[];
  [key: string]: unknown;
}

export async function register(http: RecordingHttp, metadata: Record<string, unknown>): Promise<RegisteredClient> {
  const response = await http.postJson('/register', metadata);
  expect(response.status, response.text).toBe(201);
  return response.json<RegisteredClient>();
}

export function registerChatGpt(http: RecordingHttp, redirect = CHATGPT_REDIRECT): Promise<RegisteredClient> {
  return register(http, { client_name: 'ChatGPT', redirect_uris: [redirect] });
}

export interface ConsentForm {
  response: ReadResponse;
  /** `name=value` of the browser cookie the form is bound to. */
  cookie: string;
  requestId: string;
  csrfToken: string;
}

/** GET /authorize as the browser does; expects the consent page. */
export async function openConsent(http: RecordingHttp, query: Record<string, string | undefined>): Promise<ConsentForm> {
  const response = await http.get(`/authorize?${toQuery(query)}`);
  expect(response.status, response.text.slice(0, 500)).toBe(200);
  const cookie = response.headers.getSetCookie()[0]?.split(';')[0];
  const requestId = /name="request_id" value="([^"]+)"/.exec(response.text)?.[1];
  const csrfToken = /name="csrf_token" value="([^"]+)"/.exec(response.text)?.[1];
  if (!cookie || !requestId || !csrfToken) throw new Error(`not a consent form: ${response.text.slice(0, 300)}`);
  return { response, cookie, requestId, csrfToken };
}

/** POST /authorize with the form's hidden fields, the cookie and a decision. */
export function answerConsent(
  http: RecordingHttp,
  form: ConsentForm,
  {
    decision = 'approve',
    password = OWNER_PASSWORD,
    cookie = form.cookie,
    csrfToken = form.csrfToken,
  }: { decision?: string; password?: string; cookie?: string | null; csrfToken?: string } = {},
): Promise<ReadResponse> {
  http.secret(password);
  return http.postForm('/authorize', { request_id: form.requestId, csrf_token: csrfToken, password, decision }, cookie === null ? {} : { cookie });
}

export function toQuery(query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.append(key, value);
  return params.toString();
}

export interface AuthorizationRequestParams {
  client_id: string;
  redirect_uri?: string | undefined;
  scope?: string | undefined;
  state?: string | undefined;
  resource?: string | undefined;
  code_challenge?: string | undefined;
  code_challenge_method?: string | undefined;
}

/** Consent approved with the owner password; returns the code and the whole redirect. */
export async function authorize(
  http: RecordingHttp,
  params: AuthorizationRequestParams & { verifier?: string },
): Promise<{ code: string; redirect: URL; verifier: string }> {
  const verifier = params.verifier ?? newVerifier();
  http.secret(verifier);
  const { verifier: _ignored, ...rest } = params;
  const form = await openConsent(http, { response_type: 'code', code_challenge: challengeOf(verifier), code_challenge_method: 'S256', ...rest });
  const answer = await answerConsent(http, form);
  expect(answer.status, answer.text.slice(0, 300)).toBe(302);
  const redirect = answer.location();
  const code = redirect.searchParams.get('code');
  if (!code) throw new Error(`no code in ${redirect.href}`);
  return { code, redirect, verifier };
}

/** POST /token for an authorization code with HTTP Basic (the seed's way). */
export function exchangeWithBasic(
  http: RecordingHttp,
  client: RegisteredClient,
  params: { code: string; verifier: string; redirect_uri?: string | undefined },
): Promise<ReadResponse> {
  return http.postForm(
    '/token',
    { grant_type: 'authorization_code', code: params.code, code_verifier: params.verifier, redirect_uri: params.redirect_uri },
    { authorization: basic(client.client_id, client.client_secret!) },
  );
}

/** Registration, consent and token for a ChatGPT-like confidential client; returns the token response. */
export async function obtainTokens(
  http: RecordingHttp,
  client: RegisteredClient,
  options: { redirect_uri?: string; scope?: string; resource?: string } = {},
): Promise<{ access_token: string; refresh_token?: string; scope: string; expires_in: number; token_type: string }> {
  const redirectUri = options.redirect_uri ?? client.redirect_uris[0]!;
  const { code, verifier } = await authorize(http, {
    client_id: client.client_id,
    redirect_uri: redirectUri,
    scope: options.scope,
    resource: options.resource,
    state: 'xyz',
  });
  const response =
    client.token_endpoint_auth_method === 'none'
      ? await http.postForm('/token', {
          grant_type: 'authorization_code',
          code,
          code_verifier: verifier,
          redirect_uri: redirectUri,
          client_id: client.client_id,
        })
      : await exchangeWithBasic(http, client, { code, verifier, redirect_uri: redirectUri });
  expect(response.status, response.text).toBe(200);
  return response.json();
}

/** Finds `null` anywhere in a JSON value; returns the paths. */
export function nullPaths(value: unknown, path = '$'): string[] {
  if (value === null) return [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => nullPaths(v, `${path}[${i}]`));
  if (typeof value === 'object') return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => nullPaths(v, `${path}.${k}`));
  return [];
}

// ---------------------------------------------------------------------------------------------
// The whole flow in one call.

export interface FlowResult {
  clientId?: string;
  clientSecret?: string;
  code?: string;
  verifier?: string;
  accessToken?: string;
  refreshToken?: string;
  cookie?: string;
  requestId?: string;
  csrfToken?: string;
  /** Status of each step, in order: register, authorize GET, authorize POST, token. */
  statuses: number[];
}

export interface FlowOptions {
  password?: string;
  redirectUri?: string;
  clientName?: string;
  authMethod?: 'client_secret_basic' | 'client_secret_post' | 'none';
  /** Sent on every request (e.g. X-Forwarded-For behind a trusted proxy). */
  headers?: Record<string, string>;
  /** Called as soon as a step got its 2xx/302, before the next one starts. */
  onRegistered?(clientId: string): void;
  onToken?(accessToken: string): void;
  /** Use an existing registration instead of registering. */
  client?: { clientId: string; clientSecret?: string };
}

/**
 * The ChatGPT flow over plain fetch, for suites that load or break the server (reliability, e2e
 * against `serve`): register (unless a client is given), consent with the password,
 * token with HTTP Basic (or the body for client_secret_post / none). Stops at the first refusal
 * and never throws on one (a burst keeps going while a server dies under it); a network error
 * (server gone) rejects.
 */
export async function runFlow(base: string, options: FlowOptions = {}): Promise<FlowResult> {
  const result: FlowResult = { statuses: [] };
  const headers = options.headers ?? {};
  const redirectUri = options.redirectUri ?? CHATGPT_REDIRECT;
  const method = options.authMethod ?? 'client_secret_basic';
  if (options.client) {
    result.clientId = options.client.clientId;
    if (options.client.clientSecret) result.clientSecret = options.client.clientSecret;
  } else {
    const reg = await fetch(`${base}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ client_name: options.clientName ?? 'ChatGPT', redirect_uris: [redirectUri], token_endpoint_auth_method: method }),
    });
    result.statuses.push(reg.status);
    const body = (await reg.json().catch(() => ({}))) as { client_id?: string; client_secret?: string };
    if (reg.status !== 201 || !body.client_id) return result;
    result.clientId = body.client_id;
    if (body.client_secret) result.clientSecret = body.client_secret;
    options.onRegistered?.(body.client_id);
  }
  const verifier = newVerifier();
  result.verifier = verifier;
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: result.clientId!,
    redirect_uri: redirectUri,
    code_challenge: challengeOf(verifier),
    code_challenge_method: 'S256',
    state: 'st',
    scope: 'mcp',
  });
  const page = await fetch(`${base}/authorize?${query}`, { headers, redirect: 'manual' });
  result.statuses.push(page.status);
  const html = await page.text();
  const cookie = page.headers.getSetCookie()[0]?.split(';')[0];
  const requestId = /name="request_id" value="([^"]+)"/.exec(html)?.[1];
  const csrfToken = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1];
  if (page.status !== 200 || !cookie || !requestId || !csrfToken) return result;
  Object.assign(result, { cookie: cookie.split('=')[1], requestId, csrfToken });
  const answer = await fetch(`${base}/authorize`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, ...headers },
    body: new URLSearchParams({ request_id: requestId, csrf_token: csrfToken, password: options.password ?? OWNER_PASSWORD, decision: 'approve' }),
  });
  result.statuses.push(answer.status);
  await answer.arrayBuffer();
  const location = answer.headers.get('location');
  const code = location ? new URL(location).searchParams.get('code') : null;
  if (answer.status !== 302 || !code) return result;
  result.code = code;
  const form = new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri });
  const tokenHeaders: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...headers };
  if (method === 'client_secret_basic') tokenHeaders.authorization = basic(result.clientId!, result.clientSecret!);
  else {
    form.set('client_id', result.clientId!);
    if (method === 'client_secret_post') form.set('client_secret', result.clientSecret!);
  }
  const token = await fetch(`${base}/token`, { method: 'POST', headers: tokenHeaders, body: form });
  result.statuses.push(token.status);
  const tokenBody = (await token.json().catch(() => ({}))) as { access_token?: string; refresh_token?: string };
  if (token.status !== 200 || !tokenBody.access_token) return result;
  result.accessToken = tokenBody.access_token;
  if (tokenBody.refresh_token) result.refreshToken = tokenBody.refresh_token;
  options.onToken?.(tokenBody.access_token);
  return result;
}
