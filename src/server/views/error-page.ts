import { html, page, SafeHtml } from './html.js';

const ALERT_ICON = new SafeHtml(
  '<svg class="icon-error" width="28" height="28" viewBox="0 0 24 24" fill="none" aria-hidden="true">' +
    '<circle cx="12" cy="12" r="10" fill="currentColor" opacity=".12"/>' +
    '<path d="M12 7.5v5.5" stroke="currentColor" stroke-width="2" stroke-linecap="round"/><circle cx="12" cy="16.5" r="1.2" fill="currentColor"/></svg>',
);

/** An error shown to the person in the browser; never a redirect (RFC 6749 §4.1.2.1). */
export function renderErrorPage(title: string, message: string, serverName: string, link?: { href: string; label: string }): string {
  // The link is the validated redirect URI with the error appended: followed only if the person chooses to.
  const follow = link ? html`<p><a href="${link.href}" rel="noreferrer noopener">${link.label}</a></p>` : html``;
  return page(
    `${title} · ${serverName}`,
    html`<div class="brand">${ALERT_ICON}<span>${serverName}</span></div>
<h1><strong>${title}</strong></h1>
<p class="lead">${message}</p>
${follow}<p class="hint">You can close this page.</p>`,
  );
}
