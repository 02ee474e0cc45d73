import { randomUUID } from 'node:crypto';
import type { Logger } from '../../shared/logger.js';
import type { RelayReply, RelayRequest, SessionRelay } from '../relay.js';
import { guard, type RedisClient } from './connection.js';

/** How long a relayed request may wait for the holding replica's answer. */
const REPLY_TIMEOUT_MS = 15_000;
/** A session's entry outlives any token that can act on it; closing the session deletes it sooner. */
const SESSION_TTL_MS = 7 * 86_400_000;

/**
 * The session relay over Redis: `<prefix>session:<id>` names the replica holding a session; each
 * replica listens on `<prefix>relay:<replica>` for requests and `<prefix>relay-reply:<replica>`
 * for answers. PUBLISH tells how many listened: none means the holder is gone (killed), and the
 * session is forgotten and answered as unknown.
 */
export async function createRedisRelay(client: RedisClient, url: string, prefix: string, logger: Logger): Promise<SessionRelay> {
  const self = randomUUID();
  const handlers = new Map<string, (request: RelayRequest) => Promise<RelayReply>>();
  const waiting = new Map<string, { resolve: (reply: RelayReply) => void; timer: NodeJS.Timeout }>();
  const sessionKey = (id: string) => `${prefix}session:${id}`;
  const requests = (replica: string) => `${prefix}relay:${replica}`;
  const replies = (replica: string) => `${prefix}relay-reply:${replica}`;

  const subscriber = client.duplicate() as RedisClient;
  subscriber.on('error', () => undefined);
  await guard(url, () => subscriber.connect());
  await guard(url, () =>
    subscriber.subscribe(requests(self), (text: string) => {
      const { id, from, request } = JSON.parse(text) as { id: string; from: string; request: RelayRequest };
      const handler = handlers.get(request.kind);
      void (handler ? handler(request) : Promise.resolve({ status: 404, body: '' }))
        .catch((error: unknown) => {
          logger.error(`relayed ${request.kind} for session ${request.sessionId} failed`, error);
          return {
            status: 500,
            body: JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }),
            headers: { 'content-type': 'application/json' },
          };
        })
        .then((reply) => client.publish(replies(from), JSON.stringify({ id, reply })))
        .catch(() => undefined);
    }),
  );
  await guard(url, () =>
    subscriber.subscribe(replies(self), (text: string) => {
      const { id, reply } = JSON.parse(text) as { id: string; reply: RelayReply };
      const entry = waiting.get(id);
      if (!entry) return;
      waiting.delete(id);
      clearTimeout(entry.timer);
      entry.resolve(reply);
    }),
  );

  return {
    async claim(sessionId) {
      await guard(url, () => client.set(sessionKey(sessionId), self, { PX: SESSION_TTL_MS }));
    },
    async release(sessionId) {
      // Only our own entry: a session id is random, but never delete another replica's claim.
      await guard(url, async () => {
        if ((await client.get(sessionKey(sessionId))) === self) await client.del(sessionKey(sessionId));
      }).catch(() => undefined);
    },
    async forward(request) {
      let holder = await guard(url, () => client.get(sessionKey(request.sessionId)));
      if (!holder) {
        // A session opened a moment ago: its replica records it while answering the client's first request.
        await new Promise((resolve) => setTimeout(resolve, 50));
        holder = await guard(url, () => client.get(sessionKey(request.sessionId)));
      }
      if (!holder || holder === self) return undefined;
      const id = randomUUID();
      const answer = new Promise<RelayReply>((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve({
            status: 504,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              jsonrpc: '2.0',
              error: { code: -32001, message: 'Request timed out: the replica holding this session did not answer' },
              id: null,
            }),
          });
        }, REPLY_TIMEOUT_MS);
        timer.unref();
        waiting.set(id, { resolve, timer });
      });
      const listeners = await guard(url, () => client.publish(requests(holder), JSON.stringify({ id, from: self, request })));
      if (listeners === 0) {
        // The holder died without closing its sessions (SIGKILL): its sessions are gone with it.
        const entry = waiting.get(id);
        if (entry) clearTimeout(entry.timer);
        waiting.delete(id);
        await guard(url, () => client.del(sessionKey(request.sessionId))).catch(() => undefined);
        return undefined;
      }
      return answer;
    },
    handle(kind, handler) {
      handlers.set(kind, handler);
    },
    async close() {
      for (const [, entry] of waiting) {
        clearTimeout(entry.timer);
        entry.resolve({ status: 503, body: JSON.stringify({ error: 'temporarily_unavailable' }), headers: { 'content-type': 'application/json' } });
      }
      waiting.clear();
      try {
        if (subscriber.isOpen) await subscriber.close();
      } catch {
        subscriber.destroy();
      }
    },
  };
}
