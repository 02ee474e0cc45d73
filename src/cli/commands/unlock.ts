import { systemClock, type Clock } from '../../shared/clock.js';
import { findRunningServer } from '../../store/data-dir-claim.js';
import { dataDirExists, loadAdminConfig, missingDataDirError, withAdminSession } from '../admin.js';
import type { CliContext } from '../context.js';
import { println } from '../output.js';

/**
 * Lifts the consent form's lockout (5 wrong passwords in 15 minutes from one address). On a local
 * setup every request comes from 127.0.0.1, so the owner's own typos lock the owner out; this is
 * the way back in. The running server reads it from the store within 1 s.
 */
export async function runUnlock(ctx: CliContext, clock: Clock = systemClock): Promise<void> {
  const admin = loadAdminConfig(ctx);
  if (!(await dataDirExists(admin.dataDir))) throw missingDataDirError(ctx, admin);
  await withAdminSession(
    ctx,
    async ({ store, dataDir }) => {
      await store.clearLoginLockouts(clock.now());
      println(ctx.output, `${ctx.output.color.green('✓')} consent form unlocked: earlier wrong passwords no longer count, from any address`);
      const server = await findRunningServer(dataDir);
      if (server) println(ctx.output, `  the running server (pid ${server.pid}) applies it within 1 s`);
    },
    { writable: true },
  );
}
