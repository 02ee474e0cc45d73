import type Router from '@koa/router';

/** A 32×32 cupcake (PNG inside an ICO): browsers ask for /favicon.ico on every page. */
const FAVICON = Buffer.from(
  'AAABAAEAICAAAAEAIADSAAAAFgAAAIlQTkcNChoKAAAADUlIRFIAAAAgAAAAIAgGAAAAc3p69AAAAJlJREFUeNpjYBgFQxXcUVP7j4wH1HK6O2JAHfDGY+Z/XA4AydHM' +
    'UnSMzXJ0TBOLycEDajlZjqDEor+fflDmCHIMpmpIUDvoSXIANYObLEdQ27e4HEiSA6gV9wMSAmSlgwpT/v+THPjgmNp8grlgwB0AArRyANEl4agDBtwByI6glgNIro5H' +
    'HTDgDoA5ghoOILtNOOAOGAX0AADRPX8BWm/FSQAAAABJRU5ErkJggg==',
  'base64',
);

/** GET /favicon.ico: public, cacheable, the same bytes for everyone. */
export function mountFaviconRoute(router: Router): void {
  router.get('/favicon.ico', (ctx) => {
    ctx.type = 'image/x-icon';
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.body = FAVICON;
  });
}
