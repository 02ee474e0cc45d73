import {
  ProtocolError,
  ProtocolErrorCode,
  UriTemplate,
  type CompleteRequestParams,
  type CompleteResult,
  type GetPromptResult,
  type Prompt,
  type ReadResourceResult,
  type Resource,
  type ResourceTemplateType as ResourceTemplate,
} from '@modelcontextprotocol/server';

/** What one upstream server offers besides tools, and how to ask it. */
export interface CatalogSource {
  resources: Resource[];
  templates: ResourceTemplate[];
  prompts: Prompt[];
  /** It honours resources/subscribe (its `resources.subscribe` capability). */
  subscribe: boolean;
  /** It answers completion/complete (its `completions` capability). */
  completions: boolean;
  request<T>(
    method: 'resources/read' | 'prompts/get' | 'completion/complete' | 'resources/subscribe' | 'resources/unsubscribe',
    params: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<T>;
}

export type CatalogChange = 'resources' | 'prompts';

const SEPARATOR = '__';

/**
 * Resources, resource templates and prompts of the upstream servers (DESIGN.md §5), under the
 * namespace rule of their tools: prompt and resource names become `<server>__<name>`. Resource
 * URIs stay as the upstream wrote them: they are the upstream's identifiers, also inside its tool
 * results and resource links, so a read is routed by the URI (listed resources first, then
 * templates); when two servers offer the same URI, the one first by name keeps it.
 */
export class UpstreamCatalog {
  private readonly sources = new Map<string, CatalogSource>();
  private readonly listeners = new Set<(change: CatalogChange) => void>();
  private readonly updateListeners = new Set<(uri: string) => void>();
  /** Subscribers (sessions) per URI; an upstream is subscribed once, while anyone is. */
  private readonly subscriptions = new Map<string, Set<object>>();

  /** Whether any upstream server is configured: only then do sessions offer resources and prompts. */
  constructor(readonly enabled: boolean) {}

  set(server: string, source: CatalogSource): void {
    const before = this.sources.get(server);
    this.sources.set(server, source);
    // Kept in server-name order, so which server keeps a URI two of them offer does not depend on which started first.
    const sorted = [...this.sources].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.sources.clear();
    for (const [name, entry] of sorted) this.sources.set(name, entry);
    if (!before || JSON.stringify([before.resources, before.templates]) !== JSON.stringify([source.resources, source.templates])) this.changed('resources');
    if (!before || JSON.stringify(before.prompts) !== JSON.stringify(source.prompts)) this.changed('prompts');
  }

  remove(server: string): void {
    const before = this.sources.get(server);
    if (!before) return;
    this.sources.delete(server);
    if (before.resources.length + before.templates.length > 0) this.changed('resources');
    if (before.prompts.length > 0) this.changed('prompts');
  }

  resources(): Resource[] {
    const seen = new Set<string>();
    const all: Resource[] = [];
    for (const [server, source] of this.sources) {
      for (const resource of source.resources) {
        if (seen.has(resource.uri)) continue;
        seen.add(resource.uri);
        all.push({ ...resource, name: `${server}${SEPARATOR}${resource.name}` });
      }
    }
    return all;
  }

  templates(): ResourceTemplate[] {
    return [...this.sources].flatMap(([server, source]) =>
      source.templates.map((template) => ({ ...template, name: `${server}${SEPARATOR}${template.name}` })),
    );
  }

  prompts(): Prompt[] {
    return [...this.sources].flatMap(([server, source]) => source.prompts.map((prompt) => ({ ...prompt, name: `${server}${SEPARATOR}${prompt.name}` })));
  }

  async read(uri: string, signal?: AbortSignal): Promise<ReadResourceResult> {
    const source = this.ownerOf(uri);
    if (!source) throw new ProtocolError(ProtocolErrorCode.ResourceNotFound, `Resource not found: ${uri.slice(0, 200)}`, { uri: uri.slice(0, 200) });
    return source.request<ReadResourceResult>('resources/read', { uri }, signal);
  }

  async getPrompt(name: string, args: Record<string, string> | undefined, signal?: AbortSignal): Promise<GetPromptResult> {
    const found = this.split(name, (source, original) => source.prompts.some((p) => p.name === original));
    if (!found) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown prompt: ${name.slice(0, 100)}`);
    return found.source.request<GetPromptResult>('prompts/get', { name: found.original, ...(args ? { arguments: args } : {}) }, signal);
  }

  /** completion/complete for a prompt argument (`<server>__<prompt>`) or a resource template's variable. */
  async complete(params: CompleteRequestParams, signal?: AbortSignal): Promise<CompleteResult> {
    const empty: CompleteResult = { completion: { values: [] } };
    const { _meta: _ignored, ...rest } = params;
    if (params.ref.type === 'ref/prompt') {
      const found = this.split(params.ref.name, (source, original) => source.prompts.some((p) => p.name === original));
      if (!found) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown prompt: ${params.ref.name.slice(0, 100)}`);
      if (!found.source.completions) return empty;
      return found.source.request<CompleteResult>('completion/complete', { ...rest, ref: { ...params.ref, name: found.original } }, signal);
    }
    const template = params.ref.uri;
    const source = [...this.sources.values()].find((s) => s.templates.some((t) => t.uriTemplate === template));
    if (!source) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown resource template: ${template.slice(0, 200)}`);
    if (!source.completions) return empty;
    return source.request<CompleteResult>('completion/complete', rest, signal);
  }

  /** Whether the server owning `uri` offers subscriptions (then `subscribe` forwards to it). */
  canSubscribe(uri: string): boolean {
    return this.ownerOf(uri)?.subscribe === true;
  }

  async subscribe(uri: string, subscriber: object): Promise<void> {
    const source = this.ownerOf(uri);
    if (!source?.subscribe) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Resource ${uri.slice(0, 200)} does not offer subscriptions`);
    let subscribers = this.subscriptions.get(uri);
    if (!subscribers) {
      subscribers = new Set();
      this.subscriptions.set(uri, subscribers);
    }
    const first = subscribers.size === 0;
    subscribers.add(subscriber);
    if (first) await source.request('resources/subscribe', { uri });
  }

  async unsubscribe(uri: string, subscriber: object): Promise<void> {
    const subscribers = this.subscriptions.get(uri);
    if (!subscribers?.delete(subscriber) || subscribers.size > 0) return;
    this.subscriptions.delete(uri);
    await this.ownerOf(uri)
      ?.request('resources/unsubscribe', { uri })
      .catch(() => undefined);
  }

  /** A session went away: its subscriptions end (and the upstream's, when it was the last). */
  dropSubscriber(subscriber: object): void {
    for (const [uri, subscribers] of this.subscriptions) if (subscribers.has(subscriber)) void this.unsubscribe(uri, subscriber);
  }

  isSubscribed(uri: string, subscriber: object): boolean {
    return this.subscriptions.get(uri)?.has(subscriber) === true;
  }

  /** An upstream said a resource changed (notifications/resources/updated). */
  updated(uri: string): void {
    if (!this.subscriptions.has(uri)) return;
    for (const listener of this.updateListeners) listener(uri);
  }

  onUpdated(listener: (uri: string) => void): () => void {
    this.updateListeners.add(listener);
    return () => this.updateListeners.delete(listener);
  }

  onChange(listener: (change: CatalogChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private ownerOf(uri: string): CatalogSource | undefined {
    for (const source of this.sources.values()) if (source.resources.some((r) => r.uri === uri)) return source;
    for (const source of this.sources.values()) {
      if (source.templates.some((t) => matchesTemplate(t.uriTemplate, uri))) return source;
    }
    return undefined;
  }

  private split(name: string, has: (source: CatalogSource, original: string) => boolean): { source: CatalogSource; original: string } | undefined {
    for (const [server, source] of this.sources) {
      const prefix = `${server}${SEPARATOR}`;
      if (name.startsWith(prefix) && has(source, name.slice(prefix.length))) return { source, original: name.slice(prefix.length) };
    }
    return undefined;
  }

  private changed(change: CatalogChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

function matchesTemplate(template: string, uri: string): boolean {
  try {
    return new UriTemplate(template).match(uri) !== null;
  } catch {
    return false;
  }
}
