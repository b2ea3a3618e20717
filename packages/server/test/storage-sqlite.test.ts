// The storage conformance suite on SQLite: a fresh temporary directory per test.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storageConformance } from '../src/storage/conformance.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { Storage } from '../src/storage/types.ts';

storageConformance('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-storage-'));
  const opened: Storage[] = [];
  const open = async (): Promise<Storage> => {
    const s = new SqliteStorage(dir);
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
