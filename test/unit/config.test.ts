import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { useTmpDirs } from '../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-config-');

async function withConfig(content: unknown, name = 'cupcake.config.json'): Promise<{ dir: string; path: string }> {
  const dir = await tmp();
  const path = join(dir, name);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return { dir, path };
}

/** The problems a config produces, or [] when it is valid. */
function problemsOf(options: Parameters<typeof loadConfig>[0]): string[] {
  try {
    loadConfig(options);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe('loadConfig', () => {
  it('with no file runs on the embedded default (DESIGN §2)', async () => {
    const cwd = await tmp();
    const { config, path, baseUrlFollowsPort } = loadConfig({ cwd, env: {} });
    expect(path).toBeNull();
    expect(baseUrlFollowsPort).toBe(true);
    expect(config).toEqual({
      name: 'cupcake',
      baseUrl: 'http://localhost:8787',
      host: '127.0.0.1',
      port: 8787,
      dataDir: join(cwd, '.cupcake'),
      trustProxy: false,
      store: 'file',
      auth: {
        accessTokenTtl: 86_400_000,
        authorizationCodeTtl: 300_000,
        refreshTokens: false,
        refreshTokenTtl: 2_592_000_000,
        scopes: ['mcp'],
        toolScopes: {},
        trustedClients: ['chatgpt', 'claude', 'loopback'],
      },
      transports: { streamableHttp: true, sse: true },
      cors: { origins: ['*'] },
      limits: {
        register: { limit: 300, window: 3_600_000 },
        token: { limit: 1_200, window: 3_600_000 },
        revoke: { limit: 1_200, window: 3_600_000 },
        authorizePage: { limit: 600, window: 900_000 },
        authorizeForm: { limit: 300, window: 900_000 },
        failedBearer: { limit: 60, window: 900_000 },
        loginFailures: { limit: 5, window: 900_000 },
        staleBearer: { limit: 300, window: 900_000 },
        signIn: { limit: 120, window: 600_000 },
        rejectionLogWindow: 900_000,
        sessionsPerClient: 100,
        pipelinedRequests: 16,
        streamBufferBytes: 8 * 1024 * 1024,
        batchSize: 100,
        unapprovedClients: 1_000,
      },
      tools: { docs: { dir: join(cwd, 'docs') }, servers: {} },
    });
  });

  it("DESIGN §3: limits are today's code defaults unless set; a limit set alone keeps the others", async () => {
    const { DEFAULT_LIMITS, limitsFromConfig } = await import('../../src/server/limits.js');
    expect(limitsFromConfig(loadConfig({ cwd: await tmp(), env: {} }).config.limits)).toEqual(DEFAULT_LIMITS);
    const { dir, path } = await withConfig({ limits: { token: { limit: 10, window: '1m' }, loginFailures: { limit: 3 }, sessionsPerClient: 4 } });
    const limits = limitsFromConfig(loadConfig({ path, cwd: dir, env: {} }).config.limits);
    expect(limits).toEqual({ ...DEFAULT_LIMITS, token: { limit: 10, windowMs: 60_000 }, loginFailures: { limit: 3, windowMs: 900_000 }, sessionsPerClient: 4 });
  });

  it('invalid limits get one line each, naming the field', async () => {
    const { dir, path } = await withConfig({ limits: { token: { limit: 0 }, register: { window: 'soon' }, sessionsPerClient: 1.5, unknown: 1 } });
    const problems = problemsOf({ path, cwd: dir, env: {} });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^limits\.token\.limit: expected a whole number of at least 1/),
        expect.stringMatching(/^limits\.register\.window: expected a duration like "1h"/),
        expect.stringMatching(/^limits\.sessionsPerClient: expected a whole number/),
        expect.stringMatching(/^limits.*unknown/),
      ]),
    );
  });

  it('finds ./cupcake.config.json, then $CUPCAKE_CONFIG, then --config', async () => {
    const { dir, path } = await withConfig({ name: 'from-cwd' });
    expect(loadConfig({ cwd: dir, env: {} })).toMatchObject({ path, config: { name: 'from-cwd' } });
    const other = await withConfig({ name: 'from-env' }, 'other.json');
    expect(loadConfig({ cwd: dir, env: { CUPCAKE_CONFIG: other.path } }).config.name).toBe('from-env');
    const flag = await withConfig({ name: 'from-flag' }, 'flag.json');
    expect(loadConfig({ cwd: dir, env: { CUPCAKE_CONFIG: other.path }, path: flag.path }).config.name).toBe('from-flag');
  });

  it('parses durations into milliseconds', async () => {
    const { path } = await withConfig({ auth: { accessTokenTtl: '90m', authorizationCodeTtl: '30s', refreshTokenTtl: '2w' } });
    expect(loadConfig({ path, env: {} }).config.auth).toMatchObject({
      accessTokenTtl: 5_400_000,
      authorizationCodeTtl: 30_000,
      refreshTokenTtl: 1_209_600_000,
    });
  });

  it('drops a trailing slash from baseUrl so that the issuer is byte-identical everywhere (RFC 8414 §3.3)', async () => {
    const { path } = await withConfig({ baseUrl: 'https://mcp.example.com/' });
    expect(loadConfig({ path, env: {} }).config.baseUrl).toBe('https://mcp.example.com');
    const sub = await withConfig({ baseUrl: 'https://example.com/cupcake/' });
    expect(loadConfig({ path: sub.path, env: {} }).config.baseUrl).toBe('https://example.com/cupcake');
  });

  it('resolves relative paths against the config file’s folder, not the working directory', async () => {
    const { dir, path } = await withConfig({
      dataDir: 'state',
      tools: { docs: { dir: '../shared-docs' }, servers: { local: { command: 'node', args: ['x.js'], cwd: 'srv' } } },
    });
    const elsewhere = await tmp();
    const { config } = loadConfig({ path, cwd: elsewhere, env: {} });
    expect(config.dataDir).toBe(join(dir, 'state'));
    expect(config.tools.docs).toEqual({ dir: join(dir, '..', 'shared-docs') });
    expect(config.tools.servers.local).toMatchObject({ command: 'node', cwd: join(dir, 'srv') });
    const absolute = await withConfig({ dataDir: '/var/lib/cupcake' });
    expect(loadConfig({ path: absolute.path, env: {} }).config.dataDir).toBe('/var/lib/cupcake');
  });

  it('DESIGN §2: CUPCAKE_BASE_URL, CUPCAKE_PORT, CUPCAKE_HOST and CUPCAKE_DATA_DIR override the file', async () => {
    const { dir, path } = await withConfig({ baseUrl: 'https://file.example.com', port: 1111, host: '127.0.0.1', dataDir: 'state' });
    const cwd = await tmp();
    const env = { CUPCAKE_BASE_URL: 'https://env.example.com', CUPCAKE_PORT: '2222', CUPCAKE_HOST: '0.0.0.0', CUPCAKE_DATA_DIR: 'env-data' };
    const { config, baseUrlFollowsPort } = loadConfig({ path, cwd, env });
    expect(config).toMatchObject({ baseUrl: 'https://env.example.com', port: 2222, host: '0.0.0.0' });
    // A relative path from the environment is relative to where the command runs.
    expect(config.dataDir).toBe(join(cwd, 'env-data'));
    expect(baseUrlFollowsPort).toBe(false);
    // Empty variables are ignored.
    expect(loadConfig({ path, cwd, env: { CUPCAKE_PORT: '', CUPCAKE_BASE_URL: '' } }).config).toMatchObject({
      port: 1111,
      baseUrl: 'https://file.example.com',
      dataDir: join(dir, 'state'),
    });
  });

  it('a loopback base URL on the configured port follows the port actually bound; any other stays as written', async () => {
    const local = await withConfig({ baseUrl: 'http://localhost:8787', port: 8787 });
    expect(loadConfig({ path: local.path, env: {} }).baseUrlFollowsPort).toBe(true);
    expect(loadConfig({ path: local.path, env: {}, overrides: { port: '0' } }).baseUrlFollowsPort).toBe(true);
    expect(loadConfig({ path: local.path, env: {}, overrides: { baseUrl: 'http://localhost:8787' } }).baseUrlFollowsPort).toBe(false);
    const proxied = await withConfig({ baseUrl: 'http://localhost:8080', port: 8787 });
    expect(loadConfig({ path: proxied.path, env: {} }).baseUrlFollowsPort).toBe(false);
    const publicUrl = await withConfig({ baseUrl: 'https://mcp.example.com', port: 8787 });
    expect(loadConfig({ path: publicUrl.path, env: {} }).baseUrlFollowsPort).toBe(false);
  });

  it('flags override the environment, which overrides the file', async () => {
    const { path } = await withConfig({ port: 1111, host: '127.0.0.1' });
    const env = { CUPCAKE_PORT: '2222', CUPCAKE_HOST: '::1', CUPCAKE_BASE_URL: 'https://env.example.com' };
    const { config } = loadConfig({ path, env, overrides: { port: '0', baseUrl: 'https://flag.example.com' } });
    expect(config).toMatchObject({ port: 0, host: '::1', baseUrl: 'https://flag.example.com' });
    expect(loadConfig({ path, env: {}, overrides: { port: 3333, host: 'localhost' } }).config).toMatchObject({ port: 3333, host: 'localhost' });
  });

  it('reports one line per invalid field, naming the field', async () => {
    const { path } = await withConfig({
      port: 'eighty',
      baseUrl: 'http://mcp.example.com',
      trustProxy: 'yes',
      auth: { accessTokenTtl: 'forever', authorizationCodeTtl: 300, scopes: [] },
      transports: { sse: 'no' },
      tools: { docs: 5 },
    });
    const problems = problemsOf({ path, env: {} });
    expect(problems.sort()).toEqual(
      [
        'port: expected a port number between 0 and 65535',
        'baseUrl: must use https:// unless the host is loopback (OAuth 2.1 §1.5)',
        'trustProxy: expected true or false',
        'auth.accessTokenTtl: expected a duration like "24h"',
        'auth.authorizationCodeTtl: expected a duration like "5m"',
        'auth.scopes: expected at least one scope',
        'transports.sse: expected true or false',
        'tools.docs: expected {"dir": "<folder>"} or false',
      ].sort(),
    );
  });

  it('a field with several problems still gets one line', async () => {
    const { path } = await withConfig({ baseUrl: 'http://mcp.example.com/path?x=1#frag' });
    const problems = problemsOf({ path, env: {} });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^baseUrl: must use https:\/\/.*query.*fragment/);
  });

  it('names unknown settings and points into invalid upstream servers', async () => {
    const { path } = await withConfig({
      prot: 8080,
      auth: { refreshTokenTTL: '1d' },
      tools: { servers: { local: { command: 5 }, 'bad name!': { url: 'https://x.example/mcp' } } },
    });
    const problems = problemsOf({ path, env: {} });
    expect(problems).toContain('(config): unknown setting "prot"');
    expect(problems).toContain('auth: unknown setting "refreshTokenTTL"');
    expect(problems.find((p) => p.startsWith('tools.servers.local'))).toMatch(/^tools\.servers\.local\.command: /);
    expect(problems.find((p) => p.startsWith('tools.servers.bad name!'))).toBeDefined();
    expect(problems).toHaveLength(4);
  });

  it('an upstream server timeout is a duration, read into milliseconds; anything else is named', async () => {
    const good = await withConfig({ tools: { servers: { slow: { command: 'node', timeout: '90s' }, far: { url: 'https://x.example/mcp', timeout: '5m' } } } });
    const { config } = loadConfig({ path: good.path, env: {} });
    expect(config.tools.servers.slow).toMatchObject({ timeout: 90_000 });
    expect(config.tools.servers.far).toMatchObject({ timeout: 300_000 });
    const bad = await withConfig({ tools: { servers: { slow: { command: 'node', timeout: 'soon' } } } });
    expect(problemsOf({ path: bad.path, env: {} })).toEqual([expect.stringMatching(/^tools\.servers\.slow\.timeout: expected a duration like "5m"/)]);
  });

  it('rejects values that are well-formed but unusable', async () => {
    const cases: Array<[unknown, string]> = [
      [{ port: 70000 }, 'port: expected a port number between 0 and 65535'],
      [{ port: 80.5 }, 'port: expected a port number between 0 and 65535'],
      [{ auth: { accessTokenTtl: '0s' } }, 'auth.accessTokenTtl: expected a duration like "24h"'],
      [{ auth: { accessTokenTtl: '-5m' } }, 'auth.accessTokenTtl: expected a duration like "24h"'],
      [{ auth: { scopes: ['mcp read'] } }, 'auth.scopes.0: expected a scope name without spaces or quotes (RFC 6749 §3.3)'],
      [{ limits: { batchSize: 0 } }, 'limits.batchSize: expected a whole number of at least 1'],
      [{ limits: { signIn: { limit: 5, window: 'soon' } } }, 'limits.signIn.window: expected a duration like "10m"'],
      [{ auth: { scopes: ['read'] } }, 'auth.scopes: must include "mcp", the scope that uses the MCP endpoints; other scopes narrow it (auth.toolScopes)'],
      [{ auth: { toolScopes: { admin: ['files__*'] } } }, 'auth.toolScopes.admin: "admin" is not in auth.scopes'],
      [{ auth: { scopes: ['mcp'], toolScopes: { mcp: ['x'] } } }, 'auth.toolScopes.mcp: "mcp" is the scope of every tool; name a narrower scope'],
      [{ baseUrl: 'ftp://mcp.example.com' }, 'baseUrl: must start with https://'],
      [{ baseUrl: 'not a url' }, 'baseUrl: expected a URL like "https://mcp.example.com"'],
      [{ name: '' }, 'name: expected a non-empty name'],
    ];
    for (const [content, problem] of cases) {
      const { path } = await withConfig(content);
      expect(problemsOf({ path, env: {} }), JSON.stringify(content)).toEqual([problem]);
    }
  });

  it('OAuth 2.1 §1.5: http is accepted only for a loopback base URL', async () => {
    for (const ok of ['http://localhost:8787', 'http://127.0.0.1:9000', 'http://[::1]:8787', 'http://dev.localhost', 'https://mcp.example.com']) {
      const { path } = await withConfig({ baseUrl: ok });
      expect(problemsOf({ path, env: {} }), ok).toEqual([]);
    }
    for (const bad of ['http://mcp.example.com', 'http://192.168.1.10:8787', 'http://0.0.0.0:8787', 'http://localhost.evil.com']) {
      const { path } = await withConfig({ baseUrl: bad });
      expect(problemsOf({ path, env: {} }), bad).toEqual(['baseUrl: must use https:// unless the host is loopback (OAuth 2.1 §1.5)']);
    }
    expect(problemsOf({ cwd: await tmp(), env: { CUPCAKE_BASE_URL: 'http://example.com' } })).toEqual([
      'baseUrl: must use https:// unless the host is loopback (OAuth 2.1 §1.5)',
    ]);
  });

  it('an environment or flag value is validated like the file', async () => {
    const cwd = await tmp();
    expect(problemsOf({ cwd, env: { CUPCAKE_PORT: 'http' } })).toEqual(['port: expected a port number between 0 and 65535']);
    expect(problemsOf({ cwd, env: {}, overrides: { port: '99999' } })).toEqual(['port: expected a port number between 0 and 65535']);
  });

  it('a config path given explicitly must exist', async () => {
    const dir = await tmp();
    const missing = join(dir, 'nope.json');
    expect(problemsOf({ path: missing, env: {} })).toEqual([`${missing}: no such config file (run "cupcake-mcp init" to create one)`]);
    expect(problemsOf({ cwd: dir, env: { CUPCAKE_CONFIG: 'nope.json' } })).toEqual([`${missing}: no such config file (run "cupcake-mcp init" to create one)`]);
  });

  it('reports a file that is not JSON, or not an object, in one line naming it', async () => {
    const broken = await withConfig('{ "port": 8787, ');
    const problems = problemsOf({ path: broken.path, env: {} });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${broken.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON`));
    const array = await withConfig('[]');
    expect(problemsOf({ path: array.path, env: {} })).toEqual([`${array.path}: expected a JSON object`]);
    const dir = await tmp();
    await mkdir(join(dir, 'cupcake.config.json'));
    expect(problemsOf({ cwd: dir, env: {} })[0]).toMatch(/cannot be read \(EISDIR\)/);
  });
});

describe('store setting (DESIGN.md §3, §6)', () => {
  it('is "file" by default; a Redis URL in the file or $CUPCAKE_STORE (which wins) names the shared store', async () => {
    const cwd = await tmp();
    await writeFile(join(cwd, 'cupcake.config.json'), JSON.stringify({ store: 'redis://cache.internal:6379/1' }));
    expect(loadConfig({ cwd, env: {} }).config.store).toBe('redis://cache.internal:6379/1');
    expect(loadConfig({ cwd, env: { CUPCAKE_STORE: 'rediss://:pw@cache.example.com:6380/2' } }).config.store).toBe('rediss://:pw@cache.example.com:6380/2');
    expect(loadConfig({ cwd, env: { CUPCAKE_STORE: 'file' } }).config.store).toBe('file');
  });

  it('anything else is one line naming the field, never echoing a password', async () => {
    const cwd = await tmp();
    expect(() => loadConfig({ cwd, env: { CUPCAKE_STORE: 'mysql://root:hunter2@db/cupcake' } })).toThrow(
      /^(?![\s\S]*hunter2)[\s\S]*store: expected "file" or a URL starting with redis:\/\/ or rediss:\/\//,
    );
  });
});
