import { describe, expect, it } from 'vitest';
import { MetadataDocumentError } from '../../../src/oauth/fetch-cache.js';
import { OutboundFetchError, type HttpsFetcher } from '../../../src/outbound/https-fetcher.js';
import { asClientMetadataFetcher } from '../../../src/server/client-metadata-fetcher.js';

const failingWith = (error: unknown): HttpsFetcher => ({ fetch: () => Promise.reject(error) });

describe('the outbound fetcher as the oauth layer sees it', () => {
  it('an outbound failure becomes a MetadataDocumentError with the same safe message (the reason reaches the client)', async () => {
    const fetching = asClientMetadataFetcher(failingWith(new OutboundFetchError('the client metadata document could not be fetched from a.test'))).fetch(
      'https://a.test/doc.json',
    );
    await expect(fetching).rejects.toBeInstanceOf(MetadataDocumentError);
    await expect(fetching).rejects.toThrow('the client metadata document could not be fetched from a.test');
  });

  it('any other error is not relabelled as safe: oauth falls back to its generic message', async () => {
    const bug = new TypeError('internal detail');
    await expect(asClientMetadataFetcher(failingWith(bug)).fetch('https://a.test/doc.json')).rejects.toBe(bug);
  });

  it('passes the answer and `what` through unchanged', async () => {
    const seen: Array<string | undefined> = [];
    const answer = { status: 200, contentType: 'application/json', cacheControl: undefined, age: undefined, body: '{}' };
    const fetcher = asClientMetadataFetcher({
      fetch: async (_url, what) => {
        seen.push(what);
        return answer;
      },
    });
    await expect(fetcher.fetch('https://a.test/jwks.json', 'JWK Set')).resolves.toEqual(answer);
    expect(seen).toEqual(['JWK Set']);
  });
});
