import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { describeRedisUrl, isRedisUrl, storeSettingProblem } from '../../shared/store-url.js';
import { silentLogger } from '../../shared/logger.js';
import { StoreUnavailableError } from '../../store/errors.js';
import { readFileStoreData } from '../../store/file-store.js';
import { dataDirExists, loadAdminConfig, missingDataDirError } from '../admin.js';
import type { CliContext } from '../context.js';
import { CliError } from '../errors.js';
import { findRunningServer } from '../../store/data-dir-claim.js';
import { println } from '../output.js';

/**
 * `store migrate --to <redis-url>` (DESIGN.md §2): copies the file store of this config's data
 * dir (clients, codes, tokens, refresh tokens, assertion ids, owner password) into Redis, then
 * names Redis in the config. Records Redis already holds are kept, never overwritten, so a run
 * that stopped half-way is finished by running it again, and a late re-run cannot undo a
 * revocation made since. db.json is left in place as a backup.
 */
export async function runStoreMigrate(ctx: CliContext, options: { to?: string }): Promise<void> {
  const to = options.to ?? '';
  if (!isRedisUrl(to) || storeSettingProblem(to)) {
    throw new CliError(`--to: ${storeSettingProblem(to) ?? 'expected a URL like "redis://host:6379/0"'}`, 2);
  }
  const admin = loadAdminConfig(ctx);
  if (!(await dataDirExists(admin.dataDir))) throw missingDataDirError(ctx, admin);
  const running = await findRunningServer(admin.dataDir);
  if (running)
    throw new CliError(`serve (pid ${running.pid}) is running on the file store in ${admin.dataDir}: stop it first, or what it writes during the copy is lost`);
  const data = await readFileStoreData(admin.dataDir).catch((error: unknown) => {
    if (error instanceof StoreUnavailableError) throw new CliError(error.message);
    throw error;
  });
  if (!data) throw new CliError(`no file store in ${admin.dataDir} (no db.json): nothing to migrate`);

  const { openRedisStore } = await import('../../store/redis/redis-store.js');
  let redis;
  try {
    redis = await openRedisStore({ url: to, logger: silentLogger, name: 'cupcake-mcp-migrate' });
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw new CliError(`${error.message}; check the URL and that Redis is running`);
    throw error;
  }
  let counts;
  try {
    counts = await redis.importDocument(data);
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw new CliError(`${error.message}; nothing copied so far is lost: run the same command again`);
    throw error;
  } finally {
    await redis.close().catch(() => undefined);
  }
  const where = describeRedisUrl(to);
  for (const [name, { copied, kept }] of Object.entries(counts)) {
    println(ctx.output, `  ${name.padEnd(13)} ${copied} copied${kept > 0 ? `, ${kept} already in Redis (kept as they are)` : ''}`);
  }
  println(ctx.output, `${ctx.output.color.green('✓')} copied ${admin.dataDir}/db.json into ${where}`);

  if (!admin.configPath) {
    println(ctx.output, `No config file: start serve with CUPCAKE_STORE=${where}${to !== where ? ' (with its password)' : ''}, or put "store" in a config.`);
    return;
  }
  // The config switches only after everything was copied.
  const raw = JSON.parse(await readFile(admin.configPath, 'utf8')) as Record<string, unknown>;
  const temp = `${admin.configPath}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify({ ...raw, store: to }, null, 2)}\n`, { mode: 0o600 });
  // A URL with a password is a secret: the config is kept to its owner.
  if (new URL(to).password) await chmod(temp, 0o600);
  await rename(temp, admin.configPath);
  println(ctx.output, `${ctx.output.color.green('✓')} ${admin.configPath} now names ${where}; start serve (one or several replicas) to use it.`);
  if (ctx.env.CUPCAKE_STORE && ctx.env.CUPCAKE_STORE !== to)
    println(ctx.output, `note: $CUPCAKE_STORE is set and overrides the config; unset it or set it to the new store.`);
}
