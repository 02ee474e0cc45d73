import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { assertBuilt, ROOT } from '../helpers/cli.js';
import { HeadlessOAuthClientProvider } from '../helpers/oauth-client.js';

const PASSWORD = 'readme example password';
let child: ChildProcess | undefined;
const cleanup: string[] = [];

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
    child = spawn(process.execPath, [script], { cwd: work, env: { PATH: process.env.PATH, PORT: '0', CUPCAKE_OWNER_PASSWORD: PASSWORD }, stdio: ['ignore', 'pipe', 'pipe'] });
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
    const invalid = await client.callTool({ name: 'forecast', arguments: { city: 42 } }).catch((error: Error) => error);
    expect(String(invalid)).toMatch(/city/);
    await client.close();
  });
});
