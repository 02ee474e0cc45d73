import { hashPassword } from '../../oauth/secrets.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { loadAdminConfig, requireStore, withAdminSession } from '../admin.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { findRunningServer } from '../../store/data-dir-claim.js';
import { println } from '../output.js';
import { checkPassword, obtainPassword } from '../password.js';

async function promptTwice(ctx: CliContext): Promise<string> {
  for (;;) {
    const first = await ctx.prompts.password('New owner password', checkPassword);
    const second = await ctx.prompts.password('Repeat the new owner password');
    if (first === second) return first;
    ctx.output.err.write('The two passwords differ; try again.\n');
  }
}

/**
 * Replaces the owner password hash. The running server reads the owner record from the store, so
 * the new password applies to its next consent form submission (within the store's 1 s).
 */
export async function runPasswd(ctx: CliContext, options: { passwordStdin?: boolean }, clock: Clock = systemClock): Promise<void> {
  // Check the data dir before asking anything, and read the password before writing anything.
  const admin = loadAdminConfig(ctx);
  await requireStore(ctx, admin);
  let password = await obtainPassword(ctx, { fromStdin: options.passwordStdin, mayPrompt: false });
  if (password === undefined) {
    if (!ctx.interactive) throw new CliError('no new password: pipe it with --password-stdin or set CUPCAKE_OWNER_PASSWORD', 2);
    password = await promptTwice(ctx);
  }
  const hash = await hashPassword(password);
  await withAdminSession(
    ctx,
    async ({ store, dataDir }) => {
      await store.setOwnerPasswordHash(hash, clock.now());
      println(ctx.output, `${ctx.output.color.green('✓')} owner password changed`);
      const server = await findRunningServer(dataDir);
      if (server) println(ctx.output, `  the running server (pid ${server.pid}) accepts only the new one within 1 s`);
    },
    { writable: true },
  );
}
