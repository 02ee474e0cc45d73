import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { hashPassword } from '../../src/oauth/secrets.js';
import { createApp } from '../../src/server/app.js';
import { startServer, type RunningServer } from '../../src/server/start.js';
import { createFixedClock } from '../../src/shared/clock.js';
import { createFileEventLog } from '../../src/store/event-log.js';
import { createMemoryStore } from '../../src/store/memory-store.js';
import {
  answerConsent,
  authorize,
  challengeOf,
  CHATGPT_REDIRECT,
  expectNoSecretsAtRest,
  expectNoServerErrors,
  expectWellFormedErrors,
  newVerifier,
  openConsent,
  RecordingHttp,
  register,
  registerChatGpt,
  toQuery,
  type ReadResponse,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { OWNER_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';

const STATE = 'oauth_s_688d6e64f8cc8191b789773d7a93b806';

/** An HTML page for the person, never a redirect to the client (RFC 6749 §4.1.2.1). */
function expectErrorPage(response: ReadResponse, status = 400): void {
  expect(response.status).toBe(status);
  expect(response.headers.get('location')).toBeNull();
  expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  expect(response.headers.get('x-frame-options')).toBe('DENY');
  expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  expect(response.headers.get('cache-control')).toBe('no-store');
}

/** RFC 6749 §4.1.2.1 + RFC 9207 §2: error, error_description, state and iss on the client's redirect. */
function expectErrorRedirect(response: ReadResponse, issuer: string, redirectUri: string, error: string, state: string | undefined = STATE): URL {
  expect(response.status, response.text.slice(0, 300)).toBe(302);
  const location = response.location();
  expect(`${location.origin}${location.pathname}`).toBe(redirectUri);
  expect(location.searchParams.get('error')).toBe(error);
  expect(location.searchParams.get('error_description')).toEqual(expect.any(String));
  expect(location.searchParams.get('state')).toBe(state ?? null);
  expect(location.searchParams.get('iss')).toBe(issuer);
  expect(location.searchParams.get('code')).toBeNull();
  return location;
}

describe('GET and POST /authorize (RFC 6749 §4.1.1–§4.1.2, OAuth 2.1, RFC 9207)', () => {
  let server: TestServer;
  let http: RecordingHttp;
  let chatgpt: RegisteredClient;
  let challenge: string;

  const request = (overrides: Record<string, string | undefined> = {}) =>
    http.get(
      `/authorize?${toQuery({
        response_type: 'code',
        client_id: chatgpt.client_id,
        redirect_uri: CHATGPT_REDIRECT,
        state: STATE,
        scope: 'mcp',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        ...overrides,
      })}`,
    );

  beforeAll(async () => {
    server = await startTestServer();
    http = new RecordingHttp(server.url);
    chatgpt = await registerChatGpt(http);
    challenge = challengeOf(newVerifier());
  });
  afterAll(async () => {
    await server.close();
  });

  it("RFC 6749 §4.1.1: the seed's ChatGPT request shows the consent page naming the client, redirect host, scope and resource", async () => {
    const response = await request();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.text).toContain('ChatGPT');
    expect(response.text).toContain('chatgpt.com');
    expect(response.text).toContain('mcp');
    expect(response.text).toContain(server.url);
    expect(response.text).toMatch(/<form method="post" action="\/authorize"/);
    expect(response.text).toMatch(/<input[^>]+name="password"/);
    expect(response.text).toMatch(/<button[^>]+name="decision" value="approve"/);
    expect(response.text).toMatch(/<button[^>]+name="decision" value="deny"/);
  });

  it("DESIGN.md §4: the consent page forbids framing and caching (CSP frame-ancestors 'none', X-Frame-Options DENY, no-store)", async () => {
    const response = await request();
    expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const cookie = response.headers.getSetCookie()[0]!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=(Lax|Strict)/i);
  });

  it('DESIGN.md §4: client-supplied text is HTML-escaped on the consent page (<script> in client_name)', async () => {
    const evil = await register(http, { client_name: '<script>alert("pwned")</script><img src=x onerror=alert(1)>', redirect_uris: [CHATGPT_REDIRECT] });
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: evil.client_id,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: '"><script>alert(2)</script>',
    });
    const page = form.response.text;
    expect(page).not.toContain('<script>');
    expect(page).not.toContain('<img');
    expect(page).not.toContain('"><script');
    expect(page).toContain('&lt;script&gt;alert(');
  });

  it('RFC 9207 §2 + RFC 6749 §4.1.2: approval redirects to the registered URI with code, the same state and iss', async () => {
    const { redirect } = await authorize(http, { client_id: chatgpt.client_id, redirect_uri: CHATGPT_REDIRECT, state: STATE, scope: 'mcp' });
    expect(`${redirect.origin}${redirect.pathname}`).toBe(CHATGPT_REDIRECT);
    expect(redirect.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    expect(redirect.searchParams.get('state')).toBe(STATE);
    expect(redirect.searchParams.get('iss')).toBe(server.url);
  });

  it('OAuth 2.1 §4.1.1: redirect_uri may be omitted when exactly one is registered', async () => {
    const { redirect } = await authorize(http, { client_id: chatgpt.client_id, state: STATE });
    expect(`${redirect.origin}${redirect.pathname}`).toBe(CHATGPT_REDIRECT);
  });

  it('OAuth 2.1 §4.1.1: redirect_uri omitted while several are registered is an error page, never a redirect', async () => {
    const two = await register(http, { redirect_uris: [CHATGPT_REDIRECT, 'https://chatgpt.com/connector/oauth/two'] });
    expectErrorPage(await request({ client_id: two.client_id, redirect_uri: undefined }));
  });

  it('RFC 6749 §4.1.2.1: an unknown client_id is an HTML error page, never a redirect', async () => {
    expectErrorPage(await request({ client_id: '00000000-0000-4000-8000-000000000000' }));
    expectErrorPage(await request({ client_id: undefined }));
    expectErrorPage(await request({ client_id: 'x'.repeat(5000) }));
  });

  it.each([
    ['https://evil.example/callback', 'another host'],
    ['https://chatgpt.com/connector_platform_oauth_redirect/', 'a trailing slash'],
    ['https://chatgpt.com/connector_platform_oauth_redirect?x=1', 'an added query'],
    ['https://CHATGPT.com/connector_platform_oauth_redirect', 'different host case: exact string match'],
    ['https://chatgpt.com:8443/connector_platform_oauth_redirect', 'another port on a non-loopback URI'],
    ['javascript:alert(1)', 'a script URI'],
  ])('OAuth 2.1 §4.1.2.1: redirect_uri %s (%s) is an HTML error page, never a redirect', async (redirectUri) => {
    const response = await request({ redirect_uri: redirectUri });
    expectErrorPage(response);
    expect(response.text).not.toContain('evil.example');
  });

  it('RFC 6749 §3.1: a repeated client_id is an error page; a repeated state is invalid_request on the redirect', async () => {
    const query = toQuery({
      response_type: 'code',
      client_id: chatgpt.client_id,
      redirect_uri: CHATGPT_REDIRECT,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const base = `/authorize?${query}`;
    expectErrorPage(await http.get(`${base}&client_id=${chatgpt.client_id}`));
    const response = await http.get(`${base}&state=${STATE}&state=other`);
    expect(response.status).toBe(302);
    expect(response.location().searchParams.get('error')).toBe('invalid_request');
    expect(response.location().searchParams.get('iss')).toBe(server.url);
  });

  it('RFC 7636 §4.3 + OAuth 2.1 §4.1.1: code_challenge_method=plain is refused with invalid_request, state and iss', async () => {
    expectErrorRedirect(
      await request({ code_challenge: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', code_challenge_method: 'plain' }),
      server.url,
      CHATGPT_REDIRECT,
      'invalid_request',
    );
  });

  it('OAuth 2.1 §4.1.1: a missing code_challenge is refused with invalid_request, state and iss', async () => {
    expectErrorRedirect(await request({ code_challenge: undefined, code_challenge_method: undefined }), server.url, CHATGPT_REDIRECT, 'invalid_request');
    expectErrorRedirect(await request({ code_challenge: undefined }), server.url, CHATGPT_REDIRECT, 'invalid_request');
  });

  it('RFC 7636 §4.3: a code_challenge without a method (which would mean plain) is refused', async () => {
    expectErrorRedirect(await request({ code_challenge_method: undefined }), server.url, CHATGPT_REDIRECT, 'invalid_request');
  });

  it('RFC 7636 §4.2: an S256 challenge that is not 43 base64url characters is refused', async () => {
    expectErrorRedirect(await request({ code_challenge: 'too-short' }), server.url, CHATGPT_REDIRECT, 'invalid_request');
    expectErrorRedirect(await request({ code_challenge: `${challenge}=` }), server.url, CHATGPT_REDIRECT, 'invalid_request');
  });

  it('OAuth 2.1 §4.1.1: response_type other than code is unsupported_response_type; a missing one is invalid_request', async () => {
    expectErrorRedirect(await request({ response_type: 'token' }), server.url, CHATGPT_REDIRECT, 'unsupported_response_type');
    expectErrorRedirect(await request({ response_type: undefined }), server.url, CHATGPT_REDIRECT, 'invalid_request');
  });

  it('RFC 6749 §3.3: an unknown scope is refused with invalid_scope, state and iss', async () => {
    expectErrorRedirect(await request({ scope: 'mcp admin' }), server.url, CHATGPT_REDIRECT, 'invalid_scope');
    expectErrorRedirect(await request({ scope: 'openid' }), server.url, CHATGPT_REDIRECT, 'invalid_scope');
  });

  it('RFC 6749 §3.3: without a scope parameter the configured scopes are granted', async () => {
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: chatgpt.client_id,
      redirect_uri: CHATGPT_REDIRECT,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    expect(form.response.text).toMatch(/<dt>Access<\/dt><dd>mcp<\/dd>/);
  });

  it('DESIGN.md §4: offline_access is ignored, not refused, while refresh tokens are off', async () => {
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: chatgpt.client_id,
      scope: 'mcp offline_access',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    expect(form.response.text).toMatch(/<dt>Access<\/dt><dd>mcp<\/dd>/);
  });

  it.each([
    ['https://evil.example/mcp', 'another server'],
    ['https://evil.example', "another server's origin"],
    ['not a uri', 'not an absolute URI'],
    ['RESOURCE/mcp#frag', 'a fragment (RFC 8707 §2)'],
    ['RESOURCE/other', 'a path we do not serve'],
  ])('RFC 8707 §2: resource %s (%s) is refused with invalid_target, state and iss', async (resource) => {
    expectErrorRedirect(await request({ resource: resource.replace('RESOURCE', server.url) }), server.url, CHATGPT_REDIRECT, 'invalid_target');
  });

  it.each([
    ['', ''],
    ['/mcp', '/mcp'],
    ['/sse', '/sse'],
    ['/mcp/', '/mcp'],
    ['/', ''],
  ])('RFC 8707 §2: resource <base>%s is accepted and shown as <base>%s', async (suffix, canonical) => {
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: chatgpt.client_id,
      resource: `${server.url}${suffix}`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    expect(form.response.text).toContain(`<dt>Resource</dt><dd>${server.url}${canonical}</dd>`);
  });

  it('RFC 8707 §2: scheme and host case of the resource are tolerated', async () => {
    const shouting = `${server.url.replace('http://', 'HTTP://')}/mcp`;
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: chatgpt.client_id,
      resource: shouting,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    expect(form.response.text).toContain(`<dd>${server.url}/mcp</dd>`);
  });

  it('DESIGN.md §4: deny redirects with error=access_denied, the state and iss', async () => {
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: chatgpt.client_id,
      redirect_uri: CHATGPT_REDIRECT,
      state: STATE,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    expectErrorRedirect(await answerConsent(http, form, { decision: 'deny', password: '' }), server.url, CHATGPT_REDIRECT, 'access_denied');
  });

  it('DESIGN.md §4: a pending authorization request is single use', async () => {
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: chatgpt.client_id,
      state: STATE,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    expect((await answerConsent(http, form)).status).toBe(302);
    const again = await answerConsent(http, form);
    expectErrorPage(again);
    expect(again.text).not.toContain('code=');
    expectErrorPage(await answerConsent(http, form, { decision: 'deny' }));
  });

  it('DESIGN.md §4: a denied request cannot be approved afterwards', async () => {
    const form = await openConsent(http, { response_type: 'code', client_id: chatgpt.client_id, code_challenge: challenge, code_challenge_method: 'S256' });
    expect((await answerConsent(http, form, { decision: 'deny' })).status).toBe(302);
    expectErrorPage(await answerConsent(http, form));
  });

  it('DESIGN.md §4 (CSRF): a POST without the consent cookie is refused', async () => {
    const form = await openConsent(http, { response_type: 'code', client_id: chatgpt.client_id, code_challenge: challenge, code_challenge_method: 'S256' });
    expectErrorPage(await answerConsent(http, form, { cookie: null }));
    // The refusal did not spend the form: the browser that opened it can still answer.
    expect((await answerConsent(http, form)).status).toBe(302);
  });

  it("DESIGN.md §4 (CSRF): another browser's cookie does not match the form", async () => {
    const form = await openConsent(http, { response_type: 'code', client_id: chatgpt.client_id, code_challenge: challenge, code_challenge_method: 'S256' });
    const other = await openConsent(http, { response_type: 'code', client_id: chatgpt.client_id, code_challenge: challenge, code_challenge_method: 'S256' });
    expect(other.cookie).not.toBe(form.cookie);
    expectErrorPage(await answerConsent(http, form, { cookie: other.cookie }));
  });

  it('DESIGN.md §4 (CSRF): a missing or forged csrf_token is refused', async () => {
    const form = await openConsent(http, { response_type: 'code', client_id: chatgpt.client_id, code_challenge: challenge, code_challenge_method: 'S256' });
    expectErrorPage(await answerConsent(http, form, { csrfToken: '' }));
    expectErrorPage(await answerConsent(http, form, { csrfToken: 'A'.repeat(32) }));
    const missing = await http.postForm('/authorize', { request_id: form.requestId, password: OWNER_PASSWORD, decision: 'approve' }, { cookie: form.cookie });
    expectErrorPage(missing);
  });

  it('DESIGN.md §4: an unknown request_id is refused with an error page', async () => {
    const form = await openConsent(http, { response_type: 'code', client_id: chatgpt.client_id, code_challenge: challenge, code_challenge_method: 'S256' });
    expectErrorPage(
      await http.postForm(
        '/authorize',
        { request_id: 'nope', csrf_token: form.csrfToken, password: OWNER_PASSWORD, decision: 'approve' },
        { cookie: form.cookie },
      ),
    );
  });

  it('DESIGN.md §4: a decision other than approve or deny shows the form again', async () => {
    const form = await openConsent(http, { response_type: 'code', client_id: chatgpt.client_id, code_challenge: challenge, code_challenge_method: 'S256' });
    const response = await answerConsent(http, form, { decision: 'maybe' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(response.text).toContain('name="password"');
  });

  it('DESIGN.md §4: a wrong password shows the page again with 401 and an error; the form stays usable', async () => {
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: chatgpt.client_id,
      state: STATE,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const wrong = await answerConsent(http, form, { password: 'wrong password' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('location')).toBeNull();
    expect(wrong.headers.get('x-frame-options')).toBe('DENY');
    expect(wrong.text).toMatch(/role="alert"/);
    expect(wrong.text).toContain('name="password"');
    const right = await answerConsent(http, form);
    expect(right.status).toBe(302);
    expect(right.location().searchParams.get('code')).toBeTruthy();
  });

  it('DESIGN.md §4: the POST form body is size-limited too (413 JSON)', async () => {
    const response = await http.request('/authorize', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `password=${'x'.repeat(1_100_000)}`,
    });
    expect(response.status).toBe(413);
  });

  it('DESIGN.md §7: the flow is logged as authorization.requested, authorization.approved, code.issued, without codes or passwords', async () => {
    const fresh = await registerChatGpt(http);
    const { code } = await authorize(http, { client_id: fresh.client_id, state: STATE });
    await server.events.flush();
    const events = await server.events.readLast(20, { clientId: fresh.client_id });
    expect(events.map((e) => e.type)).toEqual(['client.registered', 'authorization.requested', 'authorization.approved', 'code.issued']);
    const text = JSON.stringify(events);
    expect(text).not.toContain(code);
    expect(text).not.toContain(OWNER_PASSWORD);
  });

  it('DESIGN.md §4: no /authorize response was a 5xx or carried a stack trace', () => {
    expectNoServerErrors(http);
  });

  it('DESIGN.md §6: db.json and events.jsonl contain none of the codes, secrets, CSRF tokens or passwords seen', async () => {
    await expectNoSecretsAtRest(server, http.secrets);
  });

  it('RFC 6749 §5.2 + §4.1.2.1: every error code and error_description uses only the allowed characters', () => {
    expectWellFormedErrors(http);
  });
});

describe('owner password lockout and pending request expiry (fixed clock)', () => {
  const clock = createFixedClock(Date.UTC(2026, 0, 1, 12));
  let server: TestServer;
  let http: RecordingHttp;
  let client: RegisteredClient;
  let challenge: string;

  const open = () =>
    openConsent(http, { response_type: 'code', client_id: client.client_id, state: STATE, code_challenge: challenge, code_challenge_method: 'S256' });

  beforeAll(async () => {
    server = await startTestServer({ clock });
    http = new RecordingHttp(server.url);
    client = await registerChatGpt(http);
    challenge = challengeOf(newVerifier());
  });
  afterAll(async () => {
    await server.close();
  });

  it('DESIGN.md §4: a pending request expires with the code TTL (5 minutes)', async () => {
    const form = await open();
    clock.advance(5 * 60_000 + 1);
    expectErrorPage(await answerConsent(http, form));
  });

  it('DESIGN.md §4: 5 wrong passwords in 15 minutes lock the form for that address (429), logged as login.failed and login.locked', async () => {
    const form = await open();
    for (let i = 1; i <= 4; i++) {
      const response = await answerConsent(http, form, { password: `wrong password ${i}` });
      expect(response.status).toBe(401);
      clock.advance(60_000);
    }
    const fifth = await answerConsent(http, form, { password: 'wrong password 5' });
    expectErrorPage(fifth, 429);
    expect(Number(fifth.headers.get('retry-after'))).toBeGreaterThan(0);

    // Locked: even the right password is refused, on this form and on a new one.
    expectErrorPage(await answerConsent(http, form), 429);
    expectErrorPage(await answerConsent(http, await open()), 429);
    // DESIGN.md §4: without trustProxy, X-Forwarded-For is not the client's address and cannot dodge the lock.
    const spoofed = await open();
    expectErrorPage(
      await http.postForm(
        '/authorize',
        { request_id: spoofed.requestId, csrf_token: spoofed.csrfToken, password: OWNER_PASSWORD, decision: 'approve' },
        { cookie: spoofed.cookie, 'x-forwarded-for': '198.51.100.9' },
      ),
      429,
    );

    await server.events.flush();
    const events = await server.events.readLast(50, { types: ['login.'] });
    expect(events.filter((e) => e.type === 'login.failed')).toHaveLength(5);
    expect(events.filter((e) => e.type === 'login.locked')).toHaveLength(1);
    expect(events.every((e) => e.client_id === client.client_id && e.ip !== undefined)).toBe(true);
    expect(JSON.stringify(events)).not.toContain('wrong password 5');
  });

  it('DESIGN.md §4: the lock lifts once the failures are older than 15 minutes', async () => {
    clock.advance(15 * 60_000);
    const response = await answerConsent(http, await open());
    expect(response.status).toBe(302);
    expect(response.location().searchParams.get('code')).toBeTruthy();
  });

  it('DESIGN.md §4: no lockout response was a 5xx or carried a stack trace', () => {
    expectNoServerErrors(http);
  });

  it('DESIGN.md §7: the wrong passwords tried are nowhere in db.json or events.jsonl', async () => {
    expect(http.secrets).toContain('wrong password 5');
    await expectNoSecretsAtRest(server, http.secrets);
  });
});

describe('baseUrl with a path, behind a proxy that strips it (DESIGN.md §4: URLs are built from baseUrl)', () => {
  let running: RunningServer;
  let dataDir: string;
  let http: RecordingHttp;
  let issuer: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cupcake-prefix-'));
    const store = createMemoryStore();
    await store.setOwnerPasswordHash(await hashPassword(OWNER_PASSWORD), Date.now());
    running = await startServer(
      (port) => {
        issuer = `http://127.0.0.1:${port}/cupcake`;
        return createApp({
          config: ConfigSchema.parse({ baseUrl: issuer, dataDir, tools: { docs: false } }),
          store,
          events: createFileEventLog(join(dataDir, 'events.jsonl')),
        });
      },
      { host: '127.0.0.1', port: 0 },
    );
    // Requests go to the app as the proxy forwards them: without the /cupcake prefix.
    http = new RecordingHttp(`http://127.0.0.1:${running.port}`);
  });
  afterAll(async () => {
    await running.close(1_000);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('RFC 8414 §2: the consent form posts to the advertised authorization_endpoint path and its cookie is scoped there', async () => {
    const metadata = (await http.get('/.well-known/oauth-authorization-server')).json();
    expect(metadata.authorization_endpoint).toBe(`${issuer}/authorize`);
    const client = await registerChatGpt(http);
    const form = await openConsent(http, {
      response_type: 'code',
      client_id: client.client_id,
      code_challenge: challengeOf(newVerifier()),
      code_challenge_method: 'S256',
      state: STATE,
    });
    expect(form.response.text).toContain('<form method="post" action="/cupcake/authorize"');
    expect(form.response.headers.getSetCookie()[0]).toContain('Path=/cupcake/authorize;');
    const answer = await answerConsent(http, form);
    expect(answer.status).toBe(302);
    expect(answer.location().searchParams.get('iss')).toBe(issuer);
  });
});
