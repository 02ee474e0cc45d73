import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex, tokenIdFromHash } from '../../src/shared/ids.js';
import { assertBuilt, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { SseReader } from '../helpers/sse.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const tmp = useTmpDirs('cupcake-first-party-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const PASSWORD = 'the owner password';
const BASE = 'http://localhost:8787';

/** `init --yes` in a fresh folder: config (base http://localhost:8787), data dir, sample docs. */
async function initProject(): Promise<string> {
  const dir = await tmp();
  const init = await runCli(['init', '--yes', '--password-stdin'], { cwd: dir, input: `${PASSWORD}\n` });
  expect(init.code, init.stderr).toBe(0);
  return dir;
}

interface ClientJson {
  client_id: string;
  client_name: string | null;
  redirect_uris: string[];
  token_endpoint_auth_method: string;
}

async function listClients(dir: string): Promise<ClientJson[]> {
  const listed = await runCli(['clients', 'list', '--json'], { cwd: dir });
  expect(listed.code, listed.stderr).toBe(0);
  return JSON.parse(listed.stdout) as ClientJson[];
}

async function firstParty(dir: string): Promise<ClientJson & { first_party: boolean }> {
  const candidates = await listClients(dir);
  for (const c of candidates) {
    const shown = await runCli(['clients', 'show', c.client_id, '--json'], { cwd: dir });
    const json = JSON.parse(shown.stdout) as ClientJson & { first_party: boolean };
    if (json.first_party) return json;
  }
  throw new Error('no first-party client');
}

async function readEvents(dir: string): Promise<Array<{ type: string; client_id?: string; token_id?: string; detail?: unknown }>> {
  const text = await readFile(join(dir, '.cupcake', 'events.jsonl'), 'utf8').catch(() => '');
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

describe('the first-party client', () => {
  it('init creates it (public, redirect <base>/oauth/callback); clients list marks it; clients remove refuses it without --force', async () => {
    const dir = await initProject();
    const clients = await listClients(dir);
    expect(clients).toHaveLength(1);
    expect(clients[0]).toMatchObject({ client_name: 'cupcake-mcp (built-in)', redirect_uris: [`${BASE}/oauth/callback`], token_endpoint_auth_method: 'none' });
    const id = clients[0]!.client_id;
    expect((await firstParty(dir)).client_id).toBe(id);
    const table = await runCli(['clients', 'list'], { cwd: dir });
    expect(table.stdout).toMatch(new RegExp(`^${id.slice(0, 8)} +cupcake-mcp \\(built-in\\) first-party +http://localhost:8787/oauth/callback +public`, 'm'));
    expect((await readEvents(dir)).filter((e) => e.type === 'client.registered')).toEqual([
      expect.objectContaining({ client_id: id, detail: expect.objectContaining({ first_party: true, by: 'init' }) }),
    ]);

    const refused = await runCli(['clients', 'remove', id.slice(0, 8)], { cwd: dir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is the first-party client');
    expect(refused.stderr).toContain(`clients remove ${id} --force`);
    expect((await listClients(dir)).map((c) => c.client_id)).toEqual([id]);
    expect((await readEvents(dir)).some((e) => e.type === 'client.removed')).toBe(false);

    const forced = await runCli(['clients', 'remove', id, '--force'], { cwd: dir });
    expect(forced.code, forced.stderr).toBe(0);
    expect(await listClients(dir)).toEqual([]);
  });

  it('serve creates it on first start when missing, and a new base URL moves its redirect (same client)', async () => {
    const dir = await initProject();
    const original = (await listClients(dir))[0]!;
    expect((await runCli(['clients', 'remove', original.client_id, '--force'], { cwd: dir })).code).toBe(0);

    const first = await startServe(['--port', '0'], { cwd: dir });
    await waitFor(() => first.stdout().includes('Home page'), { what: 'the whole banner' });
    // The config's local base URL follows the port serve bound.
    const base = `http://localhost:${new URL(first.url).port}`;
    expect(first.stdout()).toContain(`Home page (URLs, discovery check, test sign-in): ${base}/\n`);
    const created = await firstParty(dir);
    expect(created.client_id).not.toBe(original.client_id);
    expect(created.redirect_uris).toEqual([`${base}/oauth/callback`]);
    expect(await first.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const moved = await startServe(['--port', '0', '--base-url', 'http://localhost:9999'], { cwd: dir });
    const after = await firstParty(dir);
    expect(after.client_id).toBe(created.client_id);
    expect(after.redirect_uris).toEqual(['http://localhost:9999/oauth/callback']);
    expect((await listClients(dir)).length).toBe(1);
    expect(await moved.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const events = await readEvents(dir);
    expect(events.some((e) => e.type === 'client.registered' && e.client_id === created.client_id && JSON.stringify(e.detail).includes('"by":"serve"'))).toBe(
      true,
    );
    expect(events.some((e) => e.type === 'client.updated' && e.client_id === created.client_id && JSON.stringify(e.detail).includes('localhost:9999'))).toBe(
      true,
    );
  });
});

describe('tokens create', () => {
  it(
    'prints a token once that works on POST /tools/search, /tools, /mcp and /sse of ' +
      'the running serve, is listed with its label, and gets 401 after tokens revoke',
    async () => {
      const dir = await initProject();
      const serve = await startServe(['--port', '0'], { cwd: dir });
      const url = serve.url;

      const created = await runCli(['tokens', 'create', '--name', 'nightly export', '--ttl', '2d', '--scope', 'mcp', '--json'], { cwd: dir });
      expect(created.code, created.stderr).toBe(0);
      const body = JSON.parse(created.stdout) as { id: string; token: string; expires_at: string };
      expect(Object.keys(body).sort()).toEqual(['expires_at', 'id', 'token']);
      expect(body.token).toMatch(/^mcp_[0-9a-f]{32}$/);
      expect(body.id).toBe(tokenIdFromHash(sha256Hex(body.token)));
      expect(Math.abs(Date.parse(body.expires_at) - (Date.now() + 2 * 86_400_000))).toBeLessThan(60_000);
      const auth = { authorization: `Bearer ${body.token}` };

      // The way a script uses it, as curl would.
      const search = async () =>
        fetch(`${url}/tools/search`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ query: 'welcome' }) });
      const found = await search();
      expect(found.status).toBe(200);
      const result = (await found.json()) as { structuredContent: { results: Array<{ id: string }> } };
      expect(result.structuredContent.results.map((r) => r.id)).toContain('welcome.md');
      expect((await fetch(`${url}/tools`, { headers: auth })).status).toBe(200);
      const initialize = await fetch(`${url}/mcp`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'script', version: '1' } },
        }),
      });
      expect(initialize.status).toBe(200);
      expect(initialize.headers.get('mcp-session-id')).toBeTruthy();
      await initialize.body?.cancel();
      const abort = new AbortController();
      const stream = await fetch(`${url}/sse`, { headers: { ...auth, accept: 'text/event-stream' }, signal: abort.signal });
      expect(stream.status).toBe(200);
      expect((await new SseReader(stream).next()).event).toBe('endpoint');
      abort.abort();

      const listed = JSON.parse((await runCli(['tokens', 'list', '--json'], { cwd: dir })).stdout) as Array<Record<string, unknown>>;
      // The running serve's base URL (the local one follows the port it bound) is the token's audience.
      const resource = `http://localhost:${new URL(url).port}`;
      expect(listed).toContainEqual(
        expect.objectContaining({ id: body.id, label: 'nightly export', client_name: 'cupcake-mcp (built-in)', scope: 'mcp', resource, status: 'active' }),
      );
      const table = await runCli(['tokens', 'list'], { cwd: dir });
      expect(table.stdout).toMatch(/^ID\s+CLIENT\s+LABEL\s+SCOPE/m);
      expect(table.stdout).toMatch(new RegExp(`^${body.id} +cupcake-mcp \\(built-in\\) +nightly export +mcp +(just now|\\d+ s ago) +in 1 d`, 'm'));

      // Never stored, logged or listed in plaintext.
      for (const name of await readdir(join(dir, '.cupcake'))) {
        const text = await readFile(join(dir, '.cupcake', name), 'utf8').catch(() => '');
        expect(text, name).not.toContain(body.token);
      }
      expect(table.stdout + JSON.stringify(listed)).not.toContain(body.token);
      expect(await readEvents(dir)).toContainEqual(
        expect.objectContaining({
          type: 'token.issued',
          token_id: body.id,
          detail: expect.objectContaining({ grant: 'personal_access_token', label: 'nightly export' }),
        }),
      );

      const revoked = await runCli(['tokens', 'revoke', body.id], { cwd: dir });
      expect(revoked.code, revoked.stderr).toBe(0);
      const refused = await waitFor(
        async () => {
          const r = await search();
          return r.status === 401 ? r : undefined;
        },
        { timeoutMs: 1_500, intervalMs: 100, what: 'the revoked personal token to get 401' },
      );
      expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(await serve.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    },
  );

  it('the readable output shows the token once with how to use and revoke it; bad options change nothing (exit 2)', async () => {
    const dir = await initProject();
    const created = await runCli(['tokens', 'create'], { cwd: dir });
    expect(created.code, created.stderr).toBe(0);
    const tokens = created.stdout.match(/mcp_[0-9a-f]{32}/g);
    expect(tokens).toHaveLength(1);
    const id = tokenIdFromHash(sha256Hex(tokens![0]!));
    expect(created.stdout).toContain(`created personal access token ${id} for ${BASE}, scope mcp`);
    expect(created.stdout).toContain('(in 30 d)');
    expect(created.stdout).toContain(`cupcake-mcp tokens revoke ${id}`);

    for (const args of [
      ['--ttl', 'forever'],
      ['--ttl', '400d'],
      ['--scope', 'offline_access'],
      ['--scope', 'admin'],
      ['--name', ''],
    ]) {
      const bad = await runCli(['tokens', 'create', ...args], { cwd: dir });
      expect(bad.code, `${args.join(' ')}: ${bad.stderr}`).toBe(2);
      expect(bad.stdout).toBe('');
    }
    const listed = JSON.parse((await runCli(['tokens', 'list', '--json'], { cwd: dir })).stdout) as Array<{ id: string; label: string | null }>;
    expect(listed).toEqual([expect.objectContaining({ id, label: null })]);
  });
});
