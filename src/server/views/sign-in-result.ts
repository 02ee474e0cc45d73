import { html, page, SafeHtml } from './html.js';

const OK_ICON = new SafeHtml(
  '<svg class="icon-ok" width="28" height="28" viewBox="0 0 24 24" fill="none" aria-hidden="true">' +
    '<circle cx="12" cy="12" r="10" fill="currentColor" opacity=".14"/>' +
    '<path d="M7.5 12.5l3 3 6-7" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/></svg>',
);
const ALERT_ICON = new SafeHtml(
  '<svg class="icon-error" width="28" height="28" viewBox="0 0 24 24" fill="none" aria-hidden="true">' +
    '<circle cx="12" cy="12" r="10" fill="currentColor" opacity=".12"/>' +
    '<path d="M12 7.5v5.5" stroke="currentColor" stroke-width="2" stroke-linecap="round"/><circle cx="12" cy="16.5" r="1.2" fill="currentColor"/></svg>',
);

export interface SignedInView {
  serverName: string;
  clientName: string;
  /** The public id (`tok_…`), never the token. */
  tokenId: string;
  scope: string;
  resource: string;
  expiresAt: string;
  expiresIn: string;
  tools: Array<{ name: string; title?: string | undefined; description?: string | undefined }>;
  signOutAction: string;
  csrfToken: string;
  homeUrl: string;
}

function toolItem(t: SignedInView['tools'][number]): SafeHtml {
  const title = t.title && t.title !== t.name ? html` ${t.title}` : '';
  const description = t.description ? html`<span class="grant-detail">${t.description}</span>` : '';
  return html`<li><code>${t.name}</code>${title}${description}</li>`;
}

/**
 * The end of the test sign-in: the flow worked, what the token is good for and which tools it
 * sees, and a form to revoke it. The token itself is never on this page.
 */
export function renderSignedIn(view: SignedInView): string {
  return page(
    `Signed in · ${view.serverName}`,
    html`<div class="brand">${OK_ICON}<span>${view.serverName}</span></div>
<h1><strong>Signed in</strong></h1>
<p class="lead">The whole flow works: the consent page, the authorization code with PKCE and the token endpoint. ChatGPT and Claude take the same steps.</p>
<dl>
  <dt>Client</dt><dd>${view.clientName}</dd>
  <dt>Token</dt><dd><code>${view.tokenId}</code> <span class="grant-detail">its id; the token itself stays on the server</span></dd>
  <dt>Scope</dt><dd>${view.scope}</dd>
  <dt>Resource</dt><dd>${view.resource}</dd>
  <dt>Expires</dt><dd><time datetime="${view.expiresAt}">${view.expiresAt}</time> <span class="grant-detail">in ${view.expiresIn}</span></dd>
</dl>
<h2>Tools this token can see (${view.tools.length})</h2>
${
  view.tools.length === 0
    ? html`<p class="notice">No tools: add a docs folder or upstream servers in the config.</p>`
    : html`<ul class="plain" id="tools">
${view.tools.map(toolItem)}
</ul>`
}
<form method="post" action="${view.signOutAction}">
  <input type="hidden" name="token_id" value="${view.tokenId}">
  <input type="hidden" name="csrf_token" value="${view.csrfToken}">
  <div class="buttons"><button type="submit" class="deny">Revoke this token</button></div>
</form>
<p class="hint">Or later: <code>cupcake-mcp tokens revoke ${view.tokenId}</code>. <a href="${view.homeUrl}">Back to the home page</a></p>`,
  );
}

export function renderSignedOut(view: { serverName: string; tokenId: string; homeUrl: string }): string {
  return page(
    `Token revoked · ${view.serverName}`,
    html`<div class="brand">${OK_ICON}<span>${view.serverName}</span></div>
<h1><strong>Token revoked</strong></h1>
<p class="lead"><code>${view.tokenId}</code> no longer works anywhere on this server; sessions that used it close within 2 s.</p>
<p><a href="${view.homeUrl}">Back to the home page</a></p>`,
  );
}

/** The test sign-in did not complete: why, in words, and the way back. */
export function renderSignInProblem(view: { serverName: string; title: string; message: string; detail?: string | undefined; homeUrl: string }): string {
  return page(
    `${view.title} · ${view.serverName}`,
    html`<div class="brand">${ALERT_ICON}<span>${view.serverName}</span></div>
<h1><strong>${view.title}</strong></h1>
<p class="lead" role="alert">${view.message}</p>
${view.detail ? html`<p class="hint">The server said: ${view.detail}</p>` : ''}
<p><a href="${view.homeUrl}">Back to the home page</a> to try again.</p>`,
  );
}

/**
 * RFC 6749 §4.1.2.1 error codes in words, for the person who just tried to sign in. The
 * authorization server's own description is shown beside it (escaped), never instead of it.
 */
export function describeAuthorizationError(code: string): { title: string; message: string } {
  switch (code) {
    case 'access_denied':
      return {
        title: 'Sign-in denied',
        message: 'The consent page was answered with Deny, so no token was issued. Nothing is wrong with the server: try again and choose Approve.',
      };
    case 'invalid_request':
      return { title: 'Sign-in refused', message: 'The authorization server refused the request as incomplete or malformed.' };
    case 'invalid_scope':
      return { title: 'Sign-in refused', message: 'The scope asked for is not one this server is configured with (auth.scopes).' };
    case 'invalid_target':
      return { title: 'Sign-in refused', message: 'The resource asked for is not served by this server: check baseUrl in the config.' };
    case 'unauthorized_client':
      return { title: 'Sign-in refused', message: 'The built-in client is not allowed to use the authorization code grant.' };
    case 'unsupported_response_type':
      return { title: 'Sign-in refused', message: 'The authorization server does not support this response type.' };
    case 'server_error':
      return { title: 'Server error', message: 'The authorization server failed while answering. The server log has the details.' };
    case 'temporarily_unavailable':
      return { title: 'Try again later', message: 'The authorization server is busy or restarting. Try again in a moment.' };
    default:
      return { title: 'Sign-in failed', message: `The authorization server answered with the error “${code.slice(0, 60)}”.` };
  }
}
