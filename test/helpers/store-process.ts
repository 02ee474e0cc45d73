import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKER = fileURLToPath(new URL('./store-worker.ts', import.meta.url));

export interface StoreWorker {
  child: ChildProcessWithoutNullStreams;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first line matching `pattern` (already printed or still to come). */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  send(text: string): void;
  exited: Promise<number | null>;
}

const workers = new Set<ChildProcessWithoutNullStreams>();

/** Kills workers a failed test left behind. */
export function killStoreWorkersAfterEach(): void {
  afterEach(() => {
    for (const child of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    workers.clear();
  });
}

/** Spawns test/helpers/store-worker.ts in its own Node process (see that file for the modes). */
export function spawnStoreWorker(args: string[]): StoreWorker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  workers.add(child);
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let stderr = '';
  let buffer = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts);
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      workers.delete(child);
      for (const wake of waiters.splice(0)) wake();
      resolve(code);
    }),
  );
  return {
    child,
    lines,
    exited,
    send: (text) => child.stdin.write(text),
    async line(pattern, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find((l) => pattern.test(l));
        if (found !== undefined) return found;
        if (child.exitCode !== null) throw new Error(`store worker exited (${child.exitCode}) without printing ${pattern}\n${stderr}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`store worker did not print ${pattern} within ${timeoutMs} ms\n${stderr}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
}
