import { describe, expect, it } from 'vitest';
import { Chalk } from 'chalk';
import { terminalSafe } from '../../../src/cli/output.js';

describe('terminalSafe: nothing a client sends can drive the owner’s terminal', () => {
  it('escapes control, OSC and bidi characters and keeps our colour codes', () => {
    const hostile = 'Evil\u001b[2J\u001b]0;pwned\u0007\u202eevil\u0085';
    const shown = terminalSafe(hostile);
    expect(shown).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(shown).toBe('Evil\\u001b[2J\\u001b]0;pwned\\u0007\\u202eevil\\u0085');
    const red = new Chalk({ level: 1 }).red('revoked');
    expect(terminalSafe(red)).toBe(red);
    expect(terminalSafe('tab\tand newline\n stay')).toBe('tab\tand newline\n stay');
  });
});

describe('event lines: every field from outside is escaped, our colours are not', () => {
  it('a tool name or error with ESC[8m (conceal) in tool.failed or signin.failed is shown as a visible escape, even with colour on', async () => {
    const { formatEventLine } = await import('../../../src/cli/commands/events.js');
    const { PassThrough } = await import('node:stream');
    const output = { out: Object.assign(new PassThrough(), { isTTY: true }), err: new PassThrough(), color: new Chalk({ level: 1 }) };
    const line = terminalSafe(
      formatEventLine(output, {
        ts: '2026-01-01T00:00:00.000Z',
        type: 'tool.failed',
        client_id: 'c\u001b[8m',
        ip: '203.0.113.1',
        detail: { tool: 'evil\u001b[8m\nforged line', error: '\u001b]0;title\u0007' },
      }),
    );
    expect(line).not.toContain('\u001b[8m');
    expect(line).not.toContain('\u001b]');
    expect(line).not.toContain('\n');
    expect(line).toContain('\\u001b[8m');
    // The type is painted red by the CLI: that escape stays raw.
    expect(line).toContain('\u001b[31m');
  });
});
