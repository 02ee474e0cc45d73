import { ensureRedisServer, installPlan, thisMachine } from '../helpers/redis-server.js';

/**
 * Once per run, before any test file: make sure the Redis tests have a redis-server. On a
 * Debian-like machine as root, Debian's is installed when missing (apt-get update first), as
 * .ci/run does; elsewhere the run stops with one line saying what to install. Runs of test files
 * that start no Redis (`vitest run test/unit/oauth`) skip the install and the check.
 */
function runNeedsRedis(argv: readonly string[]): boolean {
  const at = argv.indexOf('run');
  const filters = argv.slice(at + 1).filter((a) => !a.startsWith('-') && !/^\d+$/.test(a));
  if (at === -1 || filters.length === 0) return true;
  return filters.some((f) => /redis|replica|contract|test\/?$|store|e2e|reliability/.test(f));
}

export default function setup(): void {
  if (!runNeedsRedis(process.argv)) return;
  const found = ensureRedisServer({ env: process.env, plan: installPlan(thisMachine()), log: (line) => process.stderr.write(`${line}\n`) });
  if ('problem' in found) throw new Error(found.problem);
  // Child test processes look it up the same way; pin the one found (or just installed).
  process.env.REDIS_SERVER = found.path;
}
