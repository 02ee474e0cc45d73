import type { Context, Next } from 'koa';
import { OAuthError, ServerError, TemporarilyUnavailableError } from '../../oauth/errors.js';
import { StoreUnavailableError } from '../../store/errors.js';
import type { Logger } from '../../shared/logger.js';

/** Statuses from body parsing and routing that carry a message safe to show. */
const HTTP_ERROR_CODES: Record<number, string> = {
  400: 'invalid_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'request_too_large',
  415: 'unsupported_media_type',
};

/**
 * Turns an OAuthError into its status and JSON body; anything else into
 * `500 {"error":"server_error"}`, logged with its stack. A response never carries a stack trace.
 */
export function errorHandler(logger: Logger) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (error) {
      if (ctx.headerSent || !ctx.writable) {
        logger.error(`error after response started on ${ctx.method} ${ctx.path}`, error);
        return;
      }
      ctx.set('Cache-Control', 'no-store');
      if (error instanceof OAuthError) {
        ctx.status = error.status;
        // RFC 6749 §5.2: a client that tried HTTP Basic is answered with its challenge.
        const challenge = (error as { challenge?: unknown }).challenge;
        if (typeof challenge === 'string') ctx.set('WWW-Authenticate', challenge);
        ctx.body = error.toResponseObject();
        return;
      }
      if (error instanceof StoreUnavailableError) {
        // Disk full, read-only or missing data dir: nothing was saved, reads still work. The
        // operator sees why in the log; the client is told to come back (RFC 6749 §4.1.2.1).
        logger.error(`${ctx.method} ${ctx.path}: ${error.message}`);
        ctx.status = 503;
        ctx.set('Retry-After', '30');
        ctx.body = new TemporarilyUnavailableError('the server cannot save changes right now; try again later').toResponseObject();
        return;
      }
      const status = (error as { status?: unknown }).status;
      const expose = (error as { expose?: unknown }).expose === true;
      if (typeof status === 'number' && expose && HTTP_ERROR_CODES[status]) {
        ctx.status = status;
        const description =
          status === 413 ? 'request body is larger than 1 MB' : status === 400 ? 'request body could not be parsed' : (error as Error).message;
        ctx.body = { error: HTTP_ERROR_CODES[status], error_description: description };
        return;
      }
      logger.error(`unhandled error on ${ctx.method} ${ctx.path}`, error);
      ctx.status = 500;
      ctx.body = new ServerError('internal error').toResponseObject();
    }
  };
}
