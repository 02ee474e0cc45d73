import bodyParser from 'koa-bodyparser';

/** Bodies over 1 MB → 413; malformed JSON → 400 JSON error (DESIGN.md §4). */
export const MAX_BODY = '1mb';

export function parseBody() {
  return bodyParser({
    enableTypes: ['json', 'form'],
    jsonLimit: MAX_BODY,
    formLimit: MAX_BODY,
    strict: true,
    onerror: (error, ctx) => {
      const status = (error as { status?: number }).status;
      ctx.throw(status === 413 ? 413 : 400, status === 413 ? 'request body is larger than 1 MB' : 'request body could not be parsed');
    },
  });
}
