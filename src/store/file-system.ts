import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';

/**
 * The file operations through which the file store reads db.json and changes its data dir: read the
 * document, write and sync a temp file, rename it into place, sync the folder, remove a temp file,
 * make the data dir and the lock directory. Each behaves as its node:fs/promises namesake, errors
 * (with their `code`) included. Tests pass one that wraps the real one to fail or stall a step as a
 * full disk or a failing device would; production uses `nodeFileSystem`.
 */
export interface StoreFileSystem {
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  /** `wx` with mode 0600 for a new temp file; `r` for the data dir, to sync it. */
  open(path: string, flags: 'wx' | 'r', mode?: number): Promise<StoreFileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<unknown>;
}

export interface StoreFileHandle {
  writeFile(data: Uint8Array): Promise<void>;
  datasync(): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export const nodeFileSystem: StoreFileSystem = { readFile, open, rename, unlink, mkdir };
