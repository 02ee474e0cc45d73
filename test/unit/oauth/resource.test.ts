import { describe, expect, it } from 'vitest';
import { InvalidTargetError } from '../../../src/oauth/errors.js';
import { isOurResource, resolveResource } from '../../../src/oauth/resource.js';
import { BASE, testSettings } from './settings.js';

describe('resource indicators (RFC 8707)', () => {
  const settings = testSettings();

  it('serves exactly the origin, /mcp and /sse', () => {
    expect(settings.resources).toEqual([BASE, `${BASE}/mcp`, `${BASE}/sse`]);
  });

  it.each<[string | undefined, string, string]>([
    [undefined, BASE, 'absent: the origin'],
    ['', BASE, 'empty: the origin'],
    [BASE, BASE, 'the origin'],
    [`${BASE}/`, BASE, "Claude's trailing slash on the origin"],
    [`${BASE}/mcp`, `${BASE}/mcp`, 'Streamable HTTP endpoint'],
    [`${BASE}/mcp/`, `${BASE}/mcp`, 'trailing slash'],
    [`${BASE}/sse`, `${BASE}/sse`, 'SSE endpoint'],
    ['HTTPS://MCP.EXAMPLE.COM/mcp', `${BASE}/mcp`, 'scheme and host case'],
    ['https://mcp.example.com:443/mcp', `${BASE}/mcp`, 'explicit default port'],
  ])('RFC 8707 §2: %j resolves to %s (%s)', (resource, canonical, _why) => {
    expect(resolveResource(resource, settings)).toBe(canonical);
  });

  it.each([
    ['https://evil.example/mcp', 'another server'],
    ['https://mcp.example.com.evil.example/mcp', 'a host with our name as prefix'],
    ['http://mcp.example.com/mcp', 'another scheme'],
    ['https://mcp.example.com:8443/mcp', 'another port'],
    [`${BASE}/MCP`, 'path case matters'],
    [`${BASE}/other`, 'a path we do not serve'],
    [`${BASE}/mcp#x`, 'RFC 8707 §2: fragment'],
    [`${BASE}/mcp?x=1`, 'a query we do not serve'],
    ['mcp', 'RFC 8707 §2: not absolute'],
    ['urn:example:mcp', 'not one of ours'],
  ])('RFC 8707 §2: %j is invalid_target (%s)', (resource) => {
    expect(() => resolveResource(resource, settings)).toThrow(InvalidTargetError);
  });

  it('uses the fallback when given one and the parameter is absent', () => {
    expect(resolveResource(undefined, settings, `${BASE}/sse`)).toBe(`${BASE}/sse`);
  });

  it('RFC 8707 §2 audience: only our canonical resource URLs are ours', () => {
    expect(isOurResource(`${BASE}/mcp`, settings)).toBe(true);
    expect(isOurResource(`${BASE}/mcp/`, settings)).toBe(false);
    expect(isOurResource('https://other.example/mcp', settings)).toBe(false);
  });

  it('a base URL with a path serves <base>, <base>/mcp and <base>/sse', () => {
    const nested = testSettings({ baseUrl: 'https://example.com/cupcake' });
    expect(resolveResource('https://example.com/cupcake/mcp', nested)).toBe('https://example.com/cupcake/mcp');
    expect(() => resolveResource('https://example.com/mcp', nested)).toThrow(InvalidTargetError);
  });
});
