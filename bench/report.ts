import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './harness.js';

export interface Row {
  figure: string;
  cupcake: number;
  peer: number | null;
  peerName?: string;
  ratio: number | null;
  target: string;
  pass: boolean;
  note?: string;
}

const fmt = (n: number | null) => (n === null || Number.isNaN(n) ? '—' : n >= 100 ? String(Math.round(n)) : n.toFixed(n >= 10 ? 1 : 2));

/** Prints the table and writes bench/results/latest.json (quick.json for --quick, so a smoke run never replaces a real one). */
export async function report(rows: Row[], quick: boolean): Promise<void> {
  const table = rows.map((r) => [
    r.figure,
    fmt(r.cupcake),
    r.peer === null ? '—' : `${fmt(r.peer)} (${r.peerName ?? 'peer'})`,
    r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
    r.target,
    r.pass ? 'pass' : 'FAIL',
  ]);
  const headers = ['figure', 'cupcake', 'peer', 'ratio', 'target', 'result'];
  const widths = headers.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of table) console.log(line(row));
  for (const r of rows) if (r.note) console.log(`  ${r.figure}: ${r.note}`);
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  await writeFile(
    join(ROOT, `bench/results/${quick ? 'quick' : 'latest'}.json`),
    `${JSON.stringify({ at: new Date().toISOString(), node: process.version, rows }, null, 2)}\n`,
  );
}
