import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, DEFAULT_CONFIG_FILE, formatIssues, loadConfig } from '../../config/load.js';
import { ConfigSchema, isLoopbackHost } from '../../config/schema.js';
import {
  DeployError,
  DeployExistsError,
  existingDeployFiles,
  renderDeployFiles,
  writeDeployFiles,
  type DeployFile,
  type DeployTarget,
} from '../../init/deploy.js';
import { InitExistsError, scaffold } from '../../init/scaffold.js';
import { generatePassword, hashPassword } from '../../oauth/secrets.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { println } from '../output.js';
import { obtainPassword } from '../password.js';
import { describeRedisUrl, isRedisUrl, storeSettingProblem } from '../../shared/store-url.js';
import { StoreUnavailableError } from '../../store/errors.js';

export interface InitOptions {
  yes?: boolean;
  baseUrl?: string;
  port?: string;
  host?: string;
  name?: string;
  passwordStdin?: boolean;
  docs?: string;
  deploy?: string[];
  force?: boolean;
  /** `redis://…` / `rediss://…`: the deployment's shared store (checked to answer before anything is written). */
  store?: string;
}

function parsePort(text: string): number | string {
  return /^\d+$/.test(text) && Number(text) <= 65535 ? Number(text) : 'expected a port number between 0 and 65535';
}

/** A prompt validator from the config schema's rule for `field`: the answer is checked when given. */
function fieldCheck(field: 'baseUrl' | 'host' | 'name'): (value: string) => string | true {
  return (value) => {
    const result = ConfigSchema.shape[field].safeParse(value);
    return result.success ? true : (result.error.issues[0]?.message ?? 'invalid value');
  };
}

const CONFIG_FLAGS: Array<[keyof InitOptions, string]> = [
  ['baseUrl', '--base-url'],
  ['port', '--port'],
  ['host', '--host'],
  ['name', '--name'],
  ['docs', '--docs'],
  ['passwordStdin', '--password-stdin'],
];

/** What to do after copying each kind of template into place. */
const NEXT_STEPS: Record<DeployTarget, string> = {
  caddy: 'Caddyfile: copy to /etc/caddy/Caddyfile (or import it), then: sudo systemctl reload caddy',
  nginx: 'nginx: copy to /etc/nginx/sites-available/, link into sites-enabled, get a certificate, then: sudo nginx -t && sudo systemctl reload nginx',
  systemd: 'systemd: install the unit and the env file as its header says, then: sudo systemctl enable --now cupcake-mcp',
};

function deployCliError(error: DeployError, howToFix: Record<DeployError['setting'], string>): CliError {
  return new CliError(`${error.message}; ${howToFix[error.setting]}`, 2);
}

function printWritten(ctx: CliContext, written: string[], targets: DeployTarget[]): void {
  const { color } = ctx.output;
  for (const path of written) println(ctx.output, `${color.green('✓')} wrote ${path}`);
  for (const target of targets) println(ctx.output, `  ${NEXT_STEPS[target]}`);
}

/**
 * `init --deploy` where a config exists: the templates are written from that file, which is
 * left as it is (`--force` then only allows replacing existing templates).
 */
async function runDeployOnly(ctx: CliContext, dir: string, configPath: string, targets: DeployTarget[], options: InitOptions): Promise<void> {
  const given = CONFIG_FLAGS.filter(([key]) => options[key] !== undefined).map(([, flag]) => flag);
  if (given.length > 0) {
    throw new CliError(
      `${configPath} exists: --deploy writes the templates from it, so ${given.join(', ')} would be ignored; ` +
        'change the file instead (or start over with init --force, without --deploy)',
      2,
    );
  }
  // The file alone decides: the environment of this shell is not the service's.
  const { config } = loadConfig({ path: configPath, env: {}, cwd: dir });
  let files: DeployFile[];
  try {
    files = await renderDeployFiles({ config, configPath }, targets);
  } catch (error) {
    if (error instanceof DeployError) {
      throw deployCliError(error, {
        baseUrl: `set "baseUrl" in ${configPath}`,
        port: `set "port" in ${configPath}`,
        configPath: 'move the config to a plainer path',
      });
    }
    throw error;
  }
  let written: string[];
  try {
    written = await writeDeployFiles(dir, files, { force: Boolean(options.force) });
  } catch (error) {
    if (error instanceof DeployExistsError) throw new CliError(error.message);
    throw error;
  }
  printWritten(ctx, written, targets);
  if (!config.trustProxy && targets.some((t) => t !== 'systemd')) {
    println(ctx.output);
    println(ctx.output, `Behind the proxy, set "trustProxy": true in ${configPath} so that client addresses come from X-Forwarded-For.`);
  }
  println(ctx.output, `Then check from outside: ${ctx.output.color.cyan('npx cupcake-mcp doctor')}`);
}

export async function runInit(ctx: CliContext, dirArg: string | undefined, options: InitOptions): Promise<void> {
  const dir = resolve(ctx.cwd, dirArg ?? '.');
  const targets = [...new Set(options.deploy ?? [])] as DeployTarget[];
  const existingConfig = join(dir, DEFAULT_CONFIG_FILE);
  if (targets.length > 0 && existsSync(existingConfig)) return runDeployOnly(ctx, dir, existingConfig, targets, options);
  // Refused before the first question, not after the last answer.
  if (existsSync(existingConfig) && !options.force) throw new CliError(new InitExistsError(existingConfig).message);
  const prompt = ctx.interactive && !options.yes;

  let port = 8787;
  if (options.port !== undefined) {
    const parsed = parsePort(options.port);
    if (typeof parsed === 'string') throw new CliError(`--port: ${parsed}`, 2);
    port = parsed;
  }
  let host = options.host ?? '127.0.0.1';
  let name = options.name ?? 'cupcake';
  let baseUrl = options.baseUrl ?? `http://localhost:${port}`;
  let docsDir = options.docs ?? 'docs';
  if (options.store !== undefined) {
    const problem = storeSettingProblem(options.store);
    if (problem) throw new CliError(`--store: ${problem}`, 2);
  }

  if (prompt) {
    // Port first: the local base URL follows it. Each answer is checked as the config will be.
    port = Number(
      await ctx.prompts.input('Port to listen on', String(port), (value) => (typeof parsePort(value) === 'number' ? true : 'enter a port between 0 and 65535')),
    );
    const suggested = options.baseUrl ?? `http://localhost:${port}`;
    baseUrl = await ctx.prompts.input('Public base URL (https://…, or http://localhost:<port> for a local try)', suggested, fieldCheck('baseUrl'));
    host = await ctx.prompts.input('Address to listen on (127.0.0.1 behind a reverse proxy)', host, fieldCheck('host'));
    name = await ctx.prompts.input('Server name (shown on the consent page)', name, fieldCheck('name'));
    docsDir = await ctx.prompts.input('Folder of documents for the search/fetch tools', docsDir, (value) =>
      value.trim() ? true : 'enter a folder name, e.g. docs',
    );
  }
  const local = URL.canParse(baseUrl) ? new URL(baseUrl) : undefined;
  if (local && local.protocol === 'http:' && isLoopbackHost(local.hostname) && Number(local.port || 80) !== port && port !== 0) {
    ctx.output.err.write(
      `note: the base URL ${baseUrl} names port ${local.port || 80}, but the server listens on ${port}; clients will be sent to ${baseUrl}\n`,
    );
  }

  // Templates are rendered and checked before anything is written: no half-done init.
  let deployFiles: DeployFile[] = [];
  if (targets.length > 0) {
    const checked = ConfigSchema.safeParse({ baseUrl, host, port });
    if (!checked.success) throw new ConfigError(formatIssues(checked.error.issues));
    try {
      deployFiles = await renderDeployFiles({ config: checked.data, configPath: existingConfig }, targets);
    } catch (error) {
      if (error instanceof DeployError)
        throw deployCliError(error, { baseUrl: 'pass --base-url https://<your host>', port: 'pass --port <port>', configPath: 'init in a plainer folder' });
      throw error;
    }
    const existing = existingDeployFiles(dir, deployFiles);
    if (existing.length > 0 && !options.force) throw new CliError(new DeployExistsError(existing).message);
  }

  let password = await obtainPassword(ctx, { fromStdin: options.passwordStdin, mayPrompt: prompt });
  let generated = false;
  if (password === undefined) {
    if (!options.yes && !ctx.interactive) {
      throw new CliError('no owner password: pass --yes to generate one, --password-stdin, or set CUPCAKE_OWNER_PASSWORD', 2);
    }
    password = generatePassword();
    generated = true;
  }

  let result;
  try {
    result = await scaffold({
      dir,
      name,
      baseUrl,
      host,
      port,
      docsDir,
      passwordHash: await hashPassword(password),
      force: Boolean(options.force),
      // Behind Caddy or nginx the client address is the proxy's unless X-Forwarded-For is read.
      trustProxy: targets.some((t) => t === 'caddy' || t === 'nginx'),
      ...(options.store !== undefined ? { store: options.store } : {}),
    });
  } catch (error) {
    if (error instanceof InitExistsError) throw new CliError(error.message);
    if (error instanceof StoreUnavailableError) throw new CliError(`${error.message}; check --store and that Redis is running`);
    throw error;
  }

  const { color } = ctx.output;
  println(ctx.output, `${color.green('✓')} wrote ${result.configPath}`);
  if (options.store !== undefined && isRedisUrl(options.store)) {
    const kept = result.ownerKept ? 'it already had an owner password: kept, the one given here is not used' : 'owner password stored as an scrypt hash';
    println(ctx.output, `${color.green('✓')} store ${describeRedisUrl(options.store)} answers (${kept})`);
  } else {
    println(ctx.output, `${color.green('✓')} data dir ${result.dataDir} (owner password stored as an scrypt hash)`);
  }
  println(
    ctx.output,
    `${color.green('✓')} docs folder ${result.docsDir}${result.docsWritten.length ? ` (${result.docsWritten.length} sample documents)` : ''}`,
  );
  if (deployFiles.length > 0) printWritten(ctx, await writeDeployFiles(dir, deployFiles, { force: true }), targets);
  if (generated) {
    println(ctx.output);
    println(ctx.output, `Owner password (shown once, keep it safe): ${color.bold(password)}`);
  }
  println(ctx.output);
  println(ctx.output, `Next: ${color.cyan(`cd ${dir} && npx cupcake-mcp serve`)}`);
  if (deployFiles.length > 0) println(ctx.output, `Once deployed, check it from outside: ${color.cyan('npx cupcake-mcp doctor')}`);
}
