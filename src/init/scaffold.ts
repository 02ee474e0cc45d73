import { copyFile, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative, resolve } from 'node:path';
import { ConfigError, DEFAULT_CONFIG_FILE, formatIssues } from '../config/load.js';
import { ConfigSchema, type ConfigInput } from '../config/schema.js';
import { ensureFirstPartyClient } from '../oauth/first-party.js';
import { createOAuthSettings } from '../oauth/settings.js';
import { openConfiguredStore } from '../store/open.js';
import { silentLogger } from '../shared/logger.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';

export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

export interface InitAnswers {
  /** Folder that receives `cupcake.config.json`. */
  dir: string;
  name: string;
  baseUrl: string;
  host: string;
  port: number;
  /** Docs folder relative to `dir` (or absolute). */
  docsDir: string;
  /** scrypt hash of the owner password. */
  passwordHash: string;
  force: boolean;
  /** Behind a reverse proxy (`init --deploy caddy|nginx`): take client addresses from X-Forwarded-For. */
  trustProxy?: boolean;
  /** `init --store <redis-url>`: the deployment's shared store instead of db.json (DESIGN.md §6). */
  store?: string;
}

export interface InitResult {
  configPath: string;
  dataDir: string;
  docsDir: string;
  /** Sample documents written (existing files are never replaced). */
  docsWritten: string[];
  /** A Redis store that already had an owner password (another replica's init): it was kept. */
  ownerKept: boolean;
}

export class InitExistsError extends Error {
  constructor(readonly path: string) {
    super(`${path} already exists; run again with --force to overwrite it`);
    this.name = 'InitExistsError';
  }
}

/** The config file `init` writes: every setting spelled out so the file documents itself. */
export function buildConfig(answers: Omit<InitAnswers, 'passwordHash' | 'force' | 'dir'>): ConfigInput {
  return {
    name: answers.name,
    baseUrl: answers.baseUrl,
    host: answers.host,
    port: answers.port,
    dataDir: '.cupcake',
    trustProxy: answers.trustProxy ?? false,
    ...(answers.store && answers.store !== 'file' ? { store: answers.store } : {}),
    auth: { accessTokenTtl: '24h', authorizationCodeTtl: '5m', refreshTokens: false, refreshTokenTtl: '30d', scopes: ['mcp'] },
    transports: { streamableHttp: true, sse: true },
    tools: { docs: { dir: answers.docsDir }, servers: {} },
  } as ConfigInput;
}

/** Writes config, data dir (0700, db.json 0600 with the owner's scrypt hash) and sample docs. */
export async function scaffold(answers: InitAnswers, clock: Clock = systemClock): Promise<InitResult> {
  const dir = resolve(answers.dir);
  const configPath = join(dir, DEFAULT_CONFIG_FILE);
  if (existsSync(configPath) && !answers.force) throw new InitExistsError(configPath);

  const config = buildConfig(answers);
  const checked = ConfigSchema.safeParse(config);
  if (!checked.success) throw new ConfigError(formatIssues(checked.error.issues));

  await mkdir(dir, { recursive: true });
  // The store is opened before the config is written: an existing db.json that cannot be read
  // stops init with nothing changed (DESIGN.md §6: it is reported, never overwritten).
  const dataDir = resolve(dir, '.cupcake');
  // With Redis, that store is reached before anything is written: an unreachable one stops init.
  const opened = await openConfiguredStore({ store: answers.store ?? 'file', dataDir, watch: false, logger: silentLogger, name: 'cupcake-mcp-init' });
  const { store } = opened;
  const events = opened.createEventLog({});
  let ownerKept = false;
  try {
    // A store URL with a password makes the config a secret: kept to its owner.
    const secret = answers.store !== undefined && answers.store !== 'file' && new URL(answers.store).password !== '';
    await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`, { mode: secret ? 0o600 : 0o644 });
    // A deployment's Redis may already have its owner (init run for another replica): never replaced here.
    ownerKept = opened.kind === 'redis' && (await store.getOwner()).passwordHash !== null;
    if (!ownerKept) await store.setOwnerPasswordHash(answers.passwordHash, clock.now());
    // The home page's sign-in test and `tokens create` find their client ready (redirect on this base URL).
    await ensureFirstPartyClient({ store, events, clock, settings: createOAuthSettings(checked.data) }, {}, 'init');
  } finally {
    await events.close();
    await store.close();
  }

  const docsDir = resolve(dir, answers.docsDir);
  await mkdir(docsDir, { recursive: true });
  const docsWritten: string[] = [];
  const samples = join(TEMPLATES_DIR, 'docs');
  for (const name of await readdir(samples)) {
    const target = join(docsDir, name);
    if (existsSync(target)) continue;
    if (!(await stat(join(samples, name))).isFile()) continue;
    await copyFile(join(samples, name), target);
    docsWritten.push(relative(dir, target));
  }
  return { configPath, dataDir, docsDir, docsWritten, ownerKept };
}
