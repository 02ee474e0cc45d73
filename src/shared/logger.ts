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

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}
