import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from '../helpers/chromium.js';
import { OWNER_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The consent page in a real browser: Debian's Chromium driven by playwright-core. A person
 * types the owner password and clicks Approve; the browser lands on the client's redirect URI
 * (a small local server) with a code that the token endpoint accepts. Screenshots at desktop
 * and phone width go to test/artifacts/ for a person to look at.
 */

const CLIENT_NAME = 'Acme Notes';

let server: TestServer;
let browser: BrowserContext;
let chromiumRun: Awaited<ReturnType<typeof launchChromium>> | undefined;
const servers: Server[] = [];
let callbackUrl: string;
let client: { client_id: string; client_secret: string };

async function listen(handler: Parameters<typeof createServer>[1], host = '127.0.0.1'): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, host, resolve));
  return `http://${host}:${(s.address() as AddressInfo).port}`;
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** A fresh authorization request of the registered client: its URL, state and verifier. */
function authorizationRequest() {
  const { verifier, challenge } = pkce();
  const state = randomBytes(8).toString('hex');
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: callbackUrl,
    state,
    scope: 'mcp',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  return { url: `${server.url}/authorize?${query}`, state, verifier };
}

async function newPage(viewport = { width: 1280, height: 800 }): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewportSize(viewport);
  return page;
}

beforeAll(async () => {
  chromiumRun = await launchChromium();
  browser = chromiumRun.context;
  server = await startTestServer();
  // The client's redirect target: where the browser lands after the consent page.
  callbackUrl = `${await listen((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Connected</title><h1>Back in the application</h1>');
  })}/callback`;
  const registration = await fetch(`${server.url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: CLIENT_NAME, redirect_uris: [callbackUrl], token_endpoint_auth_method: 'client_secret_basic' }),
  });
  expect(registration.status).toBe(201);
  client = (await registration.json()) as typeof client;
});

afterAll(async () => {
  await chromiumRun?.close();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  await server?.close();
});

describe('consent page in Chromium', () => {
  it('names the client and where it sends you, loads nothing else, and fits a phone; screenshots saved', async () => {
    const page = await newPage();
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    const { url } = authorizationRequest();
    const response = await page.goto(url);
    expect(response?.status()).toBe(200);
    const headers = response!.headers();
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['cache-control']).toContain('no-store');

    await expect(page.title()).resolves.toContain(CLIENT_NAME);
    const heading = await page.locator('h1').innerText();
    expect(heading).toContain(CLIENT_NAME);
    const text = await page.locator('body').innerText();
    expect(text).toContain(new URL(callbackUrl).host);
    expect(text).toMatch(/Use the tools of/i); // the mcp scope, in words
    // No external assets: the document is the only request the page made.
    expect(requested).toEqual([url]);

    const approve = page.getByRole('button', { name: 'Approve' });
    const deny = page.getByRole('button', { name: 'Deny' });
    await expect(approve.isVisible()).resolves.toBe(true);
    await expect(deny.isVisible()).resolves.toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'consent-desktop.png'), fullPage: true });

    await page.setViewportSize({ width: 390, height: 844 });
    // Readable on a phone: nothing wider than the screen, the buttons big enough to tap.
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    for (const button of [approve, deny]) {
      const box = (await button.boundingBox())!;
      expect(box.height).toBeGreaterThanOrEqual(44);
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'consent-phone.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(ARTIFACTS, 'consent-phone-dark.png'), fullPage: true });
    await page.close();
  });

  it(
    'a wrong password shows the error (401); then typing the password and ' + 'clicking Approve lands on the redirect with a code that /token exchanges',
    async () => {
      const page = await newPage({ width: 390, height: 844 });
      const { url, state, verifier } = authorizationRequest();
      await page.goto(url);

      await page.locator('input[name="password"]').fill('not the owner password');
      const [refused] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/authorize'),
        page.getByRole('button', { name: 'Approve' }).click(),
      ]);
      expect(refused.status()).toBe(401);
      await expect(page.getByRole('alert').innerText()).resolves.toMatch(/wrong password/i);
      await page.screenshot({ path: join(ARTIFACTS, 'consent-wrong-password-phone.png'), fullPage: true });

      await page.locator('input[name="password"]').fill(OWNER_PASSWORD);
      await Promise.all([page.waitForURL((u) => u.href.startsWith(callbackUrl)), page.getByRole('button', { name: 'Approve' }).click()]);
      const landed = new URL(page.url());
      expect(landed.searchParams.get('state')).toBe(state);
      expect(landed.searchParams.get('iss')).toBe(server.url);
      const code = landed.searchParams.get('code');
      expect(code).toBeTruthy();
      await expect(page.locator('h1').innerText()).resolves.toBe('Back in the application');

      const token = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: code!, code_verifier: verifier, redirect_uri: callbackUrl }),
      });
      expect(token.status).toBe(200);
      const body = (await token.json()) as { access_token: string; token_type: string };
      expect(body.access_token).toMatch(/^mcp_[0-9a-f]{32}$/);
      expect(body.token_type).toBe('Bearer');
      await page.close();
    },
  );

  it('an unknown client gets an error page, never a redirect (RFC 6749 §4.1.2.1)', async () => {
    const page = await newPage({ width: 390, height: 844 });
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: '00000000-0000-4000-8000-000000000000',
      redirect_uri: callbackUrl,
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
    });
    const response = await page.goto(`${server.url}/authorize?${query}`);
    expect(response?.status()).toBe(400);
    expect(page.url().startsWith(server.url)).toBe(true);
    expect(await page.locator('form').count()).toBe(0);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'error-phone.png'), fullPage: true });
    await page.close();
  });

  it('Enter in the password field approves (Approve is the first submit button)', async () => {
    const page = await newPage();
    const { url, state } = authorizationRequest();
    await page.goto(url);
    await page.locator('input[name="password"]').fill(OWNER_PASSWORD);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(callbackUrl)), page.locator('input[name="password"]').press('Enter')]);
    const landed = new URL(page.url());
    expect(landed.searchParams.get('state')).toBe(state);
    expect(landed.searchParams.get('code')).toBeTruthy();
    await page.close();
  });

  it('Deny sends the browser back with error=access_denied and no code', async () => {
    const page = await newPage();
    const { url, state } = authorizationRequest();
    await page.goto(url);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(callbackUrl)), page.getByRole('button', { name: 'Deny' }).click()]);
    const landed = new URL(page.url());
    expect(landed.searchParams.get('error')).toBe('access_denied');
    expect(landed.searchParams.get('state')).toBe(state);
    expect(landed.searchParams.has('code')).toBe(false);
    await page.close();
  });

  it('refuses to render inside a frame of another origin (clickjacking), while a frameable page of the same server does render', async () => {
    const { url } = authorizationRequest();
    const control = `${server.url}/.well-known/mcp/manifest.json`;
    // "localhost" is another origin than the server's 127.0.0.1.
    const framer = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      const frames = `<iframe name="consent" src="${url.replace(/&/g, '&amp;')}"></iframe><iframe name="control" src="${control}"></iframe>`;
      res.end(`<!doctype html><title>Evil</title>${frames}`);
    });
    const page = await newPage();
    await page.goto(framer.replace('127.0.0.1', 'localhost'), { waitUntil: 'load' });
    const controlFrame = page.frame({ name: 'control' })!;
    await expect
      .poll(
        () =>
          controlFrame
            .locator('body')
            .innerText()
            .catch(() => ''),
        { timeout: 5_000 },
      )
      .toContain('streamable_http');

    const consentFrame = page.frame({ name: 'consent' })!;
    expect(consentFrame).toBeTruthy();
    expect(await consentFrame.locator('input[name="password"]').count()).toBe(0);
    expect(
      await consentFrame
        .locator('body')
        .innerText()
        .catch(() => ''),
    ).not.toContain(CLIENT_NAME);
    expect(consentFrame.url().startsWith(server.url)).toBe(false); // Chromium shows its error page instead
    await page.close();
  });

  it('a registered name is shown as the client’s own claim unless its redirect is a preset’s; a long unbroken name wraps on a phone', async () => {
    const registerAs = async (name: string, redirectUri: string) => {
      const response = await fetch(`${server.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: name, redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' }),
      });
      expect(response.status).toBe(201);
      return ((await response.json()) as { client_id: string }).client_id;
    };
    const consentUrl = (clientId: string, redirectUri: string) => {
      const query = new URLSearchParams({
        response_type: 'code',
        client_id: clientId,
        redirect_uri: redirectUri,
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
      });
      return `${server.url}/authorize?${query}`;
    };

    const page = await newPage({ width: 390, height: 844 });
    // "ChatGPT" sending the answer to some other host: the name is its claim, said so.
    const impostor = await registerAs('ChatGPT', callbackUrl);
    await page.goto(consentUrl(impostor, callbackUrl));
    expect(await page.locator('h1').innerText()).toBe(`An application that calls itself “ChatGPT” wants to connect to ${server.config.name}`);
    await expect(page.title()).resolves.toContain('calls itself “ChatGPT”');
    expect(await page.locator('body').innerText()).toContain('Any application can give itself any name');
    await page.screenshot({ path: join(ARTIFACTS, 'consent-phone-claimed-name.png'), fullPage: true });

    // The same name with ChatGPT's own redirect URI: the answer can only go to chatgpt.com.
    const chatgptRedirect = 'https://chatgpt.com/connector_platform_oauth_redirect';
    const chatgpt = await registerAs('ChatGPT', chatgptRedirect);
    await page.goto(consentUrl(chatgpt, chatgptRedirect));
    expect(await page.locator('h1').innerText()).toBe(`ChatGPT wants to connect to ${server.config.name}`);
    expect(await page.locator('body').innerText()).not.toContain('calls itself');

    // A name of 300 characters without a space: everything stays within the phone's width.
    const long = `Acme${'W'.repeat(296)}`;
    const wide = await registerAs(long, callbackUrl);
    await page.goto(consentUrl(wide, callbackUrl));
    await page.locator('details summary').click();
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    for (const selector of ['h1', '.notice', 'details dd']) {
      const box = (await page.locator(selector).first().boundingBox())!;
      expect(box.x + box.width, selector).toBeLessThanOrEqual(390);
    }
    const approve = (await page.getByRole('button', { name: 'Approve' }).boundingBox())!;
    expect(approve.x + approve.width).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'consent-phone-long-name.png'), fullPage: true });
    await page.close();
  });
});
