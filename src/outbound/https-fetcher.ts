import { lookup } from 'node:dns/promises';
import { request, type RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import { classifyAddress, isPublicAddress } from '../shared/ip-address.js';
import { VERSION } from '../shared/version.js';

export interface ResolvedAddress {
  address: string;
  family: number;
}

/**
 * Why a fetch produced no answer. Its message is safe to show to the client that caused the fetch
 * and to record: it names what was fetched and the host, never an internal error.
 */
export class OutboundFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutboundFetchError';
  }
}

/** The answer to one GET. No redirect is ever followed: a 3xx is an answer like any other. */
export interface FetchedResponse {
  status: number;
  /** `Content-Type`, as sent. */
  contentType: string | undefined;
  /** `Cache-Control`, as sent. */
  cacheControl: string | undefined;
  /** `Age` in seconds, when sent (RFC 9111 §5.1). */
  age: number | undefined;
  /** The body as text; only read when the status is 200. */
  body: string;
}

export interface HttpsFetcher {
  /** GET `url`; `what` names the document in error messages. Rejects only with OutboundFetchError. */
  fetch(url: string, what?: string): Promise<FetchedResponse>;
}

export interface HttpsFetcherOptions {
  /** One deadline over resolution, connection and body. */
  timeoutMs: number;
  /** A bigger answer is refused before it is read to the end. */
  maxBytes: number;
  /**
   * Tests only: certificate authorities to trust instead of Node's built-in roots (a test CA).
   * Certificates are always verified, against the host name of the URL.
   */
  ca?: string | Buffer | Array<string | Buffer>;
  /**
   * Tests only: which resolved addresses may be connected to. The default, `isPublicAddress`, is
   * what production runs; nothing in the config or the CLI reaches this.
   */
  isAllowedAddress?: (address: string) => boolean;
  /** Tests only: the name resolver (default: the system's, every address). */
  resolve?: (hostname: string) => Promise<ResolvedAddress[]>;
}

const systemResolve = (hostname: string) => lookup(hostname, { all: true, verbatim: true });

const TLS_FAILURE = /^(CERT_|ERR_TLS_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_SSL_)/;

/**
 * Fetching from the internet on the server's behalf: the network side of Client ID Metadata
 * Documents and of the JWK Sets they point to, guarded against SSRF
 * (draft-ietf-oauth-client-id-metadata-document-01 §6.5, §6.6):
 * - https only, certificate verified against the URL's host name;
 * - the host name is resolved here, every address must be public (not loopback, private,
 *   link-local, CGNAT, multicast, unspecified or reserved; IPv4 embedded in IPv6 included), and
 *   the connection goes to the address that was checked (SNI and Host carry the name), so DNS
 *   cannot answer differently between the check and the connection;
 * - no redirect is followed, to any address (§4: MUST NOT follow redirects);
 * - one deadline over resolution, connection and body; at most `maxBytes` read.
 */
export function createHttpsFetcher(options: HttpsFetcherOptions): HttpsFetcher {
  const { timeoutMs, maxBytes } = options;
  const allowed = options.isAllowedAddress ?? isPublicAddress;
  const resolve = options.resolve ?? systemResolve;

  return {
    async fetch(address: string, what = 'document'): Promise<FetchedResponse> {
      let url: URL;
      try {
        url = new URL(address);
      } catch {
        throw new OutboundFetchError(`the URL of the ${what} is not valid`);
      }
      if (url.protocol !== 'https:') throw new OutboundFetchError(`the URL of the ${what} must be an https URL (CIMD section 3)`);
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        // A host that does not resolve, or resolves to an address that is not public, is reported
        // exactly like one that does not answer: the page must not tell an internet client how this
        // server's resolver sees internal names (an oracle for the internal network).
        const target = await pickAddress(url.hostname, resolve, allowed, controller.signal).catch((error: unknown) => {
          if (error instanceof OutboundFetchError) throw new OutboundFetchError(unreachable(url, what));
          throw error;
        });
        return await get(url, target, { ca: options.ca, maxBytes, signal: controller.signal, what });
      } catch (error) {
        if (error instanceof OutboundFetchError) throw error;
        if (controller.signal.aborted) throw new OutboundFetchError(`the ${what} did not arrive within ${Math.round(timeoutMs / 1000)} s`);
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (TLS_FAILURE.test(code)) throw new OutboundFetchError(`the TLS certificate of ${url.host} could not be verified`);
        throw new OutboundFetchError(unreachable(url, what));
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function unreachable(url: URL, what: string): string {
  return `the ${what} could not be fetched from ${url.host}`;
}

async function pickAddress(
  hostname: string,
  resolve: (h: string) => Promise<ResolvedAddress[]>,
  allowed: (a: string) => boolean,
  signal: AbortSignal,
): Promise<ResolvedAddress> {
  const bare = hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: ResolvedAddress[];
  if (isIP(bare)) {
    addresses = [{ address: bare, family: isIP(bare) }];
  } else {
    const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
    try {
      addresses = await Promise.race([resolve(bare), aborted]);
    } catch (error) {
      if (signal.aborted) throw error;
      throw new OutboundFetchError(`the host ${bare} could not be resolved`);
    }
  }
  if (addresses.length === 0) throw new OutboundFetchError(`the host ${bare} could not be resolved`);
  // Every address must pass, not only the first: which one a later connection would use is not ours to pick.
  const refused = addresses.find((a) => !allowed(a.address));
  if (refused) {
    const kind = classifyAddress(refused.address);
    throw new OutboundFetchError(
      `the host ${bare} resolves to a ${kind === 'public' ? 'refused' : kind} address; this server only fetches from public addresses`,
    );
  }
  return addresses[0]!;
}

function get(
  url: URL,
  target: ResolvedAddress,
  options: { ca: HttpsFetcherOptions['ca']; maxBytes: number; signal: AbortSignal; what: string },
): Promise<FetchedResponse> {
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const requestOptions: RequestOptions = {
    // Connect to the address that was checked; name the host for TLS (SNI, certificate) and HTTP.
    host: target.address,
    family: target.family,
    port: url.port === '' ? 443 : Number(url.port),
    path: `${url.pathname}${url.search}`,
    method: 'GET',
    headers: { host: url.host, accept: 'application/json', 'accept-encoding': 'identity', 'user-agent': `cupcake-mcp/${VERSION}` },
    agent: false,
    signal: options.signal,
    ...(isIP(hostname) ? {} : { servername: hostname }),
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
  };
  return new Promise<FetchedResponse>((resolveOnce, rejectOnce) => {
    // The first outcome wins: destroying the response also emits errors that must not replace it.
    let settled = false;
    const resolve = (value: FetchedResponse) => {
      if (settled) return;
      settled = true;
      resolveOnce(value);
    };
    const reject = (error: unknown) => {
      if (settled) return;
      settled = true;
      rejectOnce(error);
    };
    const req = request(requestOptions, (res) => {
      const header = (name: string) => {
        const value = res.headers[name];
        return Array.isArray(value) ? value.join(', ') : value;
      };
      const age = Number(header('age'));
      const answer = {
        status: res.statusCode ?? 0,
        contentType: header('content-type'),
        cacheControl: header('cache-control'),
        age: Number.isFinite(age) ? age : undefined,
      };
      if (answer.status !== 200) {
        // Only a 200 is read (§4); a redirect's Location is never followed.
        resolve({ ...answer, body: '' });
        res.destroy();
        return;
      }
      const encoding = (header('content-encoding') ?? 'identity').trim().toLowerCase();
      if (encoding !== 'identity' && encoding !== '') {
        reject(new OutboundFetchError(`the ${options.what} was sent compressed; it is fetched uncompressed only`));
        res.destroy();
        return;
      }
      const tooBig = () => new OutboundFetchError(`the ${options.what} is larger than ${Math.round(options.maxBytes / 1024)} KB (CIMD section 6.6)`);
      if (Number(header('content-length') ?? 0) > options.maxBytes) {
        reject(tooBig());
        res.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) {
          reject(tooBig());
          res.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ ...answer, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
      res.on('aborted', () => reject(new OutboundFetchError(`the ${options.what} was cut off`)));
    });
    req.on('error', reject);
    req.end();
  });
}
