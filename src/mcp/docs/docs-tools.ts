import { z } from 'zod';
import { jsonResult, type ToolRegistry } from '../tool-registry.js';
import type { DocsIndex } from './docs-index.js';

/** `<base>/docs/<id>`, each path segment encoded: where a person (with a token) can open the document. */
export function documentUrl(baseUrl: string, id: string): string {
  return `${baseUrl}/docs/${id.split('/').map(encodeURIComponent).join('/')}`;
}

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;

/**
 * `search` and `fetch` in the exact shape ChatGPT deep research and company knowledge require:
 * one string argument each, results as structuredContent and as the same JSON in content[0].text.
 */
export function registerDocsTools(registry: ToolRegistry, index: DocsIndex, options: { baseUrl: string; serverName: string }): () => void {
  const removeSearch = registry.registerTool(
    'search',
    {
      title: 'Search documents',
      description:
        `Search the documents of ${options.serverName}. Returns up to 10 results, best first, each with an id, a title and a url. ` +
        "Use fetch with a result's id to read the whole document.",
      inputSchema: { query: z.string().max(1000).describe('Words to look for; several words narrow the results.') },
      outputSchema: {
        results: z.array(z.object({ id: z.string(), title: z.string(), url: z.string() })),
      },
      annotations: READ_ONLY,
    },
    async ({ query }) => {
      await index.ensureFresh();
      const results = index.search(query).map((hit) => ({ id: hit.id, title: hit.title, url: documentUrl(options.baseUrl, hit.id) }));
      return jsonResult({ results });
    },
  );
  const removeFetch = registry.registerTool(
    'fetch',
    {
      title: 'Fetch a document',
      description: `Read the full text of one document of ${options.serverName}, by the id that search returned.`,
      inputSchema: { id: z.string().max(1000).describe('The id of a search result.') },
      outputSchema: {
        id: z.string(),
        title: z.string(),
        text: z.string(),
        url: z.string(),
        metadata: z.record(z.string(), z.unknown()),
      },
      annotations: READ_ONLY,
    },
    async ({ id }) => {
      const doc = await index.read(id);
      if (!doc) {
        return {
          content: [{ type: 'text', text: `No document with id ${JSON.stringify(id.slice(0, 200))}. Use search to find document ids.` }],
          isError: true,
        };
      }
      return jsonResult({
        id: doc.id,
        title: doc.title,
        text: doc.text,
        url: documentUrl(options.baseUrl, doc.id),
        metadata: { path: doc.id, size: doc.size, modified: new Date(doc.modified).toISOString(), headings: doc.headings.slice(0, 50) },
      });
    },
  );
  return () => {
    removeSearch();
    removeFetch();
  };
}
