import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from '../helpers/cli.js';
import { runOnPty, type PtySession } from '../helpers/pty.js';
import { useTmpDirs } from '../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-init-tty-');
beforeAll(assertBuilt);
const sessions: PtySession[] = [];
afterEach(() => {
  for (const s of sessions.splice(0)) if (s.child.exitCode === null) s.child.kill('SIGKILL');
});

const ENTER = '\r';
const PASSWORD = 'interactive owner password';

/** Interactive `init` at a terminal (a pseudo-terminal), answered key by key. */
describe('init at a terminal', () => {
  it('asks the port before the base URL, whose default follows the port; the config gets both', async () => {
    const dir = await tmp();
    const tty = runOnPty(['init'], { cwd: dir });
    sessions.push(tty);
    let at = await tty.waitFor(/Port to listen on/);
    tty.type(`\x7f\x7f\x7f\x7f8790${ENTER}`);
    at = await tty.waitFor(/Public base URL[\s\S]*?\(http:\/\/localhost:8790\)/, { from: at });
    tty.type(ENTER); // keep the default
    for (const question of [/Address to listen on/, /Server name/, /Folder of documents/]) {
      at = await tty.waitFor(question, { from: at });
      tty.type(ENTER);
    }
    at = await tty.waitFor(/Owner password/, { from: at });
    tty.type(`${PASSWORD}${ENTER}`);
    at = await tty.waitFor(/Repeat the owner password/, { from: at });
    tty.type(`${PASSWORD}${ENTER}`);
    expect(await tty.exited).toBe(0);
    const config = JSON.parse(await readFile(join(dir, 'cupcake.config.json'), 'utf8')) as { port: number; baseUrl: string };
    expect(config).toMatchObject({ port: 8790, baseUrl: 'http://localhost:8790' });
    expect(tty.screen()).not.toContain(PASSWORD);
  });

  it('a base URL with a query is refused when it is typed, and a good one is then accepted', async () => {
    const dir = await tmp();
    const tty = runOnPty(['init'], { cwd: dir });
    sessions.push(tty);
    let at = await tty.waitFor(/Port to listen on/);
    tty.type(ENTER);
    at = await tty.waitFor(/Public base URL/, { from: at });
    tty.type(`\x15https://mcp.example.com/?x=1${ENTER}`);
    at = await tty.waitFor(/must not have a query/, { from: at });
    // Still at the same question: fix the answer.
    tty.type(`\x7f\x7f\x7f\x7f${ENTER}`);
    at = await tty.waitFor(/Address to listen on/, { from: at });
    tty.child.kill('SIGINT');
    await tty.exited;
  });

  it('an existing config is refused before the first question (exit 1, file unchanged)', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'cupcake.config.json'), '{"name":"mine"}\n');
    const tty = runOnPty(['init'], { cwd: dir });
    sessions.push(tty);
    expect(await tty.exited).toBe(1);
    expect(tty.screen()).toContain('cupcake.config.json already exists; run again with --force');
    expect(tty.screen()).not.toContain('Port to listen on');
    expect(await readFile(join(dir, 'cupcake.config.json'), 'utf8')).toBe('{"name":"mine"}\n');
  });
});
