import type Router from '@koa/router';
import type { McpRuntime } from '../../mcp/runtime.js';
import { ToolInputError, UnknownToolError } from '../../mcp/tool-registry.js';
import { callerFromAuth } from '../../mcp/session-server.js';
import type { ServerContext } from '../context.js';
import { readJsonBody } from '../middleware/json-body.js';
import { requireBearer, requireToolScopes } from '../middleware/bearer.js';

/** GET /tools and POST /tools/<name>: the same tools as MCP, over plain HTTP for scripts and curl. */
export function mountToolRoutes(router: Router, server: ServerContext, mcp: McpRuntime): void {
  const bearer = requireBearer(server, '');

  router.get('/tools', bearer, (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { tools: mcp.tools.list() };
  });

  router.post(
    '/tools/:name',
    bearer,
    requireToolScopes(server, '', (ctx) => [ctx.params.name ?? '']),
    readJsonBody(),
    async (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      const name = ctx.params.name ?? '';
      const caller = callerFromAuth(ctx.state.authInfo, undefined);
      const body: unknown = ctx.request.body;
      const args = body === undefined || (typeof body === 'object' && body !== null && Object.keys(body).length === 0) ? {} : body;
      const started = Date.now();
      const abort = new AbortController();
      ctx.req.on('close', () => {
        if (!ctx.res.writableEnded) abort.abort();
      });
      try {
        const result = await mcp.tools.call(name, args, { caller, signal: abort.signal });
        if (result.isError) mcp.toolAudit.failed(caller, name, 'tool reported an error');
        else mcp.toolAudit.called(caller, name, Date.now() - started);
        ctx.body = result;
      } catch (error) {
        if (error instanceof UnknownToolError) {
          ctx.status = 404;
          ctx.body = { error: 'unknown_tool', error_description: error.message };
          return;
        }
        if (error instanceof ToolInputError) {
          mcp.toolAudit.failed(caller, name, error.message);
          ctx.status = 400;
          ctx.body = { error: 'invalid_arguments', error_description: error.message };
          return;
        }
        mcp.toolAudit.failed(caller, name, error instanceof Error ? error.message : String(error));
        ctx.body = { content: [{ type: 'text', text: `Tool ${name} failed: ${error instanceof Error ? error.message : String(error)}` }], isError: true };
      }
    },
  );
}
