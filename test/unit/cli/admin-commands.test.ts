import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { relativeTime, resolveById, shortIdLength, tokenStatus } from '../../../src/cli/admin.js';
import { runClientsList } from '../../../src/cli/commands/clients.js';
import { runPasswd } from '../../../src/cli/commands/passwd.js';
import { formatEventLine } from '../../../src/cli/commands/events.js';
import { runStatus } from '../../../src/cli/commands/status.js';
import { runTokensList } from '../../../src/cli/commands/tokens.js';
import type { CliContext } from '../../../src/cli/context.js';
import { CliError } from '../../../src/cli/errors.js';
import { createOutput } from '../../../src/cli/output.js';
import { verifyPassword } from '../../../src/oauth/secrets.js';
import { createFixedClock } from '../../../src/shared/clock.js';
import { openFileStore } from '../../../src/store/index.js';
import { HOUR, makeAccessToken, makeClient, T0 } from '../../helpers/records.js';
import { useTmpDirs } from '../../helpers/tmp.js';

const MINUTE = 60_000;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const tmp = useTmpDirs('cupcake-admin-unit-');

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _encoding: string, callback: () => void) {
    this.text += chunk.toString();
    callback();
  }
}

function context(cwd: string, { tty = false, env = {} as Record<string, string> } = {}) {
  const out = new Capture(tty);
  const err = new Capture(false);
  const ctx: CliContext = {
    env,
    cwd,
    stdin: process.stdin,
    output: createOutput(out, err, env),
    prompts: {
      input: () => Promise.reject(new Error('no prompt expected')),
      password: () => Promise.reject(new Error('no prompt expected')),
      confirm: () => Promise.reject(new Error('no prompt expected')),
    },
    interactive: false,
    configPath: undefined,
  };
  return { ctx, out, err };
}

/** A data dir pinned to T0 so that the readable output can be compared byte for byte. */
async function seedAtT0() {
  const dir = await tmp();
  const store = await openFileStore({ dataDir: join(dir, '.cupcake') });
  const chatgpt = makeClient({
    clientId: '8c2f6a1e-0b5d-4e7a-9f10-2b3c4d5e6f70',
    clientName: 'ChatGPT',
    createdAt: T0 - 3 * HOUR,
    lastUsedAt: T0 - 5 * MINUTE,
  });
  const claude = makeClient({
    clientId: '8c2f6a1e-9999-4e7a-9f10-2b3c4d5e6f71',
    clientName: 'Claude for a team with a very long name',
    redirectUris: ['https://claude.ai/api/mcp/auth_callback', 'https://claude.com/api/mcp/auth_callback'],
    tokenEndpointAuthMethod: 'client_secret_post',
    createdAt: T0 - 50 * HOUR,
  });
  const inspector = makeClient({
    clientId: '0d9e8f7a-1111-4222-8333-444455556666',
    clientSecretHash: null,
    clientName: null,
    redirectUris: ['http://localhost:6274/oauth/callback/debug/a-very-long-path-segment'],
    tokenEndpointAuthMethod: 'none',
    createdAt: T0 - 40 * MINUTE,
  });
  for (const { client } of [chatgpt, claude, inspector]) await store.createClient(client);
  const active = makeAccessToken(chatgpt.client.clientId, 'g1', { createdAt: T0 - 3 * HOUR, expiresAt: T0 + 21 * HOUR, lastUsedAt: T0 - 5 * MINUTE });
  const revoked = makeAccessToken(claude.client.clientId, 'g2', { createdAt: T0 - 49 * HOUR, expiresAt: T0 + HOUR, revokedAt: T0 - 2 * HOUR });
  await store.saveTokens(active.record);
  await store.saveTokens(revoked.record);
  await store.close();
  return { dir, active: active.record, revoked: revoked.record };
}

describe('readable output with a fixed clock', () => {
  it('pins the clients list table: aligned columns, shortest unique ids, relative times, truncation', async () => {
    const { dir } = await seedAtT0();
    const { ctx, out, err } = context(dir);
    await runClientsList(ctx, {}, createFixedClock(T0));
    expect(err.text).toBe('');
    expect(out.text).toBe(
      [
        'ID          NAME                      REDIRECT URI                                AUTH    CREATED     LAST USED  TOKENS',
        '8c2f6a1e-9  Claude for a team with …  https://claude.ai/api/mcp/auth_callback +1  post    2 d ago     never      0',
        '8c2f6a1e-0  ChatGPT                   https://chatgpt.com/connector_platform_…    basic   3 h ago     5 min ago  1',
        '0d9e8f7a-1  (no name)                 http://localhost:6274/oauth/callback/de…    public  40 min ago  never      0',
        '',
      ].join('\n'),
    );
  });

  it('pins the tokens list --all table', async () => {
    const { dir, active, revoked } = await seedAtT0();
    const { ctx, out } = context(dir);
    await runTokensList(ctx, { all: true }, createFixedClock(T0));
    expect(out.text).toBe(
      [
        'ID                CLIENT                    SCOPE  CREATED  EXPIRES          LAST USED  STATUS',
        `${revoked.id}  Claude for a team with …  mcp    2 d ago  revoked 2 h ago  never      revoked`,
        `${active.id}  ChatGPT                   mcp    3 h ago  in 21 h          5 min ago  active`,
        '',
      ].join('\n'),
    );
  });

  it('colours token status on a TTY, and not with NO_COLOR', async () => {
    const { dir } = await seedAtT0();
    const tty = context(dir, { tty: true });
    await runTokensList(tty.ctx, { all: true }, createFixedClock(T0));
    expect(tty.out.text).toContain('\u001b[32mactive\u001b[39m');
    expect(tty.out.text).toContain('\u001b[31mrevoked\u001b[39m');

    const noColor = context(dir, { tty: true, env: { NO_COLOR: '1' } });
    await runTokensList(noColor.ctx, { all: true }, createFixedClock(T0));
    expect(noColor.out.text).not.toContain('\u001b[');
  });

  it('status counts only tokens active at the clock’s now', async () => {
    const { dir } = await seedAtT0();
    const early = context(dir);
    await runStatus(early.ctx, { json: true }, createFixedClock(T0));
    expect(JSON.parse(early.out.text)).toMatchObject({ clients: 3, active_tokens: 1 });
    const late = context(dir);
    await runStatus(late.ctx, { json: true }, createFixedClock(T0 + 22 * HOUR));
    expect(JSON.parse(late.out.text)).toMatchObject({ clients: 3, active_tokens: 0 });
  });

  it('formats an event line with its fields and quotes detail values that contain spaces', () => {
    const { ctx } = context('/');
    const line = formatEventLine(ctx.output, {
      ts: '2026-01-01T00:00:00.000Z',
      type: 'client.removed',
      client_id: 'abc',
      detail: { by: 'cli', client_name: 'My app', revoked_tokens: 2 },
    });
    expect(line).toBe('2026-01-01T00:00:00.000Z  client.removed          client=abc  by=cli client_name="My app" revoked_tokens=2');
  });
});

describe('passwd on a terminal', () => {
  it('asks twice, asks again when the two differ, and stores the agreed password', async () => {
    const { dir } = await seedAtT0();
    const { ctx, out, err } = context(dir);
    const answers = ['first-try-password', 'first-try-passwort', 'second-try-password', 'second-try-password'];
    const asked: string[] = [];
    ctx.interactive = true;
    ctx.prompts.password = async (message) => {
      asked.push(message);
      return answers.shift()!;
    };
    await runPasswd(ctx, {}, createFixedClock(T0));
    expect(asked).toEqual(['New owner password', 'Repeat the new owner password', 'New owner password', 'Repeat the new owner password']);
    expect(err.text).toContain('differ');
    expect(out.text).toContain('owner password changed');
    const store = await openFileStore({ dataDir: join(dir, '.cupcake') });
    const owner = await store.getOwner();
    await store.close();
    expect(owner.passwordChangedAt).toBe(T0);
    expect(await verifyPassword('second-try-password', owner.passwordHash)).toBe(true);
  });
});

describe('id resolution', () => {
  const ids = ['8c2f6a1e-0', '8c2f6a1e-9', '0d9e'];
  const resolveIn = (input: string) => resolveById(input, ids, (id) => id, { noun: 'client', label: () => 'x', listCommand: 'clients list' });

  it('takes an exact id, then a unique prefix', () => {
    expect(resolveIn('0d')).toBe('0d9e');
    expect(resolveIn('8c2f6a1e-9')).toBe('8c2f6a1e-9');
  });

  it('names every match of an ambiguous prefix', () => {
    expect(() => resolveIn('8c2f')).toThrowError(CliError);
    expect(() => resolveIn('8c2f')).toThrowError(/"8c2f" matches 2 clients[\s\S]*8c2f6a1e-0[\s\S]*8c2f6a1e-9/);
  });

  it('rejects an unknown or empty id with exit 1', () => {
    for (const input of ['ff', '']) {
      try {
        resolveIn(input);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(CliError);
        expect((error as CliError).exitCode).toBe(1);
        expect((error as CliError).message).toContain(`no client with id "${input}"`);
      }
    }
  });

  it('shortens ids to the shortest length that keeps them apart, at least 8', () => {
    expect(shortIdLength(['aaaaaaaa-1', 'bbbbbbbb-1'])).toBe(8);
    expect(shortIdLength(['aaaaaaaa-1', 'aaaaaaaa-2'])).toBe(10);
    expect(shortIdLength([])).toBe(8);
  });
});

describe('times and statuses', () => {
  it('renders relative times like "3 h ago" and "in 21 h"', () => {
    expect(relativeTime(T0 - 3 * HOUR - 59 * MINUTE, T0)).toBe('3 h ago');
    expect(relativeTime(T0 + 21 * HOUR, T0)).toBe('in 21 h');
    expect(relativeTime(null, T0)).toBe('never');
    expect(relativeTime(T0, T0)).toBe('just now');
  });

  it('a token is revoked before it is expired, and expired exactly at expiresAt', () => {
    expect(tokenStatus({ revokedAt: T0 - 1, expiresAt: T0 - 1 }, T0)).toBe('revoked');
    expect(tokenStatus({ revokedAt: null, expiresAt: T0 }, T0)).toBe('expired');
    expect(tokenStatus({ revokedAt: null, expiresAt: T0 + 1 }, T0)).toBe('active');
  });
});

describe('startup cost (DESIGN.md §8, P5)', () => {
  /** Static imports reachable from `entry` (type-only imports are erased by tsc and skipped). */
  async function staticImports(entry: string): Promise<{ files: Set<string>; packages: Set<string> }> {
    const files = new Set<string>();
    const packages = new Set<string>();
    const visit = async (file: string) => {
      if (files.has(file)) return;
      files.add(file);
      const source = await readFile(file, 'utf8');
      for (const match of source.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) {
        const spec = match[1]!;
        if (spec.startsWith('.')) await visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        else packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    };
    await visit(entry);
    return { files, packages };
  }

  it.each(['main.ts', 'commands/clients.ts', 'commands/tokens.ts', 'commands/events.ts', 'commands/status.ts', 'commands/passwd.ts'])(
    'src/cli/%s loads neither the server nor koa, the MCP SDK or inquirer up front',
    async (entry) => {
      const { files, packages } = await staticImports(join(ROOT, 'src/cli', entry));
      expect([...files].filter((f) => f.includes(`${join('src', 'server')}/`))).toEqual([]);
      for (const heavy of [
        'koa',
        '@koa/router',
        'koa-bodyparser',
        '@modelcontextprotocol/sdk',
        '@modelcontextprotocol/server',
        '@modelcontextprotocol/client',
        '@inquirer/prompts',
      ])
        expect(packages).not.toContain(heavy);
    },
  );
});
