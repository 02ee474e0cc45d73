const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;', '=': '&#61;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"'`=]/g, (c) => ESCAPES[c]!);
}

/** Tagged template that escapes every interpolated value unless it is already `SafeHtml`. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((value, i) => {
    const rendered = Array.isArray(value)
      ? value.map((v) => (v instanceof SafeHtml ? v.value : escapeHtml(v))).join('')
      : value instanceof SafeHtml
        ? value.value
        : value === undefined || value === null || value === false
          ? ''
          : escapeHtml(value);
    out += rendered + strings[i + 1]!;
  });
  return new SafeHtml(out);
}

/**
 * One stylesheet for the pages a person sees (consent, errors): inline, because the CSP allows
 * no external asset (DESIGN.md §4), light and dark, and comfortable at 320 px wide.
 */
const STYLE = `
  :root {
    color-scheme: light dark;
    --bg: #f3f4f6; --card: #ffffff; --text: #111827; --muted: #4b5563; --faint: #6b7280; --line: #e5e7eb;
    --accent: #1d4ed8; --accent-hover: #1e40af; --accent-text: #ffffff; --focus: #93c5fd;
    --soft: #f9fafb; --warn-bg: #fffbeb; --warn-line: #fcd34d; --warn-text: #78350f;
    --error-bg: #fef2f2; --error-line: #fca5a5; --error-text: #991b1b; --ok: #15803d;
    font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
    font-size: 16px; line-height: 1.5; -webkit-text-size-adjust: 100%;
  }
  @media (prefers-color-scheme: dark) {
    :root {
      --bg: #0b0f17; --card: #151b26; --text: #f3f4f6; --muted: #c2c8d2; --faint: #9aa3b2; --line: #2a3342;
      --accent: #3b82f6; --accent-hover: #60a5fa; --accent-text: #0b0f17; --focus: #1d4ed8;
      --soft: #1b2230; --warn-bg: #2a2210; --warn-line: #8a6d1d; --warn-text: #fde68a;
      --error-bg: #2b1416; --error-line: #7f1d1d; --error-text: #fecaca; --ok: #4ade80;
    }
  }
  *, *::before, *::after { box-sizing: border-box; }
  body {
    margin: 0; min-height: 100vh; background: var(--bg); color: var(--text); display: flex; flex-direction: column;
    align-items: center; padding: 48px 16px 32px;
  }
  main {
    width: 100%; max-width: 460px; background: var(--card); border: 1px solid var(--line); border-radius: 16px;
    padding: 32px; box-shadow: 0 1px 2px rgb(0 0 0 / .04), 0 8px 24px rgb(0 0 0 / .06);
  }
  .brand { display: flex; align-items: center; gap: 10px; margin: 0 0 24px; color: var(--muted); font-size: .95rem; font-weight: 600; overflow-wrap: anywhere; }
  .brand svg { flex: none; }
  h1 { font-size: 1.375rem; line-height: 1.3; margin: 0 0 8px; font-weight: 500; letter-spacing: -.01em; overflow-wrap: anywhere; }
  h1 strong { font-weight: 750; }
  h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .06em; color: var(--faint); margin: 24px 0 8px; font-weight: 650; }
  p { margin: 0 0 12px; }
  .lead { color: var(--muted); margin-bottom: 20px; }
  .target { display: flex; align-items: center; gap: 12px; padding: 12px 14px; background: var(--soft); border: 1px solid var(--line); border-radius: 12px; }
  .target svg { flex: none; color: var(--faint); }
  .target-label { display: block; font-size: .85rem; color: var(--muted); }
  .target-host { display: block; font-weight: 650; font-size: 1.05rem; overflow-wrap: anywhere; }
  .target-note { color: var(--faint); font-weight: 400; font-size: .9rem; }
  .target + .target { margin-top: 10px; }
  .target.verified svg { color: var(--ok); }
  ul.grants { list-style: none; padding: 0; margin: 0; }
  ul.grants li { display: flex; gap: 10px; align-items: flex-start; padding: 6px 0; }
  ul.grants svg { flex: none; margin-top: 3px; color: var(--ok); }
  .grant-detail { display: block; color: var(--faint); font-size: .875rem; overflow-wrap: anywhere; }
  .notice {
    margin: 20px 0 0; padding: 12px 14px; border-radius: 12px; border: 1px solid var(--warn-line);
    background: var(--warn-bg); color: var(--warn-text); font-size: .925rem; overflow-wrap: anywhere;
  }
  .claim-note { margin: -2px 0 10px; color: var(--warn-text); font-size: .9rem; overflow-wrap: anywhere; }
  h1 strong.claimed { font-weight: 650; }
  .error {
    margin: 20px 0 0; padding: 12px 14px; border-radius: 12px; border: 1px solid var(--error-line);
    background: var(--error-bg); color: var(--error-text); font-weight: 600;
  }
  form { margin: 0; }
  label { display: block; font-weight: 600; margin: 24px 0 6px; }
  .hint { color: var(--faint); font-size: .85rem; margin: 6px 0 0; }
  input[type=password] {
    width: 100%; font: inherit; font-size: 1rem; padding: 12px 14px; border: 1px solid var(--line); border-radius: 10px;
    background: var(--card); color: var(--text);
  }
  input[type=password]:focus { outline: 3px solid var(--focus); outline-offset: 1px; border-color: var(--accent); }
  .buttons { display: flex; flex-direction: row-reverse; gap: 12px; margin-top: 24px; }
  button { flex: 1; min-height: 48px; font: inherit; font-size: 1rem; font-weight: 650; border-radius: 10px; cursor: pointer; padding: 10px 16px; }
  button:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
  .approve { background: var(--accent); color: var(--accent-text); border: 1px solid var(--accent); }
  .approve:hover { background: var(--accent-hover); border-color: var(--accent-hover); }
  .deny { background: transparent; color: var(--text); border: 1px solid var(--line); }
  .deny:hover { background: var(--soft); }
  details { margin-top: 24px; border-top: 1px solid var(--line); padding-top: 12px; color: var(--muted); font-size: .875rem; }
  summary { cursor: pointer; color: var(--faint); }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 6px 14px; margin: 12px 0 0; }
  dt { color: var(--faint); }
  dd { margin: 0; overflow-wrap: anywhere; min-width: 0; }
  code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; }
  footer { margin-top: 20px; color: var(--faint); font-size: .8rem; text-align: center; }
  .icon-error { color: var(--error-text); }
  .icon-ok { color: var(--ok); }
  a { color: var(--accent); }
  a.button {
    display: flex; align-items: center; justify-content: center; min-height: 48px; margin-top: 16px; padding: 10px 16px;
    border-radius: 10px; background: var(--accent); color: var(--accent-text); font-weight: 650; text-decoration: none;
  }
  a.button:hover { background: var(--accent-hover); }
  a.button:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
  ul.plain { list-style: none; padding: 0; margin: 0; }
  ul.plain li { padding: 6px 0; }
  .paste {
    display: block; margin-top: 2px; padding: 8px 10px; background: var(--soft); border: 1px solid var(--line);
    border-radius: 8px; overflow-wrap: anywhere; user-select: all;
  }
  .mark-ok { color: var(--ok); font-weight: 700; }
  .mark-warn { color: var(--warn-text); font-weight: 700; }
  .mark-fail { color: var(--error-text); font-weight: 700; }
  @media (max-width: 480px) {
    body { padding: 16px 12px 24px; }
    main { padding: 24px 20px; border-radius: 14px; }
    .buttons { flex-direction: column; }
    dl { grid-template-columns: 1fr; gap: 0; }
    dd { margin-bottom: 8px; }
  }
`;

/** A padlock: the mark of the authorization pages (inline, no asset to fetch). */
export const LOCK_ICON = new SafeHtml(
  '<svg width="28" height="28" viewBox="0 0 24 24" fill="none" aria-hidden="true">' +
    '<rect x="2" y="2" width="20" height="20" rx="6" fill="currentColor" opacity=".12"/>' +
    '<path d="M8.5 10.5V9a3.5 3.5 0 1 1 7 0v1.5" stroke="currentColor" stroke-width="1.6" stroke-linecap="round"/>' +
    '<rect x="7" y="10.5" width="10" height="7.5" rx="2" fill="currentColor"/></svg>',
);

export function page(title: string, body: SafeHtml, footer = 'Protected by cupcake-mcp · OAuth 2.1'): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${title}</title>
<style>${new SafeHtml(STYLE)}</style>
</head>
<body>
<main>
${body}
</main>
<footer>${footer}</footer>
</body>
</html>
`.value;
}
