import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { assertBuilt, killChildrenAfterEach, ROOT, runCli, startServe } from '../helpers/cli.js';
import { createCupcakeServer } from '../../src/index.js';
import { HeadlessOAuthClientProvider } from '../helpers/oauth-client.js';

const PASSWORD = 'readme example password';
let child: ChildProcess | undefined;
const cleanup: string[] = [];
killChildrenAfterEach();

afterEach(async () => {
  child?.kill('SIGKILL');
  child = undefined;
  for (const path of cleanup.splice(0)) await rm(path, { recursive: true, force: true });
});

/** The first ```js block under "## Programmatic API" in the README. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Programmatic API'));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('README has no programmatic API example');
  return match[1]!;
}

describe('programmatic API', () => {
  it('the README example runs as written and serves its tool through the whole OAuth flow', async () => {
    assertBuilt();
    const code = await readmeExample();
    expect(code.split('\n').filter((l) => l.trim()).length).toBeLessThanOrEqual(20);
    // Inside the package folder, `import 'cupcake-mcp'` resolves to this package (self-reference).
    const script = join(ROOT, `.readme-example-${process.pid}.mjs`);
    const work = await mkdtemp(join(tmpdir(), 'cupcake-api-'));
    cleanup.push(script, work);
    await writeFile(script, code);
    child = spawn(process.execPath, [script], {
      cwd: work,
      env: { PATH: process.env.PATH, PORT: '0', CUPCAKE_OWNER_PASSWORD: PASSWORD },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr!.on('data', (chunk) => (output += chunk));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`example did not start: ${output}`)), 15_000);
      child!.stdout!.on('data', (chunk) => {
        output += chunk;
        const match = /MCP server at (http:\/\/\S+)\/mcp/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child!.on('exit', (exitCode) => reject(new Error(`example exited with ${exitCode}: ${output}`)));
    });

    const provider = new HeadlessOAuthClientProvider({ authMethod: 'none', password: PASSWORD });
    const first = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { authProvider: provider });
    await expect(new Client({ name: 't', version: '1' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    await first.finishAuth(provider.takeAuthorizationCode());
    const client = new Client({ name: 't', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { authProvider: provider }));
    const { tools } = await client.listTools();
    expect(tools.find((t) => t.name === 'forecast')).toMatchObject({ description: 'Tomorrow’s weather for a city', annotations: { readOnlyHint: true } });
    const result = await client.callTool({ name: 'forecast', arguments: { city: 'Paris' } });
    expect(result.content).toEqual([{ type: 'text', text: 'Sunny in Paris' }]);
    // Invalid arguments are a tool result with isError (what the SDK's McpServer answers), so the model sees why.
    const invalid = await client.callTool({ name: 'forecast', arguments: { city: 42 } });
    expect(invalid.isError).toBe(true);
    expect((invalid.content as Array<{ text: string }>)[0]!.text).toMatch(/city/);
    await client.close();
  });

  it(
    'createCupcakeServer claims its data dir like serve: a second server or a serve ' +
      'on it is refused naming this process, and it is free again after close()',
    async () => {
      assertBuilt();
      const work = await mkdtemp(join(tmpdir(), 'cupcake-api-claim-'));
      cleanup.push(work);
      const config = { port: 0, dataDir: join(work, '.cupcake') };
      const first = createCupcakeServer({ config, ownerPassword: PASSWORD, cwd: work });
      await first.listen();
      try {
        const second = createCupcakeServer({ config, ownerPassword: PASSWORD, cwd: work });
        await expect(second.listen()).rejects.toThrow(`already using ${config.dataDir} (pid ${process.pid}`);
        const serve = await runCli(['serve', '--port', '0'], { cwd: work, env: { CUPCAKE_DATA_DIR: config.dataDir } });
        expect(serve.code).toBe(1);
        expect(serve.stderr).toContain(`already using ${config.dataDir} (pid ${process.pid}`);
      } finally {
        await first.close();
      }
      const serve = await startServe(['--port', '0'], { cwd: work, env: { CUPCAKE_DATA_DIR: config.dataDir } });
      expect((await serve.stop()).code).toBe(0);
    },
  );

  it('the first-start password rule is the same for the API and serve: too short is refused before anything is stored', async () => {
    const work = await mkdtemp(join(tmpdir(), 'cupcake-api-pw-'));
    cleanup.push(work);
    const server = createCupcakeServer({ config: { port: 0, dataDir: join(work, '.cupcake') }, ownerPassword: 'short', cwd: work });
    await expect(server.listen()).rejects.toThrow('ownerPassword: the owner password needs at least 8 characters');
    const serve = await runCli(['serve', '--port', '0'], { cwd: work, env: { CUPCAKE_OWNER_PASSWORD: 'short' } });
    expect(serve.stderr).toContain('CUPCAKE_OWNER_PASSWORD: the owner password needs at least 8 characters');
    expect(serve.code).toBe(1);
  });
});
