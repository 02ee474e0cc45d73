/**
 * A second OS process on a shared data dir, for the cross-process store tests. Run with
 * `node --import tsx test/helpers/store-worker.ts <mode> <dataDir> ...` (see spawnStoreWorker).
 *
 * - `mutate <dataDir> <prefix> <count>`: prints "ready", waits for a line on stdin, then creates
 *   <count> clients one transaction each, prints "done <count> <startMs> <endMs>" and exits.
 * - `watch <dataDir>`: opens the store as `serve` does (watch: true), prints "ready", then one
 *   JSON line per change it is told about, until stdin closes.
 * - `jti <dataDir> <prefix> <count>`: prints "ready", waits for a line on stdin, then tries to use
 *   the assertion ids <prefix>-0 … <prefix>-<count-1> once each, prints "used <n accepted>" and exits.
 */
import { createInterface } from 'node:readline';
import { openFileStore } from '../../src/store/file-store.js';
import { makeClient } from './records.js';

const [mode, dataDir, prefix = 'w', countText = '0'] = process.argv.slice(2);
if (!dataDir || (mode !== 'mutate' && mode !== 'watch' && mode !== 'jti')) {
  process.stderr.write('usage: store-worker.ts mutate|watch|jti <dataDir> [prefix count]\n');
  process.exit(2);
}

const store = await openFileStore({ dataDir, watch: mode === 'watch' });
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

if (mode === 'jti') {
  process.stdout.write('ready\n');
  await lines.next();
  let accepted = 0;
  const now = Date.now();
  for (let i = 0; i < Number(countText); i++) if (await store.useAssertionId(`${prefix}-${i}`, now + 600_000, now)) accepted++;
  await store.close();
  process.stdout.write(`used ${accepted}\n`);
  process.exit(0);
} else if (mode === 'mutate') {
  const count = Number(countText);
  process.stdout.write('ready\n');
  await lines.next();
  const started = Date.now();
  for (let i = 0; i < count; i++) {
    const { client } = makeClient({ clientId: `${prefix}-${String(i).padStart(4, '0')}`, clientName: `${prefix} ${i}` });
    await store.createClient(client);
  }
  const ended = Date.now();
  await store.close();
  process.stdout.write(`done ${count} ${started} ${ended}\n`);
  process.exit(0);
} else {
  store.onChange((change) => process.stdout.write(`${JSON.stringify(change)}\n`));
  process.stdout.write('ready\n');
  while (!(await lines.next()).done) {
    /* keep watching until stdin closes */
  }
  await store.close();
  process.exit(0);
}
