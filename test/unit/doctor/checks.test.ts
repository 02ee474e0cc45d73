import { describe, expect, it } from 'vitest';
import { nullPaths, runDoctor, type DoctorCheck } from '../../../src/doctor/checks.js';

/** A fetch that fails like DNS does for a name that does not exist. */
const unresolvable: typeof fetch = async () => {
  throw Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }) });
};

describe('doctor checks (no network)', () => {
  it('HTTPS: plain http on a public host fails with the fix; loopback http passes; and an unreachable host stops the run', async () => {
    const seen: DoctorCheck[] = [];
    const checks = await runDoctor({ baseUrl: 'http://mcp.example.com', fetch: unresolvable, onCheck: (c) => seen.push(c) });
    expect(checks).toEqual(seen);
    expect(checks.map((c) => [c.check, c.ok])).toEqual([
      ['HTTPS', false],
      ['reachable', false],
    ]);
    expect(checks[0]!.fix).toMatch(/certificate.*"baseUrl" to the https URL/);
    expect(checks[1]!.detail).toContain('ENOTFOUND');
    expect(checks[1]!.fix).toContain('does not resolve');

    const local = await runDoctor({ baseUrl: 'http://localhost:8787', fetch: unresolvable });
    expect(local[0]).toMatchObject({ check: 'HTTPS', ok: true, fix: null });
  });

  it('a Cloudflare quick tunnel fails as an unstable host name', async () => {
    const checks = await runDoctor({ baseUrl: 'https://random-words-here.trycloudflare.com', fetch: unresolvable });
    expect(checks.find((c) => c.check === 'stable host name')).toMatchObject({ ok: false, fix: expect.stringContaining('named Cloudflare tunnel') });
  });

  it('a base URL with a query or of another scheme is refused before any request', async () => {
    let requests = 0;
    const counting: typeof fetch = async () => {
      requests++;
      throw new Error('no');
    };
    expect((await runDoctor({ baseUrl: 'https://mcp.example.com/?x=1', fetch: counting }))[0]).toMatchObject({ check: 'base URL', ok: false });
    expect((await runDoctor({ baseUrl: 'ftp://mcp.example.com', fetch: counting }))[0]).toMatchObject({ check: 'base URL', ok: false });
    expect(requests).toBe(0);
  });

  it('nullPaths names every null, nested', () => {
    expect(nullPaths({ a: 1, b: null, c: [1, null, { d: null }], e: { f: 'x' } })).toEqual(['b', 'c[1]', 'c[2].d']);
    expect(nullPaths({ issuer: 'x' })).toEqual([]);
  });
});
