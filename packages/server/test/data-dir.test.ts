/**
 * The data directory: owner-only database files, and one process per
 * SQLite data directory (a real second `parley serve` is refused; a holder
 * killed with SIGKILL leaves no stale lock).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { DataDirInUseError, openDataDir, protectDatabaseFiles } from '../src/data-dir.ts';
import { SQLITE_FILE_NAME, SqliteStorage } from '../src/storage/sqlite.ts';
import { startServerProcess } from './_server-process.ts';

const MAIN = fileURLToPath(new URL('../../../../apps/cli/dist/src/main.js', import.meta.url));
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'parley-datadir-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const modeOf = (path: string): number => statSync(path).mode & 0o777;

describe('data directory', () => {
  it('a new directory is 0700 and the SQLite files 0600 whatever the umask; looser existing files are narrowed', async () => {
    const parent = tempDir();
    const dir = join(parent, 'data');
    const umask = process.umask(0o022);
    try {
      const storage = new SqliteStorage(dir);
      await storage.migrate();
      await storage.serverSecret('probe', new Uint8Array(32));
      assert.equal(modeOf(dir), 0o700);
      for (const f of [SQLITE_FILE_NAME, `${SQLITE_FILE_NAME}-wal`, `${SQLITE_FILE_NAME}-shm`]) assert.equal(modeOf(join(dir, f)), 0o600, f);
      await storage.close();
      // An earlier version's files, world-readable: narrowed at the next open.
      chmodSync(join(dir, SQLITE_FILE_NAME), 0o644);
      protectDatabaseFiles(join(dir, SQLITE_FILE_NAME));
      assert.equal(modeOf(join(dir, SQLITE_FILE_NAME)), 0o600);
      const other = join(parent, 'other.db');
      writeFileSync(other, '', { mode: 0o666 });
      chmodSync(other, 0o666);
      protectDatabaseFiles(other);
      assert.equal(modeOf(other), 0o600);
    } finally {
      process.umask(umask);
    }
  });

  it('a data directory that is a file stops the start with a clear error', () => {
    const file = join(tempDir(), 'not-a-dir');
    writeFileSync(file, '');
    assert.throws(() => openDataDir(file, { exclusive: false }), /is not a directory/);
  });

  it('one holder at a time; released, it can be taken again; without `exclusive` nothing is locked', () => {
    const dir = tempDir();
    const first = openDataDir(dir, { exclusive: true });
    assert.throws(() => openDataDir(dir, { exclusive: true }), DataDirInUseError);
    openDataDir(dir, { exclusive: false }).release();
    first.release();
    first.release();
    openDataDir(dir, { exclusive: true }).release();
  });

  it('a holder killed with SIGKILL leaves no stale lock', async () => {
    const dir = tempDir();
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `import { openDataDir } from ${JSON.stringify(new URL('../src/data-dir.js', import.meta.url).href)}; openDataDir(${JSON.stringify(dir)}, { exclusive: true }); console.log('held'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    assert.throws(() => openDataDir(dir, { exclusive: true }), DataDirInUseError);
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    openDataDir(dir, { exclusive: true }).release();
  });

  it('a second parley serve on the same SQLite data directory exits with a clear error; the first keeps serving', async () => {
    const server = await startServerProcess();
    try {
      const second = spawnSync(process.execPath, [MAIN, 'serve', '--port', '0', '--data', server.dataDir], { encoding: 'utf8', timeout: 30_000 });
      assert.notEqual(second.status, 0);
      assert.match(second.stderr, /data directory .* is in use by another parley serve/);
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);
    } finally {
      await server.stop();
      server.cleanup();
    }
  });
});
