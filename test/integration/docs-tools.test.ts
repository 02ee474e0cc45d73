import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { mintToken } from '../helpers/tokens.js';

let server: TestServer;
let root: string;
let token: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cupcake-docs-'));
  const dir = join(root, 'docs');
  await mkdir(join(dir, 'guides'), { recursive: true });
  await writeFile(join(root, 'secret.md'), '# Secret\n\nhunter2\n');
  await writeFile(join(dir, 'guides', 'deploy behind nginx.md'), '# Deploying behind nginx\n\nTurn proxy_buffering off for SSE.\n');
  await writeFile(join(dir, 'tokens.md'), '# Tokens\n\nAccess tokens last 24 hours. Deploying needs none.\n');
  await symlink(join(root, 'secret.md'), join(dir, 'escape.md'));
  server = await startTestServer({ docsDir: dir });
  token = (await mintToken(server.store, { baseUrl: server.url })).token;
});
afterAll(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

async function callTool(name: string, args: unknown) {
  const response = await fetch(`${server.url}/tools/${name}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify(args),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { structuredContent?: any; content: Array<{ type: string; text: string }>; isError?: boolean };
}

describe('docs tools in the shape ChatGPT deep research requires', () => {
  it('tools/list: search(query) and fetch(id), read-only, with output schemas', async () => {
    const response = await fetch(`${server.url}/tools`, { headers: { Authorization: `Bearer ${token}` } });
    const { tools } = (await response.json()) as { tools: Array<{ name: string; inputSchema: any; outputSchema?: any; annotations?: any }> };
    const search = tools.find((t) => t.name === 'search')!;
    const fetchTool = tools.find((t) => t.name === 'fetch')!;
    expect(Object.keys(search.inputSchema.properties)).toEqual(['query']);
    expect(search.inputSchema.properties.query.type).toBe('string');
    expect(Object.keys(fetchTool.inputSchema.properties)).toEqual(['id']);
    for (const tool of [search, fetchTool]) {
      expect(tool.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, openWorldHint: false });
      expect(tool.outputSchema?.type).toBe('object');
    }
  });

  it('search ranks the title match first and every hit can be fetched and opened at its url', async () => {
    const result = await callTool('search', { query: 'deploying' });
    expect(JSON.parse(result.content[0]!.text)).toEqual(result.structuredContent);
    const hits = result.structuredContent.results as Array<{ id: string; title: string; url: string }>;
    expect(hits.map((h) => h.id)).toEqual(['guides/deploy behind nginx.md', 'tokens.md']);
    for (const hit of hits) {
      expect(hit.url.startsWith(`${server.url}/docs/`)).toBe(true);
      const fetched = await callTool('fetch', { id: hit.id });
      expect(fetched.structuredContent).toMatchObject({ id: hit.id, title: hit.title, url: hit.url });
      expect(JSON.parse(fetched.content[0]!.text)).toEqual(fetched.structuredContent);
      const opened = await fetch(hit.url, { headers: { Authorization: `Bearer ${token}` } });
      expect(opened.status).toBe(200);
      expect(await opened.text()).toBe(fetched.structuredContent.text);
      expect((await fetch(hit.url)).status).toBe(401);
    }
  });

  it('refuses every path outside the folder, in fetch and at /docs', async () => {
    for (const id of ['../secret.md', '%2e%2e/secret.md', '..%2fsecret.md', join(root, 'secret.md'), '/etc/passwd', 'escape.md', 'guides/../../secret.md']) {
      const result = await callTool('fetch', { id });
      expect(result.isError, id).toBe(true);
      expect(JSON.stringify(result)).not.toContain('hunter2');
    }
    for (const path of [
      '/docs/../secret.md',
      '/docs/%2e%2e/secret.md',
      '/docs/..%2fsecret.md',
      '/docs/%2e%2e%2fsecret.md',
      '/docs/escape.md',
      '/docs//etc/passwd',
      '/docs/%252e%252e/secret.md',
    ]) {
      const response = await fetch(`${server.url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
      expect([400, 404], path).toContain(response.status);
      expect(await response.text()).not.toContain('hunter2');
    }
  });

  it('a file added while serving becomes searchable', async () => {
    const dir = join(root, 'docs');
    await writeFile(join(dir, 'late.md'), '# Quarterly roadmap\n\nShip the gateway.\n');
    await expect
      .poll(async () => ((await callTool('search', { query: 'roadmap' })).structuredContent.results as Array<{ id: string }>).map((r) => r.id), {
        timeout: 5_000,
      })
      .toEqual(['late.md']);
  });
});
