import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from './errors.js';
import { ConfigSchema, isLoopbackHost, type Config } from './schema.js';

export const DEFAULT_CONFIG_FILE = 'cupcake.config.json';

export { ConfigError };

export interface LoadConfigOptions {
  /** `--config`, else `$CUPCAKE_CONFIG`; when neither is given, `./cupcake.config.json` if present. */
  path?: string | undefined;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Command-line flags (`--port`, `--host`, `--base-url`), applied after the environment. */
  overrides?: { port?: number | string | undefined; host?: string | undefined; baseUrl?: string | undefined; dataDir?: string | undefined };
}

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file read, or null when running on the embedded default. */
  path: string | null;
  /**
   * Whether the base URL should follow the port actually bound (`http://localhost:<port>`): when
   * none was given, or when the file's is a loopback http URL on the file's own port — the local
   * setup `init` writes — so that `serve --port 0` or `--port 9000` still publishes correct URLs.
   */
  baseUrlFollowsPort: boolean;
}

/** Where the config file is looked for. */
export function resolveConfigPath(options: Pick<LoadConfigOptions, 'path' | 'env' | 'cwd'>): { path: string; explicit: boolean } {
  const cwd = options.cwd ?? process.cwd();
  const given = options.path ?? options.env?.CUPCAKE_CONFIG;
  if (given) return { path: resolve(cwd, given), explicit: true };
  return { path: resolve(cwd, DEFAULT_CONFIG_FILE), explicit: false };
}

export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix = '', parentPath: readonly PropertyKey[] = []): string[] {
  return issues.flatMap((issue) => {
    const path = [...parentPath, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Report the problems of the alternative the value came closest to (a local vs a remote
      // server); when none is closest, the union's own message says what was expected.
      const sizes = issue.errors.map((branch) => branch.length);
      const fewest = Math.min(...sizes);
      const closest = issue.errors.filter((branch) => branch.length === fewest);
      if (closest.length === 1 && fewest > 0) return formatIssues(closest[0]!, prefix, path);
    }
    const where = path.map(String).join('.');
    let message = issue.message;
    if (issue.code === 'invalid_key') message = 'expected a name of letters, digits, "_" or "-" (at most 32)';
    if (issue.code === 'unrecognized_keys') message = `unknown setting${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return [`${prefix}${where || '(config)'}: ${message}`];
  });
}

/** Reads, merges environment and flags, validates, and resolves paths against the config file. */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? {};
  const { path, explicit } = resolveConfigPath(options);
  let raw: Record<string, unknown> = {};
  let fileFound = false;
  if (existsSync(path)) {
    fileFound = true;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new ConfigError([`${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`]);
    }
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError([`${path}: not valid JSON (${(error as Error).message})`]);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError([`${path}: expected a JSON object`]);
  } else if (explicit) {
    throw new ConfigError([`${path}: no such config file (run "cupcake-mcp init" to create one)`]);
  }

  const base = fileFound ? dirname(path) : cwd;
  const merged: Record<string, unknown> = { ...raw };
  // Environment and flags override the file; their relative paths are relative to where the command runs.
  const overrideSources: Array<[string, Record<string, unknown>]> = [
    ['environment', { baseUrl: env.CUPCAKE_BASE_URL, port: env.CUPCAKE_PORT, host: env.CUPCAKE_HOST, dataDir: env.CUPCAKE_DATA_DIR, store: env.CUPCAKE_STORE }],
    ['flags', { ...options.overrides }],
  ];
  let dataDirFromCwd = false;
  for (const [, source] of overrideSources) {
    for (const [key, value] of Object.entries(source)) {
      if (value === undefined || value === '') continue;
      if (key === 'port' && typeof value === 'string') merged.port = /^\d+$/.test(value) ? Number(value) : value;
      else merged[key] = value;
      if (key === 'dataDir') dataDirFromCwd = true;
    }
  }

  const config = parseConfig(merged, base, dataDirFromCwd ? cwd : base);
  const explicitBaseUrl = overrideSources.some(([, source]) => source.baseUrl !== undefined && source.baseUrl !== '');
  return {
    config,
    path: fileFound ? path : null,
    baseUrlFollowsPort: !explicitBaseUrl && baseUrlFollowsPort(raw.baseUrl, raw.port),
  };
}

/** See LoadedConfig.baseUrlFollowsPort; `baseUrl` and `port` as written in the settings. */
export function baseUrlFollowsPort(baseUrl: unknown, port: unknown): boolean {
  if (baseUrl === undefined) return true;
  if (typeof baseUrl !== 'string') return false;
  try {
    const url = new URL(baseUrl);
    const urlPort = url.port === '' ? 80 : Number(url.port);
    return (
      url.protocol === 'http:' &&
      isLoopbackHost(url.hostname) &&
      url.pathname.replace(/\/+$/, '') === '' &&
      urlPort === (typeof port === 'number' ? port : 8787)
    );
  } catch {
    return false;
  }
}

/**
 * Validates settings given as an object (a parsed file, or the programmatic API's options) and
 * resolves relative paths against `base` (the data dir against `dataDirBase`).
 */
export function parseConfig(raw: unknown, base: string, dataDirBase: string = base): Config {
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error.issues));
  const config = parsed.data;
  config.dataDir = resolve(dataDirBase, config.dataDir);
  if (config.tools.docs !== false) config.tools.docs = { dir: resolve(base, config.tools.docs.dir) };
  for (const server of Object.values(config.tools.servers)) {
    if ('command' in server && server.cwd !== undefined && !isAbsolute(server.cwd)) server.cwd = resolve(base, server.cwd);
  }
  return config;
}
