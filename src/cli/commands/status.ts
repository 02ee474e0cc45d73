import { systemClock, type Clock } from '../../shared/clock.js';
import { dataDirExists, loadAdminConfig, tokenStatus, withAdminSession } from '../admin.js';
import type { CliContext } from '../context.js';
import { findRunningServer, readServeClaim } from '../../store/data-dir-claim.js';
import { printJson, println } from '../output.js';

export interface StatusJson {
  config: string | null;
  base_url: string;
  data_dir: string;
  server: { running: boolean; pid: number | null; url: string | null };
  clients: number;
  active_tokens: number;
}

/** Works without a data dir too: then nothing runs and nothing is registered. */
export async function runStatus(ctx: CliContext, options: { json?: boolean }, clock: Clock = systemClock): Promise<void> {
  const admin = loadAdminConfig(ctx);
  const exists = await dataDirExists(admin.dataDir);
  let clients = 0;
  let activeTokens = 0;
  if (exists) {
    await withAdminSession(ctx, async ({ store }) => {
      const now = clock.now();
      clients = (await store.listClients()).length;
      activeTokens = (await store.listAccessTokens()).filter((t) => tokenStatus(t, now) === 'active').length;
    });
  }
  const running = exists ? await findRunningServer(admin.dataDir) : undefined;
  const status: StatusJson = {
    config: admin.configPath,
    base_url: admin.config.baseUrl,
    data_dir: admin.dataDir,
    server: { running: running !== undefined, pid: running?.pid ?? null, url: running?.url ?? null },
    clients,
    active_tokens: activeTokens,
  };
  if (options.json) {
    printJson(ctx.output, status);
    return;
  }

  const { color } = ctx.output;
  let server: string;
  if (running) {
    server = `${color.green('running')} (pid ${running.pid}) at ${running.url}${running.listening && running.listening !== running.url ? `, listening on ${running.listening}` : ''}`;
  } else {
    server = color.dim('not running');
    // serve.json left behind by a server that died without cleaning up.
    const stale = exists ? await readServeClaim(admin.dataDir) : undefined;
    if (stale) server += color.dim(` (stale serve.json from pid ${stale.pid}, which is gone)`);
  }
  const rows: Array<[string, string]> = [
    ['config', admin.configPath ?? color.dim('(none: embedded default)')],
    ['base URL', status.base_url],
    ['data dir', exists ? admin.dataDir : `${admin.dataDir} ${color.yellow('(missing: run "cupcake-mcp init")')}`],
    ['server', server],
    ['clients', String(clients)],
    ['tokens', `${activeTokens} active`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [key, value] of rows) println(ctx.output, `${color.bold(key.padEnd(width))}  ${value}`);
}
