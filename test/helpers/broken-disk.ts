import { nodeFileSystem, type StoreFileHandle, type StoreFileSystem } from '../../src/store/file-system.js';

/** The steps of the file store's atomic write a broken disk can fail: make the lock directory, fill the temp file, rename it over db.json. */
export type WriteStep = 'lock' | 'temp' | 'rename';

export interface BrokenDisk {
  /** The file system to give the store (`openFileStore`, `startTestServer`). */
  fileSystem: StoreFileSystem;
  /** The step that fails from now on, or undefined for a healthy disk. */
  failing: WriteStep | undefined;
  /** Every step that failed, in order. */
  failures: WriteStep[];
}

/**
 * The real file system with one step of the store's write failing on demand: the lock directory
 * and the temp file as a full disk fails them (ENOSPC; the temp file is left half-written, as a
 * write that ran out of space leaves it), the rename as a failing device does (EIO).
 */
export function brokenDisk(): BrokenDisk {
  const fail = (step: WriteStep, code: 'ENOSPC' | 'EIO', call: string) => {
    disk.failures.push(step);
    return Object.assign(new Error(`${code}: ${code === 'EIO' ? 'i/o error' : 'no space left on device'}, ${call}`), { code });
  };
  const halfWritten = (handle: StoreFileHandle): StoreFileHandle => ({
    async writeFile(data) {
      await handle.writeFile(data.subarray(0, data.length >> 1));
      throw fail('temp', 'ENOSPC', 'write');
    },
    datasync: () => handle.datasync(),
    sync: () => handle.sync(),
    close: () => handle.close(),
  });
  const disk: BrokenDisk = {
    failing: undefined,
    failures: [],
    fileSystem: {
      ...nodeFileSystem,
      async mkdir(path, options) {
        if (disk.failing === 'lock' && path.endsWith('.lock')) throw fail('lock', 'ENOSPC', `mkdir '${path}'`);
        return nodeFileSystem.mkdir(path, options);
      },
      async open(path, flags, mode) {
        const handle = await nodeFileSystem.open(path, flags, mode);
        return disk.failing === 'temp' && flags === 'wx' ? halfWritten(handle) : handle;
      },
      async rename(from, to) {
        if (disk.failing === 'rename') throw fail('rename', 'EIO', `rename '${from}' -> '${to}'`);
        return nodeFileSystem.rename(from, to);
      },
    },
  };
  return disk;
}
