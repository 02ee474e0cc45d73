import type { Context } from 'koa';
import { describe, expect, it } from 'vitest';
import { deploymentWarnings, insecureBaseUrlWarning } from '../../../src/server/middleware/deployment-warnings.js';
import type { Logger } from '../../../src/shared/logger.js';

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info() {}, warn: (m) => warnings.push(m), error() {} };
}

const request = (headers: Record<string, string>) => ({ get: (name: string) => headers[name.toLowerCase()] ?? '' }) as unknown as Context;

describe('CUPCAKE_W001: plain http reachable from other machines', () => {
  it.each([
    ['http://localhost:8787', '127.0.0.1', false],
    ['http://127.0.0.1:8787', 'localhost', false],
    ['http://localhost:8787', '::1', false],
    ['http://localhost:8787', '[::1]', false],
    ['https://mcp.example.com', '0.0.0.0', false],
    ['http://localhost:8787', '0.0.0.0', true],
    ['http://localhost:8787', '::', true],
    ['http://localhost:8787', '192.168.1.20', true],
    // Config validation refuses this one today; the warning does not rely on that.
    ['http://mcp.example.com', '127.0.0.1', true],
  ])('baseUrl %s listening on %s → warns: %s', (baseUrl, host, warns) => {
    const warning = insecureBaseUrlWarning({ baseUrl, host });
    expect(warning !== undefined).toBe(warns);
    if (warning) expect(warning).toMatch(/^CUPCAKE_W001 /);
  });

  it('is logged once, when the app is built', () => {
    const logger = recordingLogger();
    deploymentWarnings({ baseUrl: 'http://localhost:8787', host: '0.0.0.0', trustProxy: false }, logger);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toContain('listens on 0.0.0.0');
  });
});

describe('CUPCAKE_W002: forwarding headers while trustProxy is off', () => {
  it('warns once, at the first forwarded request, and lets every request through', async () => {
    const logger = recordingLogger();
    const middleware = deploymentWarnings({ baseUrl: 'http://localhost:8787', host: '127.0.0.1', trustProxy: false }, logger);
    let passed = 0;
    const next = async () => {
      passed++;
    };
    await middleware(request({}), next);
    expect(logger.warnings).toEqual([]);
    await middleware(request({ 'x-forwarded-for': '203.0.113.7' }), next);
    await middleware(request({ 'x-forwarded-proto': 'https' }), next);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(/^CUPCAKE_W002 .*"trustProxy": true/);
    expect(passed).toBe(3);
  });

  it('X-Forwarded-Proto alone is enough; with trustProxy on there is nothing to say', async () => {
    const logger = recordingLogger();
    await deploymentWarnings({ baseUrl: 'http://localhost:8787', host: '127.0.0.1', trustProxy: false }, logger)(
      request({ 'x-forwarded-proto': 'https' }),
      async () => {},
    );
    expect(logger.warnings).toHaveLength(1);
    const trusting = recordingLogger();
    await deploymentWarnings({ baseUrl: 'http://localhost:8787', host: '127.0.0.1', trustProxy: true }, trusting)(
      request({ 'x-forwarded-for': '203.0.113.7' }),
      async () => {},
    );
    expect(trusting.warnings).toEqual([]);
  });
});
