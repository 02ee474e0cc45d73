import type Router from '@koa/router';
import type { Context } from 'koa';
import { authorizationServerMetadata, protectedResourceMetadata } from '../../oauth/metadata.js';
import { VERSION } from '../../shared/version.js';
import type { ServerContext } from '../context.js';

/** Serialised once: discovery documents only change with the config. */
function jsonDocument(value: unknown) {
  const body = JSON.stringify(value);
  return (ctx: Context) => {
    ctx.set('Cache-Control', 'public, max-age=60');
    ctx.type = 'application/json';
    ctx.body = body;
  };
}

/**
 * Discovery (public, GET and HEAD): RFC 8414 metadata at every path ChatGPT and Claude probe,
 * RFC 9728 protected resource metadata per resource, the MCP manifest, and /healthz.
 */
export function mountMetadataRoutes(router: Router, server: ServerContext): void {
  const { settings, config } = server;
  const asMetadata = jsonDocument(authorizationServerMetadata(settings));
  // RFC 8414 §3.1 inserts the well-known segment before the issuer's path; clients that build
  // "<issuer>/.well-known/…/mcp" from the resource URL are answered at the same document.
  for (const path of [
    '/.well-known/oauth-authorization-server',
    '/.well-known/oauth-authorization-server/mcp',
    '/.well-known/oauth-authorization-server/sse',
    '/.well-known/openid-configuration',
    '/.well-known/openid-configuration/mcp',
    '/.well-known/openid-configuration/sse',
    '/mcp/.well-known/openid-configuration',
    '/sse/.well-known/openid-configuration',
  ]) {
    router.get(path, asMetadata);
  }

  const base = settings.issuer;
  router.get('/.well-known/oauth-protected-resource', jsonDocument(protectedResourceMetadata(settings, base, config.name)));
  router.get('/.well-known/oauth-protected-resource/mcp', jsonDocument(protectedResourceMetadata(settings, `${base}/mcp`, `${config.name} (Streamable HTTP)`)));
  router.get('/.well-known/oauth-protected-resource/sse', jsonDocument(protectedResourceMetadata(settings, `${base}/sse`, `${config.name} (SSE)`)));

  const endpoints: Record<string, string> = {};
  if (config.transports.streamableHttp) endpoints.streamable_http = `${base}/mcp`;
  if (config.transports.sse) endpoints.sse = `${base}/sse`;
  router.get(
    '/.well-known/mcp/manifest.json',
    jsonDocument({
      name: config.name,
      version: VERSION,
      description: `${config.name}: an MCP server protected by OAuth 2.1 (cupcake-mcp)`,
      endpoints,
      authorization: {
        issuer: settings.issuer,
        protected_resource_metadata: `${base}/.well-known/oauth-protected-resource`,
      },
    }),
  );

  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok', version: VERSION };
  });
}
