import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * Secret hygiene in the code (issue 9): every comparison with a secret is constant-time, and
 * every token, code, secret and id comes from the CSPRNG. Behaviour first (node:crypto watched
 * while the real functions run), then a scan of src/ that keeps new code to the same rules.
 */

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual), randomBytes: vi.fn(real.randomBytes), randomUUID: vi.fn(real.randomUUID) };
});

const crypto = await import('node:crypto');
const {
  secretMatches,
  verifyPassword,
  hashPassword,
  generateAccessToken,
  generateRefreshToken,
  generateClientSecret,
  generateAuthorizationCode,
  generatePassword,
  hashSecret,
} = await import('../../src/oauth/secrets.js');
const { verifyCodeVerifier, s256 } = await import('../../src/oauth/pkce.js');
const { PendingAuthorizations } = await import('../../src/oauth/authorization.js');
const { newUuid, randomHex, randomToken } = await import('../../src/shared/ids.js');
const { makeClient } = await import('../helpers/records.js');
const { startTestServer } = await import('../helpers/server.js');

const timingSafeEqual = vi.mocked(crypto.timingSafeEqual);
const randomBytes = vi.mocked(crypto.randomBytes);
const randomUUID = vi.mocked(crypto.randomUUID);

beforeEach(() => {
  timingSafeEqual.mockClear();
  randomBytes.mockClear();
  randomUUID.mockClear();
});

/** Runs `fn` and tells whether it compared in constant time. */
async function comparesInConstantTime(fn: () => unknown): Promise<boolean> {
  timingSafeEqual.mockClear();
  await fn();
  return timingSafeEqual.mock.calls.length > 0;
}

describe('every secret is compared in constant time', () => {
  it('client secrets at /token and /revoke: Basic and client_secret_post, right, wrong, and for unknown clients alike', async () => {
    // The real endpoints in this process, so that the watched timingSafeEqual is the one they call.
    const server = await startTestServer();
    try {
      const { client, secret } = makeClient();
      await server.store.createClient(client);
      const basic = (id: string, s: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${s}`).toString('base64')}` });
      const form = (fields: Record<string, string>) => new URLSearchParams(fields);
      const cases: Array<{ headers?: Record<string, string>; fields: Record<string, string>; authenticated: boolean }> = [
        { headers: basic(client.clientId, secret), fields: {}, authenticated: true },
        { headers: basic(client.clientId, 'wrong'), fields: {}, authenticated: false },
        { headers: basic('no-such-client', 'wrong'), fields: {}, authenticated: false },
        { fields: { client_id: client.clientId, client_secret: secret }, authenticated: true },
        { fields: { client_id: 'no-such-client', client_secret: 'x' }, authenticated: false },
      ];
      for (const path of ['/token', '/revoke']) {
        for (const c of cases) {
          // /token with a made-up code: the client is authenticated first (401 invalid_client when not), then the grant fails (400).
          const fields =
            path === '/token'
              ? { grant_type: 'authorization_code', code: 'no-such-code', code_verifier: 'v'.repeat(43), ...c.fields }
              : { token: 'mcp_0123456789abcdef0123456789abcdef', ...c.fields };
          let status = 0;
          const constant = await comparesInConstantTime(async () => {
            const response = await fetch(`${server.url}${path}`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-www-form-urlencoded', ...c.headers },
              body: form(fields),
            });
            status = response.status;
          });
          expect({ path, fields: Object.keys(c.fields), authenticated: status !== 401, constant }).toEqual({
            path,
            fields: Object.keys(c.fields),
            authenticated: c.authenticated,
            constant: true,
          });
        }
      }
    } finally {
      await server.close();
    }
    expect(await comparesInConstantTime(() => secretMatches('x', hashSecret('y')))).toBe(true);
  });

  it('the owner password (scrypt), the PKCE verifier, the consent form’s CSRF token and browser cookie', async () => {
    const stored = await hashPassword('correct horse battery staple');
    expect(await comparesInConstantTime(() => verifyPassword('wrong password here', stored))).toBe(true);
    const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
    expect(await comparesInConstantTime(() => verifyCodeVerifier(verifier, s256(verifier)))).toBe(true);
    expect(await comparesInConstantTime(() => verifyCodeVerifier(verifier, 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cX'))).toBe(true);
    const pending = new PendingAuthorizations({ now: () => 0 }, 60_000);
    const entry = pending.create({} as never, 'b'.repeat(43));
    expect(await comparesInConstantTime(() => pending.find(entry.id, 'forged', 'b'.repeat(43)))).toBe(true);
    expect(await comparesInConstantTime(() => pending.find(entry.id, entry.csrfToken, 'c'.repeat(43)))).toBe(true);
  });
});

describe('tokens, codes, secrets and ids come from the CSPRNG', () => {
  it('each generator draws from crypto.randomBytes / randomUUID, and two draws never repeat', () => {
    const generators: Record<string, () => string> = {
      'access token': generateAccessToken,
      'refresh token': generateRefreshToken,
      'client secret': generateClientSecret,
      'authorization code': generateAuthorizationCode,
      'generated owner password': generatePassword,
      'consent request id, CSRF token, browser cookie': () => randomToken(24),
      'hex id': () => randomHex(16),
    };
    for (const [what, generate] of Object.entries(generators)) {
      randomBytes.mockClear();
      const a = generate();
      const b = generate();
      expect(randomBytes.mock.calls.length, what).toBe(2);
      expect(a, what).not.toBe(b);
      // At least 128 bits drawn for each.
      expect(Math.min(...randomBytes.mock.calls.map((c) => Number(c[0]))), what).toBeGreaterThanOrEqual(16);
    }
    newUuid();
    expect(randomUUID).toHaveBeenCalledTimes(1);
  });
});

describe('a scan of src/ keeps new code to these rules', () => {
  const SRC = join(import.meta.dirname, '../../src');
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const full = join(dir, name);
      return statSync(full).isDirectory() ? files(full) : full.endsWith('.ts') ? [full] : [];
    });
  const sources = files(SRC).map((file) => ({ file: relative(SRC, file), lines: readFileSync(file, 'utf8').split('\n') }));

  it('the scan sees the code base', () => {
    expect(sources.length).toBeGreaterThan(50);
  });

  it('no Math.random anywhere: ids, tokens, codes, secrets and even retry jitter come from node:crypto', () => {
    const found = sources.flatMap(({ file, lines }) => lines.flatMap((line, i) => (/Math\.random/.test(line) ? [`${file}:${i + 1}`] : [])));
    expect(found).toEqual([]);
  });

  it('no ===, !==, == or != between a secret and anything but a constant (use constantTimeEqual or compare hashes by lookup)', () => {
    // Secrets, and the hashes they are stored as (comparing those with === leaks them byte by byte too).
    const SECRET = /[A-Za-z_.]*(?:[sS]ecret|[pP]assword|[cC]srf|CSRF|[vV]erifier|[bB]rowserBinding|[cC]odeChallenge|presented|[hH]ash\b)[A-Za-z_.]*/;
    const CONSTANT = /^(undefined|null|true|false|''|""|`[^`]*`|'[^']*'|"[^"]*"|\d+|[A-Z_]+)$/;
    const operand = `(?:[\\w.]+\\()?(?:${SECRET.source})\\)?|[\\w.'"\`]+`;
    const comparison = new RegExp(`(${operand})\\s*(?:===|!==|==|!=)\\s*(${operand})`, 'g');
    // Looked at and safe: what is compared is not the secret.
    const reviewed = new Set(['store/document-store.ts: this.pendingUse.get(hash) === at' /* two timestamps */]);
    const found: string[] = [];
    for (const { file, lines } of sources) {
      lines.forEach((line, i) => {
        if (/^\s*(\/\/|\*)/.test(line)) return;
        for (const match of line.matchAll(comparison)) {
          const [left, right] = [match[1]!, match[2]!];
          const secretSide =
            SECRET.test(left) && !/length|Method|typeof/.test(left) ? right : SECRET.test(right) && !/length|Method/.test(right) ? left : undefined;
          if (secretSide === undefined || CONSTANT.test(secretSide) || /typeof|length/.test(line.slice(Math.max(0, match.index - 10), match.index))) continue;
          if (!reviewed.has(`${file}: ${match[0]}`)) found.push(`${file}:${i + 1}: ${match[0]}`);
        }
      });
    }
    expect(found).toEqual([]);
  });
});
