/**
 * The `store` setting (DESIGN.md §3, §6): "file" (db.json in the data dir) or a Redis URL,
 * `redis://[[user]:password@]host[:port][/db]` or `rediss://…` (TLS).
 */

/** Whether a `store` setting names Redis. */
export function isRedisUrl(value: string): boolean {
  return /^rediss?:\/\//i.test(value);
}

/** The URL without its user name and password, for messages, logs and `status`. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    parsed.username = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return 'redis://(unparseable URL)';
  }
}

/** The problem with a `store` value, or undefined when it is usable. */
export function storeSettingProblem(value: string): string | undefined {
  if (value === 'file') return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'expected "file" or a URL like "redis://host:6379/0"';
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return 'expected "file" or a URL starting with redis:// or rediss://';
  if (!url.hostname) return 'expected a host, like "redis://host:6379/0"';
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) return 'expected the database as a number after the host, like "redis://host:6379/0"';
  if (url.search || url.hash) return 'expected no query or fragment';
  return undefined;
}
