import type { Writable } from 'node:stream';
import { Chalk, type ChalkInstance } from 'chalk';

/** Where a command writes. `out` carries results (and only JSON with --json); `err` carries messages. */
export interface Output {
  out: Writable & { isTTY?: boolean };
  err: Writable;
  color: ChalkInstance;
}

/** Colour only on a TTY and only when NO_COLOR is unset (https://no-color.org). */
export function createOutput(out: Output['out'], err: Writable, env: Record<string, string | undefined>): Output {
  const enabled = Boolean(out.isTTY) && !('NO_COLOR' in env && env.NO_COLOR !== '');
  return { out, err, color: new Chalk({ level: enabled ? 1 : 0 }) };
}

export function printJson(output: Output, value: unknown): void {
  output.out.write(`${JSON.stringify(value, null, 2)}\n`);
}

// eslint-disable-next-line no-control-regex
const TERMINAL_UNSAFE = /\u001b\[[0-9;]*m|[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text as the terminal may see it: colour codes (ours, from chalk) pass; every other control or
 * bidi character — which a client could put in its name to clear the owner's screen, retitle the
 * window or hide a row — is shown as a visible escape instead.
 */
export function terminalSafe(text: string): string {
  return text.replace(TERMINAL_UNSAFE, (match) => (match.length > 1 ? match : `\\u${match.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

// eslint-disable-next-line no-control-regex
const FIELD_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A value that came from outside the CLI (a client's name, a tool name, an event field written
 * for an unauthenticated request) as it may be printed: every control character, ESC included,
 * newlines and bidi overrides are shown as visible escapes. Only the CLI's own colours, added
 * after this, reach the terminal raw.
 */
export function fieldText(text: string): string {
  return text.replace(FIELD_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `fieldText` on every string inside a record (strings, arrays, maps and plain objects), for human output. */
export function escapeFields<T>(value: T): T {
  if (typeof value === 'string') return fieldText(value) as T;
  if (Array.isArray(value)) return value.map(escapeFields) as T;
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [escapeFields(k), escapeFields(v)])) as T;
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [fieldText(k), escapeFields(v)])) as T;
  return value;
}

export function println(output: Output, line = ''): void {
  output.out.write(`${terminalSafe(line)}\n`);
}

export function printErr(output: Output, line: string): void {
  output.err.write(`${terminalSafe(line)}\n`);
}

/** Visible width of a string, ignoring ANSI colour codes. */
function visibleLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '').length;
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** Aligned columns with a header row. Cells may carry colour. */
export function formatTable(output: Output, headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell))))
      .join('  ')
      .trimEnd();
  return [output.color.bold(line(headers)), ...rows.map(line)].join('\n');
}
