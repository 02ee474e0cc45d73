import type { Context } from 'koa';
import { randomToken } from '../shared/ids.js';

const VALUE = /^[A-Za-z0-9_-]{32,64}$/;

/**
 * The random value that binds a server-side form or sign-in to this browser (checked together
 * with a value in the page, so another site cannot complete it): read from `name`, or set —
 * HttpOnly, SameSite=Lax, scoped to `path`, Secure behind https. Set by hand: Koa refuses Secure
 * cookies when TLS ends at a proxy it does not trust.
 */
export function browserBinding(ctx: Context, name: string, options: { path: string; secure: boolean }): string {
  const existing = ctx.cookies.get(name);
  if (existing && VALUE.test(existing)) return existing;
  const value = randomToken(32);
  ctx.append('Set-Cookie', `${name}=${value}; Path=${options.path}; HttpOnly; SameSite=Lax${options.secure ? '; Secure' : ''}`);
  return value;
}
