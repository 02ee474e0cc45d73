import { ConfigError, loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { DOCTOR_CLIENT_NAME, runDoctor, type DoctorCheck } from '../../doctor/checks.js';
import { isLoopbackHost } from '../../doctor/context.js';
import { removeClient } from '../../oauth/revoke.js';
import { verifyPassword as verifyOwnerPassword } from '../../oauth/secrets.js';
import { systemClock } from '../../shared/clock.js';
import { dataDirExists, withAdminSession } from '../admin.js';
import { readStdin, type CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { findRunningServer } from '../../store/data-dir-claim.js';
import { printJson, println, type Output } from '../output.js';
import { describeRedisUrl, isRedisUrl } from '../../shared/store-url.js';

export interface DoctorOptions {
  url?: string;
  json?: boolean;
  passwordStdin?: boolean;
}

const MARKS = { pass: ['green', '✓ pass'], fail: ['red', '✗ FAIL'], skip: ['yellow', '- skip'], warn: ['yellow', '! warn'] } as const;

/** Prints checks as they come; a fix already printed is referred to, not repeated. */
function checkPrinter(output: Output): (check: DoctorCheck) => void {
  const { color } = output;
  const fixes = new Map<string, string>();
  return (check) => {
    const [colour, label] = MARKS[check.status];
    let fix = '';
    if (check.fix) {
      const earlier = fixes.get(check.fix);
      if (!earlier) fixes.set(check.fix, check.check);
      const lead = check.status === 'pass' ? color.dim('—') : color.yellow(check.status === 'skip' ? '— to check it:' : '— fix:');
      fix = ` ${lead} ${earlier ? color.dim(`as for "${earlier}" above`) : check.fix}`;
    }
    println(output, `${color[colour](label)}  ${color.bold(check.check)}: ${check.detail}${fix}`);
  };
}

/** The config, when there is one to read; with --url a broken or missing one is no obstacle. */
function localConfig(ctx: CliContext, options: DoctorOptions): Config | undefined {
  try {
    return loadConfig({ path: ctx.configPath, env: ctx.env, cwd: ctx.cwd }).config;
  } catch (error) {
    if (options.url && error instanceof ConfigError) return undefined;
    throw error;
  }
}

async function ownerPassword(ctx: CliContext, options: DoctorOptions): Promise<string | undefined> {
  if (options.passwordStdin) {
    const password = await readStdin(ctx.stdin);
    if (!password) throw new CliError('--password-stdin: nothing was read from standard input');
    return password;
  }
  if (ctx.env.CUPCAKE_OWNER_PASSWORD) return ctx.env.CUPCAKE_OWNER_PASSWORD;
  // Never prompt with --json: stdout carries the JSON only.
  if (!ctx.interactive || options.json) return undefined;
  const answer = await ctx.prompts.password('Owner password (doctor approves a test connection of its own to check the stream; Enter to skip)');
  return answer === '' ? undefined : answer;
}

/**
 * `cupcake-mcp doctor [--url <base>] [--json]`: the checks of doctor/checks.ts against the given
 * URL, else the running server of this config, else the config's base URL. The test clients
 * are removed from the local data dir when it is the one the server uses.
 */
export async function runDoctorCommand(ctx: CliContext, options: DoctorOptions): Promise<void> {
  const config = localConfig(ctx, options);
  const local = config && (await dataDirExists(config.dataDir)) ? config : undefined;
  const running = local ? await findRunningServer(local.dataDir) : undefined;
  const baseUrl = options.url ?? running?.url ?? config?.baseUrl ?? 'http://localhost:8787';
  const password = await ownerPassword(ctx, options);

  // Removes only clients that doctor registered: the ids it got back, under doctor's name.
  // When the server uses another data dir, none of the ids is found here and they are reported.
  const removeTestClients = local
    ? (ids: string[]) =>
        withAdminSession(ctx, async (session) => {
          const removed: string[] = [];
          for (const id of ids) {
            const client = await session.store.getClient(id);
            if (!client || client.clientName !== DOCTOR_CLIENT_NAME) continue;
            if (!(await removeClient({ store: session.store, events: session.events(), clock: systemClock }, id, 'doctor'))) continue;
            removed.push(id);
          }
          return removed;
        })
    : undefined;

  // The password is checked against this data dir before it is sent when doctor checks the local
  // server, so that a wrong one never counts towards the consent lockout of the owner's address.
  const checksLocalServer = local !== undefined && (!options.url || isLoopbackHost(URL.canParse(baseUrl) ? new URL(baseUrl).hostname : ''));
  const verifyPassword = checksLocalServer
    ? (candidate: string) => withAdminSession(ctx, async ({ store }) => verifyOwnerPassword(candidate, (await store.getOwner()).passwordHash))
    : undefined;

  // A config on Redis (DESIGN.md §6): doctor also checks the Redis server it names. The client is loaded only then.
  const store = config?.store;
  const redis =
    store && isRedisUrl(store)
      ? { location: describeRedisUrl(store), inspect: async () => (await import('../../store/redis/server-facts.js')).inspectRedisServer(store) }
      : undefined;

  if (!options.json) println(ctx.output, `Checking ${baseUrl} the way ChatGPT and Claude meet it…`);
  const checks = await runDoctor({
    baseUrl,
    password,
    ...(redis ? { redis } : {}),
    ...(removeTestClients ? { removeTestClients } : {}),
    ...(verifyPassword ? { verifyPassword } : {}),
    ...(options.json ? {} : { onCheck: checkPrinter(ctx.output) }),
  });

  const failed = checks.filter((c) => c.status === 'fail');
  const skipped = checks.filter((c) => c.status === 'skip');
  const warned = checks.filter((c) => c.status === 'warn');
  const passed = checks.length - failed.length - skipped.length - warned.length;
  if (options.json) printJson(ctx.output, checks);
  else {
    println(ctx.output);
    const skips = skipped.length > 0 ? `, ${skipped.length} skipped` : '';
    const warnings = warned.length > 0 ? `, ${warned.length} ${warned.length === 1 ? 'warning' : 'warnings'}` : '';
    const allPassed = failed.length === 0 && skipped.length === 0 && warned.length === 0;
    println(
      ctx.output,
      allPassed
        ? ctx.output.color.green(`All ${checks.length} checks passed.`)
        : `${passed} passed, ${failed.length} failed${skips}${warnings} (of ${checks.length} checks).`,
    );
  }
  if (failed.length > 0) throw new CliError(`${failed.length} of ${checks.length} checks failed${options.json ? '' : ' (see the fixes above)'}`);
}
