import { html, page } from './html.js';

/** An error shown to the person in the browser; never a redirect (RFC 6749 §4.1.2.1). */
export function renderErrorPage(title: string, message: string, serverName: string): string {
  return page(
    `${title} · ${serverName}`,
    html`<h1>${title}</h1>
<p>${message}</p>
<p class="muted">${serverName}</p>`,
  );
}
