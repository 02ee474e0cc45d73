import type Router from '@koa/router';
import type { DocsIndex } from '../../mcp/docs/docs-index.js';
import type { ServerContext } from '../context.js';
import { requireBearer } from '../middleware/bearer.js';

/**
 * GET /docs/<id>: the document a search result's url points at, authenticated like the tools.
 * The id is only looked up in the index, so `..`, `%2e%2e`, absolute paths and links leading out
 * of the folder cannot name a file.
 */
export function mountDocsRoute(router: Router, server: ServerContext, docs: DocsIndex): void {
  router.get('/docs/{*path}', requireBearer(server, ''), async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    let id: string;
    try {
      id = ctx.path.slice('/docs/'.length).split('/').map(decodeURIComponent).join('/');
    } catch {
      id = '';
    }
    const doc = id ? await docs.read(id) : undefined;
    if (!doc) {
      ctx.status = 404;
      ctx.body = { error: 'not_found', error_description: 'no such document' };
      return;
    }
    ctx.type = /\.(md|markdown|mdx)$/i.test(doc.id) ? 'text/markdown; charset=utf-8' : 'text/plain; charset=utf-8';
    ctx.set('Content-Security-Policy', "default-src 'none'; sandbox");
    ctx.body = doc.text;
  });
}
