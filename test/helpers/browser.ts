import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

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
  'no browser for the browser tests: install Chromium (Debian/Ubuntu: apt-get install chromium) or Google Chrome, or set CHROMIUM_PATH to a Chromium-based browser';

export type BrowserLookup = { path: string } | { problem: string };

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
export function installPlan(machine: { uid: number | undefined; debianLike: boolean; hasAptGet: boolean }): string[][] | undefined {
  if (machine.uid !== 0 || !machine.debianLike || !machine.hasAptGet) return undefined;
  return [
    ['apt-get', 'update'],
    ['apt-get', 'install', '-y', '--no-install-recommends', 'chromium'],
  ];
}

export function thisMachine(): { uid: number | undefined; debianLike: boolean; hasAptGet: boolean } {
  return { uid: process.getuid?.(), debianLike: existsSync('/etc/debian_version'), hasAptGet: existsSync('/usr/bin/apt-get') };
}

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
  const first = findBrowser(options.env, options.candidates);
  // An explicit path that is wrong is the user's to fix, not ours to paper over.
  if ('path' in first || options.env.CHROMIUM_PATH || options.env.CHROME_PATH || !options.plan) return first;
  const run = options.run ?? ((command: string[]) => execFileSync(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }));
  options.log?.(`browser tests: no browser found; installing Debian's chromium (${options.plan.map((c) => c.join(' ')).join(' && ')})`);
  try {
    for (const command of options.plan) run(command);
  } catch (error) {
    return { problem: `${WHAT_TO_INSTALL} (installing it failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)})` };
  }
  return findBrowser(options.env, options.candidates);
}
