import { createHash } from 'node:crypto';

/** What the gateway exposes: `<server>__<tool>` within 1–64 of letters, digits, `_`, `-`. */
export const UPSTREAM_TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

const MAX_LENGTH = 64;
const SEPARATOR = '__';

export interface ExposedToolName {
  /** The tool's name on the upstream server, used when forwarding calls. */
  original: string;
  /** The registry name, `<server>__<tool>` after sanitising. */
  exposed: string;
  /** Why the tool part differs from the original, for the log; undefined when it is kept as is. */
  renamed?: string;
}

/** A short stable tag for a name: the same original always gets the same suffix, across restarts. */
export function nameTag(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 6);
}

function withSuffix(base: string, suffix: string): string {
  return base.slice(0, MAX_LENGTH - suffix.length) + suffix;
}

/**
 * Names for one upstream server's tools. Deterministic: the result depends only on the server name
 * and the set of tool names, not on their order. A name that is already valid and fits is kept; a
 * name with other characters has them replaced by `_`; one that is too long is cut and tagged with a
 * hash of the original; when two tools would end up with the same name, every one that was changed
 * is tagged, so an unchanged name always wins.
 */
export function exposeToolNames(server: string, toolNames: readonly string[]): ExposedToolName[] {
  const prefix = `${server}${SEPARATOR}`;
  if (!UPSTREAM_TOOL_NAME.test(server) || prefix.length >= MAX_LENGTH) throw new Error(`invalid upstream server name ${JSON.stringify(server)}`);
  const unique = [...new Set(toolNames)].sort();

  const first = unique.map((original) => {
    const sanitized = original.replace(/[^a-zA-Z0-9_-]/gu, '_');
    const full = prefix + sanitized;
    if (original === '') return { original, exposed: withSuffix(prefix, nameTag(original)), reasons: ['empty name'] };
    const reasons: string[] = [];
    if (sanitized !== original) reasons.push('characters outside [a-zA-Z0-9_-] replaced by "_"');
    if (full.length > MAX_LENGTH) {
      reasons.push(`longer than ${MAX_LENGTH} characters, cut and tagged`);
      return { original, exposed: withSuffix(full, `_${nameTag(original)}`), reasons };
    }
    return { original, exposed: full, reasons };
  });

  const byName = new Map<string, typeof first>();
  for (const entry of first) byName.set(entry.exposed, [...(byName.get(entry.exposed) ?? []), entry]);
  for (const group of byName.values()) {
    if (group.length < 2) continue;
    for (const entry of group) {
      if (entry.reasons.length === 0) continue;
      entry.exposed = withSuffix(entry.exposed, `_${nameTag(entry.original)}`);
      entry.reasons.push('tagged to tell it apart from another tool');
    }
  }

  // A 24-bit tag collision is very unlikely but possible; a counter in sorted order stays deterministic.
  // Unchanged names are placed first so that a numbered name can never take one of them.
  const taken = new Set<string>();
  const result: ExposedToolName[] = [];
  for (const entry of [...first.filter((e) => e.reasons.length === 0), ...first.filter((e) => e.reasons.length > 0)]) {
    let exposed = entry.exposed;
    for (let n = 2; taken.has(exposed); n++) exposed = withSuffix(entry.exposed, `_${n}`);
    if (exposed !== entry.exposed) entry.reasons.push('numbered to tell it apart from another tool');
    taken.add(exposed);
    result.push({ original: entry.original, exposed, ...(entry.reasons.length > 0 ? { renamed: entry.reasons.join('; ') } : {}) });
  }
  return result.sort((a, b) => (a.original < b.original ? -1 : a.original > b.original ? 1 : 0));
}
