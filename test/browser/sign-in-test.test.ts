import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, launchChromium } from '../helpers/chromium.js';
import { OWNER_PASSWORD, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The home page's test sign-in in a real browser (Debian's Chromium through playwright-core),
 * clicked through as the owner would: home page → Test sign-in → consent page → Approve →
 * the result page listing the tools → Revoke. Screenshots go to test/artifacts/.
 */

let server: TestServer;
let browser: BrowserContext;
let chromiumRun: Awaited<ReturnType<typeof launchChromium>> | undefined;
let docsRoot: string;

beforeAll(async () => {
  chromiumRun = await launchChromium();
  browser = chromiumRun.context;
  docsRoot = await mkdtemp(join(tmpdir(), 'cupcake-signin-docs-'));
  await writeFile(join(docsRoot, 'deploy.md'), '# Deploying\n\nPut it behind Caddy.\n');
  server = await startTestServer({ docsDir: docsRoot, config: { name: 'Team docs' } });
});

afterAll(async () => {
  await chromiumRun?.close();
  await server?.close();
  if (docsRoot) await rm(docsRoot, { recursive: true, force: true });
});

describe('test sign-in in Chromium', () => {
  it('home page → Test sign-in → consent → Approve → the tools the token sees → Revoke, all by clicking; no token in any URL or page', async () => {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    const requested: string[] = [];
    const seen: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    page.on('framenavigated', (f) => seen.push(f.url()));

    const home = await page.goto(`${server.url}/`);
    expect(home?.status()).toBe(200);
    expect(home!.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(home!.headers()['x-frame-options']).toBe('DENY');
    await expect(page.locator('h1').innerText()).resolves.toBe('Team docs is running');
    const body = await page.locator('body').innerText();
    expect(body).toContain(`${server.url}/mcp`);
    expect(body).toContain(`${server.url}/sse`);
    expect(body).toContain('Issuer is the base URL');
    // Nothing but the document itself: no script, font or image from anywhere.
    expect(requested).toEqual([`${server.url}/`]);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'home-phone.png'), fullPage: true });

    await Promise.all([page.waitForURL((u) => u.pathname === '/authorize'), page.getByRole('link', { name: 'Test sign-in' }).click()]);
    await expect(page.locator('h1').innerText()).resolves.toContain('cupcake-mcp (built-in)');
    await page.locator('input[name="password"]').fill(OWNER_PASSWORD);
    await Promise.all([page.waitForURL((u) => u.pathname === '/oauth/callback'), page.getByRole('button', { name: 'Approve' }).click()]);

    await expect(page.locator('h1').innerText()).resolves.toBe('Signed in');
    const tools = await page.locator('#tools li code').allInnerTexts();
    expect(tools.sort()).toEqual(['fetch', 'search', 'whoami']);
    const result = await page.content();
    expect(result).not.toMatch(/mcp_[0-9a-f]{32}/);
    for (const url of seen) expect(url).not.toMatch(/mcp_[0-9a-f]{32}|access_token|code_verifier/);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'signed-in-phone.png'), fullPage: true });

    const tokenId = (await page.locator('input[name="token_id"]').getAttribute('value'))!;
    const active = async () => (await server.store.listAccessTokens()).find((t) => t.id === tokenId);
    expect((await active())?.revokedAt).toBeNull();
    await Promise.all([page.waitForURL((u) => u.pathname === '/oauth/sign-out'), page.getByRole('button', { name: 'Revoke this token' }).click()]);
    await expect(page.locator('h1').innerText()).resolves.toBe('Token revoked');
    expect((await active())?.revokedAt).not.toBeNull();

    // Back in history to the callback: the same state cannot be used twice.
    const again = await page.goto(seen.find((u) => u.includes('/oauth/callback'))!);
    expect(again?.status()).toBe(400);
    await expect(page.locator('h1').innerText()).resolves.toBe('This sign-in cannot be completed');
    await page.close();
  });
});
