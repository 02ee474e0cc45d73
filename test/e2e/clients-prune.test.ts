import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/oauth/secrets.js';
import { openFileStore } from '../../src/store/index.js';
import { assertBuilt, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { HOUR, makeAccessToken, makeClient } from '../helpers/records.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const DAY = 24 * HOUR;
const tmp = useTmpDirs('cupcake-prune-e2e-');
killChildrenAfterEach();
beforeAll(assertBuilt);

/** A project whose data dir holds two abandoned registrations (Claude's pile) and two live clients. */
async function seedProject(auth: Record<string, unknown> = {}) {
  const dir = await tmp();
  const dataDir = join(dir, '.cupcake');
  await writeFile(join(dir, 'cupcake.config.json'), JSON.stringify({ baseUrl: 'http://localhost:8787', dataDir: '.cupcake', auth }));
  const now = Date.now();
  const claude = (createdAt: number) =>
    makeClient({ clientName: 'Claude', redirectUris: ['https://claude.ai/api/mcp/auth_callback'], tokenEndpointAuthMethod: 'client_secret_post', createdAt })
      .client;
  const abandoned = [claude(now - 45 * DAY), claude(now - 40 * DAY)];
  const fresh = claude(now - HOUR);
  const inUse = makeClient({ clientName: 'ChatGPT', createdAt: now - 60 * DAY, lastUsedAt: now - HOUR }).client;
  const store = await openFileStore({ dataDir });
  try {
    await store.setOwnerPasswordHash(await hashPassword('owner-password-1'), now);
    for (const client of [...abandoned, fresh, inUse]) await store.createClient(client);
    await store.saveTokens(
      makeAccessToken(inUse.clientId, 'g1', { createdAt: now - HOUR, expiresAt: now + 23 * HOUR, resource: 'http://localhost:8787/mcp' }).record,
    );
  } finally {
    await store.close();
  }
  return { dir, dataDir, abandoned: abandoned.map((c) => c.clientId).sort(), kept: [fresh.clientId, inUse.clientId].sort() };
}

async function clientsJson(dir: string): Promise<Array<{ client_id: string; client_name: string }>> {
  const result = await runCli(['clients', 'list', '--json'], { cwd: dir });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

describe('pruning abandoned registrations (bin)', () => {
  it('clients prune --dry-run --json prints only JSON and changes nothing; clients prune removes them', async () => {
    const { dir, abandoned, kept } = await seedProject();
    const dry = await runCli(['clients', 'prune', '--dry-run', '--json'], { cwd: dir });
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan).toMatchObject({ dry_run: true, older_than: '30d' });
    expect(plan.clients.map((c: { client_id: string }) => c.client_id).sort()).toEqual(abandoned);
    expect((await clientsJson(dir)).map((c) => c.client_id).sort()).toEqual([...abandoned, ...kept].sort());

    const real = await runCli(['clients', 'prune'], { cwd: dir });
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toContain('removed 2 clients without a sign of life for 30 d');
    expect((await clientsJson(dir)).map((c) => c.client_id).sort()).toEqual(kept);
  });

  it('a bad --older-than exits 2', async () => {
    const { dir } = await seedProject();
    const result = await runCli(['clients', 'prune', '--older-than', 'soon'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--older-than: expected a duration like "30d"');
  });

  it('serve with auth.pruneAbandonedClientsAfter removes them at start and logs client.removed by serve', async () => {
    const { dir, dataDir, abandoned, kept } = await seedProject({ pruneAbandonedClientsAfter: '30d' });
    const serve = await startServe(['--port', '0'], { cwd: dir });
    try {
      const removed = await waitFor(
        async () => {
          const lines = (await readFile(join(dataDir, 'events.jsonl'), 'utf8').catch(() => ''))
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l));
          const found = lines.filter((e) => e.type === 'client.removed');
          return found.length === 2 ? found : undefined;
        },
        { timeoutMs: 10_000, what: 'two client.removed events' },
      );
      expect(removed.map((e) => e.client_id).sort()).toEqual(abandoned);
      expect(removed.every((e) => e.detail.by === 'serve' && e.detail.reason === 'never used')).toBe(true);
      expect(serve.stderr()).toContain('removed 2 abandoned clients (no sign of life for 30 d)');
    } finally {
      expect((await serve.stop()).code).toBe(0);
    }
    // serve also made its own first-party client; the pruned ones are gone, the others stay.
    const remaining = (await clientsJson(dir)).map((c) => c.client_id);
    expect(remaining).toEqual(expect.arrayContaining(kept));
    for (const id of abandoned) expect(remaining).not.toContain(id);
  });

  it('serve without the setting leaves every registration alone', async () => {
    const { dir, abandoned, kept } = await seedProject();
    const serve = await startServe(['--port', '0'], { cwd: dir });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await serve.stop()).code).toBe(0);
    expect((await clientsJson(dir)).map((c) => c.client_id)).toEqual(expect.arrayContaining([...abandoned, ...kept]));
  });
});
