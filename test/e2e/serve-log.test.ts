import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, initDataDir, killChildrenAfterEach, runCli, startServe } from '../helpers/cli.js';
import { useTmpDirs } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { runFlow } from '../helpers/oauth-flow.js';
import { OWNER_PASSWORD } from '../helpers/server.js';

const tmp = useTmpDirs('cupcake-serve-log-');
killChildrenAfterEach();
beforeAll(assertBuilt);

const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}/;

/** A client that fails its first password, then connects, uses a tool that fails, and has a bad token. */
async function trafficFrom(base: string, clientName: string) {
  const wrong = await runFlow(base, { clientName, password: 'not the owner password' });
  const flow = await runFlow(base, { client: { clientId: wrong.clientId!, clientSecret: wrong.clientSecret! } });
  // A refused token request: a secret that is not this client's.
  await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', code_verifier: 'y', client_id: wrong.clientId!, client_secret: '0000' }),
  });
  // A session opened on the legacy transport, then closed.
  const sse = await fetch(`${base}/sse`, { headers: { authorization: `Bearer ${flow.accessToken}`, accept: 'text/event-stream' } });
  const reader = sse.body!.getReader();
  await reader.read();
  await reader.cancel();
  await fetch(`${base}/tools/fetch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${flow.accessToken}`, 'content-type': 'application/json' },
    body: '{"id": 42}',
  });
  await fetch(`${base}/tools`, { headers: { authorization: 'Bearer mcp_00000000000000000000000000000000' } });
  return { ...flow, clientId: wrong.clientId! };
}

describe('serve prints one line per auth step', () => {
  it(
    'registration, consent, a wrong password, tokens issued and refused, sessions ' + 'and a failed tool each get one timestamped line; no secret is printed',
    async () => {
      const dir = await tmp();
      await initDataDir(dir);
      const serve = await startServe(['--port', '0'], { cwd: dir });
      const flow = await trafficFrom(serve.url, 'Acme Notes');
      await waitFor(() => serve.stdout().includes('session closed'), { what: 'the session to close' });
      const lines = serve
        .stdout()
        .split('\n')
        .filter((l) => TS.test(l))
        .map((l) => l.replace(TS, ''));
      const expected = [
        `client registered: "Acme Notes" (${flow.clientId}), redirects to chatgpt.com, authenticates with client_secret_basic from `,
        `wrong owner password on the consent page for "Acme Notes" (${flow.clientId}) from `,
        `consent approved for "Acme Notes" (${flow.clientId})`,
        `authorization code issued to "Acme Notes" (${flow.clientId})`,
        `token issued to "Acme Notes" (${flow.clientId}) (tok_`,
        `client authentication failed for "Acme Notes" (${flow.clientId}) at /token`,
        `session opened (sse) by "Acme Notes" (${flow.clientId})`,
        `tool fetch failed for "Acme Notes" (${flow.clientId})`,
        'request refused at /tools: unknown token from 127.0.0.1',
        `session closed (sse) for "Acme Notes" (${flow.clientId})`,
      ];
      // Two sign-ins (the wrong password, then the good one), but a consent page shown is a refusal-class
      // event logged once per address and client per window (SECURITY.md): one line.
      expect(
        lines.filter((l) => l.startsWith(`consent page shown for "Acme Notes" (${flow.clientId}): redirect to chatgpt.com, scope mcp from `)),
      ).toHaveLength(1);
      for (const start of expected)
        expect(
          lines.filter((l) => l.startsWith(start)),
          `${start}\n${lines.join('\n')}`,
        ).toHaveLength(1);
      for (const secret of [OWNER_PASSWORD, 'not the owner password', flow.accessToken!, flow.clientSecret!, flow.code!])
        expect(serve.stdout()).not.toContain(secret);
      expect((await serve.stop()).code).toBe(0);
    },
  );

  it('--quiet prints no event line; --log-format json prints the event objects, one per line', async () => {
    const dir = await tmp();
    await initDataDir(dir);
    const quiet = await startServe(['--port', '0', '--quiet'], { cwd: dir });
    await runFlow(quiet.url);
    expect(
      quiet
        .stdout()
        .split('\n')
        .filter((l) => TS.test(l)),
    ).toEqual([]);
    expect((await quiet.stop()).code).toBe(0);

    const json = await startServe(['--port', '0', '--log-format', 'json'], { cwd: dir });
    const flow = await runFlow(json.url);
    await waitFor(() => json.stdout().includes('"token.issued"'), { what: 'the token.issued event' });
    const events = json
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { type: string; client_id?: string; ts: string });
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['server.started', 'client.registered', 'authorization.requested', 'authorization.approved', 'code.issued', 'token.issued']),
    );
    expect(events.find((e) => e.type === 'token.issued')).toMatchObject({ client_id: flow.clientId, ts: expect.stringMatching(/Z$/) });
    expect(json.stdout()).not.toContain(flow.accessToken!);
    expect((await json.stop()).code).toBe(0);
  });

  it('control characters in what a client sends (a claimed client id) are shown escaped, never sent to the terminal', async () => {
    const dir = await tmp();
    await initDataDir(dir);
    const serve = await startServe(['--port', '0'], { cwd: dir });
    const evil = 'Evil\u001b[2J\u001b]0;pwned\u0007\u202eName';
    const refused = await fetch(`${serve.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: evil, code: 'x' }),
    });
    expect(refused.status).toBe(401);
    await waitFor(() => serve.stdout().includes('client authentication failed'), { what: 'the refusal line' });
    expect(serve.stdout()).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    // Escaped, and shortened to the line's width for a client id.
    expect(serve.stdout()).toContain('client authentication failed for Evil\\u001b[2J\\u001b]0;pwned\\u0007\\u202e');
    expect(serve.stdout()).toMatch(/client authentication failed for Evil.* at \/token/);
    expect((await serve.stop()).code).toBe(0);
  });

  it(
    'clients show <id> tells the client’s sign-in from the event log: registered, ' +
      'consent, tokens issued or refused and why, first MCP request, last error',
    async () => {
      const dir = await tmp();
      await initDataDir(dir);
      const serve = await startServe(['--port', '0', '--quiet'], { cwd: dir });
      const flow = await trafficFrom(serve.url, 'Acme Notes');
      // A later refusal is the last error: the client authenticates, its code does not exist.
      const refused = await fetch(`${serve.url}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${flow.clientId}:${flow.clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: `grant_type=authorization_code&code=x&code_verifier=${'y'.repeat(43)}`,
      });
      expect(refused.status).toBe(400);
      await waitFor(
        async () =>
          (await runCli(['events', 'tail', '--client', flow.clientId, '--json', '-n', '100'], { cwd: dir })).stdout.split('\n').filter(Boolean).length >= 10,
        { what: 'the events on disk' },
      );
      const shown = await runCli(['clients', 'show', flow.clientId.slice(0, 8)], { cwd: dir });
      expect(shown.code, shown.stderr).toBe(0);
      const timeline = shown.stdout.slice(shown.stdout.indexOf('sign-in timeline'));
      const order = [
        'client registered: "Acme Notes"',
        'consent page shown',
        'wrong owner password',
        'consent approved',
        'token issued',
        'client authentication failed',
        'session opened (sse)',
      ].map((s) => timeline.indexOf(s));
      expect(
        order.every((i) => i > 0),
        timeline,
      ).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      expect(shown.stdout).toMatch(/first MCP request +\S+ {2}session opened \(sse\)/);
      expect(shown.stdout).toMatch(/last error +\S+ {2}token request refused for "Acme Notes" .* at \/token: invalid_grant/);

      const json = JSON.parse((await runCli(['clients', 'show', flow.clientId, '--json'], { cwd: dir })).stdout) as {
        sign_in: { steps: Array<{ type: string }>; first_mcp_request: { type: string }; last_error: { type: string; detail: { error: string } } };
      };
      expect(json.sign_in.first_mcp_request.type).toBe('session.opened');
      expect(json.sign_in.last_error).toMatchObject({ type: 'token.rejected', detail: { error: 'invalid_grant' } });
      expect(json.sign_in.steps[0]!.type).toBe('client.registered');
      expect((await serve.stop()).code).toBe(0);
    },
  );
});
