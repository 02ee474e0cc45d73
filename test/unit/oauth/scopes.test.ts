import { describe, expect, it } from 'vitest';
import { InvalidScopeError } from '../../../src/oauth/errors.js';
import { parseScope, resolveScopes } from '../../../src/oauth/scopes.js';
import { supportedScopes } from '../../../src/oauth/settings.js';
import { testSettings } from './settings.js';

describe('scope (RFC 6749 §3.3)', () => {
  it.each([
    ['mcp', ['mcp']],
    ['mcp  read', ['mcp', 'read']],
    [' offline_access', ['offline_access']],
    ['', []],
    [undefined, []],
  ])('parses %j as %j', (scope, parsed) => {
    expect(parseScope(scope)).toEqual(parsed);
  });

  const off = testSettings({ refreshTokens: false, scopes: ['mcp', 'read'] });
  const on = testSettings({ refreshTokens: true, scopes: ['mcp', 'read'] });

  it.each<[string | undefined, boolean, string[], string]>([
    [undefined, false, ['mcp', 'read'], 'absent: the configured scopes'],
    ['', false, ['mcp', 'read'], 'empty: the configured scopes'],
    ['mcp', false, ['mcp'], 'a subset'],
    ['read mcp read', false, ['read', 'mcp'], 'duplicates collapse'],
    ['mcp offline_access', false, ['mcp'], 'offline_access ignored while refresh tokens are off'],
    ['offline_access', false, ['mcp', 'read'], 'only offline_access, refresh off: the configured scopes'],
    ['mcp offline_access', true, ['mcp', 'offline_access'], 'offline_access kept while refresh tokens are on'],
    ['offline_access', true, ['mcp', 'read', 'offline_access'], 'only offline_access, refresh on: the configured scopes plus offline_access'],
    [' offline_access', true, ['mcp', 'read', 'offline_access'], "Claude's leading space"],
    ['claudeai', false, ['mcp', 'read'], "claude.ai's own scope name, sent whatever the server advertises: ignored (RFC 6749 §3.3 allows ignoring)"],
    ['claudeai mcp', false, ['mcp'], 'claudeai next to a real scope'],
  ])('resolves %j (refresh %s) to %j: %s', (requested, refresh, granted) => {
    expect(resolveScopes(requested, refresh ? on : off)).toEqual(granted);
  });

  it.each([['admin'], ['mcp admin'], ['openid'], ['MCP'], ['mcp:read']])('refuses %j with invalid_scope', (requested) => {
    expect(() => resolveScopes(requested, off)).toThrow(InvalidScopeError);
  });

  it('DESIGN.md §4: offline_access is advertised only when refresh tokens are on', () => {
    expect(supportedScopes(off)).toEqual(['mcp', 'read']);
    expect(supportedScopes(on)).toEqual(['mcp', 'read', 'offline_access']);
  });
});
