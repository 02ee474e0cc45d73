import { describe, expect, it } from 'vitest';
import { authenticateClient } from '../../../src/oauth/client-auth.js';
import { InvalidClientError, InvalidRequestError } from '../../../src/oauth/errors.js';
import { registerClient } from '../../../src/oauth/registration.js';
import { createFixedClock } from '../../../src/shared/clock.js';
import { createMemoryStore } from '../../../src/store/memory-store.js';
import { testSettings } from './settings.js';

const ENDPOINT = 'https://mcp.example.com/token';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

async function setup() {
  const store = createMemoryStore();
  const deps = { store, clock: createFixedClock(), settings: testSettings() };
  const confidential = (await registerClient({ redirect_uris: ['https://chatgpt.com/connector_platform_oauth_redirect'] }, deps)).response;
  const publicClient = (await registerClient({ redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none' }, deps)).response;
  return { store: deps, id: confidential.client_id, secret: confidential.client_secret!, publicId: publicClient.client_id };
}

describe('client authentication at /token and /revoke (RFC 6749 §2.3, §3.2.1)', () => {
  it('RFC 6749 §2.3.1: HTTP Basic with the registered secret authenticates as client_secret_basic', async () => {
    const { store, id, secret } = await setup();
    const result = await authenticateClient({ authorization: `Basic ${b64(`${id}:${secret}`)}` }, ENDPOINT, store);
    expect(result.client.clientId).toBe(id);
    expect(result.method).toBe('client_secret_basic');
  });

  it('RFC 7617 §2: the scheme name is case-insensitive', async () => {
    const { store, id, secret } = await setup();
    await expect(authenticateClient({ authorization: `basic ${b64(`${id}:${secret}`)}` }, ENDPOINT, store)).resolves.toMatchObject({
      method: 'client_secret_basic',
    });
    await expect(authenticateClient({ authorization: `BASIC ${b64(`${id}:${secret}`)}` }, ENDPOINT, store)).resolves.toMatchObject({
      method: 'client_secret_basic',
    });
  });

  it('RFC 6749 §2.3.1: the id and secret are form-url-decoded after base64', async () => {
    const { store, id, secret } = await setup();
    const pct = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('');
    await expect(authenticateClient({ authorization: `Basic ${b64(`${pct(id)}:${pct(secret)}`)}` }, ENDPOINT, store)).resolves.toMatchObject({
      method: 'client_secret_basic',
    });
  });

  it.each([
    ['a wrong secret', (id: string) => `Basic ${b64(`${id}:${'0'.repeat(64)}`)}`],
    ['an unknown client', () => `Basic ${b64(`00000000-0000-4000-8000-000000000000:${'0'.repeat(64)}`)}`],
    ['no colon', (id: string) => `Basic ${b64(id)}`],
    ['no credentials', () => 'Basic'],
    ['characters outside base64', () => 'Basic a*b'],
    ['broken percent-encoding', (id: string) => `Basic ${b64(`${id}:%zz`)}`],
    ['a secret with a form-encoded "+" (decodes to a space)', (id: string) => `Basic ${b64(`${id}:+`)}`],
  ])('RFC 6749 §5.2: Basic with %s is invalid_client with a Basic challenge', async (_what, header) => {
    const { store, id } = await setup();
    const error = await authenticateClient({ authorization: header(id) }, ENDPOINT, store).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidClientError);
    expect((error as InvalidClientError).status).toBe(401);
    expect((error as InvalidClientError).challenge).toMatch(/^Basic realm=/);
  });

  it('RFC 6749 §2.3: Basic together with client_secret in the body is invalid_request', async () => {
    const { store, id, secret } = await setup();
    await expect(authenticateClient({ authorization: `Basic ${b64(`${id}:${secret}`)}`, clientSecret: secret }, ENDPOINT, store)).rejects.toBeInstanceOf(
      InvalidRequestError,
    );
  });

  it('RFC 6749 §2.3.1: a body client_id that repeats the Basic id is accepted; a different one is refused', async () => {
    const { store, id, secret, publicId } = await setup();
    await expect(authenticateClient({ authorization: `Basic ${b64(`${id}:${secret}`)}`, clientId: id }, ENDPOINT, store)).resolves.toMatchObject({
      method: 'client_secret_basic',
    });
    await expect(authenticateClient({ authorization: `Basic ${b64(`${id}:${secret}`)}`, clientId: publicId }, ENDPOINT, store)).rejects.toBeInstanceOf(
      InvalidClientError,
    );
  });

  it('RFC 6749 §2.3.1: client_secret_post with the registered secret authenticates', async () => {
    const { store, id, secret } = await setup();
    await expect(authenticateClient({ clientId: id, clientSecret: secret }, ENDPOINT, store)).resolves.toMatchObject({ method: 'client_secret_post' });
    await expect(authenticateClient({ clientId: id, clientSecret: `${secret}0` }, ENDPOINT, store)).rejects.toBeInstanceOf(InvalidClientError);
  });

  it('RFC 6749 §2.1: a public client identifies itself with client_id alone; a confidential one cannot', async () => {
    const { store, id, publicId } = await setup();
    await expect(authenticateClient({ clientId: publicId }, ENDPOINT, store)).resolves.toMatchObject({ method: 'none' });
    await expect(authenticateClient({ clientId: id }, ENDPOINT, store)).rejects.toBeInstanceOf(InvalidClientError);
    await expect(authenticateClient({ clientId: publicId, clientSecret: '' }, ENDPOINT, store)).rejects.toBeInstanceOf(InvalidClientError);
    await expect(authenticateClient({ authorization: `Basic ${b64(`${publicId}:`)}` }, ENDPOINT, store)).rejects.toBeInstanceOf(InvalidClientError);
  });

  it(
    'RFC 6749 §5.2 + RFC 9110 §11.6.1: no credentials, an unknown client_id or ' +
      'another Authorization scheme is a 401 invalid_client that still names Basic',
    async () => {
      const { store } = await setup();
      for (const credentials of [{}, { clientId: 'nobody' }, { authorization: 'Bearer mcp_0123' }]) {
        const error = await authenticateClient(credentials, ENDPOINT, store).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidClientError);
        expect((error as InvalidClientError).status).toBe(401);
        expect((error as InvalidClientError).challenge).toMatch(/^Basic realm=/);
      }
    },
  );
});
