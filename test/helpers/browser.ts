import { existsSync } from 'node:fs';
import { aptInstallPlan, ensureTool, thisMachine, type Machine, type ToolLookup } from './debian-package.js';

/**
 * Finding a browser for the browser tests (playwright-core drives it; it downloads none). Looked
 * for in order: $CHROMIUM_PATH, $CHROME_PATH, Debian's chromium, an installed Chrome.
 */
export const BROWSER_CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/opt/google/chrome/chrome',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];

export const WHAT_TO_INSTALL =
  'no browser for the browser tests: install Chromium (Debian/Ubuntu: apt-get install chromium) or Google Chrome, ' +
  'or set CHROMIUM_PATH to a Chromium-based browser';

export type BrowserLookup = ToolLookup;

export function findBrowser(env: Record<string, string | undefined>, candidates: readonly string[] = BROWSER_CANDIDATES): BrowserLookup {
  for (const name of ['CHROMIUM_PATH', 'CHROME_PATH'] as const) {
    const value = env[name];
    if (!value) continue;
    return existsSync(value) ? { path: value } : { problem: `${name}=${value} does not exist: point it at a Chromium or Chrome binary, or unset it` };
  }
  const path = candidates.find((candidate) => existsSync(candidate));
  return path ? { path } : { problem: WHAT_TO_INSTALL };
}

/** The commands that install Debian's chromium, when this machine may run them (Debian-like, root). */
export const installPlan = (machine: Machine) => aptInstallPlan('chromium', machine);

export { thisMachine };

/**
 * Finds a browser, installing Debian's chromium first where the plan allows; otherwise the
 * one-line problem to show.
 */
export function ensureBrowser(options: {
  env: Record<string, string | undefined>;
  candidates?: readonly string[];
  plan: string[][] | undefined;
  run?: (command: string[]) => void;
  log?: (line: string) => void;
}): BrowserLookup {
  return ensureTool({
    find: () => findBrowser(options.env, options.candidates),
    explicit: Boolean(options.env.CHROMIUM_PATH || options.env.CHROME_PATH),
    plan: options.plan,
    installing: "browser tests: no browser found; installing Debian's chromium",
    whatToInstall: WHAT_TO_INSTALL,
    run: options.run,
    log: options.log,
  });
}
