import { spawn, type ChildProcess } from 'node:child_process';
import { BIN, cleanEnv } from './cli.js';

/**
 * The CLI on a pseudo-terminal, as a person at a terminal runs it: util-linux `script` gives the
 * child a pty (stdin and stdout are TTYs, so prompts are asked), and keys are typed into it.
 */
export interface PtySession {
  child: ChildProcess;
  /** Everything the terminal showed so far, ANSI sequences removed. */
  screen(): string;
  /** Waits until the screen (after `from` characters) matches. */
  waitFor(pattern: RegExp, options?: { from?: number; timeoutMs?: number }): Promise<number>;
  type(text: string): void;
  exited: Promise<number | null>;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>78]|\r/g;

export function runOnPty(args: string[], options: { cwd: string; env?: Record<string, string> }): PtySession {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-q', '-f', '-e', '-c', command, '/dev/null'], {
    cwd: options.cwd,
    env: cleanEnv({ TERM: 'xterm', COLUMNS: '200', LINES: '50', ...options.env }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let raw = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (raw += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (raw += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const screen = () => raw.replace(ANSI, '');
  return {
    child,
    screen,
    exited,
    type: (text) => child.stdin!.write(text),
    async waitFor(pattern, { from = 0, timeoutMs = 20_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = screen().slice(from);
        const match = pattern.exec(text);
        if (match) return from + match.index + match[0].length;
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the terminal never showed ${pattern}; it shows:\n${screen().slice(-2000)}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
  };
}
