import type Router from '@koa/router';
import { isLoopbackHost } from '../../config/schema.js';
import { authorizationServerMetadata, protectedResourceMetadata } from '../../oauth/metadata.js';
import { VERSION } from '../../shared/version.js';
import type { ServerContext } from '../context.js';
import { renderHomePage, type HomeCheck } from '../views/home.js';
import { securePage } from './authorize.js';

/**
 * Whether discovery holds together the way ChatGPT and Claude check it: the documents the
 * metadata routes serve name the base URL as issuer (RFC 8414 §3.3: byte for byte), every
 * endpoint lives under it, every protected resource points back at it (RFC 9728 §3.3), and the
 * base URL is https unless it is loopback (OAuth 2.1 §1.5).
 */
export function discoveryChecks(server: Pick<ServerContext, 'settings' | 'config'>): HomeCheck[] {
  const { settings, config } = server;
  const base = config.baseUrl;
  const as = authorizationServerMetadata(settings);
  const problems: string[] = [];
  if (as.issuer !== base) problems.push(`the metadata names ${as.issuer} as issuer`);
  for (const [name, url] of Object.entries({ authorization_endpoint: as.authorization_endpoint, token_endpoint: as.token_endpoint, registration_endpoint: as.registration_endpoint })) {
    if (!url.startsWith(`${base}/`)) problems.push(`${name} ${url} is not under the base URL`);
  }
  for (const resource of settings.resources) {
    const prm = protectedResourceMetadata(settings, resource, config.name);
    if (prm.authorization_servers.length !== 1 || prm.authorization_servers[0] !== base) problems.push(`the metadata of ${resource} names another authorization server`);
  }
  const checks: HomeCheck[] = [
    problems.length === 0
      ? { level: 'ok', title: 'Issuer is the base URL', detail: `${base}, in every discovery document and endpoint` }
      : { level: 'fail', title: 'Issuer and base URL disagree', detail: problems.join('; ') },
  ];
  const url = new URL(base);
  if (url.protocol === 'https:') checks.push({ level: 'ok', title: 'HTTPS', detail: 'ChatGPT and Claude connect only to https URLs.' });
  else if (isLoopbackHost(url.hostname)) {
    checks.push({ level: 'warn', title: 'HTTP on this machine only', detail: 'Fine for MCP clients on this computer; ChatGPT and Claude need a public https base URL (see "Put it on the internet" in the README).' });
  } else checks.push({ level: 'fail', title: 'Not HTTPS', detail: 'The base URL must use https unless its host is loopback (OAuth 2.1 §1.5).' });
  return checks;
}

/** GET / : the home page. Public: everything on it is in the public discovery documents too. */
export function mountHomeRoute(router: Router, server: ServerContext): void {
  const base = server.settings.issuer;
  const { config } = server;
  const endpoints: Array<{ label: string; url: string; note: string }> = [];
  if (config.transports.streamableHttp) endpoints.push({ label: 'Streamable HTTP', url: `${base}/mcp`, note: 'ChatGPT, Claude, Cursor, VS Code, MCP Inspector' });
  if (config.transports.sse) endpoints.push({ label: 'SSE (legacy)', url: `${base}/sse`, note: 'for clients that only speak HTTP+SSE' });
  const checks = discoveryChecks(server);
  const baseOrigin = new URL(base).origin;

  router.get('/', (ctx) => {
    securePage(ctx);
    // URLs are built from baseUrl, never from Host (DESIGN.md §4); Host only says where the person is.
    const here = `${ctx.protocol}://${ctx.host}`;
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = renderHomePage({
      serverName: config.name,
      version: VERSION,
      endpoints,
      checks,
      startUrl: `${base}/oauth/start`,
      reachedAt: ctx.host && here.toLowerCase() !== baseOrigin.toLowerCase() ? here.slice(0, 200) : undefined,
      baseUrl: base,
    });
  });
}
