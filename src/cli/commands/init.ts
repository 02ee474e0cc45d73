import { resolve } from 'node:path';
import { isLoopbackHost } from '../../config/schema.js';
import { InitExistsError, scaffold } from '../../init/scaffold.js';
import { generatePassword, hashPassword } from '../../oauth/secrets.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { println } from '../output.js';
import { obtainPassword } from '../password.js';

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
}

function parsePort(text: string): number | string {
  return /^\d+$/.test(text) && Number(text) <= 65535 ? Number(text) : 'expected a port number between 0 and 65535';
}

export async function runInit(ctx: CliContext, dirArg: string | undefined, options: InitOptions): Promise<void> {
  if (options.deploy && options.deploy.length > 0) {
    throw new CliError('--deploy templates are not available in this version yet; run init without --deploy');
  }
  const dir = resolve(ctx.cwd, dirArg ?? '.');
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

  if (prompt) {
    baseUrl = await ctx.prompts.input('Public base URL (https://…, or http://localhost for a local try)', baseUrl, (value) => {
      try {
        const url = new URL(value);
        if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))) return true;
        return 'use https:// (http:// only for localhost)';
      } catch {
        return 'enter a URL like https://mcp.example.com';
      }
    });
    const portText = await ctx.prompts.input('Port to listen on', String(port), (value) => (typeof parsePort(value) === 'number' ? true : 'enter a port between 0 and 65535'));
    port = Number(portText);
    host = await ctx.prompts.input('Address to listen on (127.0.0.1 behind a reverse proxy)', host);
    name = await ctx.prompts.input('Server name (shown on the consent page)', name);
    docsDir = await ctx.prompts.input('Folder of documents for the search/fetch tools', docsDir);
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
    result = await scaffold({ dir, name, baseUrl, host, port, docsDir, passwordHash: await hashPassword(password), force: Boolean(options.force) });
  } catch (error) {
    if (error instanceof InitExistsError) throw new CliError(error.message);
    throw error;
  }

  const { color } = ctx.output;
  println(ctx.output, `${color.green('✓')} wrote ${result.configPath}`);
  println(ctx.output, `${color.green('✓')} data dir ${result.dataDir} (owner password stored as an scrypt hash)`);
  println(ctx.output, `${color.green('✓')} docs folder ${result.docsDir}${result.docsWritten.length ? ` (${result.docsWritten.length} sample documents)` : ''}`);
  if (generated) {
    println(ctx.output);
    println(ctx.output, `Owner password (shown once, keep it safe): ${color.bold(password)}`);
  }
  println(ctx.output);
  println(ctx.output, `Next: ${color.cyan(`cd ${dir} && npx cupcake-mcp serve`)}`);
}
