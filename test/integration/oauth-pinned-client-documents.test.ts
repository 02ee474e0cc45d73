import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, onPort, startDocumentServer, testFetcher, type DocumentServer, type TestCa } from '../helpers/client-documents.js';
import { authorize, challengeOf, newVerifier, openConsent, RecordingHttp, toQuery } from '../helpers/oauth-flow.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const CLAUDE = 'https://claude.ai/oauth/mcp-oauth-client-metadata';
const CLAUDE_CODE = 'https://claude.ai/oauth/claude-code-client-metadata';
const CLAUDE_CALLBACK = 'https://claude.ai/api/mcp/auth_callback';

/** What claude.ai's edge answers a datacenter address (anthropics/claude-ai-mcp#650). */
const CHALLENGE_PAGE = '<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Enable JavaScript and cookies to continue</body></html>';

describe('Claude and Claude Code sign in when their metadata documents cannot be fetched (pinned copies)', () => {
  let ca: TestCa;
  let docs: DocumentServer;
  let server: TestServer;
  let http: RecordingHttp;

  const challenge = (path: string) =>
    docs.handle(path, (_req, res) => res.writeHead(403, { 'content-type': 'text/html; charset=UTF-8', server: 'cloudflare' }).end(CHALLENGE_PAGE));

  async function events(): Promise<Array<Record<string, any>>> {
    await server.events.flush();
    return (await readFile(join(server.dataDir, 'events.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
  }

  beforeAll(async () => {
    ca = createTestCa();
    docs = await startDocumentServer(ca);
    // claude.ai resolves to the test's document server, which answers as claude.ai's edge does.
    challenge('/oauth/mcp-oauth-client-metadata');
    challenge('/oauth/claude-code-client-metadata');
    server = await startTestServer({ clientMetadataFetcher: onPort(testFetcher(ca), docs.port), config: { auth: { refreshTokens: true } } });
    http = new RecordingHttp(server.url);
  });
  afterAll(async () => {
    await server?.close();
    await docs?.close();
  });

  it(
    'Claude: the live document answers 403, the pinned copy stands in; ' + 'consent, a public-client token and a refresh token without offline_access',
    async () => {
      const form = await openConsent(http, {
        client_id: CLAUDE,
        redirect_uri: CLAUDE_CALLBACK,
        response_type: 'code',
        code_challenge: challengeOf(newVerifier()),
        code_challenge_method: 'S256',
      });
      expect(form.response.text).toContain('Claude');
      expect(docs.hits('/oauth/mcp-oauth-client-metadata')).toBe(1);

      // Claude asks for no offline_access; its document registers the refresh_token grant.
      const { code, verifier } = await authorize(http, { client_id: CLAUDE, redirect_uri: CLAUDE_CALLBACK, resource: `${server.url}/mcp`, scope: 'mcp' });
      const response = await http.postForm('/token', {
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: CLAUDE_CALLBACK,
        client_id: CLAUDE,
        resource: `${server.url}/mcp`,
      });
      expect(response.status, response.text).toBe(200);
      const tokens = response.json();
      expect(tokens.refresh_token).toEqual(expect.any(String));
      expect((await fetch(`${server.url}/tools`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(200);

      const refreshed = await http.postForm('/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: CLAUDE });
      expect(refreshed.status, refreshed.text).toBe(200);

      const pinned = (await events()).filter((e) => e.type === 'client.pinned_document_used' && e.client_id === CLAUDE);
      expect(pinned.length).toBeGreaterThanOrEqual(1);
      expect(pinned[0]!.detail.reason).toMatch(/HTTP 403/);
    },
  );

  it('Claude: the pinned copy never widens the document: another redirect URI is still refused on a page', async () => {
    const query = toQuery({
      client_id: CLAUDE,
      redirect_uri: 'https://evil.example/cb',
      response_type: 'code',
      code_challenge: challengeOf(newVerifier()),
      code_challenge_method: 'S256',
    });
    const page = await http.get(`/authorize?${query}`);
    expect(page.status).toBe(400);
    expect(page.headers.get('location')).toBeNull();
  });

  it('Claude Code: the pinned copy, with its loopback redirect matching on the port Claude Code picked (RFC 8252 §7.3)', async () => {
    const redirect = 'http://localhost:41333/callback';
    const {
      code,
      verifier,
      redirect: delivered,
    } = await authorize(http, { client_id: CLAUDE_CODE, redirect_uri: redirect, scope: 'mcp offline_access', resource: `${server.url}/mcp` });
    expect(delivered.origin).toBe('http://localhost:41333');
    const response = await http.postForm('/token', {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: redirect,
      client_id: CLAUDE_CODE,
    });
    expect(response.status, response.text).toBe(200);
    expect((await events()).some((e) => e.type === 'client.pinned_document_used' && e.client_id === CLAUDE_CODE)).toBe(true);
  });

  it('an unknown document that cannot be fetched is still refused with the HTML error page, never redirected', async () => {
    challenge('/oauth/unknown-client.json');
    const unknown = docs.url('/oauth/unknown-client.json');
    const query = toQuery({
      client_id: unknown,
      redirect_uri: 'https://client.test/cb',
      response_type: 'code',
      code_challenge: challengeOf(newVerifier()),
      code_challenge_method: 'S256',
    });
    const page = await http.get(`/authorize?${query}`);
    expect(page.status).toBe(400);
    expect(page.headers.get('location')).toBeNull();
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.text).toMatch(/could not be fetched \(HTTP 403\)/);
  });
});

describe('a live Claude document that can be fetched wins over the pinned copy', () => {
  it('the consent page shows the live document, and no pinned copy is used', async () => {
    const ca = createTestCa();
    const docs = await startDocumentServer(ca);
    docs.json('/oauth/claude-code-client-metadata', {
      client_id: CLAUDE_CODE,
      client_name: 'Claude Code (live)',
      redirect_uris: ['http://localhost/callback'],
      token_endpoint_auth_method: 'none',
    });
    const server = await startTestServer({ clientMetadataFetcher: onPort(testFetcher(ca), docs.port) });
    try {
      const http = new RecordingHttp(server.url);
      const form = await openConsent(http, {
        client_id: CLAUDE_CODE,
        redirect_uri: 'http://localhost:5000/callback',
        response_type: 'code',
        code_challenge: challengeOf(newVerifier()),
        code_challenge_method: 'S256',
      });
      expect(form.response.text).toContain('Claude Code (live)');
      // The pinned copy lists 127.0.0.1; the live document does not, and it decides.
      const query = toQuery({
        client_id: CLAUDE_CODE,
        redirect_uri: 'http://127.0.0.1:5000/callback',
        response_type: 'code',
        code_challenge: challengeOf(newVerifier()),
        code_challenge_method: 'S256',
      });
      const page = await http.get(`/authorize?${query}`);
      expect(page.status).toBe(400);
      await server.events.flush();
      // Records and rejections (events.jsonl, events.rejections.jsonl).
      expect((await server.events.readLast(10_000)).map((e) => e.type)).not.toContain('client.pinned_document_used');
    } finally {
      await server.close();
      await docs.close();
    }
  });
});
