/**
 * Server-side diagnostics (not the audit log, which is the EventLog). Only the CLI decides where
 * lines go; libraries receive a Logger. Never pass a token, code, secret or password to it.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string, error?: unknown): void;
}

export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
};

/**
 * An error as a log line: its stack when it is a bug, only its message when it is about the
 * machine (a system call that failed: permissions, a full disk, a missing file) or flagged
 * `operational`: the operator needs what and where, not our call stack.
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const { syscall, operational } = error as Error & { syscall?: unknown; operational?: unknown };
    if (typeof syscall === 'string' || operational === true) return `${error.name}: ${error.message}`;
    return error.stack ?? `${error.name}: ${error.message}`;
  }
  return String(error);
}
