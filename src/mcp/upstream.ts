import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import {
  Client,
  ProtocolError,
  ProtocolErrorCode,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  SSEClientTransport,
  specTypeSchemas,
  StreamableHTTPClientTransport,
  type CallToolResult,
  type Prompt,
  type Resource,
  type ResourceTemplateType as ResourceTemplate,
  type Tool,
  type Transport,
} from '@modelcontextprotocol/client';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import type { Logger } from '../shared/logger.js';
import { VERSION } from '../shared/version.js';
import type { ToolCallContext, ToolProgress, ToolRegistry } from './tool-registry.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './upstream/backoff.js';
import { exposeToolNames } from './upstream/tool-names.js';
import { isProcessAlive } from '../shared/process.js';
import type { UpstreamCatalog } from './catalog.js';

export type UpstreamServers = Config['tools']['servers'];
type UpstreamServerConfig = UpstreamServers[string];
type StdioServerConfig = Extract<UpstreamServerConfig, { command: string }>;
type RemoteServerConfig = Extract<UpstreamServerConfig, { url: string }>;

/**
 * - `connecting`: the first attempt to start it is under way.
 * - `ready`: connected; its tools are in the registry.
 * - `restarting`: it was lost (exited, closed, stopped answering) and is being started again.
 * - `failed`: the last attempt to start it failed; another follows after the backoff delay.
 * Only `ready` has tools.
 */
export type UpstreamState = 'connecting' | 'ready' | 'restarting' | 'failed';

export interface UpstreamStatus {
  name: string;
  state: UpstreamState;
  tools: number;
  error?: string;
}

export interface UpstreamOptions {
  logger: Logger;
  /** How we introduce ourselves to upstream servers. Default `{name: 'cupcake-mcp', version}`. */
  clientInfo?: { name: string; version: string };
  /** Limit for initialize and each tools/list page. Default 60 s (a first `npx -y` can be slow). */
  connectTimeoutMs?: number;
  /** A remote server never reports that it went away, so it is pinged this often. Default 30 s. */
  pingIntervalMs?: number;
  /** Restart delays; default 0.5 s doubling to 30 s, reset after 60 s up. */
  backoff?: Partial<BackoffOptions>;
  /** Where each server's resources, templates and prompts go; without it only tools are exposed. */
  catalog?: UpstreamCatalog;
}

export interface Upstreams {
  /** Stops every upstream, removes their tools and ends their processes. */
  close(): Promise<void>;
  status(): UpstreamStatus[];
}

/**
 * A call without a configured `timeout` waits as long as its client does (the client's
 * cancellation or hang-up ends it). The SDK always arms a timer (60 s by default), so this is the
 * longest one Node can arm (about 24.8 days).
 */
const NO_TIMEOUT_MS = 2_147_483_647;
const DEFAULT_CONNECT_TIMEOUT_MS = 60_000;
const DEFAULT_PING_INTERVAL_MS = 30_000;
const PING_TIMEOUT_MS = 10_000;
/** After the SDK's own close (stdin end → SIGTERM at 2 s → SIGKILL at 4 s), how long to wait before killing. */
const EXIT_WAIT_MS = 5_000;
const MAX_LIST_PAGES = 100;
const MAX_LOG_LINE = 2_000;

/** The page as sent; each tool is validated separately in listAll. */
const LenientListToolsResultSchema = z.looseObject({ tools: z.array(z.unknown()), nextCursor: z.string().optional() });
/** Results relayed to a client as the upstream sent them; the session's own server validates what it sends. */
const LenientResultSchema = z.looseObject({});

/**
 * Upstream MCP servers as a gateway (DESIGN.md §5): each server's tools enter the registry as
 * `<server>__<tool>`, calls are forwarded, an upstream that goes away is restarted with backoff
 * and its tools are hidden meanwhile. Connections start in the background; `status()` tells how far.
 *
 * MCP security best practices (no token passthrough): nothing of the caller's credentials reaches
 * an upstream. Remote servers get the headers from the config and nothing else.
 */
export function startUpstreams(servers: UpstreamServers, registry: ToolRegistry, options: UpstreamOptions): Upstreams {
  const settings: Settings = {
    logger: options.logger,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    pingIntervalMs: options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
    clientInfo: options.clientInfo ?? { name: 'cupcake-mcp', version: VERSION },
    backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
    catalog: options.catalog,
  };
  const upstreams = Object.entries(servers).map(([name, config]) => new UpstreamServer(name, config, registry, settings));
  for (const upstream of upstreams) upstream.start();
  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= Promise.all(upstreams.map((upstream) => upstream.stop())).then(() => undefined);
      return closing;
    },
    status: () => upstreams.map((upstream) => upstream.status()),
  };
}

interface Settings {
  logger: Logger;
  connectTimeoutMs: number;
  pingIntervalMs: number;
  clientInfo: { name: string; version: string };
  backoff: BackoffOptions;
  catalog: UpstreamCatalog | undefined;
}

/** One connection to an upstream: a Client on one transport (and, for stdio, one child process). */
interface Attempt {
  client: Client;
  transport: Transport;
  via: 'stdio' | 'streamable-http' | 'sse';
  /** The child process, for stdio; known once it has been spawned. */
  pid: number | null;
  /** Resolves when the transport has closed (for stdio: the process exited and its pipes closed). */
  closed: Promise<void>;
  readyAt?: number;
  /** A tools/list_changed arrived before the first listing was applied. */
  dirty: boolean;
  refreshing: boolean;
  refreshAgain: boolean;
  lastStderr?: string;
  pingTimer?: NodeJS.Timeout;
  /** Relays of the calls in flight that asked for progress, by the progress token we sent upstream. */
  progress: Map<string, (update: ToolProgress) => void>;
  /** The calls in flight on this connection, for server-to-client requests to find their caller. */
  inflight: Set<ToolCallContext>;
}

interface Registration {
  original: string;
  signature: string;
  remove: () => void;
}

class UpstreamServer {
  private state: UpstreamState = 'connecting';
  private error: string | undefined;
  private current: Attempt | undefined;
  private readonly registered = new Map<string, Registration>();
  private readonly disposals = new Set<Promise<void>>();
  private readonly loggedRenames = new Set<string>();
  private readonly backoff: Backoff;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private progressTokens = 0;
  /** Tools the server lists only to a client with elicitation, sampling or roots (found by the probe at connect). */
  private clientFeatureTools = new Set<string>();
  private probe: Client | undefined;

  constructor(
    private readonly name: string,
    private readonly config: UpstreamServerConfig,
    private readonly registry: ToolRegistry,
    private readonly settings: Settings,
  ) {
    this.backoff = new Backoff(settings.backoff);
  }

  start(): void {
    void this.connect();
  }

  status(): UpstreamStatus {
    return { name: this.name, state: this.state, tools: this.registered.size, ...(this.error !== undefined ? { error: this.error } : {}) };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.unregisterAll();
    this.settings.catalog?.remove(this.name);
    if (this.probe) this.track(this.probe.close().catch(() => undefined));
    const attempt = this.current;
    this.current = undefined;
    if (attempt) this.track(this.dispose(attempt));
    while (this.disposals.size > 0) await Promise.all([...this.disposals]);
  }

  private get log(): Logger {
    return this.settings.logger;
  }

  private async connect(): Promise<void> {
    try {
      const attempt = await this.open();
      if (!attempt) return;
      const tools = await this.listAll(attempt);
      if (this.current !== attempt) return;
      const plain = await this.probeWithoutClientFeatures(attempt.via);
      if (this.current !== attempt) return;
      this.clientFeatureTools = new Set(plain ? tools.map((tool) => tool.name).filter((name) => !plain.has(name)) : []);
      attempt.readyAt = Date.now();
      this.state = 'ready';
      this.error = undefined;
      this.apply(tools, { initial: true });
      await this.refreshCatalog(attempt);
      if (this.current !== attempt) return;
      this.log.info(`upstream ${this.name}: ready via ${attempt.via} with ${this.registered.size} tool(s)`);
      if (attempt.via !== 'stdio') this.startPing(attempt);
      if (attempt.dirty) this.scheduleRefresh(attempt);
    } catch (error) {
      // When `current` is already gone, stop() or lost() took care of that attempt.
      if (this.current) this.lost(this.current, messageOf(error));
    }
  }

  /** Connects, for a remote server Streamable HTTP first and then legacy SSE. Undefined once stopped. */
  private async open(): Promise<Attempt | undefined> {
    if ('command' in this.config) return this.connectVia(this.createStdioTransport(this.config), 'stdio');
    const remote: RemoteServerConfig = this.config;
    try {
      return await this.connectVia(createRemoteTransport(remote, 'streamable-http'), 'streamable-http');
    } catch (streamableError) {
      if (this.stopped) return undefined;
      const failed = this.current;
      this.current = undefined;
      if (failed) await this.dispose(failed);
      if (this.stopped) return undefined;
      try {
        return await this.connectVia(createRemoteTransport(remote, 'sse'), 'sse');
      } catch (sseError) {
        throw new Error(`Streamable HTTP: ${messageOf(streamableError)}; SSE: ${messageOf(sseError)}`);
      }
    }
  }

  private async connectVia(transport: Transport, via: Attempt['via']): Promise<Attempt | undefined> {
    if (this.stopped) return undefined;
    // The client features the gateway can hand on to its own clients (MCP "Client Features"); a
    // request of the upstream reaches the client whose call caused it (askCaller).
    const client = new Client(this.settings.clientInfo, { capabilities: { elicitation: { form: {}, url: {} }, sampling: {}, roots: {} } });
    let markClosed!: () => void;
    const attempt: Attempt = {
      client,
      transport,
      via,
      pid: null,
      closed: new Promise<void>((resolve) => (markClosed = resolve)),
      dirty: false,
      refreshing: false,
      refreshAgain: false,
      progress: new Map(),
      inflight: new Set(),
    };
    if (transport instanceof StdioClientTransport) {
      this.pipeStderr(transport, attempt);
      // Note the pid as soon as the process is spawned: a failed initialize makes the SDK drop its
      // handle on the process while it may still be running, and close() must still see it end.
      const startTransport = transport.start.bind(transport);
      transport.start = async () => {
        await startTransport();
        attempt.pid = transport.pid;
      };
    }
    client.onclose = () => {
      markClosed();
      // Before it was ready, the pending initialize or tools/list rejects and connect() handles it.
      if (attempt.readyAt !== undefined) this.lost(attempt, describeClose(attempt));
    };
    client.onerror = (error) => {
      // Before it is ready, a failure surfaces as the rejected connect or listing, logged once there.
      if (this.current === attempt && attempt.readyAt !== undefined) this.log.warn(`upstream ${this.name}: ${messageOf(error)}`);
    };
    client.setNotificationHandler('notifications/progress', (notification) => {
      const { progressToken, progress, total, message } = notification.params;
      attempt.progress.get(String(progressToken))?.({ progress, total, message });
    });
    client.setNotificationHandler('notifications/tools/list_changed', () => this.scheduleRefresh(attempt));
    client.setRequestHandler('elicitation/create', (request, ctx) => this.askCaller(attempt, 'elicitation/create', request.params, ctx.mcpReq.signal) as never);
    client.setRequestHandler(
      'sampling/createMessage',
      (request, ctx) => this.askCaller(attempt, 'sampling/createMessage', request.params, ctx.mcpReq.signal) as never,
    );
    client.setRequestHandler('roots/list', (request, ctx) => this.askCaller(attempt, 'roots/list', request.params, ctx.mcpReq.signal) as never);
    if (this.settings.catalog) {
      const refresh = () => {
        if (this.current === attempt && attempt.readyAt !== undefined) void this.refreshCatalog(attempt);
      };
      client.setNotificationHandler('notifications/resources/list_changed', refresh);
      client.setNotificationHandler('notifications/prompts/list_changed', refresh);
      client.setNotificationHandler('notifications/resources/updated', (notification) => {
        if (this.current === attempt) this.settings.catalog?.updated(notification.params.uri);
      });
    }
    client.setNotificationHandler('notifications/message', (notification) => {
      const { level, data } = notification.params;
      const text = typeof data === 'string' ? data : JSON.stringify(data);
      const line = `[${this.name}] ${level}: ${truncate(text)}`;
      if (['warning', 'error', 'critical', 'alert', 'emergency'].includes(level)) this.log.warn(line);
      else this.log.info(line);
    });
    this.current = attempt;
    await client.connect(transport, { timeout: this.settings.connectTimeoutMs });
    if (this.current !== attempt) throw new Error('closed while connecting');
    return attempt;
  }

  /**
   * Which tools the server lists to a client that declares no client features: a second, short
   * connection that lists tools and closes. Servers decide at initialize which tools to offer
   * (server-everything offers its elicitation and sampling tools only to clients that can answer),
   * and the gateway, which declares those features for everyone, lists such tools only to clients
   * that declare them too. Undefined when the probe fails (then no tool is held back).
   */
  private async probeWithoutClientFeatures(via: Attempt['via']): Promise<Set<string> | undefined> {
    if (this.stopped) return undefined;
    const transport =
      'command' in this.config
        ? this.createStdioTransport(this.config, 'ignore')
        : createRemoteTransport(this.config, via === 'sse' ? 'sse' : 'streamable-http');
    const client = new Client(this.settings.clientInfo, { capabilities: {} });
    this.probe = client;
    try {
      await client.connect(transport, { timeout: this.settings.connectTimeoutMs });
      const tools = await this.listAll({ client } as Attempt);
      return new Set(tools.map((tool) => tool.name));
    } catch (error) {
      this.log.warn(`upstream ${this.name}: could not tell which tools need client features (all are listed to every client): ${messageOf(error)}`);
      return undefined;
    } finally {
      if (transport instanceof StreamableHTTPClientTransport && transport.sessionId)
        await withTimeout(transport.terminateSession(), 2_000).catch(() => undefined);
      this.probe = undefined;
      await client.close().catch(() => undefined);
    }
  }

  private createStdioTransport(config: StdioServerConfig, stderr: 'pipe' | 'ignore' = 'pipe'): StdioClientTransport {
    return new StdioClientTransport({
      command: config.command,
      args: config.args,
      // Only the SDK's short list of safe variables (HOME, PATH, …) and what the config names:
      // the gateway's own environment may hold secrets an upstream has no business seeing.
      env: { ...getDefaultEnvironment(), ...config.env },
      ...(config.cwd !== undefined ? { cwd: config.cwd } : {}),
      stderr,
    });
  }

  private pipeStderr(transport: StdioClientTransport, attempt: Attempt): void {
    // With stderr: 'pipe' the SDK hands out a PassThrough at once, before the process starts.
    const stderr = transport.stderr as Readable | null;
    if (!stderr) return;
    const lines = createInterface({ input: stderr, crlfDelay: Infinity });
    lines.on('line', (raw) => {
      const line = truncate(raw.trimEnd());
      if (line === '') return;
      attempt.lastStderr = line;
      const text = `[${this.name}] ${line}`;
      if (/\b(error|fatal|panic|exception|warn(ing)?)\b/i.test(line)) this.log.warn(text);
      else this.log.info(text);
    });
  }

  private startPing(attempt: Attempt): void {
    attempt.pingTimer = setInterval(() => {
      attempt.client.ping({ timeout: PING_TIMEOUT_MS }).catch((error: unknown) => {
        this.lost(attempt, `did not answer a ping: ${messageOf(error)}`);
      });
    }, this.settings.pingIntervalMs);
    attempt.pingTimer.unref();
  }

  /** The connection ended or never came up: hide its tools now and try again after the backoff delay. */
  private lost(attempt: Attempt, reason: string): void {
    if (this.current !== attempt) return;
    this.current = undefined;
    this.unregisterAll();
    this.settings.catalog?.remove(this.name);
    this.track(this.dispose(attempt));
    if (this.stopped) return;
    const wasReady = attempt.readyAt !== undefined;
    const delay = this.backoff.next(wasReady ? Date.now() - attempt.readyAt! : 0);
    const detail = attempt.lastStderr && !wasReady ? `${reason} (last stderr line: ${attempt.lastStderr.slice(0, 200)})` : reason;
    this.state = wasReady ? 'restarting' : 'failed';
    this.error = detail;
    this.log.warn(`upstream ${this.name}: ${wasReady ? 'lost' : 'could not start'}: ${detail}; trying again in ${delay} ms`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stopped) return;
      this.state = 'restarting';
      void this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  /** Closes a connection and makes sure its process is gone (no orphans). */
  private async dispose(attempt: Attempt): Promise<void> {
    clearInterval(attempt.pingTimer);
    if (attempt.transport instanceof StreamableHTTPClientTransport && attempt.transport.sessionId) {
      // Lets the remote server free our session instead of waiting for it to expire.
      await withTimeout(attempt.transport.terminateSession(), 2_000).catch(() => undefined);
    }
    await attempt.client.close().catch(() => undefined);
    const pid = attempt.pid;
    if (pid === null) return;
    // The SDK's close returns at once when a close is already under way (Client.connect closes
    // after a failed initialize), so wait for the exit ourselves and kill if it does not come.
    if (
      (await withTimeout(attempt.closed, EXIT_WAIT_MS).then(
        () => true,
        () => false,
      )) ||
      !isProcessAlive(pid)
    )
      return;
    this.log.warn(`upstream ${this.name}: process ${pid} did not exit; killing it`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    await withTimeout(attempt.closed, 1_000).catch(() => undefined);
  }

  private track(disposal: Promise<void>): void {
    const tracked = disposal
      .catch((error: unknown) => this.log.error(`upstream ${this.name}: could not close`, error))
      .finally(() => this.disposals.delete(tracked));
    this.disposals.add(tracked);
  }

  /** tools/list_changed from upstream: list again, one listing at a time, the last one wins. */
  private scheduleRefresh(attempt: Attempt): void {
    if (this.current !== attempt) return;
    if (attempt.readyAt === undefined) {
      attempt.dirty = true;
      return;
    }
    if (attempt.refreshing) {
      attempt.refreshAgain = true;
      return;
    }
    attempt.refreshing = true;
    void (async () => {
      try {
        do {
          attempt.refreshAgain = false;
          try {
            const tools = await this.listAll(attempt);
            if (this.current === attempt) this.apply(tools, { initial: false });
          } catch (error) {
            if (this.current === attempt) this.log.warn(`upstream ${this.name}: could not list tools after a change: ${messageOf(error)}`);
          }
        } while (attempt.refreshAgain && this.current === attempt);
      } finally {
        attempt.refreshing = false;
      }
    })();
  }

  /**
   * Resources, resource templates and prompts of the server, as far as it declares them, into the
   * catalog. A listing that fails leaves that kind empty (logged) rather than the server down.
   */
  private async refreshCatalog(attempt: Attempt): Promise<void> {
    const catalog = this.settings.catalog;
    if (!catalog) return;
    const capabilities = attempt.client.getServerCapabilities() ?? {};
    const list = async <T>(method: string, key: string, schema: keyof typeof specTypeSchemas): Promise<T[]> => {
      try {
        return await this.listItems<T>(attempt, method, key, schema);
      } catch (error) {
        if (this.current === attempt) this.log.warn(`upstream ${this.name}: ${method} failed: ${messageOf(error)}`);
        return [];
      }
    };
    const [resources, templates, prompts] = await Promise.all([
      capabilities.resources ? list<Resource>('resources/list', 'resources', 'Resource') : [],
      capabilities.resources ? list<ResourceTemplate>('resources/templates/list', 'resourceTemplates', 'ResourceTemplate') : [],
      capabilities.prompts ? list<Prompt>('prompts/list', 'prompts', 'Prompt') : [],
    ]);
    if (this.current !== attempt) return;
    catalog.set(this.name, {
      resources,
      templates,
      prompts,
      subscribe: capabilities.resources?.subscribe === true,
      completions: capabilities.completions !== undefined,
      request: <T>(method: string, params: Record<string, unknown>, signal?: AbortSignal) => this.relay<T>(method, params, signal),
    });
  }

  /** A resources/prompts/completions request of a client, sent on as it is (the client's identity stays here). */
  private async relay<T>(method: string, params: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
    const attempt = this.current;
    if (!attempt || attempt.readyAt === undefined) throw new Error(`upstream server ${this.name} is not available (${this.state})`);
    const schema = LenientResultSchema;
    const { _meta: meta, ...rest } = params;
    const kept = forwardedMeta(meta as Record<string, unknown> | undefined);
    return (await attempt.client.request({ method, params: { ...rest, ...(kept ? { _meta: kept } : {}) } } as never, schema, {
      timeout: this.config.timeout ?? NO_TIMEOUT_MS,
      ...(signal ? { signal } : {}),
    })) as T;
  }

  /**
   * A request of the upstream to its client, handed to the client whose call is in flight. Over
   * stdio (and SSE) nothing in the message names the call that caused it, so it goes to the caller
   * only when exactly one call is in flight on this connection; with several it is refused rather
   * than guessed (it could carry one client's data to another). roots/list outside any call is
   * answered with no roots: the gateway shares no folders of its own.
   */
  private async askCaller(attempt: Attempt, method: string, params: unknown, signal: AbortSignal): Promise<Record<string, unknown>> {
    const calls = [...attempt.inflight];
    if (calls.length === 0 && method === 'roots/list') return { roots: [] };
    if (calls.length !== 1) {
      const why =
        calls.length === 0
          ? 'no call from a client is waiting for it'
          : 'several calls are in flight on this server and the gateway cannot tell which client it is for';
      throw new ProtocolError(ProtocolErrorCode.InvalidRequest, `cupcake-mcp cannot pass ${method} on: ${why}`);
    }
    const caller = calls[0]!;
    if (!caller.ask) throw new ProtocolError(ProtocolErrorCode.InvalidRequest, `cupcake-mcp cannot pass ${method} on to this client`);
    const { _meta: meta, ...rest } = (params ?? {}) as Record<string, unknown>;
    const kept = forwardedMeta(meta as Record<string, unknown> | undefined);
    return caller.ask({ method, params: { ...rest, ...(kept ? { _meta: kept } : {}) } }, signal);
  }

  /** One list method of any kind, every page, each item checked on its own (a malformed one is left out). */
  private async listItems<T>(attempt: Attempt, method: string, key: string, schema: keyof typeof specTypeSchemas): Promise<T[]> {
    const items: T[] = [];
    const cursors = new Set<string>();
    let cursor: string | undefined;
    const pageSchema = z.looseObject({ [key]: z.array(z.unknown()), nextCursor: z.string().optional() });
    for (let page = 0; ; page++) {
      if (page >= MAX_LIST_PAGES) throw new Error(`${method} returned more than ${MAX_LIST_PAGES} pages`);
      const result = (await attempt.client.request({ method, params: cursor === undefined ? {} : { cursor } } as never, pageSchema, {
        timeout: this.settings.connectTimeoutMs,
      })) as Record<string, unknown> & { nextCursor?: string };
      for (const raw of result[key] as unknown[]) {
        const checked = (
          specTypeSchemas[schema] as { '~standard': { validate(value: unknown): { issues?: readonly { message: string }[]; value?: unknown } } }
        )['~standard'].validate(raw);
        if (checked.issues === undefined) items.push(checked.value as T);
        else
          this.logOnce(
            `invalid:${method}:${JSON.stringify(raw).slice(0, 100)}`,
            `upstream ${this.name}: an entry of ${method} is not valid MCP and is not exposed: ${checked.issues[0]?.message ?? 'invalid'}`,
          );
      }
      cursor = result.nextCursor;
      if (cursor === undefined) return items;
      if (cursors.has(cursor)) throw new Error(`${method} returned the same cursor twice`);
      cursors.add(cursor);
    }
  }

  /**
   * tools/list, following `nextCursor` until the last page. Each tool is checked on its own, so one
   * malformed tool is left out (and logged) instead of failing the whole server.
   */
  private async listAll(attempt: Attempt): Promise<Tool[]> {
    const tools: Tool[] = [];
    const cursors = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; ; page++) {
      if (page >= MAX_LIST_PAGES) throw new Error(`tools/list returned more than ${MAX_LIST_PAGES} pages`);
      const result = await attempt.client.request({ method: 'tools/list', params: cursor === undefined ? {} : { cursor } }, LenientListToolsResultSchema, {
        timeout: this.settings.connectTimeoutMs,
      });
      for (const raw of result.tools) {
        const tool = specTypeSchemas.Tool['~standard'].validate(raw);
        if (tool.issues === undefined) tools.push(tool.value);
        else {
          const name = typeof (raw as { name?: unknown } | null)?.name === 'string' ? (raw as { name: string }).name : '(unnamed)';
          this.logOnce(
            `invalid:${name}`,
            `upstream ${this.name}: tool ${JSON.stringify(name.slice(0, 100))} is not a valid MCP tool listing and is not exposed: ` +
              `${tool.issues[0]?.message ?? 'invalid'}`,
          );
        }
      }
      cursor = result.nextCursor;
      if (cursor === undefined) return tools;
      if (cursors.has(cursor)) throw new Error('tools/list returned the same cursor twice');
      cursors.add(cursor);
    }
  }

  /** Makes the registry hold exactly these tools for this server, touching only what changed. */
  private apply(tools: Tool[], { initial }: { initial: boolean }): void {
    const byName = new Map<string, Tool>();
    for (const tool of tools) {
      if (byName.has(tool.name)) continue;
      if (tool.execution?.taskSupport === 'required') {
        this.logOnce(
          `task:${tool.name}`,
          `upstream ${this.name}: tool ${JSON.stringify(tool.name)} needs task-based execution, which the gateway does not offer; not exposed`,
        );
        continue;
      }
      byName.set(tool.name, tool);
    }

    const wanted = new Map<string, { original: string; definition: Tool; needsClientFeatures: boolean; signature: string }>();
    for (const { original, exposed, renamed } of exposeToolNames(this.name, [...byName.keys()])) {
      if (renamed) this.logOnce(`rename:${original}:${exposed}`, `upstream ${this.name}: tool ${JSON.stringify(original)} exposed as ${exposed} (${renamed})`);
      const definition = exposedDefinition(exposed, byName.get(original)!);
      const needsClientFeatures = this.clientFeatureTools.has(original);
      wanted.set(exposed, { original, definition, needsClientFeatures, signature: JSON.stringify([original, definition, needsClientFeatures]) });
    }

    const before = new Set(this.registered.keys());
    for (const [exposed, registration] of this.registered) {
      if (wanted.get(exposed)?.signature === registration.signature) continue;
      registration.remove();
      this.registered.delete(exposed);
    }
    for (const [exposed, { original, definition, needsClientFeatures, signature }] of wanted) {
      if (this.registered.has(exposed)) continue;
      if (this.registry.get(exposed)) {
        this.logOnce(`taken:${exposed}`, `upstream ${this.name}: tool ${JSON.stringify(original)} not exposed: another tool is already named ${exposed}`);
        continue;
      }
      const remove = this.registry.add({
        definition,
        interactive: true,
        ...(needsClientFeatures ? { needsClientFeatures } : {}),
        run: (args, context) => this.forward(exposed, original, args, context),
      });
      this.registered.set(exposed, { original, signature, remove });
    }

    if (!initial) {
      const added = [...this.registered.keys()].filter((name) => !before.has(name));
      const removed = [...before].filter((name) => !this.registered.has(name));
      if (added.length + removed.length > 0) {
        this.log.info(
          `upstream ${this.name}: tools changed (${this.registered.size} now; added ${added.join(', ') || 'none'}; removed ${removed.join(', ') || 'none'})`,
        );
      }
    }
  }

  private unregisterAll(): void {
    for (const registration of this.registered.values()) registration.remove();
    this.registered.clear();
  }

  /**
   * A call from a client, sent on with the upstream's own tool name and the request's `_meta`;
   * the caller's identity and token stay here. Progress is asked for with a token of this
   * connection (the SDK's), never the client's, and relayed to the client under its own token.
   * Cancellation (the client's, or the configured `timeout`) reaches the upstream as
   * notifications/cancelled (MCP "Cancellation").
   */
  private async forward(exposed: string, original: string, args: Record<string, unknown>, context: ToolCallContext): Promise<CallToolResult> {
    const attempt = this.current;
    if (!attempt || attempt.readyAt === undefined) return errorResult(`upstream server ${this.name} is not available (${this.state})`);
    const meta = forwardedMeta(context.meta);
    const timeout = this.config.timeout;
    const relayed = new Set<Promise<void>>();
    const relay = context.progress;
    // Our own progress token for this connection, never the client's (MCP "Progress": the token
    // is chosen by the requester). Handled here rather than by the SDK's onprogress, which loses
    // the last update when the result arrives in the same read (it drops the handler first).
    const progressToken = relay ? `cupcake-${++this.progressTokens}` : undefined;
    if (relay && progressToken) {
      attempt.progress.set(progressToken, (update) => {
        const sent = relay(update).finally(() => relayed.delete(sent));
        relayed.add(sent);
      });
    }
    const requestMeta = progressToken ? { ...meta, progressToken } : meta;
    attempt.inflight.add(context);
    try {
      // request() rather than callTool(): a gateway hands on the upstream's result as it is.
      const result = await attempt.client.request(
        { method: 'tools/call', params: { name: original, arguments: args, ...(requestMeta ? { _meta: requestMeta } : {}) } },
        specTypeSchemas.CallToolResult,
        { timeout: timeout ?? NO_TIMEOUT_MS, signal: context.signal },
      );
      if (progressToken) {
        // Notifications read together with the result are dispatched after it: let them through,
        // then send the last update before the result that followed it upstream.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (relayed.size > 0) {
          await Promise.all(relayed);
          // And one turn for the stream to flush it: SDK clients (v1 and v2) dispatch a progress
          // notification a microtask after a response read in the same chunk, by then forgotten.
          await new Promise<void>((resolve) => setTimeout(resolve, 5));
        }
      }
      return result;
    } catch (error) {
      if (error instanceof SdkHttpError && error.status === 404) {
        // The remote server forgot our session (it restarted): connect again.
        this.lost(attempt, 'the remote server no longer knows our session');
      }
      if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout && !context.signal.aborted) {
        return errorResult(
          `${exposed}: upstream server ${this.name} did not answer within ${formatMs(timeout ?? NO_TIMEOUT_MS)} ` +
            `(its "timeout" in tools.servers.${this.name}); the call was cancelled`,
        );
      }
      if (context.signal.aborted) return errorResult(`${exposed}: cancelled`);
      return errorResult(`${exposed}: ${messageOf(error)}`);
    } finally {
      attempt.inflight.delete(context);
      if (progressToken) attempt.progress.delete(progressToken);
    }
  }

  private logOnce(key: string, message: string): void {
    if (this.loggedRenames.has(key)) return;
    this.loggedRenames.add(key);
    this.log.warn(message);
  }
}

function createRemoteTransport(config: RemoteServerConfig, via: 'streamable-http' | 'sse'): Transport {
  const url = new URL(config.url);
  // Only the configured headers: never anything from the client that called us.
  const requestInit: RequestInit = { headers: { ...config.headers } };
  return via === 'streamable-http' ? new StreamableHTTPClientTransport(url, { requestInit }) : new SSEClientTransport(url, { requestInit });
}

/** The upstream's listing under our name: schemas, annotations, title and description kept. */
function exposedDefinition(exposed: string, tool: Tool): Tool {
  return {
    name: exposed,
    ...(tool.title !== undefined ? { title: tool.title } : {}),
    ...(tool.description !== undefined ? { description: tool.description } : {}),
    inputSchema: tool.inputSchema,
    ...(tool.outputSchema !== undefined ? { outputSchema: tool.outputSchema } : {}),
    ...(tool.annotations !== undefined ? { annotations: tool.annotations } : {}),
    ...(tool.icons !== undefined ? { icons: tool.icons } : {}),
    // Tool _meta (e.g. `openai/outputTemplate` of ChatGPT apps) is the upstream's to say.
    ...(tool._meta !== undefined ? { _meta: tool._meta } : {}),
  };
}

/**
 * MCP "_meta": keys whose prefix has `modelcontextprotocol` or `mcp` as a label are reserved for the
 * protocol, so they describe this hop (its version, capabilities, client info, progress token) and
 * are not handed on; everything else of the request's `_meta` goes upstream unchanged.
 */
function forwardedMeta(meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!meta) return undefined;
  const kept = Object.fromEntries(Object.entries(meta).filter(([key]) => key !== 'progressToken' && !isReservedMetaKey(key)));
  return Object.keys(kept).length > 0 ? kept : undefined;
}

function isReservedMetaKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash < 0) return false;
  const labels = key.slice(0, slash).split('.');
  return labels.some((label) => label === 'modelcontextprotocol' || label === 'mcp');
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 && ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

function errorResult(text: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text }] };
}

function describeClose(attempt: Attempt): string {
  return attempt.via === 'stdio' ? 'the process exited' : 'the connection closed';
}

function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // An McpError relayed from an SDK server carries the "MCP error <code>: " prefix twice.
  return message.replace(/^(MCP error -?\d+: )\1+/, '$1');
}

function truncate(text: string): string {
  return text.length > MAX_LOG_LINE ? `${text.slice(0, MAX_LOG_LINE)}…` : text;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
