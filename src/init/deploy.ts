import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isLoopbackHost, type Config } from '../config/schema.js';
import { VERSION } from '../shared/version.js';
import { TEMPLATES_DIR } from './scaffold.js';

/**
 * Deployment templates (`init --deploy caddy|nginx|systemd`): the files of `templates/deploy/`
 * filled with the values of one config — public host and path from `baseUrl`, the address
 * `serve` listens on, the config's location. Rendering is pure; writing never replaces a file
 * unless forced.
 */

export const DEPLOY_TARGETS = ['caddy', 'nginx', 'systemd'] as const;
export type DeployTarget = (typeof DEPLOY_TARGETS)[number];

/** Where the rendered files go, relative to the folder of the config. */
export const DEPLOY_DIR = 'deploy';

/** The bin `init` runs from: what the systemd unit starts unless told otherwise. */
export const DEFAULT_BIN_PATH = fileURLToPath(new URL('../../bin/cupcake-mcp.js', import.meta.url));

const TEMPLATE_FILES: Record<DeployTarget, Array<{ template: string; output: string; mode: number }>> = {
  caddy: [{ template: 'Caddyfile', output: 'Caddyfile', mode: 0o644 }],
  nginx: [{ template: 'nginx.conf', output: 'nginx-cupcake-mcp.conf', mode: 0o644 }],
  systemd: [
    { template: 'cupcake-mcp.service', output: 'cupcake-mcp.service', mode: 0o644 },
    // Holds secrets once edited: readable by its owner only.
    { template: 'cupcake-mcp.env', output: 'cupcake-mcp.env', mode: 0o600 },
  ],
};

/** A config the templates cannot be written for; `setting` names what to change. */
export class DeployError extends Error {
  constructor(
    message: string,
    readonly setting: 'baseUrl' | 'port' | 'configPath',
  ) {
    super(message);
    this.name = 'DeployError';
  }
}

export interface DeploySource {
  config: Pick<Config, 'baseUrl' | 'host' | 'port'>;
  /** Absolute path of `cupcake.config.json`. */
  configPath: string;
  /** The node binary for the systemd unit (default: the one running now). */
  nodePath?: string;
  /** The cupcake-mcp bin for the systemd unit (default: this package's). */
  binPath?: string;
}

export interface DeployFile {
  target: DeployTarget;
  /** Path relative to the config's folder, e.g. `deploy/Caddyfile`. */
  path: string;
  content: string;
  mode: number;
}

type Values = Record<string, string | boolean>;

// A path prefix goes into nginx locations and Caddy matchers unquoted: plain segments only.
const SAFE_PATH = /^(\/[A-Za-z0-9._~-]+)+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The address a proxy on this machine reaches `serve` at. */
export function upstreamAddress(host: string, port: number): string {
  const bare = host.replace(/^\[|\]$/g, '');
  if (bare === '0.0.0.0' || bare === '') return `127.0.0.1:${port}`;
  if (bare === '::') return `[::1]:${port}`;
  return bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
}

/** systemd's quoting for one word of a unit setting (systemd.syntax(7)); `%` starts a specifier. */
function systemdWord(value: string): string {
  const escaped = value.replace(/%/g, '%%');
  return /[\s"'\\]/.test(escaped) ? `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : escaped;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Checks that `targets` can be generated for this config and returns the template values. */
export function deployValues(source: DeploySource, targets: readonly DeployTarget[]): Values {
  const { config } = source;
  const url = new URL(config.baseUrl);
  const proxy = targets.filter((t) => t === 'caddy' || t === 'nginx');
  if (proxy.length > 0) {
    const names = proxy.join(' and ');
    if (url.protocol !== 'https:' || isLoopbackHost(url.hostname)) {
      throw new DeployError(
        `--deploy ${names}: baseUrl is ${config.baseUrl}, but the proxy needs the public https URL people reach (like https://mcp.example.com)`,
        'baseUrl',
      );
    }
    if (config.port === 0) throw new DeployError(`--deploy ${names}: port is 0 (any free port), but the proxy needs a fixed port to forward to`, 'port');
  }
  const pathPrefix = url.pathname.replace(/\/+$/, '');
  if (pathPrefix !== '' && !SAFE_PATH.test(pathPrefix)) {
    throw new DeployError(
      `the path of baseUrl, "${pathPrefix}", has characters the templates cannot carry safely (use letters, digits, ".", "_", "~", "-" and "/")`,
      'baseUrl',
    );
  }
  const configPath = resolve(source.configPath);
  if (CONTROL.test(configPath)) throw new DeployError(`the config path ${JSON.stringify(configPath)} contains control characters`, 'configPath');
  const nodePath = source.nodePath ?? process.execPath;
  const binPath = source.binPath ?? DEFAULT_BIN_PATH;
  return {
    baseUrl: config.baseUrl,
    siteAddress: url.host,
    siteHost: url.hostname,
    publicHostname: url.hostname,
    publicPort: url.port || '443',
    pathPrefix,
    pathPrefixRegex: escapeRegex(pathPrefix),
    upstream: upstreamAddress(config.host, config.port),
    listenHost: config.host,
    listenPort: String(config.port),
    configPath,
    configDir: dirname(configPath).replace(/%/g, '%%'),
    configEnv: systemdWord(`CUPCAKE_CONFIG=${configPath}`),
    execStart: [nodePath, binPath, 'serve'].map(systemdWord).join(' '),
    fromNpx: /[\\/]_npx[\\/]/.test(binPath),
    version: VERSION,
  };
}

/**
 * Fills `{{name}}` and the line blocks `{{#if name}}…{{/if}}` / `{{#unless name}}…{{/unless}}`.
 * A name without a value is an error, so that a typo in a template cannot ship silently.
 */
export function renderTemplate(text: string, values: Values): string {
  const truthy = (name: string) => {
    if (!(name in values)) throw new Error(`template value "${name}" is not defined`);
    const value = values[name];
    return value !== false && value !== '';
  };
  const blocks = /^[ \t]*\{\{#(if|unless) (\w+)\}\}\r?\n([\s\S]*?)^[ \t]*\{\{\/\1\}\}\r?\n/gm;
  const withBlocks = text.replace(blocks, (_all, kind: string, name: string, body: string) => ((kind === 'if') === truthy(name) ? body : ''));
  return withBlocks.replace(/\{\{(\w+)\}\}/g, (_all, name: string) => {
    if (!(name in values) || typeof values[name] !== 'string') throw new Error(`template value "${name}" is not defined`);
    return values[name] as string;
  });
}

/** Renders the files of `targets` (in the order given, each once). */
export async function renderDeployFiles(source: DeploySource, targets: readonly DeployTarget[]): Promise<DeployFile[]> {
  const unique = [...new Set(targets)];
  const values = deployValues(source, unique);
  const files: DeployFile[] = [];
  for (const target of unique) {
    for (const spec of TEMPLATE_FILES[target]) {
      const text = await readFile(join(TEMPLATES_DIR, 'deploy', spec.template), 'utf8');
      files.push({ target, path: join(DEPLOY_DIR, spec.output), content: renderTemplate(text, values), mode: spec.mode });
    }
  }
  return files;
}

/** A template that exists already; nothing was written. */
export class DeployExistsError extends Error {
  constructor(readonly paths: string[]) {
    super(`${paths.join(', ')} already exist${paths.length === 1 ? 's' : ''}; run again with --force to overwrite`);
    this.name = 'DeployExistsError';
  }
}

/** The files of `files` that already exist under `dir` (absolute paths). */
export function existingDeployFiles(dir: string, files: DeployFile[]): string[] {
  return files.map((f) => resolve(dir, f.path)).filter((path) => existsSync(path));
}

/**
 * Writes the files under `dir`. Without `force`, any file that exists stops the whole write
 * before anything is touched. Returns the absolute paths written.
 */
export async function writeDeployFiles(dir: string, files: DeployFile[], options: { force: boolean }): Promise<string[]> {
  const targets = files.map((f) => ({ ...f, absolute: resolve(dir, f.path) }));
  const existing = existingDeployFiles(dir, files);
  if (existing.length > 0 && !options.force) throw new DeployExistsError(existing);
  for (const file of targets) {
    await mkdir(dirname(file.absolute), { recursive: true });
    await writeFile(file.absolute, file.content, { mode: file.mode });
    // writeFile keeps the mode of a file it replaces: set it.
    await chmod(file.absolute, file.mode);
  }
  return targets.map((f) => f.absolute);
}
