/**
 * A browser as far as the sign-in pages care: fetch with a cookie jar (name, value, path; the
 * attributes a browser would honour here) and no automatic redirects, so that each step of a
 * flow is looked at.
 */
export interface BrowserResponse {
  status: number;
  headers: Headers;
  text: string;
  location(): URL;
}

interface Cookie {
  value: string;
  path: string;
  httpOnly: boolean;
  sameSite: string | undefined;
}

export class BrowserSession {
  readonly cookies = new Map<string, Cookie>();

  constructor(readonly baseUrl: string) {}

  async get(pathOrUrl: string): Promise<BrowserResponse> {
    return this.request(pathOrUrl, { method: 'GET' });
  }

  async postForm(pathOrUrl: string, form: Record<string, string>): Promise<BrowserResponse> {
    return this.request(pathOrUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** Follows 3xx answers with GET, as a browser does after a form post, until a page. */
  async follow(first: BrowserResponse, max = 5): Promise<BrowserResponse> {
    let response = first;
    for (let i = 0; i < max && response.status >= 300 && response.status < 400; i++) response = await this.get(response.location().href);
    return response;
  }

  private async request(pathOrUrl: string, init: { method: string; headers?: Record<string, string>; body?: string }): Promise<BrowserResponse> {
    const url = new URL(pathOrUrl, this.baseUrl);
    const cookie = [...this.cookies]
      .filter(([, c]) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map(([name, c]) => `${name}=${c.value}`);
    const response = await fetch(url, { ...init, redirect: 'manual', headers: { ...init.headers, ...(cookie.length ? { cookie: cookie.join('; ') } : {}) } });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const attr = (name: string) => attributes.find((a) => a.toLowerCase().startsWith(name))?.split('=')[1];
      this.cookies.set(pair!.slice(0, eq), {
        value: pair!.slice(eq + 1),
        path: attr('path') ?? '/',
        httpOnly: attributes.some((a) => a.toLowerCase() === 'httponly'),
        sameSite: attr('samesite'),
      });
    }
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      text,
      location: () => {
        const location = response.headers.get('location');
        if (!location) throw new Error(`expected a redirect from ${init.method} ${url.href} (status ${response.status}): ${text.slice(0, 300)}`);
        return new URL(location, url);
      },
    };
  }
}

/** The value of a hidden form field, or undefined. */
export function hiddenField(html: string, name: string): string | undefined {
  return new RegExp(`name="${name}" value="([^"]+)"`).exec(html)?.[1];
}
