/**
 * The store cannot serve a write right now (the disk is full or read-only, the data dir is gone,
 * the lock cannot be taken, the file was damaged by someone else). Nothing was changed; reads
 * from memory keep working. The HTTP layer answers 503 `temporarily_unavailable` for it.
 */
export class StoreUnavailableError extends Error {
  /** About the machine, not a bug: logged without a stack. */
  readonly operational = true;

  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}
