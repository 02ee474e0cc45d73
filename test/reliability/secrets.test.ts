import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, type CliResult, initDataDir, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { SseReader } from '../helpers/sse.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { CLAUDE_REDIRECT, type FlowResult, runFlow, tokenHash } from '../helpers/oauth-flow.js';
import { OWNER_PASSWORD } from '../helpers/server.js';

const tmp = useTmpDirs('cupcake-secrets-');
killChildrenAfterEach();
beforeAll(assertBuilt);

/** Every regular file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

describe('secret hygiene (issue 9)', () => {
  it('a full run (init, serve, every flow, MCP, refresh, revocation, wrong passwords, every CLI command): no ' +
    'token, code, secret or password it saw is in db.json, events.jsonl, the server log or any CLI output', {
    timeout: 90_000,
  }, async () => {
    const dir = await tmp();
    await initDataDir(dir, { auth: { refreshTokens: true } });
    const secrets = new Set<string>([OWNER_PASSWORD]);
    const outputs: Array<{ what: string; text: string; allowed?: string }> = [];
    const cli = async (args: string[], input?: string): Promise<CliResult> => {
      const result = await runCli(args, { cwd: dir, ...(input !== undefined ? { input } : {}), timeoutMs: 30_000 });
      if (args[0] !== 'doctor') expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      outputs.push(
        { what: `cupcake-mcp ${args.join(' ')} (stdout)`, text: result.stdout },
        { what: `cupcake-mcp ${args.join(' ')} (stderr)`, text: result.stderr },
      );
      return result;
    };
    const keep = (flow: FlowResult) => {
      for (const value of [flow.clientSecret, flow.code, flow.verifier, flow.accessToken, flow.refreshToken, flow.cookie, flow.requestId, flow.csrfToken])
        if (value) secrets.add(value);
      return flow;
    };

    const server = await startServe(['--port', '0'], { cwd: dir });
    const base = server.url;
    // ChatGPT (Basic), Claude (client_secret_post) and a public client with refresh tokens.
    const chatgpt = keep(await runFlow(base));
    const claude = keep(await runFlow(base, { redirectUri: CLAUDE_REDIRECT, authMethod: 'client_secret_post', clientName: 'Claude' }));
    const registered = await fetch(`${base}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Inspector',
        redirect_uris: ['http://127.0.0.1:6274/oauth/callback'],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
      }),
    });
    const inspectorId = ((await registered.json()) as { client_id: string }).client_id;
    const inspector = keep(await runFlow(base, { client: { clientId: inspectorId }, authMethod: 'none', redirectUri: 'http://127.0.0.1:6274/oauth/callback' }));
    for (const flow of [chatgpt, claude, inspector]) expect(flow.accessToken, flow.statuses.join(' ')).toBeDefined();
    expect(inspector.refreshToken).toBeDefined();

    // A refresh, a replayed code, wrong passwords, a token sent where it must not be.
    const refreshed = await fetch(`${base}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: inspector.refreshToken!, client_id: inspectorId }),
    });
    const rotated = (await refreshed.json()) as { access_token: string; refresh_token: string };
    expect(refreshed.status).toBe(200);
    secrets.add(rotated.access_token).add(rotated.refresh_token);
    const replay = await fetch(`${base}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${chatgpt.clientId}:${chatgpt.clientSecret}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: chatgpt.code!,
        code_verifier: chatgpt.verifier!,
        redirect_uri: 'https://chatgpt.com/connector_platform_oauth_redirect',
      }),
    });
    expect(replay.status).toBe(400);
    for (const wrong of ['not the password 1', 'not the password 2']) {
      secrets.add(wrong);
      keep(
        await runFlow(base, {
          client: { clientId: claude.clientId!, clientSecret: claude.clientSecret! },
          redirectUri: CLAUDE_REDIRECT,
          authMethod: 'client_secret_post',
          password: wrong,
        }),
      );
    }
    expect((await fetch(`${base}/tools?access_token=${claude.accessToken}`)).status).toBe(401);
    await fetch(`${base}/tools`, { headers: { authorization: `Bearer ${claude.accessToken}`, 'x-forwarded-for': '203.0.113.1' } });

    // MCP over both transports, with tool calls.
    // (The replayed code revoked ChatGPT's token: RFC 6749 §4.1.2.)
    const auth = { authorization: `Bearer ${rotated.access_token}` };
    const sse = new SseReader(await fetch(`${base}/sse`, { headers: auth }));
    const endpoint = (await sse.next()).data;
    await fetch(`${base}${endpoint}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search', arguments: { query: 'cupcake' } } }),
    });
    await sse.next();
    const init = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${rotated.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } },
      }),
    });
    await init.arrayBuffer();
    await fetch(`${base}/tools/whoami`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
    // The client revokes one of its tokens (RFC 7009).
    const revoked = await fetch(`${base}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: claude.accessToken!, client_id: claude.clientId!, client_secret: claude.clientSecret! }),
    });
    expect(revoked.status).toBe(200);
    expect(
      (
        await fetch(`${base}/mcp`, {
          method: 'POST',
          headers: { authorization: `Bearer ${claude.accessToken}`, 'content-type': 'application/json' },
          body: '{}',
        })
      ).status,
    ).toBe(401);

    // Every admin command, while serve runs.
    const tokenId = `tok_${tokenHash(inspector.accessToken!).slice(0, 12)}`;
    await cli(['clients', 'list']);
    await cli(['clients', 'list', '--json']);
    await cli(['clients', 'show', chatgpt.clientId!]);
    await cli(['clients', 'show', chatgpt.clientId!, '--json']);
    await cli(['tokens', 'list', '--all']);
    await cli(['tokens', 'list', '--all', '--json']);
    const created = await cli(['tokens', 'create', '--name', 'scripts', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const personal = (JSON.parse(created.stdout) as { token: string }).token;
    secrets.add(personal);
    outputs.at(-2)!.allowed = personal; // shown once, to the person who asked for it
    await cli(['tokens', 'revoke', tokenId]);
    await cli(['events', 'tail', '-n', '500']);
    await cli(['events', 'tail', '-n', '500', '--json']);
    await cli(['status']);
    await cli(['status', '--json']);
    await cli(['doctor', '--url', base, '--password-stdin'], OWNER_PASSWORD);
    const newPassword = 'a brand new owner password';
    secrets.add(newPassword);
    expect((await cli(['passwd', '--password-stdin'], newPassword)).code).toBe(0);
    await cli(['clients', 'remove', claude.clientId!]);
    expect((await server.stop()).code).toBe(0);
    outputs.push({ what: 'serve stdout', text: server.stdout() }, { what: 'serve stderr', text: server.stderr() });
    await cli(['events', 'tail', '-n', '1000', '--json']);

    // Every file the run left: db.json, events.jsonl, the config, serve's files.
    for (const path of await filesUnder(dir)) outputs.push({ what: path, text: await readFile(path, 'latin1') });
    const db = outputs.find((o) => o.what.endsWith('db.json'))!;
    expect(db.text).toContain('"clientSecretHash"');
    expect(outputs.find((o) => o.what.endsWith('events.jsonl'))!.text).toContain('token.revoked');

    const all = [...secrets].filter((s) => s.length >= 8);
    expect(all.length).toBeGreaterThan(25);
    const leaks: string[] = [];
    for (const secret of all) {
      for (const output of outputs) if (output.allowed !== secret && output.text.includes(secret)) leaks.push(`${output.what}: ${secret.slice(0, 8)}…`);
    }
    expect(leaks).toEqual([]);
    // Nor anything shaped like one that the run did not know about (doctor's own flow, say).
    const shaped = /\bmcp_[0-9a-f]{32}\b|\bmcpr_[0-9a-f]{64}\b/;
    expect(outputs.filter((o) => !o.allowed && !o.what.endsWith('db.json') && shaped.test(o.text)).map((o) => o.what)).toEqual([]);
    // Hashes stay in db.json: no output or log shows a SHA-256 either.
    expect(
      outputs
        .filter((o) => !o.what.endsWith('db.json') && /\b[0-9a-f]{64}\b/.test(o.text))
        .map((o) => `${o.what}: ${/\b[0-9a-f]{64}\b/.exec(o.text)![0].slice(0, 8)}…`),
    ).toEqual([]);
  });
});
