import { describe, expect, it } from 'vitest';
import { buildRedirect, matchRedirectUri, redirectUriProblem } from '../../../src/oauth/redirect-uri.js';

describe('redirect URI registration policy (DESIGN.md §4, OAuth 2.1 §2.3.1, RFC 8252 §7)', () => {
  it.each([
    ['https://chatgpt.com/connector_platform_oauth_redirect', 'ChatGPT'],
    ['https://chatgpt.com/connector/oauth/c_6f1e0a8b2d4c', 'ChatGPT per-connector'],
    ['https://claude.ai/api/mcp/auth_callback', 'Claude'],
    ['https://client.example:8443/cb?tenant=a', 'https with port and query'],
    ['http://localhost/callback', 'RFC 8252 §7.3: loopback, no port'],
    ['http://localhost:6274/oauth/callback', 'MCP Inspector'],
    ['http://127.0.0.1/callback', 'loopback IPv4'],
    ['http://127.0.0.1:33418/', 'loopback IPv4 with port'],
    ['http://[::1]:8080/cb', 'loopback IPv6'],
    ['cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback', 'RFC 8252 §7.1: private-use scheme'],
    ['vscode://vscode.github-authentication/did-authenticate', 'VS Code'],
    ['com.example.app:/oauth2redirect', 'RFC 8252 §7.1: reverse-domain scheme'],
  ])('accepts %s (%s)', (uri) => {
    expect(redirectUriProblem(uri)).toBeUndefined();
  });

  it.each([
    ['javascript:alert(1)', 'script scheme'],
    ['smb://attacker.example/share', 'OS handler: Windows file share'],
    ['search-ms:query=x', 'OS handler: Windows search'],
    ['ms-settings:privacy', 'OS handler: ms-*'],
    ['myapp://callback', 'RFC 8252 §7.1: a private-use scheme not in reverse domain name form'],
    ['https://\u0441hatgpt.com/cb', 'RFC 3986 §2: a non-ASCII host'],
    ['https://app.example/caf\u00e9', 'RFC 3986 §2: a non-ASCII path'],
    ['JAVASCRIPT:alert(1)', 'script scheme, upper case'],
    ['data:text/html;base64,PHNjcmlwdD4=', 'data scheme'],
    ['file:///etc/passwd', 'file scheme'],
    ['vbscript:msgbox', 'vbscript scheme'],
    ['blob:https://client.example/uuid', 'blob scheme'],
    ['https://client.example/cb#frag', 'RFC 6749 §3.1.2: fragment'],
    ['https://client.example/cb#', 'RFC 6749 §3.1.2: empty fragment'],
    ['https://user:pw@client.example/cb', 'userinfo'],
    ['https://evil.example@client.example/cb', 'userinfo without password'],
    ['http://client.example/cb', 'http on a public host'],
    ['http://192.168.1.10/cb', 'http on a private address'],
    ['http://localhost.evil.example/cb', 'a host that starts like loopback'],
    ['https:client.example/cb', 'RFC 3986 §3.3: https without an authority (browsers would read a host into it)'],
    ['https:/client.example/cb', 'https with one slash'],
    ['http:127.0.0.1/cb', 'http without an authority'],
    ['https://', 'no host'],
    ['/cb', 'relative'],
    ['client.example/cb', 'no scheme'],
    ['https://client.example/c b', 'space'],
    ['https://client.example/cb\n', 'control character'],
    ['https:\\\\evil.example/cb', 'backslashes'],
    ['https://client.example/<script>', 'angle brackets'],
    ['', 'empty'],
    [`https://client.example/${'a'.repeat(2100)}`, 'too long'],
  ])('refuses %j (%s)', (uri) => {
    expect(redirectUriProblem(uri)).toEqual(expect.any(String));
  });
});

describe('redirect URI matching at /authorize (OAuth 2.1 §4.1.3 exact match, RFC 8252 §7.3 loopback ports)', () => {
  const registered = [
    'https://chatgpt.com/connector_platform_oauth_redirect',
    'http://127.0.0.1/callback',
    'http://localhost:3000/cb',
    'http://[::1]/cb',
    'cursor://anysphere.cursor-retrieval/cb',
  ];

  it.each([
    ['https://chatgpt.com/connector_platform_oauth_redirect', 'https://chatgpt.com/connector_platform_oauth_redirect'],
    ['http://127.0.0.1/callback', 'http://127.0.0.1/callback'],
    ['http://127.0.0.1:49152/callback', 'http://127.0.0.1:49152/callback'],
    ['http://localhost:3000/cb', 'http://localhost:3000/cb'],
    ['http://localhost:4000/cb', 'http://localhost:4000/cb'],
    ['http://localhost/cb', 'http://localhost/cb'],
    ['http://[::1]:5000/cb', 'http://[::1]:5000/cb'],
    ['cursor://anysphere.cursor-retrieval/cb', 'cursor://anysphere.cursor-retrieval/cb'],
  ])('%s matches, delivered to %s', (requested, delivered) => {
    expect(matchRedirectUri(requested, registered)).toBe(delivered);
  });

  it.each([
    ['https://chatgpt.com/connector_platform_oauth_redirect/', 'trailing slash'],
    ['https://chatgpt.com/connector_platform_oauth_redirect?a=1', 'added query'],
    ['https://chatgpt.com:443/connector_platform_oauth_redirect', 'explicit default port: still not the same string'],
    ['https://chatgpt.com:8443/connector_platform_oauth_redirect', 'port relaxation is for loopback only'],
    ['https://CHATGPT.COM/connector_platform_oauth_redirect', 'host case'],
    ['http://127.0.0.1:49152/other', 'loopback with another path'],
    ['http://localhost:49152/callback', 'loopback port relaxation keeps the host'],
    ['http://127.0.0.1:49152/callback#x', 'fragment'],
    ['http://user@127.0.0.1:49152/callback', 'userinfo'],
    ['https://127.0.0.1:49152/callback', 'another scheme'],
    ['http://127.0.0.1:99999/callback', 'invalid port'],
    ['cursor://anysphere.cursor-retrieval/cb/', 'private-use scheme, trailing slash'],
    ['not a uri', 'garbage'],
  ])('%s does not match (%s)', (requested) => {
    expect(matchRedirectUri(requested, registered)).toBeUndefined();
  });
});

describe('building the redirect (RFC 6749 §4.1.2: keep the registered query)', () => {
  it('appends code, state and iss after the query the client registered', () => {
    const url = new URL(buildRedirect('https://client.example/cb?tenant=a', { code: 'c', state: 's t', iss: 'https://mcp.example.com', skipped: undefined }));
    expect(url.searchParams.get('tenant')).toBe('a');
    expect(url.searchParams.get('code')).toBe('c');
    expect(url.searchParams.get('state')).toBe('s t');
    expect(url.searchParams.get('iss')).toBe('https://mcp.example.com');
    expect(url.searchParams.has('skipped')).toBe(false);
  });

  it('RFC 6749 §3.1.2: the registered query is retained byte for byte, not re-encoded', () => {
    expect(buildRedirect('https://client.example/cb?sig=a%20b&flag', { code: 'c' })).toBe('https://client.example/cb?sig=a%20b&flag&code=c');
    expect(buildRedirect('cursor://anysphere.cursor-retrieval/oauth/callback', { code: 'c', state: 'a&b' })).toBe(
      'cursor://anysphere.cursor-retrieval/oauth/callback?code=c&state=a%26b',
    );
  });
});
