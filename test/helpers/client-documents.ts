import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientMetadataFetcher } from '../../src/oauth/client-metadata-document.js';
import type { HttpsFetcherOptions, ResolvedAddress } from '../../src/outbound/https-fetcher.js';
import { createClientMetadataFetcher } from '../../src/server/client-metadata-fetcher.js';
import { isPublicAddress } from '../../src/shared/ip-address.js';

/**
 * A local https server of client metadata documents for the CIMD tests, with its own CA made by
 * the `openssl` binary: the fetcher under test trusts that CA (and only it) and resolves the test
 * host names below to the addresses given here. Everything else about the fetcher is production.
 */

export interface TestCa {
  ca: string;
  key: string;
  cert: string;
}

/** A throwaway CA and a server certificate for client.test and 127.0.0.1 (not for wronghost.test). */
export function createTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'cupcake-ca-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    run(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=cupcake-mcp test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    );
    run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=client.test');
    writeFileSync(
      join(dir, 'ext.cnf'),
      'subjectAltName=DNS:client.test,DNS:other.client.test,DNS:claude.ai,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
    );
    run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf');
    const read = (name: string) => readFileSync(join(dir, name), 'utf8');
    return { ca: read('ca.crt'), key: read('server.key'), cert: read('server.crt') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the test resolver answers; names it does not know do not resolve. */
export const TEST_HOSTS: Record<string, ResolvedAddress[]> = {
  'client.test': [{ address: '127.0.0.1', family: 4 }],
  'other.client.test': [{ address: '127.0.0.1', family: 4 }],
  // Claude's documents, served by the test's document server (see onPort).
  'claude.ai': [{ address: '127.0.0.1', family: 4 }],
  'wronghost.test': [{ address: '127.0.0.1', family: 4 }],
  'intranet.test': [{ address: '10.0.0.7', family: 4 }],
  'metadata.test': [{ address: '169.254.169.254', family: 4 }],
  'cgnat.test': [{ address: '100.64.1.2', family: 4 }],
  'mapped.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
  // A public address next to a private one: one bad address refuses the host.
  'mixed.test': [
    { address: '93.184.216.34', family: 4 },
    { address: '192.168.1.20', family: 4 },
  ],
};

export async function resolveTestHost(hostname: string): Promise<ResolvedAddress[]> {
  const found = TEST_HOSTS[hostname];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return found;
}

/**
 * The fetcher the integration tests give the app: production code with the test CA, the test
 * resolver, and the production address policy widened by exactly one address, 127.0.0.1, where the
 * document server listens.
 */
export function testFetcher(ca: TestCa, options: Partial<HttpsFetcherOptions> = {}) {
  return createClientMetadataFetcher({ ca: ca.ca, resolve: resolveTestHost, isAllowedAddress: (a) => a === '127.0.0.1' || isPublicAddress(a), ...options });
}

/**
 * The same fetcher for URLs that name no port (https://claude.ai/…): they are sent to `port`, where
 * the test's document server listens, instead of 443. Everything else about the fetch is unchanged.
 */
export function onPort(fetcher: ClientMetadataFetcher, port: number): ClientMetadataFetcher {
  return {
    fetch: (url, what) => {
      const target = new URL(url);
      if (target.port === '') target.port = String(port);
      return fetcher.fetch(target.href, what);
    },
  };
}

export type DocumentHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface DocumentServer {
  port: number;
  /** `https://<host>:<port><path>` */
  url(path: string, host?: string): string;
  /** Serves `body` as JSON at `path` (with extra headers). */
  json(path: string, body: unknown, headers?: Record<string, string>): void;
  handle(path: string, handler: DocumentHandler): void;
  /** Requests received for `path` (any host); all requests when no path is given. */
  hits(path?: string): number;
  close(): Promise<void>;
}

export async function startDocumentServer(ca: TestCa): Promise<DocumentServer> {
  const handlers = new Map<string, DocumentHandler>();
  const hits = new Map<string, number>();
  const server: Server = createServer({ key: ca.key, cert: ca.cert }, (req, res) => {
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const handler = handlers.get(path);
    if (handler) return handler(req, res);
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path, host = 'client.test') => `https://${host}:${port}${path}`,
    json(path, body, headers = {}) {
      handlers.set(path, (_req, res) => res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body)));
    },
    handle: (path, handler) => handlers.set(path, handler),
    hits: (path) => (path === undefined ? [...hits.values()].reduce((a, b) => a + b, 0) : (hits.get(path) ?? 0)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
