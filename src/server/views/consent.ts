import { redirectTarget } from '../../oauth/redirect-target.js';
import { html, LOCK_ICON, page, SafeHtml } from './html.js';

export interface ConsentView {
  serverName: string;
  clientName: string | null;
  clientId: string;
  redirectUri: string;
  scopes: string[];
  resource: string;
  requestId: string;
  csrfToken: string;
  /** Where the form posts: the path of the advertised authorization_endpoint. */
  formAction: string;
  /** For a client identified by a metadata document (CIMD): the host that served it, its verified identity. */
  verifiedHost?: string | undefined;
  /**
   * Whether the name is vouched for (oauth/client-name.ts); otherwise it is shown as the client's
   * own claim ("calls itself …"). Absent counts as not vouched.
   */
  nameVouched?: boolean;
  /** `auth.toolScopes`: which tools need which scope, so each scope can be said in words. */
  toolScopes?: ReadonlyArray<{ scope: string; patterns: string[] }>;
  error?: string;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;

/** What a person should read about the redirect target: the host, and where that is. */
function describeTarget(redirectUri: string): { host: string; note: string | undefined } {
  const host = redirectTarget(redirectUri);
  // A private-use scheme (cursor://…, RFC 8252 §7.1) opens an installed app.
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(redirectUri)?.[1]?.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return { host: host.endsWith('//') ? host : `${scheme}://${host}`, note: 'an app on your device' };
  if (LOOPBACK.test(host)) return { host, note: 'an app on this computer' };
  return { host, note: undefined };
}

/** A scope in words (RFC 6749 §3.3 scopes are opaque; these are the ones cupcake-mcp grants). */
export function describeScope(
  scope: string,
  serverName: string,
  toolScopes: ReadonlyArray<{ scope: string; patterns: string[] }> = [],
): { title: string; detail: string } {
  if (scope === 'mcp') {
    const reserved = toolScopes.flatMap((t) => t.patterns);
    const except = reserved.length > 0 ? ` Tools that need another permission (${reserved.join(', ')}) are not included.` : '';
    return { title: `Use the tools of ${serverName}`, detail: `List the tools and call them on your behalf, over MCP.${except}` };
  }
  if (scope === 'offline_access') return { title: 'Stay connected', detail: 'Keep access without asking you again, until you revoke it (refresh tokens).' };
  const tools = toolScopes.find((t) => t.scope === scope)?.patterns;
  if (tools)
    return {
      title: `Also call the tools ${tools.join(', ')}`,
      detail: `Permission “${scope}”: these tools of ${serverName} need it besides the permission to use the tools.`,
    };
  return { title: `Permission “${scope}”`, detail: `Configured on ${serverName}; it allows nothing by itself (no tool needs it).` };
}

const CHECK_ICON = new SafeHtml(
  '<svg width="18" height="18" viewBox="0 0 20 20" fill="none" aria-hidden="true">' +
    '<path d="M4 10.5l4 4 8-9" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/></svg>',
);
const VERIFIED_LABEL = html`<span class="target-label">Identity verified: its metadata document is published by</span>`;
const ARROW_ICON = new SafeHtml(
  '<svg width="22" height="22" viewBox="0 0 24 24" fill="none" aria-hidden="true">' +
    '<path d="M4 12h14m-5-5 5 5-5 5" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/></svg>',
);

/**
 * The consent form (DESIGN.md §4): names the client, the redirect host, the scopes (in words)
 * and the resource; asks for the owner password; posts back to the authorization endpoint with
 * a request id and a CSRF token. Approve is the first submit button, so Enter approves. No
 * script and no external asset. Every client-supplied value is escaped by `html`.
 */
export function renderConsentPage(view: ConsentView): string {
  const named = view.clientName !== null && view.clientName.trim() !== '';
  const name = named ? view.clientName! : 'An application without a name';
  // A name nothing vouches for is the client's claim, said as such (RFC 7591 §5).
  const claimed = named && !view.nameVouched;
  const who = claimed ? html`An application that calls itself <strong class="claimed">“${name}”</strong>` : html`<strong>${name}</strong>`;
  const target = describeTarget(view.redirectUri);
  const grants = view.scopes.map((scope) => describeScope(scope, view.serverName, view.toolScopes));
  const targetNote = target.note ? html` <span class="target-note">(${target.note})</span>` : '';
  const targetHost = html`<span class="target-host">${target.host}${targetNote}</span>`;
  const fromName = named ? html` from <span class="name">${name}</span>` : '';
  const ariaInvalid = view.error ? new SafeHtml(' aria-invalid="true"') : '';
  return page(
    claimed ? `Connect an application that calls itself “${name}” to ${view.serverName}` : `Connect ${name} to ${view.serverName}`,
    html`<div class="brand">${LOCK_ICON}<span>${view.serverName}</span></div>
<h1>${who} wants to connect to ${view.serverName}</h1>
${
  claimed
    ? html`<p class="claim-note">Any application can give itself any name: check below where your answer goes.</p>
`
    : ''
}<p class="lead">Enter your owner password to approve. You can take access back at any time with <code>cupcake-mcp tokens revoke</code>.</p>
${
  view.verifiedHost
    ? html`<div class="target verified">${CHECK_ICON}<div>${VERIFIED_LABEL}<span class="target-host">${view.verifiedHost}</span></div></div>
`
    : ''
}<div class="target">${ARROW_ICON}<div><span class="target-label">After you answer, you go back to</span>${targetHost}</div></div>
<h2>It will be able to</h2>
<ul class="grants">
${grants.map((g) => html`<li>${CHECK_ICON}<span>${g.title}<span class="grant-detail">${g.detail}</span></span></li>`)}
<li>${CHECK_ICON}<span>Only on this server<span class="grant-detail">${view.resource}</span></span></li>
</ul>
<p class="notice">Only approve a connection you started yourself just now${fromName}. If you did not, choose Deny.</p>
<form method="post" action="${view.formAction}" autocomplete="off">
  <input type="hidden" name="request_id" value="${view.requestId}">
  <input type="hidden" name="csrf_token" value="${view.csrfToken}">
  ${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
  <label for="password">Owner password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" autofocus${ariaInvalid} aria-describedby="password-hint">
  <p class="hint" id="password-hint">The password set with <code>cupcake-mcp init</code> or <code>cupcake-mcp passwd</code>.</p>
  <!-- Approve comes first in the DOM: pressing Enter in the password field submits the first button. -->
  <div class="buttons">
    <button type="submit" class="approve" name="decision" value="approve">Approve</button>
    <button type="submit" class="deny" name="decision" value="deny" formnovalidate>Deny</button>
  </div>
</form>
<details>
  <summary>Details</summary>
  <dl>
    <dt>Application</dt><dd>${name}${claimed ? ' (the name it gave itself, not verified)' : ''}</dd>
    <dt>Client ID</dt><dd><code>${view.clientId}</code></dd>
    <dt>Redirect URI</dt><dd><code>${view.redirectUri}</code></dd>
    <dt>Access</dt><dd>${view.scopes.join(' ')}</dd>
    <dt>Resource</dt><dd>${view.resource}</dd>
  </dl>
</details>`,
  );
}
