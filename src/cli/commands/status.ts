import { systemClock, type Clock } from '../../shared/clock.js';
import { dataDirExists, loadAdminConfig, tokenStatus, withAdminSession } from '../admin.js';
import type { CliContext } from '../context.js';
import { findRunningServer, readServeClaim } from '../../store/data-dir-claim.js';
import { printJson, println } from '../output.js';
import { VERSION } from '../../shared/version.js';
import { hostname } from 'node:os';
import { describeRedisUrl } from '../../shared/store-url.js';
import type { RedisStore, ReplicaInfo } from '../../store/redis/redis-store.js';

export interface StatusJson {
  /** This CLI's version. */
  version: string;
  config: string | null;
  base_url: string;
  data_dir: string;
  server: {
    running: boolean;
    pid: number | null;
    url: string | null;
    version: string | null;
    started_at: string | null;
    uptime_seconds: number | null;
    /** Live sessions per transport and per client, as the server last published them (about every second). */
    sessions: {
      total: number;
      by_transport: Record<string, number>;
      by_client: Array<{ client_id: string; client_name: string | null; sessions: number }>;
    } | null;
  };
  clients: number;
  active_tokens: number;
  /** Redis store only: where (password left out), and every live replica on it. */
  store?: string;
  replicas?: ReplicaInfo[];
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3_600);
  const m = Math.floor((seconds % 3_600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${seconds % 60}s` : `${seconds}s`;
}

/** Works without a data dir too: then nothing runs and nothing is registered. */
export async function runStatus(ctx: CliContext, options: { json?: boolean }, clock: Clock = systemClock): Promise<void> {
  const admin = loadAdminConfig(ctx);
  const exists = await dataDirExists(admin.dataDir);
  let clients = 0;
  let activeTokens = 0;
  const names = new Map<string, string | null>();
  let replicas: ReplicaInfo[] | undefined;
  if (exists || admin.redis) {
    await withAdminSession(ctx, async ({ store }) => {
      const now = clock.now();
      const list = await store.listClients();
      clients = list.length;
      for (const c of list) names.set(c.clientId, c.clientName);
      activeTokens = (await store.listAccessTokens()).filter((t) => tokenStatus(t, now) === 'active').length;
      if ('listReplicas' in store) replicas = await (store as unknown as RedisStore).listReplicas(now);
    });
  }
  // With Redis, this folder's server is the replica on this machine that runs from it.
  const here = replicas?.find((r) => r.hostname === hostname() && r.data_dir === admin.dataDir);
  const running = here ?? (exists ? await findRunningServer(admin.dataDir) : undefined);
  const startedAt = running ? Date.parse(running.started_at) : Number.NaN;
  const sessions = running?.sessions;
  const status: StatusJson = {
    version: VERSION,
    config: admin.configPath,
    base_url: admin.config.baseUrl,
    data_dir: admin.dataDir,
    server: {
      running: running !== undefined,
      pid: running?.pid ?? null,
      url: running?.url ?? null,
      version: running?.version ?? null,
      started_at: running?.started_at ?? null,
      uptime_seconds: Number.isFinite(startedAt) ? Math.max(0, Math.floor((clock.now() - startedAt) / 1000)) : null,
      sessions: running
        ? {
            total: sessions?.total ?? 0,
            by_transport: { ...sessions?.by_transport },
            by_client: Object.entries(sessions?.by_client ?? {})
              .map(([clientId, n]) => ({ client_id: clientId, client_name: names.get(clientId) ?? null, sessions: n }))
              .sort((a, b) => b.sessions - a.sessions),
          }
        : null,
    },
    clients,
    active_tokens: activeTokens,
    ...(admin.redis ? { store: describeRedisUrl(admin.config.store), replicas } : {}),
  };
  if (options.json) {
    printJson(ctx.output, status);
    return;
  }

  const { color } = ctx.output;
  let server: string;
  if (running) {
    const where = running.url
      ? ` at ${running.url}${running.listening && running.listening !== running.url ? `, listening on ${running.listening}` : ''}`
      : ' (starting)';
    const version = running.version ? `, cupcake-mcp ${running.version}` : '';
    const uptime = status.server.uptime_seconds !== null ? `, up ${duration(status.server.uptime_seconds)}` : '';
    server = `${color.green('running')} (pid ${running.pid}${version}${uptime})${where}`;
  } else {
    server = color.dim('not running');
    // serve.json left behind by a server that died without cleaning up.
    const stale = exists ? await readServeClaim(admin.dataDir) : undefined;
    if (stale) server += color.dim(` (stale serve.json from pid ${stale.pid}, which is gone)`);
  }
  const rows: Array<[string, string]> = [
    ['config', admin.configPath ?? color.dim('(none: embedded default)')],
    ['base URL', status.base_url],
    admin.redis
      ? ['store', `${status.store} (Redis, shared by every replica)`]
      : ['data dir', exists ? admin.dataDir : `${admin.dataDir} ${color.yellow('(missing: run "cupcake-mcp init")')}`],
    ['server', server],
    ['clients', String(clients)],
    ['tokens', `${activeTokens} active`],
  ];
  if (replicas) {
    rows.push(['replicas', replicas.length === 0 ? color.dim('none running') : `${replicas.length} running`]);
    for (const r of replicas) rows.push(['', `pid ${r.pid} on ${r.hostname}, listening on ${r.listening}, seen ${r.seen_at}`]);
  }
  const live = status.server.sessions;
  if (live) {
    const transports = Object.entries(live.by_transport).map(([t, n]) => `${n} ${t}`);
    rows.push(['sessions', `${live.total} live${transports.length ? ` (${transports.join(', ')})` : ''}`]);
    for (const c of live.by_client) rows.push(['', `${c.sessions}  ${c.client_name ?? color.dim('(no name)')} ${color.dim(c.client_id)}`]);
  }
  rows.push([
    'version',
    `cupcake-mcp ${VERSION}` +
      `${running?.version && running.version !== VERSION ? color.yellow(` (the running server is ${running.version}: restart it to upgrade)`) : ''}`,
  ]);
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [key, value] of rows) println(ctx.output, `${color.bold(key.padEnd(width))}  ${value}`);
}
