import { InvalidTargetError } from './errors.js';
import type { OAuthSettings } from './settings.js';

/**
 * RFC 8707 §2: `resource` must be an absolute URI without a fragment naming one of our resources.
 * Scheme and host case and a trailing slash are tolerated; the canonical form is returned.
 */
export function resolveResource(resource: string | undefined, settings: OAuthSettings, fallback: string = settings.issuer): string {
  if (resource === undefined || resource === '') return fallback;
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    throw new InvalidTargetError('resource must be an absolute URI (RFC 8707 §2)');
  }
  if (url.hash || resource.includes('#')) throw new InvalidTargetError('resource must not contain a fragment (RFC 8707 §2)');
  const normalized = `${url.origin}${url.pathname}${url.search}`.replace(/\/+$/, '');
  const match = settings.resources.find((r) => r === normalized);
  if (!match) throw new InvalidTargetError('resource is not served by this authorization server');
  return match;
}

/** Whether a token issued for `resource` may be used at this server (audience check). */
export function isOurResource(resource: string, settings: OAuthSettings): boolean {
  return settings.resources.includes(resource);
}
