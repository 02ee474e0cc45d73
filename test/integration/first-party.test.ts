import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIRST_PARTY_CLIENT_NAME } from '../../src/oauth/first-party.js';
import type { AuthEvent } from '../../src/store/event-log.js';
import { BrowserSession, hiddenField, type BrowserResponse } from '../helpers/browser-session.js';
import { OWNER_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let docsRoot: string;

beforeAll(async () => {
  docsRoot = await mkdtemp(join(tmpdir(), 'cupcake-first-party-'));
  await mkdir(join(docsRoot, 'docs'));
  await writeFile(join(docsRoot, 'docs', 'deploy.md'), '# Deploying\n\nPut it behind Caddy.\n');
  server = await startTestServer({ docsDir: join(docsRoot, 'docs'), config: { name: 'Team <docs> & "notes"' } });
});
afterAll(async () => {
  await server?.close();
  await rm(docsRoot, { recursive: true, force: true });
});

const ACCESS_TOKEN = /mcp_[0-9a-f]{32}/;

function expectSecurePage(response: BrowserResponse): void {
  expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
  expect(response.headers.get('x-frame-options')).toBe('DENY');
  expect(response.headers.get('cache-control')).toContain('no-store');
  expect(response.text).not.toMatch(/<script|<link|<img|@import|url\(|src=/i);
  expect(response.text).not.toMatch(ACCESS_TOKEN);
}

async function events(): Promise<AuthEvent[]> {
  await server.events.flush();
  // Records and rejections (events.jsonl, events.rejections.jsonl), in time order.
  return server.events.readLast(100_000);
}

async function firstPartyTokens() {
  const clients = await server.store.listClients();
  const firstParty = clients.find((c) => c.firstParty);
  return (await server.store.listAccessTokens()).filter((t) => t.clientId === firstParty?.clientId);
}

/** Test sign-in up to the redirect back from the consent page: the callback URL, not yet opened. */
async function signInUntilCallback(browser: BrowserSession, decision: 'approve' | 'deny' = 'approve'): Promise<URL> {
  const start = await browser.get('/oauth/start');
  expect(start.status).toBe(302);
  const authorize = start.location();
  expect(`${authorize.origin}${authorize.pathname}`).toBe(`${server.url}/authorize`);
  const consent = await browser.get(authorize.href);
  expect(consent.status, consent.text.slice(0, 300)).toBe(200);
  expect(consent.text).toContain(FIRST_PARTY_CLIENT_NAME);
  const answer = await browser.postForm('/authorize', {
    request_id: hiddenField(consent.text, 'request_id')!,
    csrf_token: hiddenField(consent.text, 'csrf_token')!,
    password: OWNER_PASSWORD,
    decision,
  });
  expect(answer.status).toBe(302);
  const callback = answer.location();
  expect(`${callback.origin}${callback.pathname}`).toBe(`${server.url}/oauth/callback`);
  return callback;
}

describe('GET / (home page)', () => {
  it('names the server and version, shows the URLs to paste, the discovery checks and the Test sign-in button; framing refused, nothing cached', async () => {
    const response = await new BrowserSession(server.url).get('/');
    expect(response.status).toBe(200);
    expectSecurePage(response);
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(response.text).toContain(`cupcake-mcp ${version}`);
    // Escaped: the configured name is text, never markup.
    expect(response.text).toContain('Team &lt;docs&gt; &amp; &quot;notes&quot;');
    expect(response.text).not.toContain('Team <docs>');
    expect(response.text).toContain(`<code class="paste">${server.url}/mcp</code>`);
    expect(response.text).toContain(`<code class="paste">${server.url}/sse</code>`);
    expect(response.text).toMatch(/data-check="ok"><span[^>]*>✓<\/span> Issuer is the base URL/);
    // http on 127.0.0.1: fine here, not for ChatGPT.
    expect(response.text).toMatch(/data-check="warn"><span[^>]*>!<\/span> HTTP on this machine only/);
    expect(response.text).toContain(`<a class="button" id="test-sign-in" href="${server.url}/oauth/start">Test sign-in</a>`);
    // Opened at the base URL: no note about another address.
    expect(response.text).not.toContain('You opened this page at');
  });

  it('lists only the transports that are on, and says so when opened at another address than the base URL', async () => {
    const other = await startTestServer({ config: { transports: { streamableHttp: true, sse: false } } });
    try {
      // fetch will not send another Host; node:http will, as a browser at another address would.
      const text = await new Promise<string>((resolve, reject) => {
        get(`${other.url}/`, { headers: { host: 'localhost:1234' } }, (res) => {
          let body = '';
          res
            .setEncoding('utf8')
            .on('data', (chunk: string) => (body += chunk))
            .on('end', () => resolve(body));
        }).on('error', reject);
      });
      expect(text).toContain(`${other.url}/mcp`);
      expect(text).not.toContain(`${other.url}/sse`);
      expect(text).toContain('You opened this page at <code>http://localhost:1234</code>');
      expect(text).toContain(`href="${other.url}/oauth/start"`);
    } finally {
      await other.close();
    }
  });
});

describe('test sign-in with the first-party client', () => {
  it('start → consent → callback: signed in, with the token expiry and the tools it sees; the token is in no page or URL; events logged', async () => {
    const browser = new BrowserSession(server.url);
    const start = await browser.get('/oauth/start');
    expect(start.status).toBe(302);
    expect(start.headers.get('cache-control')).toContain('no-store');
    const cookie = browser.cookies.get('cupcake_signin');
    expect(cookie).toMatchObject({ path: '/oauth', httpOnly: true, sameSite: 'Lax' });
    const authorize = start.location();
    const client = (await server.store.listClients()).find((c) => c.firstParty)!;
    expect(client).toMatchObject({
      clientName: FIRST_PARTY_CLIENT_NAME,
      tokenEndpointAuthMethod: 'none',
      clientSecretHash: null,
      redirectUris: [`${server.url}/oauth/callback`],
    });
    expect(Object.fromEntries(authorize.searchParams)).toEqual({
      response_type: 'code',
      client_id: client.clientId,
      redirect_uri: `${server.url}/oauth/callback`,
      scope: 'mcp',
      state: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
      code_challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      code_challenge_method: 'S256',
      resource: server.url,
    });

    const callbackUrl = await signInUntilCallback(browser);
    const result = await browser.get(callbackUrl.href);
    expect(result.status, result.text.slice(0, 500)).toBe(200);
    expectSecurePage(result);
    expect(result.text).toContain('<strong>Signed in</strong>');
    const [token] = (await firstPartyTokens()).filter((t) => t.revokedAt === null);
    expect(token).toBeDefined();
    expect(result.text).toContain(`<code>${token!.id}</code>`);
    expect(result.text).toContain(`<time datetime="${new Date(token!.expiresAt).toISOString()}">`);
    // The tools, as tools/list on /mcp lists them for this token.
    const listed = [...result.text.matchAll(/<li><code>([^<]+)<\/code>/g)].map((m) => m[1]);
    expect(listed.sort()).toEqual(['fetch', 'search', 'whoami']);
    expect(result.text).toContain('Tools this token can see (3)');
    for (const url of [start.location().href, callbackUrl.href]) expect(url).not.toMatch(ACCESS_TOKEN);

    const types = (await events()).filter((e) => e.client_id === client.clientId).map((e) => e.type);
    expect(types).toEqual(
      expect.arrayContaining(['signin.started', 'authorization.requested', 'authorization.approved', 'code.issued', 'token.issued', 'signin.completed']),
    );
    expect(types.indexOf('signin.started')).toBeLessThan(types.indexOf('signin.completed'));
    expect(JSON.stringify(await events())).not.toMatch(ACCESS_TOKEN);
  });

  it('a replayed callback is refused and exchanges nothing: the token from the first visit stays the only one', async () => {
    const browser = new BrowserSession(server.url);
    const callbackUrl = await signInUntilCallback(browser);
    const before = (await firstPartyTokens()).length;
    expect((await browser.get(callbackUrl.href)).status).toBe(200);
    expect((await firstPartyTokens()).length).toBe(before + 1);

    const replay = await browser.get(callbackUrl.href);
    expect(replay.status).toBe(400);
    expectSecurePage(replay);
    expect(replay.text).toContain('This sign-in cannot be completed');
    expect((await firstPartyTokens()).length).toBe(before + 1);
    // Nothing was presented twice at the token logic: no replay revocation either.
    expect((await firstPartyTokens()).filter((t) => t.revokedAt === null).length).toBeGreaterThanOrEqual(1);
    expect((await events()).filter((e) => e.type === 'code.replayed')).toEqual([]);
    expect((await events()).some((e) => e.type === 'signin.failed' && JSON.stringify(e.detail).includes('unknown or used state'))).toBe(true);
  });

  it('a tampered state, or the right one from another browser, is refused without using up the real one', async () => {
    const browser = new BrowserSession(server.url);
    const callbackUrl = await signInUntilCallback(browser);
    const before = (await firstPartyTokens()).length;

    const tampered = new URL(callbackUrl);
    tampered.searchParams.set('state', `${callbackUrl.searchParams.get('state')!.slice(0, -2)}xx`);
    const refused = await browser.get(tampered.href);
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('This sign-in cannot be completed');

    const elsewhere = await new BrowserSession(server.url).get(callbackUrl.href);
    expect(elsewhere.status).toBe(400);
    const noState = new URL(callbackUrl);
    noState.searchParams.delete('state');
    expect((await browser.get(noState.href)).status).toBe(400);
    expect((await firstPartyTokens()).length).toBe(before);

    // The browser that started still completes it.
    const completed = await browser.get(callbackUrl.href);
    expect(completed.status).toBe(200);
    expect(completed.text).toContain('<strong>Signed in</strong>');
    expect((await firstPartyTokens()).length).toBe(before + 1);
  });

  it('an answer without our issuer (RFC 9207 mix-up) is refused', async () => {
    const browser = new BrowserSession(server.url);
    const callbackUrl = await signInUntilCallback(browser);
    const forged = new URL(callbackUrl);
    forged.searchParams.set('iss', 'https://evil.example');
    const before = (await firstPartyTokens()).length;
    const response = await browser.get(forged.href);
    expect(response.status).toBe(400);
    expect(response.text).toContain('Answer from another server');
    expect((await firstPartyTokens()).length).toBe(before);
  });

  it('Deny on the consent page comes back as access_denied, said in words', async () => {
    const browser = new BrowserSession(server.url);
    const callbackUrl = await signInUntilCallback(browser, 'deny');
    expect(callbackUrl.searchParams.get('error')).toBe('access_denied');
    const response = await browser.get(callbackUrl.href);
    expect(response.status).toBe(200);
    expectSecurePage(response);
    expect(response.text).toContain('<strong>Sign-in denied</strong>');
    expect(response.text).toContain('answered with Deny, so no token was issued');
    expect((await events()).some((e) => e.type === 'signin.failed' && JSON.stringify(e.detail).includes('access_denied'))).toBe(true);
  });

  it('the page revokes its token with a POST bound to the cookie; a forged or cross-browser form revokes nothing', async () => {
    const browser = new BrowserSession(server.url);
    const result = await browser.get((await signInUntilCallback(browser)).href);
    const tokenId = hiddenField(result.text, 'token_id')!;
    const csrf = hiddenField(result.text, 'csrf_token')!;
    expect(result.text).toContain('<form method="post" action="/oauth/sign-out">');
    const active = async () => (await firstPartyTokens()).find((t) => t.id === tokenId)?.revokedAt === null;
    expect(await active()).toBe(true);

    const otherBrowser = await new BrowserSession(server.url).postForm('/oauth/sign-out', { token_id: tokenId, csrf_token: csrf });
    expect(otherBrowser.status).toBe(400);
    const forged = await browser.postForm('/oauth/sign-out', { token_id: tokenId, csrf_token: `${csrf.slice(0, -2)}AA` });
    expect(forged.status).toBe(400);
    // A valid field for one token does not revoke another.
    const [other] = (await firstPartyTokens()).filter((t) => t.id !== tokenId && t.revokedAt === null);
    if (other) expect((await browser.postForm('/oauth/sign-out', { token_id: other.id, csrf_token: csrf })).status).toBe(400);
    expect(await active()).toBe(true);

    const revoked = await browser.postForm('/oauth/sign-out', { token_id: tokenId, csrf_token: csrf });
    expect(revoked.status).toBe(200);
    expectSecurePage(revoked);
    expect(revoked.text).toContain('<strong>Token revoked</strong>');
    expect(await active()).toBe(false);
    expect((await events()).some((e) => e.type === 'token.revoked' && e.token_id === tokenId && JSON.stringify(e.detail).includes('home page'))).toBe(true);
  });

  it('creates the first-party client on demand, once, and never as a second one', async () => {
    const fresh = await startTestServer();
    try {
      expect(await fresh.store.listClients()).toEqual([]);
      await Promise.all([new BrowserSession(fresh.url).get('/oauth/start'), new BrowserSession(fresh.url).get('/oauth/start')]);
      const clients = await fresh.store.listClients();
      expect(clients).toHaveLength(1);
      expect(clients[0]).toMatchObject({ firstParty: true, redirectUris: [`${fresh.url}/oauth/callback`] });
    } finally {
      await fresh.close();
    }
  });
});
