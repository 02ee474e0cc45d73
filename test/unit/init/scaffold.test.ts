import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import { InitExistsError, scaffold, type InitAnswers } from '../../../src/init/scaffold.js';
import { createFixedClock } from '../../../src/shared/clock.js';
import { DB_FILE, StoreCorruptError } from '../../../src/store/file-store.js';
import { useTmpDirs } from '../../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-scaffold-');
const HASH = 'scrypt$32768$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';

const answers = (dir: string, overrides: Partial<InitAnswers> = {}): InitAnswers => ({
  dir,
  name: 'cupcake',
  baseUrl: 'https://mcp.example.com',
  host: '127.0.0.1',
  port: 8787,
  docsDir: 'docs',
  passwordHash: HASH,
  force: false,
  ...overrides,
});

describe('scaffold', () => {
  it('writes a config loadConfig accepts, a private data dir holding the owner hash, and sample docs', async () => {
    const dir = await tmp();
    const clock = createFixedClock();
    const result = await scaffold(answers(dir, { name: 'Team docs', port: 9000 }), clock);
    expect(result.configPath).toBe(join(dir, 'cupcake.config.json'));
    const { config } = loadConfig({ cwd: dir, env: {} });
    expect(config).toMatchObject({
      name: 'Team docs',
      baseUrl: 'https://mcp.example.com',
      port: 9000,
      dataDir: join(dir, '.cupcake'),
      tools: { docs: { dir: join(dir, 'docs') } },
    });
    expect((await stat(result.dataDir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(result.dataDir, DB_FILE))).mode & 0o777).toBe(0o600);
    const db = JSON.parse(await readFile(join(result.dataDir, DB_FILE), 'utf8')) as { owner: unknown };
    expect(db.owner).toEqual({ passwordHash: HASH, passwordChangedAt: clock.now() });
    expect(result.docsWritten.length).toBeGreaterThan(0);
    expect((await readdir(join(dir, 'docs'))).sort()).toEqual(result.docsWritten.map((p) => p.replace(/^docs\//, '')).sort());
  });

  it('never replaces a document that is already in the docs folder', async () => {
    const dir = await tmp();
    await mkdir(join(dir, 'docs'));
    await writeFile(join(dir, 'docs', 'welcome.md'), '# mine\n');
    const result = await scaffold(answers(dir));
    expect(await readFile(join(dir, 'docs', 'welcome.md'), 'utf8')).toBe('# mine\n');
    expect(result.docsWritten).not.toContain(join('docs', 'welcome.md'));
  });

  it('refuses an existing config without force and changes nothing', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'cupcake.config.json'), '{"name":"mine"}\n');
    await expect(scaffold(answers(dir))).rejects.toBeInstanceOf(InitExistsError);
    expect(await readFile(join(dir, 'cupcake.config.json'), 'utf8')).toBe('{"name":"mine"}\n');
    expect(await readdir(dir)).toEqual(['cupcake.config.json']);
  });

  it('with force, an unreadable db.json stops it before the config is touched, and stays as it was', async () => {
    const dir = await tmp();
    await scaffold(answers(dir));
    const configBefore = await readFile(join(dir, 'cupcake.config.json'));
    const dbPath = join(dir, '.cupcake', DB_FILE);
    await writeFile(dbPath, '{"schemaVersion":1,"clients":');

    await expect(scaffold(answers(dir, { force: true, name: 'other' }))).rejects.toBeInstanceOf(StoreCorruptError);
    expect(await readFile(join(dir, 'cupcake.config.json'))).toEqual(configBefore);
    expect(await readFile(dbPath, 'utf8')).toBe('{"schemaVersion":1,"clients":');
  });

  it('rejects answers that would make an invalid config, writing nothing', async () => {
    const dir = await tmp();
    const error = await scaffold(answers(dir, { baseUrl: 'http://mcp.example.com' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual(['baseUrl: must use https:// unless the host is loopback (OAuth 2.1 §1.5)']);
    expect(await readdir(dir)).toEqual([]);
  });
});
