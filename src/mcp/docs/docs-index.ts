import { watch, type FSWatcher } from 'node:fs';
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import type { Logger } from '../../shared/logger.js';

export const DOC_EXTENSIONS = new Set(['.md', '.markdown', '.mdx', '.txt', '.text']);
const MAX_FILE_BYTES = 2 * 1024 * 1024;
const MAX_FILES = 20_000;
const RESCAN_MS = 3_000;

export interface DocEntry {
  /** Path relative to the folder, with `/` separators: the document id. */
  id: string;
  title: string;
  headings: string[];
  text: string;
  size: number;
  modified: number;
  /** Lower-cased tokens per field, for scoring. */
  terms: { title: string[]; headings: string[]; path: string[]; body: Map<string, number>; bodyLength: number };
}

export interface SearchHit {
  id: string;
  title: string;
  score: number;
}

/** Lower-cased word tokens (letters and digits of any script). */
export function tokenize(text: string): string[] {
  return (
    text
      .toLowerCase()
      .normalize('NFKC')
      .match(/[\p{L}\p{N}]+/gu) ?? []
  );
}

/** Title: the first Markdown `# heading`, else the first line of a text file, else the file name. */
function describe(id: string, text: string): { title: string; headings: string[] } {
  const headings: string[] = [];
  let inFence = false;
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) inFence = !inFence;
    if (inFence) continue;
    const match = /^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (match) headings.push(match[1]!);
  }
  const base = id
    .split('/')
    .pop()!
    .replace(/\.[^.]+$/, '')
    .replace(/[-_]+/g, ' ');
  const frontTitle = /^---\n[\s\S]*?^title:\s*["']?(.+?)["']?\s*$[\s\S]*?^---/m.exec(text)?.[1];
  return { title: (frontTitle ?? headings[0] ?? base).slice(0, 200), headings };
}

function count(tokens: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  return counts;
}

/**
 * A full-text index of the Markdown and text files under one folder, following changes (file
 * watch plus a periodic rescan). Only regular files whose real path lies inside the folder are
 * indexed; a document id is only ever looked up in the index, never joined onto a path blindly.
 */
export class DocsIndex {
  private docs = new Map<string, DocEntry>();
  private realRoot: string | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanRequested = false;
  private dirty = true;
  private lastScan = 0;

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.docs.size;
  }

  async start(): Promise<void> {
    await this.refresh();
    try {
      this.watcher = watch(this.dir, { recursive: true, persistent: false }, () => {
        this.dirty = true;
        this.requestRescan();
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      /* no recursive watch here: the periodic rescan still follows changes */
    }
    this.timer = setInterval(() => this.requestRescan(), RESCAN_MS);
    this.timer.unref();
  }

  close(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }

  /** Rescans when a change was seen or the last scan is older than a second (watch events can be missed). */
  async ensureFresh(): Promise<void> {
    if (this.dirty || Date.now() - this.lastScan > 1_000) await this.refresh();
  }

  /** Re-reads changed files; resolves when the index reflects the folder as it is now. */
  async refresh(): Promise<void> {
    if (this.scanning) {
      this.rescanRequested = true;
      await this.scanning;
      if (this.rescanRequested) return this.refresh();
      return;
    }
    this.rescanRequested = false;
    this.dirty = false;
    this.lastScan = Date.now();
    this.scanning = this.scan().finally(() => {
      this.scanning = undefined;
    });
    await this.scanning;
  }

  get(id: string): DocEntry | undefined {
    return this.docs.get(id);
  }

  /** Reads a document's current text, checking again that it is a file inside the folder. */
  async read(id: string): Promise<DocEntry | undefined> {
    const entry = this.docs.get(id);
    if (!entry || !this.realRoot) return undefined;
    const real = await realpath(join(this.realRoot, ...id.split('/'))).catch(() => undefined);
    if (!real || !this.isInside(real)) return undefined;
    const info = await stat(real).catch(() => undefined);
    if (!info?.isFile() || info.size > MAX_FILE_BYTES) return undefined;
    if (info.mtimeMs !== entry.modified || info.size !== entry.size) {
      const fresh = this.build(id, await readFile(real, 'utf8'), info.size, info.mtimeMs);
      this.docs.set(id, fresh);
      return fresh;
    }
    return entry;
  }

  /**
   * BM25 over the body plus fixed boosts for title, headings and path: a word in a title counts
   * more than the same word in running text, and documents matching more of the words rank first.
   */
  search(query: string, limit = 10): SearchHit[] {
    const words = [...new Set(tokenize(query))].slice(0, 32);
    if (words.length === 0 || this.docs.size === 0) return [];
    const docs = [...this.docs.values()];
    const averageLength = docs.reduce((sum, d) => sum + d.terms.bodyLength, 0) / docs.length || 1;
    const k1 = 1.2;
    const b = 0.75;
    const idf = new Map<string, number>();
    for (const word of words) {
      const df = docs.reduce((n, d) => n + (d.terms.body.has(word) || d.terms.title.includes(word) ? 1 : 0), 0);
      idf.set(word, Math.log(1 + (docs.length - df + 0.5) / (df + 0.5)));
    }
    const hits: SearchHit[] = [];
    for (const doc of docs) {
      let score = 0;
      let matched = 0;
      for (const word of words) {
        const weight = idf.get(word)!;
        const tf = doc.terms.body.get(word) ?? 0;
        let wordScore = tf > 0 ? (weight * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * doc.terms.bodyLength) / averageLength)) : 0;
        const prefix = (t: string) => t === word || (word.length >= 3 && t.startsWith(word));
        if (doc.terms.title.some(prefix)) wordScore += 3 * weight;
        if (doc.terms.headings.some(prefix)) wordScore += 1.5 * weight;
        if (doc.terms.path.some(prefix)) wordScore += 1 * weight;
        if (wordScore > 0) matched++;
        score += wordScore;
      }
      if (matched === 0) continue;
      // Several words combine: covering all of them outweighs repeating one.
      score *= matched / words.length;
      if (words.length > 1 && doc.text.toLowerCase().includes(query.toLowerCase().trim())) score *= 1.5;
      hits.push({ id: doc.id, title: doc.title, score });
    }
    hits.sort((x, y) => y.score - x.score || x.id.localeCompare(y.id));
    return hits.slice(0, limit);
  }

  private isInside(real: string): boolean {
    return this.realRoot !== undefined && (real === this.realRoot || real.startsWith(this.realRoot + sep));
  }

  private build(id: string, text: string, size: number, modified: number): DocEntry {
    const { title, headings } = describe(id, text);
    const body = tokenize(text);
    return {
      id,
      title,
      headings,
      text,
      size,
      modified,
      terms: { title: tokenize(title), headings: tokenize(headings.join(' ')), path: tokenize(id), body: count(body), bodyLength: body.length },
    };
  }

  private requestRescan(): void {
    void this.refresh().catch((error) => this.logger.error(`could not index ${this.dir}`, error));
  }

  private async scan(): Promise<void> {
    this.realRoot = await realpath(this.dir).catch(() => undefined);
    if (!this.realRoot) {
      if (this.docs.size > 0) this.docs = new Map();
      return;
    }
    const next = new Map<string, DocEntry>();
    const pending = [this.realRoot];
    while (pending.length > 0 && next.size < MAX_FILES) {
      const folder = pending.pop()!;
      const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        const full = join(folder, entry.name);
        let target = full;
        let info = await lstat(full).catch(() => undefined);
        if (info?.isSymbolicLink()) {
          // A link is followed only when it stays inside the folder.
          const real = await realpath(full).catch(() => undefined);
          if (!real || !this.isInside(real)) continue;
          target = real;
          info = await stat(real).catch(() => undefined);
        }
        if (!info) continue;
        if (info.isDirectory()) {
          if (target === full) pending.push(full);
          continue;
        }
        if (!info.isFile() || !DOC_EXTENSIONS.has(extname(entry.name).toLowerCase()) || info.size > MAX_FILE_BYTES) continue;
        const id = relative(this.realRoot, full).split(sep).join('/');
        const known = this.docs.get(id);
        if (known && known.modified === info.mtimeMs && known.size === info.size) {
          next.set(id, known);
          continue;
        }
        const text = await readFile(target, 'utf8').catch(() => undefined);
        if (text !== undefined) next.set(id, this.build(id, text, info.size, info.mtimeMs));
      }
    }
    this.docs = next;
  }
}
