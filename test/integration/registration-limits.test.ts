import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const register = (metadata: Record<string, unknown>) =>
  fetch(`${server.url}/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ redirect_uris: ['https://client.example/cb'], ...metadata }),
  });

describe('RFC 7591 §2 metadata that an unauthenticated registration may store', () => {
  for (const name of ['Evil\u001b[2J\u001b]0;pwned\u0007', 'Tab\there', 'Right\u202eto left', 'Zero\u200bwidth']) {
    it(`refuses a client_name with control, bidi or invisible characters: ${JSON.stringify(name)}`, async () => {
      const response = await register({ client_name: name });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'invalid_client_metadata' });
    });
  }

  it('refuses the built-in client\'s name "cupcake-mcp (built-in)" (any case or width), which would pass for the server itself', async () => {
    for (const name of ['cupcake-mcp (built-in)', 'CUPCAKE-MCP (Built-In)', 'cupcake-mcp\uff08built-in\uff09', '  cupcake-mcp (built-in)  ']) {
      const response = await register({ client_name: name });
      expect(response.status, name).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'invalid_client_metadata' });
    }
    expect((await register({ client_name: 'cupcake-mcp (built-in) fan' })).status).toBe(201);
  });

  it('refuses oversized echoed metadata instead of storing it', async () => {
    const before = (await readFile(join(server.dataDir, 'db.json'))).length;
    const many = await register({ contacts: Array.from({ length: 900 }, (_, i) => `${'x'.repeat(1000)}${i}@example.com`) });
    expect(many.status).toBe(400);
    const long = await register({ client_uri: `https://client.example/${'a'.repeat(5000)}` });
    expect(long.status).toBe(400);
    expect((await readFile(join(server.dataDir, 'db.json'))).length).toBe(before);
  });

  it('still accepts ordinary metadata, echoed back as given', async () => {
    const response = await register({
      client_name: 'Claude — ünïcode ✓',
      contacts: ['ops@client.example'],
      client_uri: 'https://client.example',
      logo_uri: 'https://client.example/logo.png',
    });
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({
      client_name: 'Claude — ünïcode ✓',
      contacts: ['ops@client.example'],
      client_uri: 'https://client.example',
    });
  });
});
