export type * from './types.js';
export { DocumentStore } from './document-store.js';
export { openFileStore, StoreCorruptError, StoreWriteError, DB_FILE } from './file-store.js';
export { StoreUnavailableError } from './errors.js';
export { createMemoryStore } from './memory-store.js';
export * from './event-log.js';
