import { createReadStream, statSync, watch, type FSWatcher } from 'node:fs';
import { open, rename, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import { FileLock } from './file-lock.js';

/** Every audit event type, declared once (DESIGN.md §7). */
export const EVENT_TYPES = [
  'server.started',
  'server.stopped',
  'client.registered',
  'client.removed',
  'client.updated',
  // /token or /revoke refused the client's credentials (secret, assertion, or none allowed).
  'client.authentication_failed',
  // A client's metadata document could not be fetched and the shipped copy stood in for it.
  'client.pinned_document_used',
  'authorization.requested',
  'authorization.approved',
  'authorization.denied',
  'login.failed',
  'login.locked',
  'code.issued',
  'code.replayed',
  'token.issued',
  'token.refreshed',
  'token.reuse_detected',
  'token.rejected',
  'token.revoked',
  'session.opened',
  'session.closed',
  'tool.called',
  'tool.failed',
  // The home page's test sign-in with the first-party client (server/routes/sign-in-test.ts).
  'signin.started',
  'signin.completed',
  'signin.failed',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** Who revoked a token (oauth/revoke.ts): the client (RFC 7009), the owner, or the server's own rules. */
interface Revocation {
  by: 'client' | 'cli' | 'home page' | 'doctor' | 'serve';
  reason?: string;
}

/**
 * The `detail` each event type carries when this version writes it (DESIGN.md §7), declared once.
 * Never a token, code, secret or password: ids (`tok_…`, grant ids), names, hosts and reasons.
 */
export interface EventDetails {
  'server.started': { version: string; base_url: string; pid: number };
  'server.stopped': { pid: number };
  'client.registered': {
    client_name?: string | null;
    redirect_hosts?: string[];
    redirect_uris?: string[];
    token_endpoint_auth_method?: string;
    via?: 'client metadata document';
    first_party?: true;
    by?: string;
  };
  'client.removed': {
    by: string;
    reason?: string;
    client_name?: string | null;
    revoked_tokens?: number;
    last_activity_at?: string;
    older_than_ms?: number;
    /** Registrations pruned at once (never approved): how many, and the oldest id. */
    removed?: number;
    oldest?: string | undefined;
  };
  'client.updated': { first_party?: true; by?: string; redirect_uris?: string[] };
  'client.authentication_failed': { endpoint: '/token' | '/revoke'; method: string; reason: string };
  'client.pinned_document_used': { reason: string };
  'authorization.requested': { redirect_host: string; scope: string; resource: string };
  'authorization.approved': { scope: string; resource: string };
  'authorization.denied': { reason: string; error?: string };
  'login.failed': undefined;
  'login.locked': { reason: string };
  'code.issued': { grant_id: string };
  'code.replayed': { grant_id: string };
  'token.issued': {
    grant: 'authorization_code' | 'personal_access_token';
    scope: string;
    resource: string;
    refresh?: boolean;
    label?: string;
    expires_at?: string;
  };
  'token.refreshed': { previous_refresh_token: string; scope: string };
  'token.reuse_detected': { grant_id: string };
  'token.rejected': { reason: string; path?: string; endpoint?: string; error?: string; tool?: string; needed?: string };
  'token.revoked': Revocation;
  'session.opened': { transport: string; session_id: string };
  'session.closed': { transport: string; session_id: string; reason?: string };
  'tool.called': { tool: string; ms: number; session_id?: string };
  'tool.failed': { tool: string; reason: string };
  'signin.started': undefined;
  'signin.completed': { tools: number };
  'signin.failed': { reason: string; error?: string };
}

/**
 * One line of `events.jsonl`, as read back. Lines written by older versions may carry other detail
 * shapes (a plain string, once), so readers take the detail as it comes; writers use NewEvent.
 */
export interface AuthEvent {
  ts: string;
  type: EventType;
  client_id?: string;
  token_id?: string;
  ip?: string;
  user_agent?: string;
  detail?: string | Record<string, unknown>;
}

interface EventFields<T extends EventType> {
  type: T;
  client_id?: string;
  token_id?: string;
  ip?: string;
  user_agent?: string;
  detail?: EventDetails[T];
}

/** What code records: the detail typed by the event type (every type in EVENT_TYPES must have an entry in EventDetails). */
export type NewEvent = { [T in EventType]: EventFields<T> }[EventType];

export interface EventFilter {
  /** Prefix match: `token.` matches every token event. */
  types?: string[];
  clientId?: string;
}

/**
 * The audit log. Contract: `record` never throws and never blocks the caller (writes are queued
 * and flushed in order); `flush` resolves when everything recorded so far is on disk; `readLast`
 * returns the newest `n` matching events oldest first; `follow` calls back for each new event
 * written by any process, across rotation, until the returned function is called.
 */
export interface EventLog {
  record(event: NewEvent): void;
  flush(): Promise<void>;
  readLast(n: number, filter?: EventFilter): Promise<AuthEvent[]>;
  /** Flushes and releases the file; recording after close reopens it. */
  close(): Promise<void>;
  follow(onEvent: (event: AuthEvent) => void, filter?: EventFilter): () => void;
}

export const EVENTS_FILE = 'events.jsonl';
export const ROTATE_BYTES = 10 * 1024 * 1024;

export function matchesFilter(event: AuthEvent, filter: EventFilter = {}): boolean {
  if (filter.types && filter.types.length > 0 && !filter.types.some((t) => event.type.startsWith(t))) return false;
  if (filter.clientId !== undefined && event.client_id !== filter.clientId) return false;
  return true;
}

function parseLine(line: string): AuthEvent | undefined {
  if (!line.trim()) return undefined;
  try {
    const value = JSON.parse(line) as AuthEvent;
    return typeof value === 'object' && value !== null && typeof value.type === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

export function stamp(event: NewEvent, clock: Clock): AuthEvent {
  // Strings from clients (user agents) are bounded so the log cannot be flooded by one request.
  const clean: AuthEvent = { ts: new Date(clock.now()).toISOString(), type: event.type };
  if (event.client_id !== undefined) clean.client_id = event.client_id.slice(0, 200);
  if (event.token_id !== undefined) clean.token_id = event.token_id;
  if (event.ip !== undefined) clean.ip = event.ip.slice(0, 100);
  if (event.user_agent !== undefined) clean.user_agent = event.user_agent.slice(0, 300);
  if (event.detail !== undefined) clean.detail = bounded(event.detail);
  return clean;
}

/** Text in a detail is bounded too: a client-supplied reason or name cannot flood the log. */
function bounded(detail: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(detail)) out[key] = typeof value === 'string' ? value.slice(0, 500) : value;
  return out;
}

/**
 * Events that any request can cause without proving anything (no valid credential, no owner
 * action): refusals, consent pages opened, test sign-ins. They are kept in a file of their own,
 * rotated on its own budget, so that a flood of them can never rotate out the records of what was
 * granted (registrations, approvals, tokens issued and revoked, owner actions).
 */
export const REJECTION_TYPES: ReadonlySet<EventType> = new Set<EventType>([
  'client.authentication_failed',
  'token.rejected',
  'authorization.requested',
  'authorization.denied',
  'login.failed',
  'login.locked',
  'signin.started',
  'signin.failed',
]);

/** Where the rejections of the log at `path` go: `events.jsonl` → `events.rejections.jsonl`. */
export function rejectionsPathFor(path: string): string {
  return path.endsWith('.jsonl') ? `${path.slice(0, -'.jsonl'.length)}.rejections.jsonl` : `${path}.rejections`;
}

interface Appender {
  append(line: string): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Appends lines to `path` in order, rotating it to `path.1` once it would pass `rotateBytes`. */
function createAppender(path: string, rotateBytes: number, onError: ((error: unknown) => void) | undefined): Appender {
  let pending: string[] = [];
  let writing: Promise<void> = Promise.resolve();
  let handle: FileHandle | undefined;
  let handleIno: number | undefined;

  /**
   * The append handle for the current file. One stat per batch tells whether another process
   * rotated (or someone deleted) the file under us, and gives its real size for rotation.
   */
  async function currentHandle(incoming: number): Promise<FileHandle> {
    let st = await stat(path).catch(() => undefined);
    if (st && st.size > 0 && st.size + incoming > rotateBytes) {
      // Another process may rotate at the same moment: decide under a lock, on the file's real size.
      // (The store's lock: a rotator that died is taken over at once, a disk error fails at once.)
      const release = await new FileLock({ lockPath: `${path}.lock`, waitMs: 10_000 }).acquire();
      try {
        const real = await stat(path).catch(() => undefined);
        if (real && real.size > 0 && real.size + incoming > rotateBytes) await rename(path, `${path}.1`);
        st = await stat(path).catch(() => undefined);
      } finally {
        await release().catch(() => undefined);
      }
    }
    if (!handle || !st || st.ino !== handleIno) {
      await handle?.close().catch(() => undefined);
      handle = await open(path, 'a', 0o600);
      handleIno = (await handle.stat()).ino;
    }
    return handle;
  }

  async function drain(): Promise<void> {
    while (pending.length > 0) {
      const chunk = pending.join('');
      pending = [];
      try {
        const bytes = Buffer.from(chunk);
        await (await currentHandle(bytes.length)).write(bytes);
      } catch (error) {
        onError?.(error);
      }
    }
  }

  return {
    append(line) {
      pending.push(line);
      if (pending.length === 1) writing = writing.then(drain);
    },
    async flush() {
      await writing;
      if (pending.length > 0) {
        writing = writing.then(drain);
        await writing;
      }
    },
    async close() {
      await this.flush();
      await handle?.close().catch(() => undefined);
      handle = undefined;
    },
  };
}

/**
 * JSONL event log in `path`, rotated to `path.1` at 10 MB; rejections (REJECTION_TYPES) go to
 * `rejectionsPathFor(path)` with a budget of their own. Reading and following see both, in time order.
 */
export function createFileEventLog(
  path: string,
  options: {
    clock?: Clock;
    onError?: (error: unknown) => void;
    rotateBytes?: number /** Each event as recorded, in this process (serve's log). */;
    onRecord?: (event: AuthEvent) => void;
  } = {},
): EventLog {
  const clock = options.clock ?? systemClock;
  const rotateBytes = options.rotateBytes ?? ROTATE_BYTES;
  const rejectionsPath = rejectionsPathFor(path);
  const records = createAppender(path, rotateBytes, options.onError);
  const rejections = createAppender(rejectionsPath, rotateBytes, options.onError);

  return {
    record(event) {
      const stamped = stamp(event, clock);
      (REJECTION_TYPES.has(event.type) ? rejections : records).append(`${JSON.stringify(stamped)}\n`);
      if (options.onRecord) {
        try {
          options.onRecord(stamped);
        } catch {
          /* a listener never breaks recording */
        }
      }
    },
    async flush() {
      await Promise.all([records.flush(), rejections.flush()]);
    },
    async close() {
      await Promise.all([records.close(), rejections.close()]);
    },
    async readLast(n, filter) {
      if (n <= 0) return [];
      const [a, b] = await Promise.all([readLastOfLog(path, n, filter), readLastOfLog(rejectionsPath, n, filter)]);
      return mergeByTime(a, b).slice(-n);
    },
    follow(onEvent, filter) {
      const stops = [path, rejectionsPath].map((file) =>
        followFile(file, (event) => {
          if (matchesFilter(event, filter)) onEvent(event);
        }),
      );
      return () => {
        for (const stop of stops) stop();
      };
    },
  };
}

/** The newest `n` matching events of one log (the file, then its rotated predecessor), oldest first. */
async function readLastOfLog(path: string, n: number, filter: EventFilter | undefined): Promise<AuthEvent[]> {
  const events: AuthEvent[] = [];
  for (const file of [path, `${path}.1`]) {
    const wanted = n - events.length;
    events.unshift(...(await readLastMatching(file, wanted, filter)));
    if (events.length >= n) break;
  }
  return events.slice(-n);
}

/** Two time-ordered lists as one (ISO timestamps compare as strings; ties keep records first). */
function mergeByTime(a: AuthEvent[], b: AuthEvent[]): AuthEvent[] {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const out: AuthEvent[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]!.ts <= b[j]!.ts)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

const TAIL_CHUNK = 64 * 1024;

/**
 * The newest `n` events of `file` that match, oldest first, read backwards in 64 KB chunks so
 * that a tail of a 10 MB log reads kilobytes, not the whole file.
 */
async function readLastMatching(file: string, n: number, filter: EventFilter | undefined): Promise<AuthEvent[]> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return [];
  }
  try {
    const found: AuthEvent[] = [];
    let position = (await handle.stat()).size;
    let carry = Buffer.alloc(0);
    while (position > 0 && found.length < n) {
      const size = Math.min(TAIL_CHUNK, position);
      position -= size;
      const chunk = Buffer.alloc(size);
      await handle.read(chunk, 0, size, position);
      let data = Buffer.concat([chunk, carry]);
      // Everything before the first newline may be the end of a line that starts further back.
      const firstNewline = position > 0 ? data.indexOf(10) : -1;
      if (position > 0 && firstNewline < 0) {
        carry = data;
        continue;
      }
      carry = firstNewline >= 0 ? data.subarray(0, firstNewline) : Buffer.alloc(0);
      data = firstNewline >= 0 ? data.subarray(firstNewline + 1) : data;
      const lines = data.toString('utf8').split('\n');
      for (let i = lines.length - 1; i >= 0 && found.length < n; i--) {
        const event = parseLine(lines[i]!);
        if (event && matchesFilter(event, filter)) found.push(event);
      }
    }
    if (position === 0 && carry.length > 0 && found.length < n) {
      const event = parseLine(carry.toString('utf8'));
      if (event && matchesFilter(event, filter)) found.push(event);
    }
    return found.reverse();
  } finally {
    await handle.close();
  }
}

/** Tails `path` from its current end, following it to its successor when it is rotated. */
function followFile(path: string, onEvent: (event: AuthEvent) => void): () => void {
  // The starting point is taken now, not on the first poll: an event written right after
  // follow() returns (e.g. between `events tail`'s readLast and its follow) must not be missed.
  let offset: number | undefined;
  let inode: bigint | undefined;
  try {
    const st = statSync(path, { bigint: true });
    offset = Number(st.size);
    inode = st.ino;
  } catch {
    offset = 0;
  }
  let partial = '';
  let busy = false;
  let again = false;
  let stopped = false;

  const readRange = (file: string, start: number) =>
    new Promise<void>((resolve) => {
      const stream = createReadStream(file, { start, encoding: 'utf8' });
      stream.on('data', (chunk) => {
        offset = (offset ?? 0) + Buffer.byteLength(chunk as string);
        const text = partial + (chunk as string);
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          const event = parseLine(line);
          if (event && !stopped) onEvent(event);
        }
      });
      stream.on('error', () => resolve());
      stream.on('end', () => resolve());
    });

  async function poll(): Promise<void> {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        const st = await stat(path, { bigint: true }).catch(() => undefined);
        if (offset === undefined) {
          offset = st ? Number(st.size) : 0;
          inode = st?.ino;
          continue;
        }
        if (st && inode !== undefined && st.ino !== inode) {
          // Rotated: finish the old file (now path.1) from where we were, then start the new one.
          const old = await stat(`${path}.1`, { bigint: true }).catch(() => undefined);
          if (old && old.ino === inode) await readRange(`${path}.1`, offset);
          offset = 0;
          partial = '';
          inode = st.ino;
        } else if (st && inode === undefined) {
          inode = st.ino;
          offset = 0;
        }
        if (st && Number(st.size) > offset) await readRange(path, offset);
      } while (again && !stopped);
    } finally {
      busy = false;
    }
  }

  void poll();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, () => void poll());
    watcher.on('error', () => watcher?.close());
  } catch {
    /* polling below is enough */
  }
  const timer = setInterval(() => void poll(), 250);
  return () => {
    stopped = true;
    clearInterval(timer);
    watcher?.close();
  };
}

/** Keeps events in memory: for tests and embedding. */
export function createMemoryEventLog(clock: Clock = systemClock): EventLog & { events: AuthEvent[] } {
  const events: AuthEvent[] = [];
  const followers = new Set<(event: AuthEvent) => void>();
  return {
    events,
    record(event) {
      const stamped = stamp(event, clock);
      events.push(stamped);
      for (const f of followers) f(stamped);
    },
    async flush() {},
    async close() {},
    async readLast(n, filter) {
      return n <= 0 ? [] : events.filter((e) => matchesFilter(e, filter)).slice(-n);
    },
    follow(onEvent, filter) {
      const f = (e: AuthEvent) => {
        if (matchesFilter(e, filter)) onEvent(e);
      };
      followers.add(f);
      return () => followers.delete(f);
    },
  };
}
