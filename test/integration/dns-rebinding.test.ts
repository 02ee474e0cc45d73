import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** A GET with a Host header of our choosing (fetch does not let a caller set Host). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('DNS rebinding on a loopback bind', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it('a Host that is neither the base URL host nor a loopback name is refused (403), before any route', async () => {
    const port = new URL(server.url).port;
    for (const host of [`rebind.attacker.example:${port}`, 'attacker.example', `127.0.0.1.nip.io:${port}`]) {
      const response = await getWithHost(`${server.url}/.well-known/oauth-authorization-server`, host);
      expect(response.status, host).toBe(403);
      expect(JSON.parse(response.body)).toMatchObject({ error: 'invalid_request' });
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`, `app.localhost:${port}`]) {
      expect((await getWithHost(`${server.url}/healthz`, host)).status, host).toBe(200);
    }
  });
});
