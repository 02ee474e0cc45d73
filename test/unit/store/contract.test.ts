import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../../src/store/memory-store.js';
import { openFileStore } from '../../../src/store/file-store.js';
import { openRedisStore } from '../../../src/store/redis/redis-store.js';
import { randomHex } from '../../../src/shared/ids.js';
import { startRedis, type TestRedis } from '../../helpers/redis-server.js';
import type { Store, StoreChange } from '../../../src/store/types.js';
import { HOUR, T0, makeAccessToken, makeClient, makeCode, makeGrant, makeRefreshToken } from '../../helpers/records.js';
import { useTmpDirs } from '../../helpers/tmp.js';

const tmp = useTmpDirs('cupcake-contract-');
const GRACE = 60_000;

/**
 * The Store contract (src/store/types.ts), run against every implementation. A second
 * implementation (e.g. Redis) must pass it unchanged.
 */
function storeContract(name: string, open: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    describe('owner', () => {
      it('has no owner password until one is set', async () => {
        expect(await store.getOwner()).toEqual({ passwordHash: null, passwordChangedAt: null });
      });

      it('keeps the password hash it is given and when it changed', async () => {
        const hash = 'scrypt$32768$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';
        await store.setOwnerPasswordHash(hash, T0);
        expect(await store.getOwner()).toEqual({ passwordHash: hash, passwordChangedAt: T0 });
        await store.setOwnerPasswordHash(`${hash}x`, T0 + 1);
        expect(await store.getOwner()).toEqual({ passwordHash: `${hash}x`, passwordChangedAt: T0 + 1 });
      });
    });

    describe('consent lockouts', () => {
      it('remembers when the owner lifted the lockouts, and keeps the password while doing so', async () => {
        await store.setOwnerPasswordHash('hash', T0);
        expect((await store.getOwner()).lockoutsClearedAt ?? null).toBeNull();
        await store.clearLoginLockouts(T0 + 5);
        expect(await store.getOwner()).toMatchObject({ passwordHash: 'hash', passwordChangedAt: T0, lockoutsClearedAt: T0 + 5 });
        await store.setOwnerPasswordHash('other', T0 + 9);
        expect(await store.getOwner()).toMatchObject({ passwordHash: 'other', passwordChangedAt: T0 + 9, lockoutsClearedAt: T0 + 5 });
      });
    });

    describe('clients', () => {
      it('creates, gets and lists clients', async () => {
        const a = makeClient({ clientName: 'ChatGPT' }).client;
        const b = makeClient({ clientName: 'Claude', clientSecretHash: null, tokenEndpointAuthMethod: 'none' }).client;
        await store.createClient(a);
        await store.createClient(b);
        expect(await store.getClient(a.clientId)).toEqual(a);
        expect(await store.getClient(b.clientId)).toEqual(b);
        const listed = await store.listClients();
        expect(listed).toHaveLength(2);
        expect(listed).toEqual(expect.arrayContaining([a, b]));
      });

      it('refuses a second client with the same id', async () => {
        const { client } = makeClient();
        await store.createClient(client);
        await expect(store.createClient({ ...client, clientName: 'impostor' })).rejects.toThrow();
        expect((await store.getClient(client.clientId))?.clientName).toBe('ChatGPT');
      });

      it('answers undefined for unknown ids, including names of Object.prototype', async () => {
        expect(await store.getClient('7d7a2f4e-0000-4000-8000-000000000000')).toBeUndefined();
        expect(await store.getClient('__proto__')).toBeUndefined();
        expect(await store.getClient('toString')).toBeUndefined();
        expect(await store.removeClient('constructor', T0)).toBeUndefined();
      });

      it(
        'createClient with keepUnapproved removes the oldest never-approved ' + 'registrations in the same write, never an approved, used or first-party one',
        async () => {
          const approved = makeClient({ createdAt: T0 - 10 * HOUR }).client;
          const used = makeClient({ createdAt: T0 - 9 * HOUR, lastUsedAt: T0 }).client;
          const builtIn = { ...makeClient({ createdAt: T0 - 8 * HOUR }).client, firstParty: true as const };
          await store.createClient(approved);
          await store.saveCode(makeCode(approved.clientId).record);
          await store.createClient(used);
          await store.ensureFirstPartyClient(builtIn);
          const fresh = [1, 2, 3].map((i) => makeClient({ createdAt: T0 + i }).client);
          for (const c of fresh) expect(await store.createClient(c, { keepUnapproved: 3 })).toEqual({ removedClientIds: [] as string[] });
          const newest = makeClient({ createdAt: T0 + 4 }).client;
          expect(await store.createClient(newest, { keepUnapproved: 3 })).toEqual({ removedClientIds: [fresh[0]!.clientId] });
          expect(await store.createClient(makeClient({ createdAt: T0 + 5 }).client, { keepUnapproved: 2 })).toEqual({
            removedClientIds: [fresh[1]!.clientId, fresh[2]!.clientId],
          });
          const left = new Set((await store.listClients()).map((c) => c.clientId));
          expect(left.has(approved.clientId) && left.has(used.clientId) && left.has(builtIn.clientId) && left.has(newest.clientId)).toBe(true);
          expect(left.size).toBe(5);
        },
      );

      it('RFC 9700 §4.11.2: saving a code marks its client approved, once; upserting the client keeps the mark', async () => {
        const { client } = makeClient();
        await store.createClient(client);
        expect((await store.getClient(client.clientId))?.approvedAt).toBeUndefined();
        const first = makeCode(client.clientId);
        await store.saveCode(first.record);
        expect((await store.getClient(client.clientId))?.approvedAt).toBe(first.record.createdAt);
        await store.saveCode(makeCode(client.clientId, { createdAt: first.record.createdAt + HOUR }).record);
        expect((await store.getClient(client.clientId))?.approvedAt).toBe(first.record.createdAt);
        await store.upsertClient({ ...client, clientName: 'renamed' });
        expect(await store.getClient(client.clientId)).toMatchObject({ clientName: 'renamed', approvedAt: first.record.createdAt });
      });

      it('removing a client deletes it, its codes, and revokes all of its tokens (and only its tokens)', async () => {
        const { client } = makeClient();
        const { client: other } = makeClient({ clientName: 'Claude' });
        await store.createClient(client);
        await store.createClient(other);
        const g1 = makeGrant(client.clientId);
        const g2 = makeGrant(client.clientId);
        const g3 = makeGrant(other.clientId);
        await store.saveTokens(g1.access.record, g1.refresh.record);
        await store.saveTokens(g2.access.record);
        await store.saveTokens(g3.access.record, g3.refresh.record);
        const code = makeCode(client.clientId);
        await store.saveCode(code.record);

        const removed = await store.removeClient(client.clientId, T0 + HOUR);
        expect(removed?.client).toEqual({ ...client, approvedAt: code.record.createdAt });
        expect(removed?.revokedTokens.map((t) => t.id).sort()).toEqual([g1.access.record.id, g2.access.record.id].sort());
        expect(removed?.revokedTokens.every((t) => t.revokedAt === T0 + HOUR)).toBe(true);

        expect(await store.getClient(client.clientId)).toBeUndefined();
        expect(await store.listClients()).toEqual([other]);
        expect((await store.findAccessToken(g1.access.record.tokenHash))?.revokedAt).toBe(T0 + HOUR);
        expect((await store.findAccessToken(g2.access.record.tokenHash))?.revokedAt).toBe(T0 + HOUR);
        expect((await store.findRefreshToken(g1.refresh.record.tokenHash))?.revokedAt).toBe(T0 + HOUR);
        expect(await store.consumeCode(code.record.codeHash, T0 + HOUR)).toEqual({ outcome: 'unknown' });
        // The other client is untouched.
        expect((await store.findAccessToken(g3.access.record.tokenHash))?.revokedAt).toBeNull();
        expect((await store.findRefreshToken(g3.refresh.record.tokenHash))?.revokedAt).toBeNull();
        expect(await store.removeClient(client.clientId, T0 + HOUR)).toBeUndefined();
      });
    });

    describe('first-party client', () => {
      const candidate = (base: string) =>
        makeClient({ clientName: 'cupcake-mcp', clientSecretHash: null, tokenEndpointAuthMethod: 'none', redirectUris: [`${base}/oauth/callback`] }).client;

      it('is created once, marked firstParty, and found again by later callers with other candidates', async () => {
        const other = makeClient().client;
        await store.createClient(other);
        const first = candidate('https://mcp.example.com');
        const created = await store.ensureFirstPartyClient(first);
        expect(created).toEqual({ outcome: 'created', client: { ...first, firstParty: true } });
        const again = await store.ensureFirstPartyClient(candidate('https://mcp.example.com'));
        expect(again).toEqual({ outcome: 'unchanged', client: { ...first, firstParty: true } });
        expect(await store.getClient(first.clientId)).toEqual({ ...first, firstParty: true });
        expect((await store.listClients()).filter((c) => c.firstParty)).toHaveLength(1);
        // Only the client made by ensureFirstPartyClient carries the mark.
        expect((await store.getClient(other.clientId))?.firstParty).toBeUndefined();
      });

      it('follows a new base URL: the existing client takes the new redirect URI and keeps its id', async () => {
        const first = candidate('https://old.example.com');
        await store.ensureFirstPartyClient(first);
        const moved = await store.ensureFirstPartyClient(candidate('https://new.example.com'));
        expect(moved.outcome).toBe('updated');
        expect(moved.client.clientId).toBe(first.clientId);
        expect(moved.client.redirectUris).toEqual(['https://new.example.com/oauth/callback']);
        expect((await store.getClient(first.clientId))?.redirectUris).toEqual(['https://new.example.com/oauth/callback']);
        expect(await store.listClients()).toHaveLength(1);
      });

      it('concurrent callers end up with one first-party client', async () => {
        const results = await Promise.all(Array.from({ length: 8 }, () => store.ensureFirstPartyClient(candidate('https://mcp.example.com'))));
        expect(results.filter((r) => r.outcome === 'created')).toHaveLength(1);
        expect(new Set(results.map((r) => r.client.clientId)).size).toBe(1);
        expect(await store.listClients()).toHaveLength(1);
      });

      it('once removed, it is created anew', async () => {
        const first = (await store.ensureFirstPartyClient(candidate('https://mcp.example.com'))).client;
        await store.removeClient(first.clientId, T0 + HOUR);
        const second = await store.ensureFirstPartyClient(candidate('https://mcp.example.com'));
        expect(second.outcome).toBe('created');
        expect(second.client.clientId).not.toBe(first.clientId);
      });

      it('a token label is kept; tokens without one have none', async () => {
        const { client } = makeClient();
        await store.createClient(client);
        const labelled = makeGrant(client.clientId).access.record;
        const plain = makeGrant(client.clientId).access.record;
        await store.saveTokens({ ...labelled, label: 'nightly backup' });
        await store.saveTokens(plain);
        expect((await store.findAccessToken(labelled.tokenHash))?.label).toBe('nightly backup');
        expect(await store.findAccessToken(plain.tokenHash)).not.toHaveProperty('label');
      });
    });

    describe('clients described elsewhere (upsertClient)', () => {
      const described = (overrides = {}) =>
        makeClient({ clientId: 'https://client.example/oauth/metadata.json', clientSecretHash: null, tokenEndpointAuthMethod: 'none', ...overrides }).client;

      it('creates the client, then replaces its record, keeping createdAt and lastUsedAt', async () => {
        expect(await store.upsertClient(described({ createdAt: T0 }))).toBe('created');
        expect(await store.upsertClient(described({ createdAt: T0 + HOUR }))).toBe('unchanged');
        expect(await store.upsertClient(described({ clientName: 'Renamed', redirectUris: ['https://client.example/cb2'], createdAt: T0 + 2 * HOUR }))).toBe(
          'updated',
        );
        const stored = await store.getClient('https://client.example/oauth/metadata.json');
        expect(stored).toMatchObject({ clientName: 'Renamed', redirectUris: ['https://client.example/cb2'], createdAt: T0, lastUsedAt: null });
        expect(await store.listClients()).toHaveLength(1);
      });

      it('never replaces the first-party client, nor marks one', async () => {
        const first = (await store.ensureFirstPartyClient(makeClient({ clientSecretHash: null, tokenEndpointAuthMethod: 'none' }).client)).client;
        await expect(store.upsertClient({ ...first, redirectUris: ['https://evil.example/cb'], firstParty: undefined })).rejects.toThrow(/first-party/);
        expect((await store.getClient(first.clientId))?.redirectUris).toEqual(first.redirectUris);
        await store.upsertClient(described({ firstParty: true }));
        expect((await store.getClient('https://client.example/oauth/metadata.json'))?.firstParty).toBeUndefined();
      });
    });

    describe('abandoned clients', () => {
      const DAY = 24 * HOUR;
      const cutoff = T0 + 40 * DAY;
      /** Seeds one client per case; returns the ids of those the rule must call abandoned. */
      async function seed() {
        const add = async (name: string, overrides = {}) => {
          const { client } = makeClient({ clientName: name, createdAt: T0, ...overrides });
          await store.createClient(client);
          return client.clientId;
        };
        const neverUsed = await add('never used');
        const recent = await add('registered after the cutoff', { createdAt: cutoff + 1 });
        const usedLately = await add('used after the cutoff', { lastUsedAt: cutoff + DAY });
        const expiredLongAgo = await add('tokens expired long ago');
        await store.saveTokens(
          makeGrant(expiredLongAgo, undefined, T0 + DAY).access.record,
          makeGrant(expiredLongAgo, undefined, T0 - 30 * DAY).refresh.record,
        );
        const revokedLongAgo = await add('token revoked long ago');
        const live = makeGrant(revokedLongAgo, undefined, cutoff).access.record;
        await store.saveTokens({ ...live, revokedAt: T0 + 2 * DAY });
        const validAtCutoff = await add('access token valid at the cutoff');
        await store.saveTokens(makeGrant(validAtCutoff, undefined, cutoff - HOUR).access.record);
        const refreshLive = await add('refresh token still valid');
        const grant = makeGrant(refreshLive, undefined, T0 + 20 * DAY); // access expires T0+21d, refresh T0+50d
        await store.saveTokens(grant.access.record, grant.refresh.record);
        const pendingCode = await add('code still pending');
        await store.saveCode(makeCode(pendingCode, { expiresAt: cutoff + 5 * 60_000 }).record);
        const firstParty = (await store.ensureFirstPartyClient(makeClient({ createdAt: T0, clientSecretHash: null, tokenEndpointAuthMethod: 'none' }).client))
          .client.clientId;
        return {
          abandoned: [neverUsed, expiredLongAgo, revokedLongAgo].sort(),
          kept: [recent, usedLately, validAtCutoff, refreshLive, pendingCode, firstParty],
        };
      }

      it('lists exactly the registrations that never got a token or whose tokens all ended before the cutoff', async () => {
        const { abandoned } = await seed();
        const found = await store.listAbandonedClients(cutoff);
        expect(found.map((a) => a.client.clientId).sort()).toEqual(abandoned);
        const byName = Object.fromEntries(found.map((a) => [a.client.clientName, a]));
        expect(byName['never used']).toMatchObject({ lastActivityAt: T0, hadTokens: false });
        expect(byName['tokens expired long ago']).toMatchObject({ lastActivityAt: T0 + 2 * DAY, hadTokens: true });
        expect(byName['token revoked long ago']).toMatchObject({ lastActivityAt: T0 + 2 * DAY, hadTokens: true });
      });

      it('removeClient with ifAbandonedBefore removes only a client still abandoned, checked in the same write', async () => {
        const { abandoned, kept } = await seed();
        for (const id of kept) expect(await store.removeClient(id, cutoff, { ifAbandonedBefore: cutoff })).toBeUndefined();
        const [first, ...others] = abandoned;
        // A token issued between the listing and the removal saves the client.
        await store.saveTokens(makeGrant(first!, undefined, cutoff).access.record);
        expect(await store.removeClient(first!, cutoff, { ifAbandonedBefore: cutoff })).toBeUndefined();
        for (const id of others) expect((await store.removeClient(id, cutoff, { ifAbandonedBefore: cutoff }))?.client.clientId).toBe(id);
        expect((await store.listClients()).map((c) => c.clientId).sort()).toEqual([...kept, first!].sort());
      });
    });

    describe('authorization codes', () => {
      it('RFC 6749 §4.1.2: a code is consumed once; a second use reports a replay', async () => {
        const { client } = makeClient();
        await store.createClient(client);
        const { record } = makeCode(client.clientId);
        await store.saveCode(record);

        const first = await store.consumeCode(record.codeHash, T0 + 1000);
        expect(first).toEqual({ outcome: 'consumed', code: { ...record, usedAt: T0 + 1000 } });
        const second = await store.consumeCode(record.codeHash, T0 + 2000);
        expect(second.outcome).toBe('replayed');
        expect(second.outcome === 'replayed' && second.code.grantId).toBe(record.grantId);
        expect(second.outcome === 'replayed' && second.code.usedAt).toBe(T0 + 1000);
        expect(await store.consumeCode(makeCode(client.clientId).record.codeHash, T0)).toEqual({ outcome: 'unknown' });
      });

      it('RFC 6749 §4.1.3: a code presented for another client is left untouched', async () => {
        const { client } = makeClient();
        await store.createClient(client);
        const { record } = makeCode(client.clientId);
        await store.saveCode(record);
        expect(await store.consumeCode(record.codeHash, T0 + 1000, 'someone-else')).toEqual({ outcome: 'other_client' });
        expect(await store.consumeCode(record.codeHash, T0 + 2000, client.clientId)).toEqual({ outcome: 'consumed', code: { ...record, usedAt: T0 + 2000 } });
        expect(await store.consumeCode(record.codeHash, T0 + 3000, 'someone-else')).toEqual({ outcome: 'other_client' });
      });

      it('of two simultaneous exchanges of one code exactly one wins', async () => {
        const { client } = makeClient();
        await store.createClient(client);
        const { record } = makeCode(client.clientId);
        await store.saveCode(record);
        const outcomes = await Promise.all([1, 2, 3, 4].map((i) => store.consumeCode(record.codeHash, T0 + i)));
        expect(outcomes.filter((o) => o.outcome === 'consumed')).toHaveLength(1);
        expect(outcomes.filter((o) => o.outcome === 'replayed')).toHaveLength(3);
      });
    });

    describe('client assertion ids', () => {
      it('RFC 7523 §3 item 7: an assertion id is accepted once while it is remembered, and again only after it expired', async () => {
        expect(await store.useAssertionId('k1', T0 + HOUR, T0)).toBe(true);
        expect(await store.useAssertionId('k1', T0 + HOUR, T0 + 1000)).toBe(false);
        expect(await store.useAssertionId('k2', T0 + HOUR, T0 + 1000)).toBe(true);
        expect(await store.useAssertionId('k1', T0 + 2 * HOUR, T0 + HOUR + 1)).toBe(true);
      });

      it('of simultaneous uses of one id exactly one is accepted', async () => {
        const outcomes = await Promise.all([1, 2, 3, 4, 5].map((i) => store.useAssertionId('same', T0 + HOUR, T0 + i)));
        expect(outcomes.filter(Boolean)).toHaveLength(1);
      });

      it('purging forgets only the ids that expired', async () => {
        await store.useAssertionId('old', T0 + 1, T0);
        await store.useAssertionId('new', T0 + HOUR, T0);
        expect(await store.purgeExpired(T0 + 2)).toBe(1);
        expect(await store.useAssertionId('new', T0 + HOUR, T0 + 3)).toBe(false);
      });

      it('a new id forgets every id that already expired (the set never outgrows the live assertions)', async () => {
        for (let i = 0; i < 5; i++) await store.useAssertionId(`old-${i}`, T0 + 10, T0);
        await store.useAssertionId('live', T0 + HOUR, T0);
        await store.useAssertionId('next', T0 + HOUR, T0 + 11);
        expect(await store.purgeExpired(T0 + 12)).toBe(0);
        expect(await store.useAssertionId('live', T0 + HOUR, T0 + 12)).toBe(false);
      });
    });

    describe('access tokens', () => {
      let clientId: string;
      beforeEach(async () => {
        const { client } = makeClient();
        clientId = client.clientId;
        await store.createClient(client);
      });

      it('saves, finds by hash and lists tokens', async () => {
        const g = makeGrant(clientId);
        await store.saveTokens(g.access.record, g.refresh.record);
        const other = makeAccessToken(clientId, g.grantId);
        await store.saveTokens(other.record);
        expect(await store.findAccessToken(g.access.record.tokenHash)).toEqual(g.access.record);
        expect(await store.findRefreshToken(g.refresh.record.tokenHash)).toEqual(g.refresh.record);
        expect(await store.findAccessToken(makeAccessToken(clientId, g.grantId).record.tokenHash)).toBeUndefined();
        expect(await store.findAccessToken('hasOwnProperty')).toBeUndefined();
        expect(await store.findRefreshToken('__proto__')).toBeUndefined();
        const listed = await store.listAccessTokens();
        expect(listed.map((t) => t.id).sort()).toEqual([g.access.record.id, other.record.id].sort());
      });

      it('revokes by id: returns the tokens newly revoked, and revokes the refresh tokens of their grant', async () => {
        const g1 = makeGrant(clientId);
        const g2 = makeGrant(clientId);
        await store.saveTokens(g1.access.record, g1.refresh.record);
        await store.saveTokens(g2.access.record, g2.refresh.record);

        const revoked = await store.revokeAccessTokens({ ids: [g1.access.record.id, 'tok_000000000000'] }, T0 + 5);
        expect(revoked).toEqual([{ ...g1.access.record, revokedAt: T0 + 5 }]);
        expect((await store.findAccessToken(g1.access.record.tokenHash))?.revokedAt).toBe(T0 + 5);
        expect((await store.findRefreshToken(g1.refresh.record.tokenHash))?.revokedAt).toBe(T0 + 5);
        expect((await store.findAccessToken(g2.access.record.tokenHash))?.revokedAt).toBeNull();
        expect((await store.findRefreshToken(g2.refresh.record.tokenHash))?.revokedAt).toBeNull();
        // Already revoked: nothing new, and the first revocation time stays.
        expect(await store.revokeAccessTokens({ ids: [g1.access.record.id] }, T0 + 9)).toEqual([]);
        expect((await store.findAccessToken(g1.access.record.tokenHash))?.revokedAt).toBe(T0 + 5);
      });

      it('revokes every token of a client', async () => {
        const { client: other } = makeClient({ clientName: 'Cursor' });
        await store.createClient(other);
        const mine = [makeGrant(clientId), makeGrant(clientId)];
        const theirs = makeGrant(other.clientId);
        for (const g of [...mine, theirs]) await store.saveTokens(g.access.record, g.refresh.record);

        const revoked = await store.revokeAccessTokens({ clientId }, T0 + 1);
        expect(revoked.map((t) => t.id).sort()).toEqual(mine.map((g) => g.access.record.id).sort());
        for (const g of mine) expect((await store.findRefreshToken(g.refresh.record.tokenHash))?.revokedAt).toBe(T0 + 1);
        expect((await store.findAccessToken(theirs.access.record.tokenHash))?.revokedAt).toBeNull();
        expect((await store.findRefreshToken(theirs.refresh.record.tokenHash))?.revokedAt).toBeNull();
      });

      it('revokes a whole grant, access and refresh tokens alike', async () => {
        const g = makeGrant(clientId);
        const sibling = makeAccessToken(clientId, g.grantId);
        const unrelated = makeGrant(clientId);
        await store.saveTokens(g.access.record, g.refresh.record);
        await store.saveTokens(sibling.record);
        await store.saveTokens(unrelated.access.record, unrelated.refresh.record);

        const revoked = await store.revokeGrant(g.grantId, T0 + 2);
        expect(revoked.map((t) => t.id).sort()).toEqual([g.access.record.id, sibling.record.id].sort());
        expect((await store.findRefreshToken(g.refresh.record.tokenHash))?.revokedAt).toBe(T0 + 2);
        expect((await store.findAccessToken(unrelated.access.record.tokenHash))?.revokedAt).toBeNull();
      });

      it('revokes the refresh tokens of a grant even when its access tokens were already revoked', async () => {
        const g = makeGrant(clientId);
        await store.saveTokens({ ...g.access.record, revokedAt: T0 }, g.refresh.record);
        expect(await store.revokeGrant(g.grantId, T0 + 3)).toEqual([]);
        expect((await store.findRefreshToken(g.refresh.record.tokenHash))?.revokedAt).toBe(T0 + 3);
        expect((await store.findAccessToken(g.access.record.tokenHash))?.revokedAt).toBe(T0);
      });

      it('revokes all tokens with {all: true}, and nothing with an empty selector', async () => {
        const grants = [makeGrant(clientId), makeGrant(clientId), makeGrant(clientId)];
        for (const g of grants) await store.saveTokens(g.access.record, g.refresh.record);
        expect(await store.revokeAccessTokens({}, T0)).toEqual([]);
        expect(await store.revokeAccessTokens({ ids: [] }, T0)).toEqual([]);
        expect((await store.listAccessTokens()).every((t) => t.revokedAt === null)).toBe(true);

        const revoked = await store.revokeAccessTokens({ all: true }, T0 + 7);
        expect(revoked).toHaveLength(3);
        expect((await store.listAccessTokens()).every((t) => t.revokedAt === T0 + 7)).toBe(true);
        for (const g of grants) expect((await store.findRefreshToken(g.refresh.record.tokenHash))?.revokedAt).toBe(T0 + 7);
      });

      it('RFC 7009: revokes one refresh token once; unknown or revoked ones report false', async () => {
        const g = makeGrant(clientId);
        await store.saveTokens(g.access.record, g.refresh.record);
        expect(await store.revokeRefreshToken(g.refresh.record.tokenHash, T0 + 1)).toBe(true);
        expect(await store.revokeRefreshToken(g.refresh.record.tokenHash, T0 + 2)).toBe(false);
        expect(await store.revokeRefreshToken(makeRefreshToken(clientId, g.grantId).record.tokenHash, T0)).toBe(false);
        expect((await store.findRefreshToken(g.refresh.record.tokenHash))?.revokedAt).toBe(T0 + 1);
        expect((await store.findAccessToken(g.access.record.tokenHash))?.revokedAt).toBeNull();
      });

      it('records use in memory at once and persists lastUsedAt of token and client on flush', async () => {
        const g = makeGrant(clientId);
        await store.saveTokens(g.access.record);
        store.touchAccessToken(g.access.record.tokenHash, T0 + 10);
        store.touchAccessToken(g.access.record.tokenHash, T0 + 20);
        store.touchAccessToken(g.access.record.tokenHash, T0 + 15); // a request that finished late
        store.touchAccessToken(makeAccessToken(clientId, g.grantId).record.tokenHash, T0 + 20); // unknown: ignored
        expect((await store.findAccessToken(g.access.record.tokenHash))?.lastUsedAt).toBe(T0 + 20);
        expect((await store.listAccessTokens())[0]?.lastUsedAt).toBe(T0 + 20);

        await store.flush();
        expect((await store.findAccessToken(g.access.record.tokenHash))?.lastUsedAt).toBe(T0 + 20);
        expect((await store.getClient(clientId))?.lastUsedAt).toBe(T0 + 20);
        expect(await store.listAccessTokens()).toHaveLength(1);
      });
    });

    describe('refresh token rotation', () => {
      let clientId: string;
      let first: ReturnType<typeof makeGrant>;
      const next = (at: number) => {
        const access = makeAccessToken(clientId, first.grantId, { createdAt: at, expiresAt: at + 24 * HOUR });
        const refresh = makeRefreshToken(clientId, first.grantId, { createdAt: at, expiresAt: at + 30 * 24 * HOUR });
        return { access: access.record, refresh: refresh.record };
      };
      beforeEach(async () => {
        const { client } = makeClient({ grantTypes: ['authorization_code', 'refresh_token'] });
        clientId = client.clientId;
        await store.createClient(client);
        first = makeGrant(clientId);
        await store.saveTokens(first.access.record, first.refresh.record);
      });

      it('rotates: the new pair is stored and the old refresh token is marked rotated', async () => {
        const pair = next(T0 + HOUR);
        const result = await store.rotateRefreshToken(first.refresh.record.tokenHash, pair, T0 + HOUR, GRACE);
        expect(result).toEqual({ outcome: 'rotated', previous: { ...first.refresh.record, rotatedAt: T0 + HOUR } });
        expect(await store.findAccessToken(pair.access.tokenHash)).toEqual(pair.access);
        expect(await store.findRefreshToken(pair.refresh.tokenHash)).toEqual(pair.refresh);
        expect((await store.findRefreshToken(first.refresh.record.tokenHash))?.rotatedAt).toBe(T0 + HOUR);
      });

      it('accepts the previous token again inside the grace window without extending it', async () => {
        await store.rotateRefreshToken(first.refresh.record.tokenHash, next(T0 + HOUR), T0 + HOUR, GRACE);
        const racing = next(T0 + HOUR + GRACE);
        const result = await store.rotateRefreshToken(first.refresh.record.tokenHash, racing, T0 + HOUR + GRACE, GRACE);
        expect(result.outcome).toBe('rotated');
        expect(await store.findAccessToken(racing.access.tokenHash)).toEqual(racing.access);
        expect((await store.findRefreshToken(first.refresh.record.tokenHash))?.rotatedAt).toBe(T0 + HOUR);
      });

      it('a reuse after the grace window revokes the whole grant and stores nothing new', async () => {
        const second = next(T0 + HOUR);
        await store.rotateRefreshToken(first.refresh.record.tokenHash, second, T0 + HOUR, GRACE);
        const late = next(T0 + HOUR + GRACE + 1);
        const result = await store.rotateRefreshToken(first.refresh.record.tokenHash, late, T0 + HOUR + GRACE + 1, GRACE);

        expect(result.outcome).toBe('reuse_detected');
        if (result.outcome !== 'reuse_detected') return;
        expect(result.previous.tokenHash).toBe(first.refresh.record.tokenHash);
        expect(result.revoked.map((t) => t.id).sort()).toEqual([first.access.record.id, second.access.id].sort());
        const at = T0 + HOUR + GRACE + 1;
        for (const hash of [first.access.record.tokenHash, second.access.tokenHash]) expect((await store.findAccessToken(hash))?.revokedAt).toBe(at);
        for (const hash of [first.refresh.record.tokenHash, second.refresh.tokenHash]) expect((await store.findRefreshToken(hash))?.revokedAt).toBe(at);
        expect(await store.findAccessToken(late.access.tokenHash)).toBeUndefined();
        expect(await store.findRefreshToken(late.refresh.tokenHash)).toBeUndefined();
        // The newest refresh token of the family no longer works either.
        expect((await store.rotateRefreshToken(second.refresh.tokenHash, next(at + 1), at + 1, GRACE)).outcome).toBe('invalid');
      });

      it('is invalid for an unknown, revoked or expired token, or one whose client was removed', async () => {
        const unknown = makeRefreshToken(clientId, first.grantId).record.tokenHash;
        expect(await store.rotateRefreshToken(unknown, next(T0), T0, GRACE)).toEqual({ outcome: 'invalid' });

        const expiring = makeRefreshToken(clientId, 'grant-expiring', { expiresAt: T0 + HOUR });
        await store.saveTokens(makeAccessToken(clientId, 'grant-expiring').record, expiring.record);
        expect(await store.rotateRefreshToken(expiring.record.tokenHash, next(T0 + HOUR), T0 + HOUR, GRACE)).toEqual({ outcome: 'invalid' });

        await store.revokeRefreshToken(first.refresh.record.tokenHash, T0);
        const pair = next(T0 + 1);
        expect(await store.rotateRefreshToken(first.refresh.record.tokenHash, pair, T0 + 1, GRACE)).toEqual({ outcome: 'invalid' });
        expect(await store.findAccessToken(pair.access.tokenHash)).toBeUndefined();

        const live = makeGrant(clientId);
        await store.saveTokens(live.access.record, live.refresh.record);
        await store.removeClient(clientId, T0 + 2);
        expect(await store.rotateRefreshToken(live.refresh.record.tokenHash, next(T0 + 3), T0 + 3, GRACE)).toEqual({ outcome: 'invalid' });
      });
    });

    describe('purging', () => {
      it('deletes codes and tokens that expired before the given time, and nothing else', async () => {
        const { client } = makeClient();
        await store.createClient(client);
        const oldCode = makeCode(client.clientId, { expiresAt: T0 + 1 });
        const newCode = makeCode(client.clientId, { expiresAt: T0 + HOUR });
        await store.saveCode(oldCode.record);
        await store.saveCode(newCode.record);
        const oldAccess = makeAccessToken(client.clientId, 'g1', { expiresAt: T0 + 1 });
        const oldRefresh = makeRefreshToken(client.clientId, 'g1', { expiresAt: T0 + 1 });
        const live = makeGrant(client.clientId);
        await store.saveTokens(oldAccess.record, oldRefresh.record);
        await store.saveTokens(live.access.record, live.refresh.record);

        expect(await store.purgeExpired(T0 + 2)).toBe(3);
        expect(await store.consumeCode(oldCode.record.codeHash, T0 + 3)).toEqual({ outcome: 'unknown' });
        expect((await store.consumeCode(newCode.record.codeHash, T0 + 3)).outcome).toBe('consumed');
        expect(await store.findAccessToken(oldAccess.record.tokenHash)).toBeUndefined();
        expect(await store.findRefreshToken(oldRefresh.record.tokenHash)).toBeUndefined();
        expect(await store.findAccessToken(live.access.record.tokenHash)).toEqual(live.access.record);
        expect(await store.findRefreshToken(live.refresh.record.tokenHash)).toEqual(live.refresh.record);
        expect(await store.getClient(client.clientId)).toEqual({ ...client, approvedAt: expect.any(Number) });
        expect(await store.purgeExpired(T0 + 2)).toBe(0);
      });
    });

    describe('change feed', () => {
      it('tells listeners which tokens were revoked and which clients were removed', async () => {
        const { client } = makeClient();
        await store.createClient(client);
        const g1 = makeGrant(client.clientId);
        const g2 = makeGrant(client.clientId);
        await store.saveTokens(g1.access.record, g1.refresh.record);
        await store.saveTokens(g2.access.record, g2.refresh.record);
        const changes: StoreChange[] = [];
        const unsubscribe = store.onChange((change) => changes.push(change));
        const ref = (r: { id: string; tokenHash: string; clientId: string; grantId: string }) => ({
          id: r.id,
          tokenHash: r.tokenHash,
          clientId: r.clientId,
          grantId: r.grantId,
        });

        await store.revokeAccessTokens({ ids: [g1.access.record.id] }, T0 + 1);
        expect(changes).toEqual([{ revokedTokens: [ref(g1.access.record)], removedClientIds: [], external: false }]);

        await store.revokeAccessTokens({ ids: [g1.access.record.id] }, T0 + 2); // nothing new: no change
        await store.createClient(makeClient().client); // not a revocation: no change
        expect(changes).toHaveLength(1);

        await store.removeClient(client.clientId, T0 + 3);
        expect(changes[1]).toEqual({ revokedTokens: [ref(g2.access.record)], removedClientIds: [client.clientId], external: false });

        unsubscribe();
        const { client: later } = makeClient();
        await store.createClient(later);
        const g3 = makeGrant(later.clientId);
        await store.saveTokens(g3.access.record);
        await store.revokeAccessTokens({ all: true }, T0 + 4);
        expect(changes).toHaveLength(2);
      });

      it('reports the tokens revoked by a refresh token reuse', async () => {
        const { client } = makeClient();
        await store.createClient(client);
        const g = makeGrant(client.clientId);
        await store.saveTokens(g.access.record, g.refresh.record);
        const pair = { access: makeAccessToken(client.clientId, g.grantId).record, refresh: makeRefreshToken(client.clientId, g.grantId).record };
        await store.rotateRefreshToken(g.refresh.record.tokenHash, pair, T0 + 1, GRACE);
        const changes: StoreChange[] = [];
        store.onChange((change) => changes.push(change));
        const late = { access: makeAccessToken(client.clientId, g.grantId).record, refresh: makeRefreshToken(client.clientId, g.grantId).record };
        await store.rotateRefreshToken(g.refresh.record.tokenHash, late, T0 + 2 + GRACE, GRACE);
        expect(changes).toHaveLength(1);
        expect(changes[0]?.external).toBe(false);
        expect(changes[0]?.revokedTokens.map((t) => t.id).sort()).toEqual([g.access.record.id, pair.access.id].sort());
      });

      it('a throwing listener does not break the writer or other listeners', async () => {
        const { client } = makeClient();
        await store.createClient(client);
        const g = makeGrant(client.clientId);
        await store.saveTokens(g.access.record);
        const seen: string[] = [];
        store.onChange(() => {
          throw new Error('listener failure');
        });
        store.onChange((change) => seen.push(...change.revokedTokens.map((t) => t.id)));
        await expect(store.revokeGrant(g.grantId, T0 + 1)).resolves.toHaveLength(1);
        expect(seen).toEqual([g.access.record.id]);
      });
    });

    describe('records are values', () => {
      it('changing an object after saving it, or one read back, does not change the store', async () => {
        const { client } = makeClient();
        const kept = structuredClone(client);
        await store.createClient(client);
        client.clientName = 'changed by the caller';
        client.redirectUris.push('https://evil.example/cb');
        expect(await store.getClient(kept.clientId)).toEqual(kept);

        const read = (await store.getClient(kept.clientId))!;
        read.redirectUris.push('https://evil.example/cb');
        read.clientName = 'changed';
        expect(await store.getClient(kept.clientId)).toEqual(kept);

        const g = makeGrant(kept.clientId);
        const keptToken = structuredClone(g.access.record);
        await store.saveTokens(g.access.record);
        g.access.record.revokedAt = T0;
        g.access.record.scopes.push('admin');
        const found = (await store.findAccessToken(keptToken.tokenHash))!;
        expect(found).toEqual(keptToken);
        found.scopes.push('admin');
        found.revokedAt = T0;
        expect(await store.findAccessToken(keptToken.tokenHash)).toEqual(keptToken);
      });
    });
  });
}

storeContract('memory', async () => createMemoryStore());
storeContract('file (lowdb)', async () => openFileStore({ dataDir: await tmp() }));

// A real redis-server (test/helpers/redis-server.ts), one for this file; each test its own key prefix.
let redis: TestRedis | undefined;
afterAll(async () => {
  await redis?.close();
});
storeContract('redis', async () => {
  redis ??= await startRedis();
  return openRedisStore({ url: redis.url, prefix: `contract-${randomHex(4)}:`, watch: true });
});
