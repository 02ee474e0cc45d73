import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { OWNER_PASSWORD } from './server.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/cupcake-mcp.js', import.meta.url));

/** Fails fast with a clear message when the e2e tests run without a build. */
export function assertBuilt(): void {
  if (!existsSync(fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url)))) {
    throw new Error('dist/ is missing: run "npm run build" first (npm test does)');
  }
}

/** The parent's environment without any CUPCAKE_* setting, colour off. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('CUPCAKE_')) env[key] = value;
  delete env.NODE_OPTIONS;
  return { ...env, NO_COLOR: '1', ...extra };
}

const children = new Set<ChildProcess>();

/** Kills every child a test left running (a failed assertion must not leak servers). */
export function killChildrenAfterEach(): void {
  afterEach(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    children.clear();
  });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  env?: Record<string, string>;
  /** Written to stdin, which is then closed. */
  input?: string;
  timeoutMs?: number;
}

/** Spawns `node bin/cupcake-mcp.js ...args` and waits for it to exit. */
export function runCli(args: string[], options: RunOptions): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: cleanEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cupcake-mcp ${args.join(' ')} did not exit within ${options.timeoutMs ?? 15_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface ServeProcess {
  child: ChildProcess;
  /** The `listening on` URL printed by serve. */
  url: string;
  stdout(): string;
  stderr(): string;
  /** Sends `signal` and resolves with the exit status. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `serve` and resolves once it prints its listening URL; rejects if it exits first. */
export function startServe(args: string[], options: RunOptions): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { cwd: options.cwd, env: cleanEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not print its URL within ${options.timeoutMs ?? 15_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 15_000);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve({
          child,
          url: match[1]!,
          stdout: () => stdout,
          stderr: () => stderr,
          stop(signal = 'SIGTERM') {
            child.kill(signal);
            return exited;
          },
        });
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code ?? signal}) before listening\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}

/**
 * A copy of the built package (bin/, dist/, templates/, package.json and the production
 * dependencies) in a folder every user can read, for tests that run `serve` as another user:
 * the checkout itself may sit in a folder only its owner can enter (a clone in a 0700 temp
 * folder). Returns the copy's bin; the caller removes `root` afterwards.
 */
export async function readablePackageCopy(): Promise<{ root: string; bin: string }> {
  const { cp, chmod, mkdtemp } = await import('node:fs/promises');
  const { execFileSync } = await import('node:child_process');
  const { tmpdir } = await import('node:os');
  const { join, relative, sep } = await import('node:path');
  assertBuilt();
  const root = await mkdtemp(join(tmpdir(), 'cupcake-package-'));
  await chmod(root, 0o755);
  let listing: string;
  try {
    listing = execFileSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (error) {
    listing = String((error as { stdout?: string }).stdout ?? ''); // npm ls exits 1 on warnings but lists all the same
  }
  const packages = listing
    .split('\n')
    .filter((p) => p.startsWith(`${ROOT}${sep}node_modules`) || p.startsWith(`${ROOT.replace(/[\\/]$/, '')}${sep}node_modules`));
  for (const name of ['bin', 'dist', 'templates', 'package.json']) await cp(join(ROOT, name), join(root, name), { recursive: true });
  for (const dir of packages) {
    // Nested node_modules are listed (and copied) as packages of their own.
    await cp(dir, join(root, relative(ROOT, dir)), {
      recursive: true,
      filter: (src) => src === dir || !src.slice(dir.length).split(sep).includes('node_modules'),
    });
  }
  return { root, bin: join(root, 'bin', 'cupcake-mcp.js') };
}

/** `init --yes` with the owner password from stdin, then `patch` merged into the config. */
export async function initDataDir(
  dir: string,
  patch: Record<string, unknown> = {},
  password = OWNER_PASSWORD,
): Promise<{ configPath: string; dataDir: string }> {
  const result = await runCli(['init', '--yes', '--password-stdin'], { cwd: dir, input: password });
  expect(result.code, result.stderr).toBe(0);
  const configPath = join(dir, 'cupcake.config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(configPath, `${JSON.stringify({ ...config, ...patch }, null, 2)}\n`);
  return { configPath, dataDir: join(dir, '.cupcake') };
}

/** Bytes of resident memory of a process, from /proc (Linux). */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? Number.NaN);
  return kb * 1024;
}
