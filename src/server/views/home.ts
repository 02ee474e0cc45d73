import { html, LOCK_ICON, page, type SafeHtml } from './html.js';

export type CheckLevel = 'ok' | 'warn' | 'fail';

export interface HomeCheck {
  level: CheckLevel;
  title: string;
  detail: string;
}

export interface HomeView {
  serverName: string;
  version: string;
  /** The URLs to paste into an MCP client, with what each is for. */
  endpoints: Array<{ label: string; url: string; note: string }>;
  checks: HomeCheck[];
  /** Where "Test sign-in" goes: `<base>/oauth/start`. */
  startUrl: string;
  /** Set when the page was reached at another address than the base URL. */
  reachedAt?: string | undefined;
  baseUrl: string;
}

const MARK: Record<CheckLevel, string> = { ok: '✓', warn: '!', fail: '✗' };
const MARK_LABEL: Record<CheckLevel, string> = { ok: 'passes', warn: 'warning', fail: 'fails' };

const TRY_IT =
  'Sign in the way ChatGPT and Claude do: the consent page, your owner password, an authorization code with PKCE, the token endpoint. ' +
  'The token stays on the server and you can revoke it at the end.';

function checkItem(c: HomeCheck): SafeHtml {
  const mark = html`<span class="mark-${c.level}" aria-label="${MARK_LABEL[c.level]}">${MARK[c.level]}</span>`;
  return html`<li data-check="${c.level}">${mark} ${c.title}<span class="grant-detail">${c.detail}</span></li>`;
}

/**
 * The home page (`GET /`): what this server is, what to paste into ChatGPT or Claude, whether its
 * discovery documents agree with the base URL, and a button that runs the real sign-in flow with
 * the first-party client. No script and no external asset; every value is escaped by `html`.
 */
export function renderHomePage(view: HomeView): string {
  const clientsUse = html`clients use <code>${view.baseUrl}</code>. The test sign-in runs there.`;
  return page(
    `${view.serverName} · cupcake-mcp`,
    html`<div class="brand">${LOCK_ICON}<span>${view.serverName}</span></div>
<h1><strong>${view.serverName}</strong> is running</h1>
<p class="lead">cupcake-mcp ${view.version}: an MCP server behind its own OAuth 2.1 authorization server.</p>
<h2>Paste into ChatGPT or Claude</h2>
<ul class="plain" id="endpoints">
${view.endpoints.map((e) => html`<li>${e.label} <span class="grant-detail">${e.note}</span><code class="paste">${e.url}</code></li>`)}
</ul>
<h2>Discovery</h2>
<ul class="plain" id="checks">
${view.checks.map(checkItem)}
</ul>
${view.reachedAt ? html`<p class="notice">You opened this page at <code>${view.reachedAt}</code>; ${clientsUse}</p>` : ''}
<h2>Try it</h2>
<p>${TRY_IT}</p>
<a class="button" id="test-sign-in" href="${view.startUrl}">Test sign-in</a>`,
  );
}
