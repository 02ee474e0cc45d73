/**
 * Redirect URI policy (DESIGN.md §4; OAuth 2.1 §2.3.1, RFC 8252 §7, RFC 6749 §3.1.2).
 */

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
/** Schemes that would run or read something in the browser instead of reaching a client. */
const FORBIDDEN_SCHEMES = new Set([
  'javascript:',
  'data:',
  'file:',
  'vbscript:',
  'about:',
  'blob:',
  'filesystem:',
  'view-source:',
  'ws:',
  'wss:',
  'ftp:',
  'mailto:',
  'chrome:',
  'intent:',
]);
/**
 * Schemes the operating system hands to a built-in handler (Windows file shares and search, the
 * ms-* settings and store handlers, macOS and Linux openers): a "redirect" to one reaches no client
 * and can leak credentials or open local files (NTLM to smb:, search-ms: listings).
 */
const OS_HANDLER_SCHEMES = new Set([
  'smb:',
  'cifs:',
  'nfs:',
  'afp:',
  'search:',
  'search-ms:',
  'shell:',
  'jar:',
  'res:',
  'its:',
  'mk:',
  'ldap:',
  'telnet:',
  'ssh:',
  'sftp:',
  'x-apple-helpviewer:',
  'help:',
  'tel:',
  'sms:',
  'callto:',
  'facetime:',
  'steam:',
]);
/**
 * RFC 8252 §7.1 asks for private-use schemes in reverse domain name form (`com.example.app:`). A few
 * shipping MCP clients predate that and use a bare product name; only those are accepted without a period.
 */
const SHIPPING_APP_SCHEMES = new Set(['cursor:', 'vscode:', 'vscode-insiders:', 'windsurf:']);
/** RFC 3986 §3.1 scheme syntax. */
const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;

export const MAX_REDIRECT_URI_LENGTH = 2000;

function parse(uri: string): URL | undefined {
  try {
    return new URL(uri);
  } catch {
    return undefined;
  }
}

export function isLoopbackRedirect(url: URL): boolean {
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
}

/**
 * Why `uri` cannot be registered, or undefined when it can: https; http only on a loopback host
 * (RFC 8252 §7.3); a private-use scheme of a native app (RFC 8252 §7.1, e.g. `cursor://`); never a
 * fragment (RFC 6749 §3.1.2), userinfo, control characters or a scheme that runs in the browser.
 */
export function redirectUriProblem(uri: string): string | undefined {
  if (uri.length === 0) return 'is empty';
  if (uri.length > MAX_REDIRECT_URI_LENGTH) return `is longer than ${MAX_REDIRECT_URI_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f\\<>"{}|^`]/.test(uri)) return 'contains spaces, control or unsafe characters';
  // RFC 3986 §2: a URI is ASCII. A raw non-ASCII host (a Cyrillic "с" in "сhatgpt.com") spoofs another
  // host on the consent page and cannot go in a Location header; register the punycode or %-encoded form.
  if (/[^\x21-\x7e]/.test(uri)) return 'contains non-ASCII characters (send the punycode host or %-encoded path)';
  if (!SCHEME.test(uri)) return 'must be an absolute URI';
  const url = parse(uri);
  if (!url) return 'is not a valid URI';
  const scheme = url.protocol.toLowerCase();
  if (FORBIDDEN_SCHEMES.has(scheme) || OS_HANDLER_SCHEMES.has(scheme) || scheme.startsWith('ms-')) return `must not use the ${scheme} scheme`;
  if (uri.includes('#')) return 'must not contain a fragment (RFC 6749 §3.1.2)';
  if (url.username || url.password || /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(uri)) return 'must not contain user information';
  // RFC 3986 §3 / RFC 9110 §4.2: an http(s) URI names its host after "//". "https:evil.example/cb"
  // has no authority for RFC 3986 but a host for WHATWG parsers: refuse the ambiguity outright.
  if ((scheme === 'https:' || scheme === 'http:') && !/^https?:\/\/[^/]/i.test(uri)) return 'must start with https:// and a host';
  if (scheme === 'https:') {
    if (!url.hostname) return 'must name a host';
    return undefined;
  }
  if (scheme === 'http:') {
    return isLoopbackRedirect(url) ? undefined : 'must use https (http is allowed only for localhost, 127.0.0.1 or [::1])';
  }
  // RFC 8252 §7.1 / OAuth 2.1 §8.4.2: a private-use URI scheme in reverse domain name form, which
  // contains a period (com.example.app:); a scheme without one could be any handler on the machine.
  if (!scheme.slice(0, -1).includes('.') && !SHIPPING_APP_SCHEMES.has(scheme)) {
    return 'must use https, loopback http, or a private-use scheme in reverse domain name form such as "com.example.app:" (RFC 8252 §7.1)';
  }
  return undefined;
}

/**
 * The URI to deliver to when `requested` matches a registered one, or undefined. Exact string comparison
 * (OAuth 2.1 §4.1.3), except that a loopback http URI matches on any port (RFC 8252 §7.3: the
 * native app picks its port at run time).
 */
export function matchRedirectUri(requested: string, registered: readonly string[]): string | undefined {
  if (registered.includes(requested)) return requested;
  const url = parse(requested);
  if (!url || !isLoopbackRedirect(url) || redirectUriProblem(requested) !== undefined) return undefined;
  const withoutPort = (u: URL) => `${u.protocol}//${u.hostname}${u.pathname}${u.search}`;
  const want = withoutPort(url);
  for (const candidate of registered) {
    const reg = parse(candidate);
    if (reg && isLoopbackRedirect(reg) && withoutPort(reg) === want) return requested;
  }
  return undefined;
}

/** Adds query parameters to a validated redirect URI, keeping the ones it already has. */
export function buildRedirect(redirectUri: string, params: Record<string, string | undefined>): string {
  const added = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) added.append(key, value);
  // RFC 6749 §3.1.2: the registered query component is retained as it is; the response
  // parameters are appended to it, never re-serialised with it. (No fragment: refused at registration.)
  const query = added.toString();
  if (!query) return redirectUri;
  return `${redirectUri}${redirectUri.includes('?') ? (redirectUri.endsWith('?') || redirectUri.endsWith('&') ? '' : '&') : '?'}${query}`;
}

/**
 * Why redirect URIs do not fit a client's stated `application_type` (OpenID Connect Registration
 * 1.0 §2, which MCP 2026-07-28 asks clients to send), or undefined when they do. A `web` client is
 * reached over https (or http on loopback while developing), never through a private-use scheme,
 * which only a native app on the user's device can receive (RFC 8252 §7.1). A `native` client may
 * use a private-use scheme, loopback http (RFC 8252 §7.3) or a claimed https URI (RFC 8252 §7.2,
 * wider than OpenID Connect's list, as shipping desktop clients use all three).
 */
export function applicationTypeProblem(applicationType: unknown, redirectUris: readonly string[]): string | undefined {
  if (applicationType !== 'web' && applicationType !== 'native') return 'application_type must be "web" or "native" (OpenID Connect Registration section 2)';
  if (applicationType === 'native') return undefined;
  const privateUse = redirectUris.find((uri) => !/^https?:/i.test(uri));
  if (privateUse) {
    return (
      `redirect_uris: ${JSON.stringify(privateUse.slice(0, 100))} uses a private-use scheme, which only a native app can receive; ` +
      'register with application_type "native" (RFC 8252 section 7.1)'
    );
  }
  return undefined;
}
