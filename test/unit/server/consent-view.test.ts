import { describe, expect, it } from 'vitest';
import { describeScope, renderConsentPage, type ConsentView } from '../../../src/server/views/consent.js';
import { renderErrorPage } from '../../../src/server/views/error-page.js';

const view = (overrides: Partial<ConsentView> = {}): ConsentView => ({
  serverName: 'Team docs',
  clientName: 'ChatGPT',
  clientId: '8c2f6a1e-0b5d-4e7a-9f10-2b3c4d5e6f70',
  redirectUri: 'https://chatgpt.com/connector_platform_oauth_redirect',
  scopes: ['mcp'],
  resource: 'https://mcp.example.com/mcp',
  requestId: 'req_123',
  csrfToken: 'csrf_456',
  formAction: '/authorize',
  ...overrides,
});

describe('consent page markup', () => {
  it('DESIGN.md §4 form contract: post to the action, password, hidden request id and CSRF token, Approve before Deny', () => {
    const page = renderConsentPage(view());
    expect(page).toMatch(/<form method="post" action="\/authorize"/);
    expect(page).toContain('<input type="password" id="password" name="password"');
    expect(page).toContain('<input type="hidden" name="request_id" value="req_123">');
    expect(page).toContain('<input type="hidden" name="csrf_token" value="csrf_456">');
    const approve = page.indexOf('name="decision" value="approve"');
    const deny = page.indexOf('name="decision" value="deny"');
    expect(approve).toBeGreaterThan(0);
    expect(deny).toBeGreaterThan(approve);
    expect(page.match(/type="submit"/g)).toHaveLength(2);
  });

  it('names the client and the redirect host, and says the scopes in words', () => {
    const page = renderConsentPage(view({ scopes: ['mcp', 'offline_access'], nameVouched: true }));
    expect(page).toContain('<h1><strong>ChatGPT</strong> wants to connect to Team docs</h1>');
    expect(page).toContain('<span class="target-host">chatgpt.com</span>');
    expect(page).toContain('Use the tools of Team docs');
    expect(page).toContain('Stay connected');
    expect(page).toContain('https://mcp.example.com/mcp');
    expect(renderConsentPage(view({ redirectUri: 'http://127.0.0.1:6274/callback' }))).toContain('(an app on this computer)');
    expect(renderConsentPage(view({ redirectUri: 'cursor://anysphere.cursor-mcp/oauth/callback' }))).toContain('(an app on your device)');
  });

  it('RFC 7591 §5: a name nothing vouches for is shown as the client’s own claim, in the heading, the title and the details', () => {
    const page = renderConsentPage(view({ redirectUri: 'https://evil.example.net/cb' }));
    expect(page).toContain('<h1>An application that calls itself <strong class="claimed">“ChatGPT”</strong> wants to connect to Team docs</h1>');
    expect(page).toContain('<title>Connect an application that calls itself “ChatGPT” to Team docs</title>');
    expect(page).toContain('Any application can give itself any name');
    expect(page).toContain('<dd>ChatGPT (the name it gave itself, not verified)</dd>');
  });

  it('no script, no external asset: nothing is loaded from anywhere', () => {
    const page = renderConsentPage(view());
    expect(page).not.toMatch(/<script|<link|<img|@import|url\(|src=/i);
  });

  it('escapes everything the client chose (RFC 7591 metadata is attacker-controlled)', () => {
    const evil = '<img src=x onerror=alert(1)>"\'`';
    const page = renderConsentPage(view({ clientName: evil, redirectUri: 'https://evil.example/cb?<b>', resource: 'https://mcp.example.com/"><script>' }));
    expect(page).not.toContain('<img src=x');
    expect(page).not.toContain('"><script>');
    expect(page).toContain('&lt;img src&#61;x onerror&#61;alert(1)&gt;');
  });

  it('an unnamed client is called so, and gets no name in the warning', () => {
    const page = renderConsentPage(view({ clientName: null }));
    expect(page).toContain('<strong>An application without a name</strong>');
    expect(page).toContain('Only approve a connection you started yourself just now. If you did not');
  });

  it('the error is announced (role=alert) and marks the field', () => {
    const page = renderConsentPage(view({ error: 'Wrong password. Try again.' }));
    expect(page).toContain('<p class="error" role="alert">Wrong password. Try again.</p>');
    expect(page).toContain('aria-invalid="true"');
    expect(renderConsentPage(view())).not.toContain('aria-invalid');
  });

  it('unknown scopes are named, not hidden', () => {
    expect(describeScope('calendar.read', 'Team docs').title).toBe('Permission “calendar.read”');
  });

  it('error pages escape their text and carry no form', () => {
    const page = renderErrorPage('Unknown <application>', 'Remove & add again', 'Team docs');
    expect(page).toContain('Unknown &lt;application&gt;');
    expect(page).toContain('Remove &amp; add again');
    expect(page).not.toContain('<form');
  });
});
