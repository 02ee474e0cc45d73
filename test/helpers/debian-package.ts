import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * What the tests need from the machine (a browser, redis-server) and are allowed to install
 * themselves: on a Debian-like machine, as root, with apt-get (the README's test command must pass
 * on a fresh machine on its own). Elsewhere they say in one line what to install.
 */

export type ToolLookup = { path: string } | { problem: string };

export interface Machine {
  uid: number | undefined;
  debianLike: boolean;
  hasAptGet: boolean;
}

export function thisMachine(): Machine {
  return { uid: process.getuid?.(), debianLike: existsSync('/etc/debian_version'), hasAptGet: existsSync('/usr/bin/apt-get') };
}

/** The commands that install Debian's `pkg`, when this machine may run them (Debian-like, root). */
export function aptInstallPlan(pkg: string, machine: Machine): string[][] | undefined {
  if (machine.uid !== 0 || !machine.debianLike || !machine.hasAptGet) return undefined;
  return [
    ['apt-get', 'update'],
    ['apt-get', 'install', '-y', '--no-install-recommends', pkg],
  ];
}

/**
 * `find()`, installing first where `plan` allows it and nothing was set explicitly (an explicit
 * path that is wrong is the user's to fix, not ours to paper over); otherwise the one-line problem.
 */
export function ensureTool(options: {
  find: () => ToolLookup;
  explicit: boolean;
  plan: string[][] | undefined;
  /** How the log line names what happens, e.g. "browser tests: no browser found; installing Debian's chromium". */
  installing: string;
  whatToInstall: string;
  run?: ((command: string[]) => void) | undefined;
  log?: ((line: string) => void) | undefined;
}): ToolLookup {
  const first = options.find();
  if ('path' in first || options.explicit || !options.plan) return first;
  const run =
    options.run ??
    ((command: string[]) => execFileSync(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }));
  options.log?.(`${options.installing} (${options.plan.map((c) => c.join(' ')).join(' && ')})`);
  try {
    for (const command of options.plan) run(command);
  } catch (error) {
    return { problem: `${options.whatToInstall} (installing it failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)})` };
  }
  return options.find();
}
