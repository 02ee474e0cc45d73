import type { TestProject } from 'vitest/node';
import { ensureBrowser, installPlan, thisMachine } from '../helpers/browser.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The browser the browser tests drive, or '' with `browserProblem` saying what to install. */
    browserPath: string;
    browserProblem: string;
  }
}

/** Test files named on the command line, if any: a run of other files needs no browser. */
function runNeedsBrowser(argv: readonly string[]): boolean {
  const filters = argv.slice(argv.indexOf('run') + 1).filter((a) => !a.startsWith('-') && !/^\d+$/.test(a));
  return argv.indexOf('run') === -1 || filters.length === 0 || filters.some((f) => 'test/browser/'.includes(f) || f.includes('browser'));
}

/**
 * Once per run, before any test file: find a browser for test/browser/, installing Debian's
 * chromium where that is possible (a Debian-like machine, as root) and the run includes them.
 */
export default function setup(project: TestProject): void {
  const found = runNeedsBrowser(process.argv)
    ? ensureBrowser({ env: process.env, plan: installPlan(thisMachine()), log: (line) => process.stderr.write(`${line}\n`) })
    : ensureBrowser({ env: process.env, plan: undefined });
  project.provide('browserPath', 'path' in found ? found.path : '');
  project.provide('browserProblem', 'problem' in found ? found.problem : '');
}
