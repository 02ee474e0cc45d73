import { FETCH_TIMEOUT_MS, MAX_DOCUMENT_BYTES, MetadataDocumentError, type ClientMetadataFetcher } from '../oauth/fetch-cache.js';
import { createHttpsFetcher, OutboundFetchError, type HttpsFetcher, type HttpsFetcherOptions } from '../outbound/https-fetcher.js';

/**
 * The outbound fetcher as the oauth layer's `ClientMetadataFetcher`: its failures become
 * MetadataDocumentError (their messages are safe to send), with the CIMD limits (§6.6) as defaults.
 */
export function asClientMetadataFetcher(fetcher: HttpsFetcher): ClientMetadataFetcher {
  return {
    fetch: (url, what) =>
      fetcher.fetch(url, what).catch((error: unknown) => {
        throw error instanceof OutboundFetchError ? new MetadataDocumentError(error.message) : error;
      }),
  };
}

/** The SSRF-guarded https fetcher (outbound/https-fetcher.ts) for client metadata documents and JWK Sets. */
export function createClientMetadataFetcher(options: Partial<HttpsFetcherOptions> = {}): ClientMetadataFetcher {
  return asClientMetadataFetcher(createHttpsFetcher({ timeoutMs: FETCH_TIMEOUT_MS, maxBytes: MAX_DOCUMENT_BYTES, ...options }));
}
