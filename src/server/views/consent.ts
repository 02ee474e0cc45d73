import { html, page } from './html.js';

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
  error?: string;
}

/** Where the answer goes, as a person should read it: the host, or the app scheme. */
export function redirectTarget(redirectUri: string): string {
  try {
    const url = new URL(redirectUri);
    return url.host || `${url.protocol}//`;
  } catch {
    return redirectUri;
  }
}

/**
 * The consent form (DESIGN.md §4): names the client, the redirect host, scopes and resource;
 * asks for the owner password; posts back to /authorize with a request id and a CSRF token.
 * Every client-supplied value is escaped by `html`.
 */
export function renderConsentPage(view: ConsentView): string {
  const name = view.clientName ?? 'An unnamed application';
  return page(
    `Connect ${name} to ${view.serverName}`,
    html`<h1>Allow <strong>${name}</strong> to use ${view.serverName}?</h1>
<p class="muted">Only approve a connection you just started yourself.</p>
<dl>
  <dt>Application</dt><dd>${name}</dd>
  <dt>Client ID</dt><dd><code>${view.clientId}</code></dd>
  <dt>Sends you back to</dt><dd><strong>${redirectTarget(view.redirectUri)}</strong></dd>
  <dt>Access</dt><dd>${view.scopes.join(' ')}</dd>
  <dt>Resource</dt><dd>${view.resource}</dd>
</dl>
<form method="post" action="${view.formAction}" autocomplete="off">
  <input type="hidden" name="request_id" value="${view.requestId}">
  <input type="hidden" name="csrf_token" value="${view.csrfToken}">
  ${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
  <label for="password">Owner password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" autofocus>
  <!-- Approve comes first: pressing Enter in the password field submits the first button. -->
  <div class="buttons">
    <button type="submit" name="decision" value="approve">Approve</button>
    <button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
  </div>
</form>`,
  );
}
