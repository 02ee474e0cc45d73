import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { assertBuilt, runCli } from '../helpers/cli.js';
import { HeadlessOAuthClientProvider, authorizeWithSdk } from '../helpers/oauth-client.js';
import { RecordingHttp, answerConsent, authorize, exchangeWithBasic, openConsent, registerChatGpt, challengeOf, newVerifier } from '../helpers/oauth-flow.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startReplicaDeployment, type ReplicaDeployment } from '../helpers/replicas.js';
import { SseReader } from '../helpers/sse.js';
import { BrowserSession, hiddenField } from '../helpers/browser-session.js';
import { OWNER_PASSWORD } from '../helpers/server.js';
import { useTmpDirs } from '../helpers/tmp.js';

/**
 * DESIGN.md §6, issue 20 "Done when": three real `serve` processes (the built bin) on one real
 * Redis behind a round-robin proxy, no sticky routing. Each step of a flow lands on whichever
 * replica the proxy picks; the proxy's log shows that they were spread.
 */
const tmp = useTmpDirs('cupcake-replicas-');
// Real processes on a loaded 2-core machine: budgets, not durations under test.
vi.setConfig({ testTimeout: 90_000 });
let redis: TestRedis;
let deployment: ReplicaDeployment;

beforeAll(async () => {
  assertBuilt();
  // Persistence on: the outage test restarts Redis and expects the data back (as AOF in production).
  redis = await startRedis({ appendOnly: true });
  deployment = await startReplicaDeployment({ dir: await tmp(), redisUrl: `${redis.url}/1`, n: 3 });
}, 60_000);

afterAll(async () => {
  await Promise.all(deployment?.replicas.map((r) => r.stop()) ?? []);
  await deployment?.proxy.close();
  await redis?.close();
}, 30_000);

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** Status of an authenticated request sent to every replica directly (not through the proxy). */
const onEveryReplica = (token: string) => Promise.all(deployment.replicas.map(async (r) => (await fetch(`${r.url}/tools`, { headers: bearer(token) })).status));

describe('three replicas on one Redis behind a round-robin proxy', () => {
  it('the whole OAuth flow of the MCP SDK works with its steps landing on different replicas', async () => {
    const from = deployment.proxy.log.length;
    const provider = new HeadlessOAuthClientProvider({ authMethod: 'client_secret_basic', clientName: 'SDK across replicas' });
    const tokens = await authorizeWithSdk(`${deployment.proxy.url}/mcp`, provider);
    const steps = deployment.proxy.log.slice(from);
    const served = (method: string, path: string) => steps.filter((s) => s.method === method && s.path.startsWith(path)).map((s) => s.target);
    // Registration, consent page, consent answer and token exchange each on some replica; not all on one.
    const flow = [...served('POST', '/register'), ...served('GET', '/authorize'), ...served('POST', '/authorize'), ...served('POST', '/token')];
    expect(flow).toHaveLength(4);
    expect(new Set(flow).size).toBeGreaterThan(1);
    // The consent form shown by one replica was answered on another.
    expect(served('GET', '/authorize')[0]).not.toBe(served('POST', '/authorize')[0]);
    // The token works on every replica at once (a cache miss reads Redis).
    expect(await onEveryReplica(tokens.access_token)).toEqual([200, 200, 200]);
  });

  it('plain-HTTP tool calls spread over the replicas are all served with one token', async () => {
    const http = new RecordingHttp(deployment.proxy.url);
    const client = await registerChatGpt(http);
    const { code, verifier } = await authorize(http, { client_id: client.client_id, redirect_uri: client.redirect_uris[0] });
    const token = (await exchangeWithBasic(http, client, { code, verifier, redirect_uri: client.redirect_uris[0] })).json<{ access_token: string }>()
      .access_token;
    const from = deployment.proxy.log.length;
    const statuses = await Promise.all(
      Array.from({ length: 9 }, () => fetch(`${deployment.proxy.url}/tools`, { headers: bearer(token) }).then((r) => r.status)),
    );
    expect(statuses).toEqual(Array(9).fill(200));
    expect(new Set(deployment.proxy.log.slice(from).map((s) => s.target))).toEqual(new Set([0, 1, 2]));
  });

  it('MCP 2026-07-28 is stateless: tools/list and tools/call spread over the replicas are each served by whichever one the proxy picks', async () => {
    const http = new RecordingHttp(deployment.proxy.url);
    const client = await registerChatGpt(http);
    const { code, verifier } = await authorize(http, { client_id: client.client_id, redirect_uri: client.redirect_uris[0] });
    const token = (await exchangeWithBasic(http, client, { code, verifier, redirect_uri: client.redirect_uris[0] })).json<{ access_token: string }>()
      .access_token;
    const modern = (method: string, params: Record<string, unknown>, id: number) => ({
      method: 'POST',
      headers: {
        ...bearer(token),
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': method,
        ...(typeof params.name === 'string' ? { 'mcp-name': params.name } : {}),
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id,
        method,
        params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
      }),
    });
    const from = deployment.proxy.log.length;
    const answers = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const response = await fetch(
          `${deployment.proxy.url}/mcp`,
          i % 2 ? modern('tools/call', { name: 'whoami', arguments: {} }, i) : modern('tools/list', {}, i),
        );
        return {
          status: response.status,
          body: (await response.json()) as { result?: { tools?: Array<{ name: string }>; structuredContent?: { client_id?: string } } },
        };
      }),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    for (const [i, { body }] of answers.entries()) {
      if (i % 2) expect(body.result?.structuredContent?.client_id).toBe(client.client_id);
      else expect(body.result?.tools?.map((t) => t.name)).toContain('whoami');
    }
    expect(new Set(deployment.proxy.log.slice(from).map((s) => s.target))).toEqual(new Set([0, 1, 2]));
  });

  for (const kind of ['streamable-http', 'sse'] as const) {
    const over = kind === 'sse' ? '/sse' : '/mcp (2025 session)';
    it(`the MCP SDK client over ${over}: the session on one replica, its requests spread over all three`, async () => {
      const provider = new HeadlessOAuthClientProvider({ authMethod: 'client_secret_basic', clientName: `SDK ${kind}` });
      await authorizeWithSdk(`${deployment.proxy.url}/mcp`, provider);
      const transport =
        kind === 'sse'
          ? new SSEClientTransport(new URL(`${deployment.proxy.url}/sse`), { authProvider: provider })
          : new StreamableHTTPClientTransport(new URL(`${deployment.proxy.url}/mcp`), { authProvider: provider });
      const client = new Client({ name: `replicas-${kind}`, version: '1.0.0' });
      const from = deployment.proxy.log.length;
      await client.connect(transport);
      try {
        for (let i = 0; i < 4; i++) {
          const { tools } = await client.listTools();
          expect(tools.map((t) => t.name)).toContain('whoami');
          const who = await client.callTool({ name: 'whoami', arguments: {} });
          expect(who.structuredContent).toMatchObject({ client_id: provider.clientInformation()!.client_id });
        }
      } finally {
        await client.close();
      }
      const posts = deployment.proxy.log.slice(from).filter((s) => s.method === 'POST');
      expect(new Set(posts.map((s) => s.target))).toEqual(new Set([0, 1, 2]));
    });
  }

  it('legacy SSE: the stream on one replica, each POST /messages on whichever replica the proxy picks, every reply on the stream', async () => {
    const http = new RecordingHttp(deployment.proxy.url);
    const client = await registerChatGpt(http);
    const { code, verifier } = await authorize(http, { client_id: client.client_id, redirect_uri: client.redirect_uris[0] });
    const token = (await exchangeWithBasic(http, client, { code, verifier, redirect_uri: client.redirect_uris[0] })).json<{ access_token: string }>()
      .access_token;
    const stream = new SseReader(await fetch(`${deployment.proxy.url}/sse`, { headers: { ...bearer(token), accept: 'text/event-stream' } }));
    const holder = deployment.proxy.log.at(-1)!.target;
    const endpoint = await stream.next();
    expect(endpoint.event).toBe('endpoint');
    const post = async (message: object) => {
      const res = await fetch(`${deployment.proxy.url}${endpoint.data}`, {
        method: 'POST',
        headers: { ...bearer(token), 'content-type': 'application/json' },
        body: JSON.stringify(message),
      });
      return { status: res.status, target: deployment.proxy.log.at(-1)!.target };
    };
    const targets: number[] = [];
    const init = await post({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'replica-test', version: '1' } },
    });
    expect(init.status).toBe(202);
    targets.push(init.target);
    expect(JSON.parse((await stream.next()).data)).toMatchObject({ id: 1, result: { serverInfo: expect.any(Object) } });
    targets.push((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).target);
    for (let id = 2; id <= 4; id++) {
      const sent = await post({ jsonrpc: '2.0', id, method: 'tools/list' });
      expect(sent.status).toBe(202);
      targets.push(sent.target);
      const reply = JSON.parse((await stream.next()).data) as { id: number; result: { tools: Array<{ name: string }> } };
      expect(reply.id).toBe(id);
      expect(reply.result.tools.length).toBeGreaterThan(0);
    }
    // Most messages reached a replica other than the one holding the stream, and were relayed.
    expect(targets.filter((t) => t !== holder).length).toBeGreaterThanOrEqual(3);
    // Another client's token cannot use the session, whichever replica it reaches.
    const other = new HeadlessOAuthClientProvider({ authMethod: 'client_secret_basic', clientName: 'intruder' });
    const intruder = await authorizeWithSdk(`${deployment.proxy.url}/mcp`, other);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${deployment.proxy.url}${endpoint.data}`, {
        method: 'POST',
        headers: { ...bearer(intruder.access_token), 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
      });
      expect(res.status).toBe(404);
    }
  });

  it('the home page test sign-in, started on one replica and finished on others, and its sign-out form accepted by yet another', async () => {
    const browser = new BrowserSession(deployment.proxy.url);
    const from = deployment.proxy.log.length;
    const start = await browser.get('/oauth/start');
    expect(start.status).toBe(302);
    const consent = await browser.get(start.location().href);
    expect(consent.status).toBe(200);
    const answer = await browser.postForm('/authorize', {
      request_id: hiddenField(consent.text, 'request_id')!,
      csrf_token: hiddenField(consent.text, 'csrf_token')!,
      password: OWNER_PASSWORD,
      decision: 'approve',
    });
    expect(answer.status).toBe(302);
    // One more request in between, so that round robin brings the callback to another replica than the start.
    expect((await fetch(`${deployment.proxy.url}/healthz`)).status).toBe(200);
    const result = await browser.get(answer.location().href);
    expect(result.status, result.text.slice(0, 300)).toBe(200);
    const tokenId = hiddenField(result.text, 'token_id')!;
    const signOut = await browser.postForm('/oauth/sign-out', { token_id: tokenId, csrf_token: hiddenField(result.text, 'csrf_token')! });
    expect(signOut.status).toBe(200);
    const steps = deployment.proxy.log.slice(from).map((s) => s.target);
    expect(steps).toHaveLength(6);
    // Started on one replica, finished (callback) on another, signed out on a third.
    expect(new Set([steps[0], steps[4], steps[5]]).size).toBe(3);
    const listed = JSON.parse((await runCli(['tokens', 'list', '--all', '--json'], { cwd: deployment.dir, env: deployment.env })).stdout) as Array<{
      id: string;
      status: string;
    }>;
    expect(listed.find((t) => t.id === tokenId)?.status).toBe('revoked');
  });

  it('RFC 6749 §4.1.2: a code replayed on another replica revokes the first token on every replica', async () => {
    const http = new RecordingHttp(deployment.proxy.url);
    const client = await registerChatGpt(http);
    const { code, verifier } = await authorize(http, { client_id: client.client_id, redirect_uri: client.redirect_uris[0] });
    const first = await exchangeWithBasic(http, client, { code, verifier, redirect_uri: client.redirect_uris[0] });
    expect(first.status).toBe(200);
    const exchangedOn = deployment.proxy.log.at(-1)!.target;
    const token = first.json<{ access_token: string }>().access_token;
    // Every replica has the token in its memory now.
    expect(await onEveryReplica(token)).toEqual([200, 200, 200]);
    const replay = await exchangeWithBasic(http, client, { code, verifier, redirect_uri: client.redirect_uris[0] });
    expect(replay.status).toBe(400);
    expect(replay.json<{ error: string }>().error).toBe('invalid_grant');
    expect(deployment.proxy.log.at(-1)!.target).not.toBe(exchangedOn);
    await expect.poll(() => onEveryReplica(token), { timeout: 1_000, interval: 50 }).toEqual([401, 401, 401]);
  });

  it('tokens revoke from another machine closes an SSE stream held by a third replica within 1 s', async () => {
    const http = new RecordingHttp(deployment.proxy.url);
    const client = await registerChatGpt(http);
    const { code, verifier } = await authorize(http, { client_id: client.client_id, redirect_uri: client.redirect_uris[0] });
    const token = (await exchangeWithBasic(http, client, { code, verifier, redirect_uri: client.redirect_uris[0] })).json<{ access_token: string }>()
      .access_token;
    const holder = deployment.replicas[2]!;
    const stream = new SseReader(await fetch(`${holder.url}/sse`, { headers: { ...bearer(token), accept: 'text/event-stream' } }));
    expect((await stream.next()).event).toBe('endpoint');
    // Another machine: a folder with no data of its own, only the deployment's Redis URL.
    const elsewhere = await tmp();
    const listed = JSON.parse(
      (await runCli(['tokens', 'list', '--client', client.client_id, '--json'], { cwd: elsewhere, env: deployment.env })).stdout,
    ) as Array<{ id: string }>;
    expect(listed).toHaveLength(1);
    const revoked = await runCli(['tokens', 'revoke', listed[0]!.id], { cwd: elsewhere, env: deployment.env });
    expect(revoked.code, revoked.stderr).toBe(0);
    const closed = await Promise.race([stream.closed.then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still open'), 1_000))]);
    expect(closed).toBe('closed');
  });

  it('one replica killed with SIGKILL during 200 token issuances loses no answered token or registration', async () => {
    const answeredClients: string[] = [];
    const answeredTokens: string[] = [];
    let failedSteps = 0;
    let started = 0;
    let victim: (typeof deployment.replicas)[number] | undefined;
    // One issuance: registration, consent, token; from an address of its own (many clients behind the balancer).
    const issue = async (n: number) => {
      const http = new RecordingHttp(deployment.proxy.url);
      const ip = { 'x-test-client-ip': `198.51.${100 + (n >> 8)}.${n & 255}` };
      const reg = await http.request('/register', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...ip },
        body: JSON.stringify({ client_name: `load ${n}`, redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'] }),
      });
      if (reg.status !== 201) return false;
      const client = reg.json<{ client_id: string; client_secret: string }>();
      answeredClients.push(client.client_id);
      const verifier = newVerifier();
      const query = new URLSearchParams({
        response_type: 'code',
        client_id: client.client_id,
        code_challenge: challengeOf(verifier),
        code_challenge_method: 'S256',
      });
      const page = await http.request(`/authorize?${query}`, { headers: ip });
      const cookie = page.headers.getSetCookie()[0]?.split(';')[0];
      const requestId = /name="request_id" value="([^"]+)"/.exec(page.text)?.[1];
      const csrf = /name="csrf_token" value="([^"]+)"/.exec(page.text)?.[1];
      if (page.status !== 200 || !cookie || !requestId || !csrf) return false;
      const answer = await http.request('/authorize', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, ...ip },
        body: new URLSearchParams({ request_id: requestId, csrf_token: csrf, password: OWNER_PASSWORD, decision: 'approve' }).toString(),
      });
      const code = answer.status === 302 ? new URL(answer.headers.get('location')!).searchParams.get('code') : null;
      if (!code) return false;
      const token = await http.request('/token', {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
          ...ip,
        },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier }).toString(),
      });
      if (token.status !== 200) return false;
      answeredTokens.push(token.json<{ access_token: string }>().access_token);
      return true;
    };
    const worker = async () => {
      while (answeredTokens.length < 200) {
        const n = started++;
        if (n === 60) {
          // In the middle of the load, without warning: no graceful close, no flush.
          victim = deployment.replicas[1]!;
          victim.child.kill('SIGKILL');
        }
        if (!(await issue(n).catch(() => false))) failedSteps++;
        if (started > 400) throw new Error(`too many failed issuances (${failedSteps})`);
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    expect(victim).toBeDefined();
    // Requests cut by the kill failed visibly (502): they were never answered as a success.
    expect(answeredTokens.length).toBeGreaterThanOrEqual(200);
    // Everything that was answered is there, on the replicas still alive.
    const survivors = deployment.replicas.filter((r) => r !== victim);
    deployment.replicas.splice(deployment.replicas.indexOf(victim!), 1);
    deployment.proxy.targets.splice(deployment.proxy.targets.indexOf(victim!.url), 1);
    for (let i = 0; i < answeredTokens.length; i += 20) {
      const batch = answeredTokens.slice(i, i + 20);
      const statuses = await Promise.all(
        batch.map((t, j) => fetch(`${survivors[j % survivors.length]!.url}/tools`, { headers: bearer(t) }).then((r) => r.status)),
      );
      expect(statuses).toEqual(batch.map(() => 200));
    }
    const listed = JSON.parse((await runCli(['clients', 'list', '--json'], { cwd: deployment.dir, env: deployment.env })).stdout) as Array<{
      client_id: string;
    }>;
    const known = new Set(listed.map((c) => c.client_id));
    expect(answeredClients.filter((id) => !known.has(id))).toEqual([]);
    // A replacement joins the deployment for the tests after this one.
    await deployment.start();
  }, 240_000);

  it('Redis stopped: writes answer 503 temporarily_unavailable, cached tokens keep working; Redis back: the replicas recover without a restart', async () => {
    const provider = new HeadlessOAuthClientProvider({ authMethod: 'client_secret_basic', clientName: 'before the outage' });
    const tokens = await authorizeWithSdk(`${deployment.proxy.url}/mcp`, provider);
    expect(await onEveryReplica(tokens.access_token)).toEqual([200, 200, 200]);
    await redis.stop();
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${deployment.proxy.url}/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_name: 'during', redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'] }),
        });
        expect(res.status).toBe(503);
        const body = (await res.json()) as { error: string; error_description: string };
        expect(body.error).toBe('temporarily_unavailable');
        expect(JSON.stringify(body)).not.toMatch(/at .*\.js|redis:\/\//);
      }
      expect(await onEveryReplica(tokens.access_token)).toEqual([200, 200, 200]);
    } finally {
      await redis.start();
    }
    // Every replica writes again by itself (each reconnects on its own), and what was written before the outage is still there.
    const register = (base: string) =>
      fetch(`${base}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'after', redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'] }),
      }).then((x) => x.status);
    for (const replica of deployment.replicas) await expect.poll(() => register(replica.url), { timeout: 15_000, interval: 250 }).toBe(201);
    expect(await register(deployment.proxy.url)).toBe(201);
    expect(await onEveryReplica(tokens.access_token)).toEqual([200, 200, 200]);
  }, 60_000);

  // Last: it locks the proxy's client address (127.0.0.1) for 15 minutes on every replica.
  it('a wrong password answers 401 with the form and keeps the request; five wrong passwords spread over replicas lock the form on all', async () => {
    const http = new RecordingHttp(deployment.proxy.url);
    const client = await registerChatGpt(http);
    const verifier = newVerifier();
    const query = {
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: client.redirect_uris[0],
      code_challenge: challengeOf(verifier),
      code_challenge_method: 'S256',
    };
    const form = await openConsent(http, query);
    const targets: number[] = [];
    for (let i = 0; i < 2; i++) {
      const wrong = await answerConsent(http, form, { password: `wrong password ${i}` });
      targets.push(deployment.proxy.log.at(-1)!.target);
      expect(wrong.status).toBe(401);
      expect(wrong.text).toContain('name="password"');
    }
    // The same form, answered right on yet another replica, still gives its code.
    const right = await answerConsent(http, form);
    targets.push(deployment.proxy.log.at(-1)!.target);
    expect(right.status).toBe(302);
    expect(right.location().searchParams.get('code')).toBeTruthy();
    expect(new Set(targets).size).toBe(3);

    const second = await openConsent(http, query);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await answerConsent(http, second, { password: `wrong again ${i}` })).status);
    // Two failures before plus three now: the fifth locks the address.
    expect(statuses).toEqual([401, 401, 429]);
    const third = await openConsent(http, query);
    for (const replica of deployment.replicas) {
      const direct = new RecordingHttp(replica.url);
      expect((await answerConsent(direct, third)).status).toBe(429);
    }
  });
});
