import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/server/limits.js';
import { CLAUDE_REDIRECT, runFlow } from '../helpers/oauth-flow.js';
import { startTestServer } from '../helpers/server.js';

type Server = Awaited<ReturnType<typeof startTestServer>>;
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('registration volume (SECURITY.md: registrations never approved are bounded)', () => {
  it(
    `keeps at most limits.unapprovedClients (default ${DEFAULT_LIMITS.unapprovedClients}) ` +
      `never-approved registrations, pruning the oldest; an approved client is never pruned`,
    async () => {
      const server = await startTestServer({ config: { trustProxy: true }, limits: { unapprovedClients: 50 } });
      servers.push(server);
      const approved = await runFlow(server.url);
      expect(approved.accessToken).toBeDefined();
      // 40 addresses, each under its per-address limit, register 200 clients: a bounded loop.
      const ids: string[] = [];
      for (let round = 0; round < 5; round++) {
        const batch = await Promise.all(
          Array.from({ length: 40 }, async (_, i) => {
            const response = await fetch(`${server.url}/register`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'x-forwarded-for': `198.51.100.${i + 1}` },
              body: JSON.stringify({ client_name: `flood ${round}-${i}`, redirect_uris: [CLAUDE_REDIRECT] }),
            });
            expect(response.status).toBe(201);
            return ((await response.json()) as { client_id: string }).client_id;
          }),
        );
        ids.push(...batch);
      }
      const clients = await server.store.listClients();
      const flood = clients.filter((c) => c.clientName?.startsWith('flood '));
      expect(flood).toHaveLength(50);
      // The newest survive: the last round's 40 are all there.
      const kept = new Set(flood.map((c) => c.clientId));
      expect(ids.slice(-40).every((id) => kept.has(id))).toBe(true);
      expect(clients.some((c) => c.clientId === approved.clientId)).toBe(true);
      // Its token still works.
      expect((await fetch(`${server.url}/tools`, { headers: { authorization: `Bearer ${approved.accessToken}` } })).status).toBe(200);
      await server.events.flush();
      const pruned = await server.events.readLast(10_000, { types: ['client.removed'] });
      expect(pruned.length).toBeGreaterThan(0);
      expect(pruned.reduce((n, e) => n + ((e.detail as { removed: number }).removed ?? 0), 0)).toBe(150);
    },
  );
});
