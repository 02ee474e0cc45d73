import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/logger.js';
import { registerWhoamiTool } from './builtin-tools.js';
import { DocsIndex } from './docs/docs-index.js';
import { UpstreamCatalog } from './catalog.js';
import { ToolRegistry } from './tool-registry.js';
import { startUpstreams, type Upstreams } from './upstream.js';

/** Every tool source of a server (DESIGN.md §5), ready to be served by an app. */
export interface Toolset {
  registry: ToolRegistry;
  /** The docs folder index, when `tools.docs` is on: the app registers search/fetch and serves /docs. */
  docs: DocsIndex | undefined;
  /** Upstream MCP servers of `tools.servers`, connecting in the background. */
  upstreams?: Upstreams | undefined;
  /** Their resources, resource templates and prompts. */
  catalog?: UpstreamCatalog | undefined;
  close(): Promise<void>;
}

/**
 * Builds the tools the config asks for: the built-in tool, the docs index, upstream servers,
 * added to `registry` (which may already hold tools of the programmatic API).
 */
export async function createToolset(config: Config, logger: Logger, registry: ToolRegistry = new ToolRegistry()): Promise<Toolset> {
  registerWhoamiTool(registry, config.name);
  let docs: DocsIndex | undefined;
  if (config.tools.docs !== false) {
    docs = new DocsIndex(config.tools.docs.dir, logger);
    await docs.start();
  }
  const hasUpstreams = Object.keys(config.tools.servers).length > 0;
  const catalog = hasUpstreams ? new UpstreamCatalog(true) : undefined;
  const upstreams = hasUpstreams ? startUpstreams(config.tools.servers, registry, { logger, catalog }) : undefined;
  return {
    registry,
    docs,
    upstreams,
    catalog,
    async close() {
      docs?.close();
      await upstreams?.close();
    },
  };
}
