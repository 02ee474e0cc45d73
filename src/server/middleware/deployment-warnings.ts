import type { Context, Next } from 'koa';
import { isLoopbackHost, type Config } from '../../config/schema.js';
import type { Logger } from '../../shared/logger.js';

/**
 * Coded warnings about how the server is deployed. They do not stop it: a local try on plain
 * http is legitimate; they name what breaks once clients come from elsewhere.
 */

/** An IP literal or host name as written in `host` (brackets around IPv6 allowed). */
function listensOnLoopbackOnly(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === '::1' || isLoopbackHost(bare);
}

/**
 * CUPCAKE_W001: the issuer is plain http while the server is reachable from other machines
 * (a non-loopback base URL, or a loopback one served on a public address). OAuth 2.1 §1.5
 * allows http only for loopback, and remote clients would be sent to "localhost".
 */
export function insecureBaseUrlWarning(config: Pick<Config, 'baseUrl' | 'host'>): string | undefined {
  const url = new URL(config.baseUrl);
  if (url.protocol === 'https:') return undefined;
  const publicBase = !isLoopbackHost(url.hostname);
  const publicListen = !listensOnLoopbackOnly(config.host);
  if (!publicBase && !publicListen) return undefined;
  const where = publicBase
    ? `baseUrl ${config.baseUrl} is not https`
    : `baseUrl ${config.baseUrl} is not https while serve listens on ${config.host}, reachable from other machines`;
  return (
    `CUPCAKE_W001 ${where}: tokens and the owner password would cross the network in clear text and remote clients cannot use a localhost issuer. ` +
    'Put a TLS proxy in front (cupcake-mcp init --deploy caddy|nginx), set "baseUrl" to its https URL and listen on 127.0.0.1.'
  );
}

export const FORWARDED_WITHOUT_TRUST =
  'CUPCAKE_W002 requests arrive through a proxy (X-Forwarded-For/X-Forwarded-Proto) but "trustProxy" is false: every client looks like the proxy, so ' +
  'five wrong passwords from anyone lock the consent form for everyone and the event log shows the proxy\'s address. Set "trustProxy": true ' +
  'in cupcake.config.json when serve is reachable only through that proxy.';

/**
 * Logs CUPCAKE_W001 once when the app is built, and CUPCAKE_W002 once, at the first request
 * that carries forwarding headers while `trustProxy` is off. Never changes a response.
 */
export function deploymentWarnings(config: Pick<Config, 'baseUrl' | 'host' | 'trustProxy'>, logger: Logger) {
  const insecure = insecureBaseUrlWarning(config);
  if (insecure) logger.warn(insecure);
  let forwardedWarned = config.trustProxy;
  return async function warnAboutDeployment(ctx: Context, next: Next): Promise<void> {
    if (!forwardedWarned && (ctx.get('X-Forwarded-For') || ctx.get('X-Forwarded-Proto'))) {
      forwardedWarned = true;
      logger.warn(FORWARDED_WITHOUT_TRUST);
    }
    await next();
  };
}
