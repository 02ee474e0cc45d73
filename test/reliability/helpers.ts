import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ConfigSchema, type Config } from '../../src/config/schema.js';
import { hashPassword } from '../../src/oauth/secrets.js';
import { createApp, type CupcakeApp } from '../../src/server/app.js';
import type { AbuseLimits } from '../../src/server/limits.js';
import { startServer, type ServerTimeouts } from '../../src/server/start.js';
import { checkData, type StoreData } from '../../src/store/document.js';
import { createFileEventLog, EVENTS_FILE } from '../../src/store/event-log.js';
import { DB_FILE, openFileStore, type WriteHook } from '../../src/store/file-store.js';
import { sha256Hex, tokenIdFromHash } from '../../src/shared/ids.js';
import { describeError, type Logger } from '../../src/shared/logger.js';
import { runCli } from '../helpers/cli.js';

/**
 * Shared by the reliability suite (issue 9): a data dir made by the real `init`, the OAuth flow
 * over plain fetch that never throws on a refusal (a burst keeps going while a server dies
 * under it), and checks of what db.json holds.
 */

export const PASSWORD = 'correct horse battery staple';
export const CHATGPT_REDIRECT = 'https://chatgpt.com/connector_platform_oauth_redirect';
export const CLAUDE_REDIRECT = 'https://claude.ai/api/mcp/auth_callback';
/** A line of a Node stack trace, as it would appear in a response or a log. */
export const STACK_LINE = /^\s+at .+[:(]/m;

/** `init --yes` with the owner password from stdin, then `patch` merged into the config. */
export async function initDataDir(dir: string, patch: Record<string, unknown> = {}, password = PASSWORD): Promise<{ configPath: string; dataDir: string }> {
  const result = await runCli(['init', '--yes', '--password-stdin'], { cwd: dir, input: password });
  expect(result.code, result.stderr).toBe(0);
  const configPath = join(dir, 'cupcake.config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(configPath, `${JSON.stringify({ ...config, ...patch }, null, 2)}\n`);
  return { configPath, dataDir: join(dir, '.cupcake') };
}

export async function readDb(dataDir: string): Promise<StoreData> {
  return checkData(JSON.parse(await readFile(join(dataDir, DB_FILE), 'utf8')));
}

/** Adds `count` live access tokens of one client to db.json (written while no process runs). */
export async function seedTokens(dataDir: string, count: number): Promise<void> {
  const data = await readDb(dataDir);
  const clientId = randomUUID();
  const now = Date.now();
  data.clients[clientId] = {
    clientId,
    clientSecretHash: sha256Hex(randomBytes(32).toString('hex')),
    clientName: 'ballast',
    redirectUris: [CHATGPT_REDIRECT],
    tokenEndpointAuthMethod: 'client_secret_basic',
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    scope: null,
    extraMetadata: {},
    createdAt: now,
    lastUsedAt: null,
  };
  for (let i = 0; i < count; i++) {
    const tokenHash = sha256Hex(`mcp_${randomBytes(16).toString('hex')}`);
    data.tokens[tokenHash] = {
      id: tokenIdFromHash(tokenHash),
      tokenHash,
      clientId,
      grantId: randomUUID(),
      scopes: ['mcp'],
      resource: 'http://127.0.0.1/mcp',
      createdAt: now,
      expiresAt: now + 86_400_000,
      lastUsedAt: null,
      revokedAt: null,
    };
  }
  await writeFile(join(dataDir, DB_FILE), JSON.stringify(data), { mode: 0o600 });
}

/** Every field of every record has the type db.json promises: nothing half-written. */
export function expectWholeRecords(data: StoreData): void {
  const problems: string[] = [];
  const str = (v: unknown) => typeof v === 'string' && v.length > 0;
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  const numOrNull = (v: unknown) => v === null || num(v);
  for (const [id, c] of Object.entries(data.clients)) {
    if (c.clientId !== id || !Array.isArray(c.redirectUris) || !num(c.createdAt) || !numOrNull(c.lastUsedAt) || !str(c.tokenEndpointAuthMethod)) problems.push(`client ${id}`);
  }
  for (const [hash, t] of Object.entries(data.tokens)) {
    if (t.tokenHash !== hash || !/^[0-9a-f]{64}$/.test(hash) || !str(t.id) || !str(t.clientId) || !str(t.grantId) || !num(t.expiresAt) || !numOrNull(t.revokedAt)) problems.push(`token ${hash}`);
  }
  for (const [hash, c] of Object.entries(data.codes)) {
    if (c.codeHash !== hash || !str(c.clientId) || !num(c.expiresAt) || !numOrNull(c.usedAt)) problems.push(`code ${hash}`);
  }
  expect(problems).toEqual([]);
}

export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface FlowResult {
  clientId?: string;
  clientSecret?: string;
  code?: string;
  verifier?: string;
  accessToken?: string;
  refreshToken?: string;
  cookie?: string;
  requestId?: string;
  csrfToken?: string;
  /** Status of each step, in order: register, authorize GET, authorize POST, token. */
  statuses: number[];
}

export interface FlowOptions {
  password?: string;
  redirectUri?: string;
  clientName?: string;
  authMethod?: 'client_secret_basic' | 'client_secret_post' | 'none';
  /** Sent on every request (e.g. X-Forwarded-For behind a trusted proxy). */
  headers?: Record<string, string>;
  /** Called as soon as a step got its 2xx/302, before the next one starts. */
  onRegistered?(clientId: string): void;
  onToken?(accessToken: string): void;
  /** Use an existing registration instead of registering. */
  client?: { clientId: string; clientSecret?: string };
}

/**
 * The ChatGPT flow over fetch: register (unless a client is given), consent with the password,
 * token with HTTP Basic (or the body for client_secret_post / none). Stops at the first refusal
 * and never throws on one; a network error (server gone) rejects.
 */
export async function runFlow(base: string, options: FlowOptions = {}): Promise<FlowResult> {
  const result: FlowResult = { statuses: [] };
  const headers = options.headers ?? {};
  const redirectUri = options.redirectUri ?? CHATGPT_REDIRECT;
  const method = options.authMethod ?? 'client_secret_basic';
  if (options.client) {
    result.clientId = options.client.clientId;
    if (options.client.clientSecret) result.clientSecret = options.client.clientSecret;
  } else {
    const reg = await fetch(`${base}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ client_name: options.clientName ?? 'ChatGPT', redirect_uris: [redirectUri], token_endpoint_auth_method: method }),
    });
    result.statuses.push(reg.status);
    const body = (await reg.json().catch(() => ({}))) as { client_id?: string; client_secret?: string };
    if (reg.status !== 201 || !body.client_id) return result;
    result.clientId = body.client_id;
    if (body.client_secret) result.clientSecret = body.client_secret;
    options.onRegistered?.(body.client_id);
  }
  const { verifier, challenge } = pkce();
  result.verifier = verifier;
  const query = new URLSearchParams({ response_type: 'code', client_id: result.clientId!, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state: 'st', scope: 'mcp' });
  const page = await fetch(`${base}/authorize?${query}`, { headers, redirect: 'manual' });
  result.statuses.push(page.status);
  const html = await page.text();
  const cookie = page.headers.getSetCookie()[0]?.split(';')[0];
  const requestId = /name="request_id" value="([^"]+)"/.exec(html)?.[1];
  const csrfToken = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1];
  if (page.status !== 200 || !cookie || !requestId || !csrfToken) return result;
  Object.assign(result, { cookie: cookie.split('=')[1], requestId, csrfToken });
  const answer = await fetch(`${base}/authorize`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, ...headers },
    body: new URLSearchParams({ request_id: requestId, csrf_token: csrfToken, password: options.password ?? PASSWORD, decision: 'approve' }),
  });
  result.statuses.push(answer.status);
  await answer.arrayBuffer();
  const location = answer.headers.get('location');
  const code = location ? new URL(location).searchParams.get('code') : null;
  if (answer.status !== 302 || !code) return result;
  result.code = code;
  const form = new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri });
  const tokenHeaders: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...headers };
  if (method === 'client_secret_basic') tokenHeaders.authorization = `Basic ${Buffer.from(`${result.clientId}:${result.clientSecret}`).toString('base64')}`;
  else {
    form.set('client_id', result.clientId!);
    if (method === 'client_secret_post') form.set('client_secret', result.clientSecret!);
  }
  const token = await fetch(`${base}/token`, { method: 'POST', headers: tokenHeaders, body: form });
  result.statuses.push(token.status);
  const tokenBody = (await token.json().catch(() => ({}))) as { access_token?: string; refresh_token?: string };
  if (token.status !== 200 || !tokenBody.access_token) return result;
  result.accessToken = tokenBody.access_token;
  if (tokenBody.refresh_token) result.refreshToken = tokenBody.refresh_token;
  options.onToken?.(tokenBody.access_token);
  return result;
}

/** Bytes of resident memory of a process, from /proc (Linux). */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? Number.NaN);
  return kb * 1024;
}

/**
 * The real app in this process on a temp data dir (like test/helpers/server.ts), with the store
 * options a test needs (a write hook that simulates a full disk) and a logger that keeps lines.
 */
export async function startInProcess(
  options: { writeHook?: WriteHook; config?: Record<string, unknown>; limits?: Partial<AbuseLimits>; timeouts?: Partial<ServerTimeouts>; eventRotateBytes?: number } = {},
) {
  const dataDir = await mkdtemp(join(tmpdir(), 'cupcake-rel-'));
  const logs: string[] = [];
  const logger: Logger = {
    info: (m) => logs.push(`info ${m}`),
    warn: (m) => logs.push(`warn ${m}`),
    error: (m, e) => logs.push(`error ${m}${e === undefined ? '' : `: ${describeError(e)}`}`),
  };
  const store = await openFileStore({ dataDir, watch: true, pollIntervalMs: 200, logger, ...(options.writeHook ? { writeHook: options.writeHook } : {}) });
  await store.setOwnerPasswordHash(await hashPassword(PASSWORD), Date.now());
  const events = createFileEventLog(join(dataDir, EVENTS_FILE), {
    onError: (error) => logger.error('could not write the event log', error),
    ...(options.eventRotateBytes ? { rotateBytes: options.eventRotateBytes } : {}),
  });
  let config!: Config;
  let app!: CupcakeApp;
  const running = await startServer(
    (port) => {
      config = ConfigSchema.parse({ ...options.config, baseUrl: `http://127.0.0.1:${port}`, dataDir, tools: { docs: false } });
      app = createApp({ config, store, events, logger, ...(options.limits ? { limits: options.limits } : {}) });
      return app;
    },
    { host: '127.0.0.1', port: 0, ...(options.timeouts ? { timeouts: options.timeouts } : {}) },
  );
  return {
    url: `http://127.0.0.1:${running.port}`,
    dataDir,
    store,
    events,
    app,
    running,
    logs,
    config,
    async close() {
      await running.close(1_000);
      await events.close();
      await store.close().catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
