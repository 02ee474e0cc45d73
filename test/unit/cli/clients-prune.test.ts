import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runClientsPrune, type PruneJson } from '../../../src/cli/commands/clients-prune.js';
import type { CliContext } from '../../../src/cli/context.js';
import { CliError } from '../../../src/cli/errors.js';
import { createOutput } from '../../../src/cli/output.js';
import { pruneAbandonedClients } from '../../../src/oauth/client-pruning.js';
import { createFixedClock } from '../../../src/shared/clock.js';
import { openFileStore } from '../../../src/store/index.js';
import { HOUR, makeAccessToken, makeClient, makeGrant, T0 } from '../../helpers/records.js';
import { useTmpDirs } from '../../helpers/tmp.js';

const DAY = 24 * HOUR;
const NOW = T0 + 100 * DAY;
const tmp = useTmpDirs('cupcake-prune-');

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, callback: () => void) {
    this.text += chunk.toString();
    callback();
  }
}

function context(cwd: string) {
  const out = new Capture();
  const err = new Capture();
  const ctx: CliContext = {
    env: {},
    cwd,
    stdin: process.stdin,
    output: createOutput(out, err, {}),
    prompts: {
      input: () => Promise.reject(new Error('no prompt expected')),
      password: () => Promise.reject(new Error('no prompt expected')),
      confirm: () => Promise.reject(new Error('no prompt expected')),
    },
    interactive: false,
    configPath: undefined,
  };
  return { ctx, out, err };
}

/** A data dir at NOW (T0 + 100 days) with the cases of the rule; returns which ids go at 30 days. */
async function seed() {
  const dir = await tmp();
  const dataDir = join(dir, '.cupcake');
  const store = await openFileStore({ dataDir });
  const add = async (name: string, createdAt: number, lastUsedAt: number | null = null) => {
    const { client } = makeClient({ clientName: name, createdAt, lastUsedAt });
    await store.createClient(client);
    return client.clientId;
  };
  const claudeNeverUsed = await add('Claude', NOW - 40 * DAY);
  const claudeNeverUsed2 = await add('Claude', NOW - 31 * DAY);
  const claudeYesterday = await add('Claude', NOW - DAY);
  const expired = await add('ChatGPT', NOW - 90 * DAY, NOW - 60 * DAY);
  await store.saveTokens(makeAccessToken(expired, 'g-old', { createdAt: NOW - 60 * DAY, expiresAt: NOW - 59 * DAY }).record);
  const active = await add('ChatGPT', NOW - 90 * DAY, NOW - 2 * HOUR);
  await store.saveTokens(makeAccessToken(active, 'g-new', { createdAt: NOW - 3 * HOUR, expiresAt: NOW + 21 * HOUR }).record);
  const revokedLately = await add('Cursor', NOW - 90 * DAY);
  await store.saveTokens(makeAccessToken(revokedLately, 'g-rev', { createdAt: NOW - 50 * DAY, expiresAt: NOW + DAY, revokedAt: NOW - 10 * DAY }).record);
  const refreshAlive = await add('Refreshing', NOW - 90 * DAY);
  const grant = makeGrant(refreshAlive, undefined, NOW - 35 * DAY); // the access token ended 34 days ago, the refresh token lives on
  await store.saveTokens(grant.access.record, { ...grant.refresh.record, expiresAt: NOW + 5 * DAY });
  const firstParty = (
    await store.ensureFirstPartyClient(makeClient({ createdAt: NOW - 90 * DAY, clientSecretHash: null, tokenEndpointAuthMethod: 'none' }).client)
  ).client.clientId;
  await store.close();
  return {
    dir,
    dataDir,
    ids: { claudeNeverUsed, claudeNeverUsed2, expired },
    gone: [claudeNeverUsed, claudeNeverUsed2, expired].sort(),
    kept: [claudeYesterday, active, revokedLately, refreshAlive, firstParty].sort(),
  };
}

async function clientIds(dataDir: string) {
  const store = await openFileStore({ dataDir, watch: false });
  try {
    return (await store.listClients()).map((c) => c.clientId).sort();
  } finally {
    await store.close();
  }
}

describe('clients prune', () => {
  it('--dry-run lists exactly the abandoned registrations and changes nothing', async () => {
    const { dir, dataDir, gone, kept } = await seed();
    const before = await readFile(join(dataDir, 'db.json'), 'utf8');
    const { ctx, out } = context(dir);
    await runClientsPrune(ctx, { dryRun: true, json: true }, createFixedClock(NOW));
    const json = JSON.parse(out.text) as PruneJson;
    expect(json).toMatchObject({ dry_run: true, older_than: '30d', cutoff: new Date(NOW - 30 * DAY).toISOString() });
    expect(json.clients.map((c) => c.client_id).sort()).toEqual(gone);
    expect(json.clients.every((c) => c.removed === false)).toBe(true);
    expect(await readFile(join(dataDir, 'db.json'), 'utf8')).toBe(before);
    expect(await clientIds(dataDir)).toEqual([...gone, ...kept].sort());
  });

  it('removes exactly the registrations that never got a token or whose tokens all ended before the limit, never the first-party client', async () => {
    const { dir, dataDir, gone, kept } = await seed();
    const { ctx, out } = context(dir);
    await runClientsPrune(ctx, { json: true }, createFixedClock(NOW));
    const json = JSON.parse(out.text) as PruneJson;
    expect(json.clients.map((c) => [c.client_name, c.reason, c.removed])).toEqual([
      ['ChatGPT', 'inactive', true],
      ['Claude', 'never used', true],
      ['Claude', 'never used', true],
    ]);
    expect(await clientIds(dataDir)).toEqual(kept);
    const events = (await readFile(join(dataDir, 'events.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const removed = events.filter((e) => e.type === 'client.removed');
    expect(removed.map((e) => e.client_id).sort()).toEqual(gone);
    expect(removed.map((e) => e.detail.reason).sort()).toEqual(['inactive', 'never used', 'never used']);
    expect(removed.every((e) => e.detail.by === 'cli')).toBe(true);
  });

  it('--older-than moves the limit', async () => {
    const { dir, dataDir, kept, ids } = await seed();
    await runClientsPrune(context(dir).ctx, { olderThan: '45d' }, createFixedClock(NOW));
    // Only the registration idle for 59 days goes; those created 40 and 31 days ago stay.
    expect(await clientIds(dataDir)).toEqual([...kept, ids.claudeNeverUsed, ids.claudeNeverUsed2].sort());
  });

  it('prints a readable table and what it did', async () => {
    const { dir } = await seed();
    const dry = context(dir);
    await runClientsPrune(dry.ctx, { dryRun: true }, createFixedClock(NOW));
    expect(dry.out.text).toMatch(/^ID\s+NAME\s+REDIRECT URI\s+CREATED\s+LAST ACTIVITY\s+REASON$/m);
    expect(dry.out.text).toContain('dry run: would remove 3 clients without a sign of life for 30 d; nothing was changed.');
    const real = context(dir);
    await runClientsPrune(real.ctx, {}, createFixedClock(NOW));
    expect(real.out.text).toContain('✓ removed 3 clients without a sign of life for 30 d.');
    const again = context(dir);
    await runClientsPrune(again.ctx, {}, createFixedClock(NOW));
    expect(again.out.text).toBe('No abandoned clients: every registration was created or used in the last 30 d.\n');
  });

  it('a bad --older-than is a usage error (exit 2)', async () => {
    const { dir } = await seed();
    await expect(runClientsPrune(context(dir).ctx, { olderThan: 'a month' }, createFixedClock(NOW))).rejects.toMatchObject({ exitCode: 2 });
    await expect(runClientsPrune(context(dir).ctx, { olderThan: 'a month' }, createFixedClock(NOW))).rejects.toBeInstanceOf(CliError);
  });

  it('a client that gets a token between the listing and the removal stays', async () => {
    const { dataDir, gone } = await seed();
    const store = await openFileStore({ dataDir, watch: false });
    try {
      const stale = await store.listAbandonedClients(NOW - 30 * DAY);
      expect(stale.map((a) => a.client.clientId).sort()).toEqual(gone);
      // As if the client came back right after the listing: a token is issued before the removal runs.
      const revived = gone[0]!;
      await store.saveTokens(makeAccessToken(revived, 'g-back', { createdAt: NOW, expiresAt: NOW + DAY }).record);
      const racing = Object.create(store, { listAbandonedClients: { value: async () => stale } }) as typeof store;
      const results = await pruneAbandonedClients({ store: racing, clock: createFixedClock(NOW) }, { olderThanMs: 30 * DAY, by: 'cli' });
      expect(results.map((r) => [r.client.clientId, r.removed]).sort()).toEqual(gone.map((id) => [id, id !== revived]).sort());
      expect(await store.getClient(revived)).toBeDefined();
      expect((await store.listClients()).filter((c) => gone.includes(c.clientId)).map((c) => c.clientId)).toEqual([revived]);
    } finally {
      await store.close();
    }
  });
});
