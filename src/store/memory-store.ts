import { DocumentStore, createMemoryBackend } from './document-store.js';

/** A Store that keeps everything in memory: tests, and embedding without persistence. */
export function createMemoryStore(): DocumentStore {
  return new DocumentStore(createMemoryBackend());
}
