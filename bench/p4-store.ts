import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from './harness.js';
import type { Row } from './report.js';
import { emptyData } from '../src/store/document.js';
import { openFileStore } from '../src/store/file-store.js';
import { createFileEventLog } from '../src/store/event-log.js';
import { hashSecret } from '../src/oauth/secrets.js';
import { tokenIdFromHash } from '../src/shared/ids.js';
import type { AccessTokenRecord, Store } from '../src/store/types.js';

/** p50 of issuing one more token on `store` (which already holds `liveTokens`), after 3 warm-up issues; closes the store. */
export async function issueLatency(store: Store, clientId: string, liveTokens: number, samples: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < samples + 3; i++) {
    const started = performance.now();
    await store.saveTokens(tokenRecord(liveTokens + i, clientId));
    if (i >= 3) times.push(performance.now() - started);
  }
  await store.close();
  return percentile(times, 50);
}

/** A live access token record as the token endpoint stores it (hash only), for a store to hold. */
export function tokenRecord(i: number, clientId: string): AccessTokenRecord {
  const hash = hashSecret(`bench-token-${i}-${randomUUID()}`);
  const now = Date.now();
  return {
    id: tokenIdFromHash(hash),
    tokenHash: hash,
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

/**
 * P4 — issuing a token (store.saveTokens: lock, re-read if changed, write temp + fsync + rename)
 * with N live tokens already in db.json; p50 of `samples` issuances, after 3 warm-up ones.
 */
async function fileIssueLatency(liveTokens: number, samples: number): Promise<number> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cupcake-bench-store-'));
  try {
    const data = emptyData();
    const clientId = randomUUID();
    for (let i = 0; i < liveTokens; i++) {
      const record = tokenRecord(i, clientId);
      data.tokens[record.tokenHash] = record;
    }
    await writeFile(join(dataDir, 'db.json'), JSON.stringify(data), { mode: 0o600 });
    const store = await openFileStore({ dataDir });
    return await issueLatency(store, clientId, liveTokens, samples);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** `events tail`: reading the last 20 events of a 10 MB log (median of runs). */
async function tailLatency(bytes: number, runs: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'cupcake-bench-events-'));
  try {
    const path = join(dir, 'events.jsonl');
    const event = {
      ts: new Date().toISOString(),
      type: 'tool.called',
      client_id: randomUUID(),
      token_id: 'tok_0123456789ab',
      detail: { tool: 'search', ms: 3 },
    };
    const line = `${JSON.stringify(event)}\n`;
    await writeFile(path, line.repeat(Math.ceil(bytes / line.length)));
    const log = createFileEventLog(path, { rotateBytes: bytes * 2 });
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const events = await log.readLast(20);
      times.push(performance.now() - started);
      if (events.length !== 20) throw new Error('tail read the wrong number of events');
    }
    return percentile(times, 50);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runP4(quick: boolean): Promise<Row[]> {
  const samples = quick ? 3 : 30;
  const rows: Row[] = [];
  const sizes = quick ? [1_000, 10_000] : [1_000, 10_000, 50_000];
  const results = new Map<number, number>();
  for (const n of sizes) results.set(n, await fileIssueLatency(n, samples));
  for (const n of sizes) {
    rows.push({
      figure: `P4 issue token, ${n.toLocaleString('en')} live tokens (p50 ms)`,
      cupcake: results.get(n)!,
      peer: null,
      ratio: null,
      target: n === 10_000 ? '≤ 20 ms' : 'grows gently',
      pass: n === 10_000 ? results.get(n)! <= 20 : results.get(n)! <= 20 * (n / 10_000) * 1.5,
    });
  }
  for (const mb of quick ? [1] : [1, 10]) {
    const ms = await tailLatency(mb * 1024 * 1024, quick ? 3 : 15);
    rows.push({ figure: `events tail -n 20 of a ${mb} MB log (p50 ms)`, cupcake: ms, peer: null, ratio: null, target: 'flat', pass: ms <= 20 });
  }
  return rows;
}
