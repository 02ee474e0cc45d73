/**
 * The programmatic API: your own tools, served behind cupcake-mcp's OAuth 2.1 server.
 *
 * ```js
 * const server = createCupcakeServer({ config: { name: 'weather' }, ownerPassword: '…' });
 * server.registerTool('forecast', { inputSchema: { city: z.string() } }, async ({ city }) => ({ content: [...] }));
 * const { url } = await server.listen();
 * ```
 */
import { dirname, resolve } from 'node:path';
import { baseUrlFollowsPort, loadConfig, parseConfig } from './config/load.js';
import type { Config, ConfigInput } from './config/schema.js';
import { ToolRegistry } from './mcp/tool-registry.js';
import { launchServer, type LaunchedServer } from './server/launch.js';
import { silentLogger, type Logger } from './shared/logger.js';

export type { Config, ConfigInput } from './config/schema.js';
export type { ToolCallContext, ToolCaller, ZodToolConfig } from './mcp/tool-registry.js';
export { ConfigError } from './config/load.js';
export type { Logger } from './shared/logger.js';

export interface CupcakeServerOptions {
  /**
   * The settings of `cupcake.config.json` as an object (relative paths against `cwd`), or the
   * path of such a file. Default: the embedded default (port 8787, data dir `./.cupcake`).
   */
  config?: ConfigInput | string;
  /**
   * Sets the owner password when the data dir has none yet (as `cupcake-mcp init` would). Like
   * `serve`, a server claims its data dir: a second server (or a `serve`) on it is refused.
   */
  ownerPassword?: string;
  /** Folder that relative paths of an object config resolve against; default: the current directory. */
  cwd?: string;
  logger?: Logger;
}

export interface CupcakeServer {
  /** The validated configuration (durations in ms, absolute paths). */
  readonly config: Config;
  /** Registers a tool in the MCP SDK's `registerTool` style; serve it before or after `listen()`. */
  registerTool: ToolRegistry['registerTool'];
  /** Starts listening; `url` is the base URL to put before `/mcp` and `/sse`. */
  listen(): Promise<{ url: string; port: number }>;
  /** Stops gracefully: open streams closed, the store and the event log flushed. */
  close(): Promise<void>;
}

export function createCupcakeServer(options: CupcakeServerOptions = {}): CupcakeServer {
  const cwd = options.cwd ?? process.cwd();
  let config: Config;
  let followsPort: boolean;
  if (typeof options.config === 'string') {
    const path = resolve(cwd, options.config);
    ({ config, baseUrlFollowsPort: followsPort } = loadConfig({ path, cwd: dirname(path) }));
  } else {
    config = parseConfig(options.config ?? {}, cwd);
    followsPort = baseUrlFollowsPort(options.config?.baseUrl, options.config?.port);
  }
  const registry = new ToolRegistry();
  const logger = options.logger ?? silentLogger;
  let launched: LaunchedServer | undefined;

  return {
    config,
    registerTool: registry.registerTool.bind(registry),
    async listen() {
      if (launched) throw new Error('this server is already listening');
      launched = await launchServer({
        config,
        baseUrlFollowsPort: followsPort,
        logger,
        registry,
        firstPassword: { password: options.ownerPassword, source: 'ownerPassword' },
      });
      return { url: launched.baseUrl, port: launched.port };
    },
    async close() {
      await launched?.close();
      launched = undefined;
    },
  };
}
