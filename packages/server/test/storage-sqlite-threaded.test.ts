// The storage conformance suite on the server's SQLite store: reads on this
// thread, writes on its writer thread.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storageConformance } from '../src/storage/conformance.ts';
import { ThreadedSqliteStorage } from '../src/storage/sqlite-threaded.ts';
import type { Storage } from '../src/storage/types.ts';

storageConformance('sqlite (threaded writer)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-storage-threaded-'));
  const opened: Storage[] = [];
  const open = async (): Promise<Storage> => {
    const s = new ThreadedSqliteStorage(dir);
    opened.push(s);
    return s;
  };
  return {
    storage: await open(),
    reopen: open,
    async cleanup() {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
