import type Router from '@koa/router';
import { isLoopbackHost } from '../../config/schema.js';
import { VERSION } from '../../shared/version.js';
import type { ServerContext } from '../context.js';
import { renderHomePage, type HomeCheck } from '../views/home.js';
import { securePage } from '../http.js';

/**
 * What the home page says about discovery. The issuer, every endpoint and every protected
 * resource's authorization server are all built from `baseUrl` (RFC 8414 §3.3, RFC 9728 §3.3), so
 * they agree by construction; what can go wrong from the outside — a proxy, another host name —
 * shows as the page being reached at another address, and `cupcake-mcp doctor` checks it for real.
 * The one property of the base URL itself to check is https unless loopback (OAuth 2.1 §1.5).
 */
export function discoveryChecks(server: Pick<ServerContext, 'config'>): HomeCheck[] {
  const base = server.config.baseUrl;
  const checks: HomeCheck[] = [{ level: 'ok', title: 'Issuer is the base URL', detail: `${base}, in every discovery document and endpoint` }];
  const url = new URL(base);
  if (url.protocol === 'https:') checks.push({ level: 'ok', title: 'HTTPS', detail: 'ChatGPT and Claude connect only to https URLs.' });
  else if (isLoopbackHost(url.hostname)) {
    checks.push({
      level: 'warn',
      title: 'HTTP on this machine only',
      detail: 'Fine for MCP clients on this computer; ChatGPT and Claude need a public https base URL (see "Put it on the internet" in the README).',
    });
  } else checks.push({ level: 'fail', title: 'Not HTTPS', detail: 'The base URL must use https unless its host is loopback (OAuth 2.1 §1.5).' });
  return checks;
}

/** GET / : the home page. Public: everything on it is in the public discovery documents too. */
export function mountHomeRoute(router: Router, server: ServerContext): void {
  const base = server.settings.issuer;
  const { config } = server;
  const endpoints: Array<{ label: string; url: string; note: string }> = [];
  if (config.transports.streamableHttp)
    endpoints.push({ label: 'Streamable HTTP', url: `${base}/mcp`, note: 'ChatGPT, Claude, Cursor, VS Code, MCP Inspector' });
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
