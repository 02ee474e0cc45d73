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
