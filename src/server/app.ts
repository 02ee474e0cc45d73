import Koa from 'koa';
import Router from '@koa/router';
import type { Config } from '../config/schema.js';
import type { EventLog } from '../store/event-log.js';
import type { Store } from '../store/types.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { VERSION } from '../shared/version.js';
import { errorHandler } from './middleware/errors.js';

export interface AppDeps {
  config: Config;
  store: Store;
  events: EventLog;
  logger?: Logger;
  clock?: Clock;
}

/** The HTTP application: a request handler plus the resources it owns (sessions, timers). */
export interface CupcakeApp {
  koa: Koa;
  callback(): ReturnType<Koa['callback']>;
  /** Ends open streams and timers; the caller closes the store and the listener. */
  close(): Promise<void>;
}

/** Builds the app; never listens (start.ts does). */
export function createApp(deps: AppDeps): CupcakeApp {
  const logger = deps.logger ?? silentLogger;
  const clock = deps.clock ?? systemClock;
  void clock;
  const koa = new Koa({ proxy: deps.config.trustProxy });
  koa.silent = true;
  koa.on('error', (error) => logger.error('koa error', error));

  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok', version: VERSION };
  });

  koa.use(errorHandler(logger));
  koa.use(router.routes());
  koa.use(router.allowedMethods());

  return {
    koa,
    callback: () => koa.callback(),
    async close() {},
  };
}
