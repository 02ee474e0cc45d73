import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DocsIndex } from '../../../src/mcp/docs/docs-index.js';
import { silentLogger } from '../../../src/shared/logger.js';

let root: string;
let dir: string;
let index: DocsIndex;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'cupcake-docs-'));
  dir = join(root, 'docs');
  await mkdir(join(dir, 'guides'), { recursive: true });
  await writeFile(join(root, 'secret.md'), '# Secret\n\npassword hunter2\n');
  await writeFile(join(dir, 'guides', 'install.md'), '# Installing the server\n\nRun npm ci, then npm start.\n\n## Upgrading\n\nInstall the new version.\n');
  await writeFile(join(dir, 'oauth.md'), '# OAuth notes\n\nTokens are refreshed every day. To install a client, register it first.\n');
  await writeFile(join(dir, 'refresh.md'), '# Refresh tokens\n\nRefresh tokens rotate. OAuth clients refresh before expiry.\n');
  await writeFile(join(dir, 'plain.txt'), 'Release checklist\n\nTag, build, publish.\n');
  await writeFile(join(dir, 'image.png'), 'not text');
  index = new DocsIndex(dir, silentLogger);
  await index.start();
});
afterEach(async () => {
  index.close();
  await rm(root, { recursive: true, force: true });
});

describe('DocsIndex', () => {
  it('indexes Markdown and text files recursively, with ids relative to the folder', () => {
    expect([...['guides/install.md', 'oauth.md', 'refresh.md', 'plain.txt']].map((id) => index.get(id)?.id)).toEqual([
      'guides/install.md',
      'oauth.md',
      'refresh.md',
      'plain.txt',
    ]);
    expect(index.get('image.png')).toBeUndefined();
    expect(index.get('guides/install.md')?.title).toBe('Installing the server');
    expect(index.get('plain.txt')?.title).toBe('plain');
  });

  it('ranks a title match above a body match', () => {
    const hits = index.search('install');
    expect(hits.map((h) => h.id)).toEqual(['guides/install.md', 'oauth.md']);
  });

  it('combines several words: a document with all of them ranks first', () => {
    const hits = index.search('oauth refresh');
    expect(hits[0]!.id).toBe('refresh.md');
    expect(hits.map((h) => h.id)).toContain('oauth.md');
  });

  it('finds nothing for an empty query or unknown words', () => {
    expect(index.search('   ')).toEqual([]);
    expect(index.search('zyxwvut')).toEqual([]);
  });

  it('never indexes or reads a file outside the folder: symlinks out, .., absolute paths', async () => {
    await symlink(join(root, 'secret.md'), join(dir, 'link.md'));
    await symlink(root, join(dir, 'outside'));
    await index.refresh();
    expect(index.search('hunter2')).toEqual([]);
    for (const id of ['link.md', 'outside/secret.md', '../secret.md', '%2e%2e/secret.md', join(root, 'secret.md'), '/etc/passwd', 'guides/../../secret.md']) {
      expect(await index.read(id), id).toBeUndefined();
    }
  });

  it('follows a symlink that stays inside the folder', async () => {
    await symlink(join(dir, 'oauth.md'), join(dir, 'alias.md'));
    await index.refresh();
    expect((await index.read('alias.md'))?.title).toBe('OAuth notes');
  });

  it('follows files added, changed and removed without a restart', async () => {
    await writeFile(join(dir, 'new.md'), '# Webhooks\n\nDelivery retries.\n');
    await index.ensureFresh();
    await expect
      .poll(
        async () => {
          await index.ensureFresh();
          return index.search('webhooks').map((h) => h.id);
        },
        { timeout: 5_000 },
      )
      .toEqual(['new.md']);
    await rm(join(dir, 'new.md'));
    await expect
      .poll(
        async () => {
          await index.ensureFresh();
          return index.search('webhooks').length;
        },
        { timeout: 5_000 },
      )
      .toBe(0);
  });
});
