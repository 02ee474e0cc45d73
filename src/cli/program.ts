import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../config/errors.js';
import { VERSION } from '../shared/version.js';
import type { CliContext } from './context.js';
import { CancelledError, CliError } from './errors.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

const DEPLOY_TARGETS = ['caddy', 'nginx', 'systemd'];
/** Repeatable `--deploy`: commander's choices() alone would not collect. */
const collectDeployTarget = (value: string, previous: string[] = []) => {
  if (!DEPLOY_TARGETS.includes(value)) throw new InvalidArgumentError(`Allowed choices are ${DEPLOY_TARGETS.join(', ')}.`);
  return collect(value, previous);
};

/**
 * Builds the program. Command modules are imported when their command runs, so that `--help`
 * and light commands start fast (DESIGN.md §8, P5).
 */
export function buildProgram(ctx: Omit<CliContext, 'configPath'>): Command {
  const program = new Command('cupcake-mcp');
  const context = (): CliContext => ({ ...ctx, configPath: program.opts<{ config?: string }>().config });
  program
    .description('Self-host an MCP server behind an OAuth 2.1 authorization server you own.')
    .version(VERSION, '-V, --version')
    .option('-c, --config <path>', 'config file (default: $CUPCAKE_CONFIG or ./cupcake.config.json)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.output.out.write(s), writeErr: (s) => ctx.output.err.write(s) });

  program
    .command('init [dir]')
    .description('scaffold cupcake.config.json, the data dir and a sample docs folder')
    .option('-y, --yes', 'take defaults, never prompt')
    .option('--base-url <url>', 'public base URL, e.g. https://mcp.example.com')
    .option('--port <port>', 'port to listen on', undefined)
    .option('--host <host>', 'address to listen on')
    .option('--name <name>', 'server name shown on the consent page')
    .option('--password-stdin', 'read the owner password from standard input')
    .option('--docs <dir>', 'folder of documents for the search/fetch tools')
    .addOption(
      new Option('--deploy <target>', 'write deployment templates to deploy/ (repeatable); with an existing config, only the templates')
        .choices(DEPLOY_TARGETS)
        .argParser(collectDeployTarget),
    )
    .option('--store <url>', 'a Redis store shared by several replicas: redis://[:password@]host:port[/db] or rediss://… (default: db.json in the data dir)')
    .option('--force', 'overwrite an existing config (with --deploy and an existing config: existing templates)')
    .action(async (dir: string | undefined, options) => {
      const { runInit } = await import('./commands/init.js');
      await runInit(context(), dir, options);
    });

  program
    .command('serve')
    .description('run the server')
    .option('--port <port>', 'port to listen on (0: any free port)')
    .option('--host <host>', 'address to listen on')
    .option('--base-url <url>', 'public base URL')
    .option('-q, --quiet', 'no line per auth event (they are still in events.jsonl)')
    .addOption(new Option('--log-format <format>', 'auth event lines: readable text, or the event objects as JSON').choices(['text', 'json']).default('text'))
    .action(async (options) => {
      const { runServe } = await import('./commands/serve.js');
      await runServe(context(), options, process);
    });

  const clients = program.command('clients').description('registered OAuth clients');
  clients
    .command('list')
    .description('list registered clients')
    .option('--json', 'machine-readable output')
    .action(async (options) => {
      const { runClientsList } = await import('./commands/clients.js');
      await runClientsList(context(), options);
    });
  clients
    .command('show <id>')
    .description('show one client (any unambiguous prefix of its id)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, options) => {
      const { runClientsShow } = await import('./commands/clients.js');
      await runClientsShow(context(), id, options);
    });
  clients
    .command('remove <id>')
    .description('remove a client and revoke its tokens')
    .option('--force', 'also remove the first-party client (home page sign-in, personal access tokens)')
    .action(async (id: string, options) => {
      const { runClientsRemove } = await import('./commands/clients.js');
      await runClientsRemove(context(), id, options);
    });

  clients
    .command('prune')
    .description('remove registrations that never got a token, or whose tokens all ended, longer ago than --older-than')
    .option('--older-than <duration>', 'how long without a sign of life (e.g. 7d, 30d)', '30d')
    .option('--dry-run', 'list what would be removed, change nothing')
    .option('--json', 'machine-readable output')
    .action(async (options) => {
      const { runClientsPrune } = await import('./commands/clients-prune.js');
      await runClientsPrune(context(), options);
    });

  const tokens = program.command('tokens').description('access tokens');
  tokens
    .command('list')
    .description('list active tokens')
    .option('--client <id>', 'only this client')
    .option('--all', 'include revoked and expired tokens')
    .option('--json', 'machine-readable output')
    .action(async (options) => {
      const { runTokensList } = await import('./commands/tokens.js');
      await runTokensList(context(), options);
    });
  tokens
    .command('create')
    .description('issue a personal access token for scripts (printed once)')
    .option('--name <label>', 'what the token is for, shown by tokens list')
    .option('--ttl <duration>', 'lifetime, e.g. 12h, 30d (at most 366d)', '30d')
    .option('--scope <scopes>', 'space-separated scopes (default: the configured ones)')
    .option('--json', 'machine-readable output: {id, token, expires_at}')
    .action(async (options) => {
      const { runTokensCreate } = await import('./commands/tokens.js');
      await runTokensCreate(context(), options);
    });
  tokens
    .command('revoke [ids...]')
    .description('revoke tokens; open sessions using them close within 2 s')
    .option('--client <id>', 'every token of this client')
    .option('--all', 'every token')
    .action(async (ids: string[], options) => {
      const { runTokensRevoke } = await import('./commands/tokens.js');
      await runTokensRevoke(context(), ids, options);
    });

  const events = program.command('events').description('the auth event log');
  events
    .command('tail')
    .description('show the last auth events')
    .option('-n <count>', 'how many', '20')
    .option('-f, --follow', 'keep following new events (Ctrl-C to stop)')
    .option('--type <type>', 'only events of this type (prefix, repeatable)', collect)
    .option('--client <id>', 'only events of this client')
    .option('--json', 'one JSON object per line')
    .action(async (options) => {
      const { runEventsTail } = await import('./commands/events.js');
      await runEventsTail(context(), options, process);
    });

  program
    .command('passwd')
    .description('change the owner password')
    .option('--password-stdin', 'read the new password from standard input')
    .action(async (options) => {
      const { runPasswd } = await import('./commands/passwd.js');
      await runPasswd(context(), options);
    });
  program
    .command('unlock')
    .description('lift the consent form lockout after too many wrong passwords (passwd lifts it too)')
    .action(async () => {
      const { runUnlock } = await import('./commands/unlock.js');
      await runUnlock(context());
    });
  program
    .command('status')
    .description('is a server running, and what does it hold')
    .option('--json', 'machine-readable output')
    .action(async (options) => {
      const { runStatus } = await import('./commands/status.js');
      await runStatus(context(), options);
    });
  program
    .command('store')
    .description('the store of this deployment')
    .command('migrate')
    .description('copy the file store into Redis, then name Redis in the config (safe to re-run)')
    .requiredOption('--to <redis-url>', 'the Redis store: redis://[:password@]host:port[/db] or rediss://…')
    .action(async (options) => {
      const { runStoreMigrate } = await import('./commands/store.js');
      await runStoreMigrate(context(), options);
    });
  program
    .command('doctor')
    .description('check a deployment from the outside as ChatGPT and Claude do')
    .option('--url <base>', 'base URL to check (default: the running server’s, else the config’s)')
    .option('--password-stdin', 'read the owner password from standard input (to check sign-in and streams)')
    .option('--json', 'machine-readable output: [{check, ok, status, detail, fix}]')
    .action(async (options) => {
      const { runDoctorCommand } = await import('./commands/doctor.js');
      await runDoctorCommand(context(), options);
    });
  return program;
}

/** Runs the CLI and returns the exit code: 0 ok, 1 error, 2 usage, 130 cancelled. */
export async function runCli(argv: string[], ctx: Omit<CliContext, 'configPath'>): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof CancelledError) {
      ctx.output.err.write('cancelled\n');
      return 130;
    }
    if (error instanceof ConfigError) {
      ctx.output.err.write(`invalid configuration:\n${error.problems.map((p) => `  ${p}`).join('\n')}\n`);
      return 1;
    }
    if (error instanceof CliError) {
      ctx.output.err.write(`error: ${error.message}\n`);
      return error.exitCode;
    }
    const { describeError } = await import('../shared/logger.js');
    ctx.output.err.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    if (ctx.env.CUPCAKE_DEBUG) ctx.output.err.write(`${describeError(error)}\n`);
    return 1;
  }
}
