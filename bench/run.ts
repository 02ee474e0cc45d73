/**
 * `npm run bench [-- --quick] [-- --only P1,P4]`: every figure of DESIGN.md §8 side by side with
 * its peer in one run, on loopback only. --quick proves the bench works in seconds (its numbers
 * are not meaningful).
 */
import { runP1P2 } from './p1-p2.js';
import { runP3 } from './p3-sse.js';
import { runP4 } from './p4-store.js';
import { runP5, runP6 } from './p5-p6.js';
import { runP7 } from './p7-modern.js';
import { runConformanceRow } from './conformance.js';
import { runP8 } from './p8-redis.js';
import { report, type Row } from './report.js';

const quick = process.argv.includes('--quick');
const onlyArg = process.argv.find((a) => a.startsWith('--only='));
const only = onlyArg ? new Set(onlyArg.slice('--only='.length).split(',')) : undefined;
const want = (figure: string) => !only || only.has(figure);

const rows: Row[] = [];
if (want('P1') || want('P2')) rows.push(...(await runP1P2(quick)));
if (want('P3')) rows.push(...(await runP3(quick)));
if (want('P4')) rows.push(...(await runP4(quick)));
if (want('P5')) rows.push(...(await runP5(quick)));
if (want('P6')) rows.push(...(await runP6(quick)));
if (want('P7')) rows.push(...(await runP7(quick)));
// The official conformance suite against `serve` (not a timing: run in quick mode too).
if (want('conformance')) rows.push(await runConformanceRow());
if (want('P8')) rows.push(...(await runP8(quick)));
await report(rows, quick);
const failed = rows.filter((r) => !r.pass).length;
console.log(`\nfigures: ${rows.length - failed} meet their target, ${failed} miss${quick ? ' (quick run: timings are not meaningful)' : ''}`);
process.exit(0);
