/**
 * The data directory: private to the server's user, and one server's at a
 * time.
 *
 * It holds the server's private key and, on SQLite, the database — whose
 * `server_secrets` table includes the access-token secret: whoever reads
 * the database can mint tokens for any user. So a directory made here is
 * 0700, and the database files are 0600 whatever the umask (an existing
 * directory keeps its mode: it may be the operator's; the files are what
 * must not be readable).
 *
 * Two processes on one SQLite data directory would each keep their own
 * view of membership and deliveries (a member removed on one could still
 * publish on the other), so on SQLite a server holds an exclusive lock on
 * `parley.lock` for as long as it runs. The lock is SQLite's own (POSIX
 * advisory locks): the operating system drops it when the process dies,
 * even by SIGKILL, so there is no stale lock to clean up. With PostgreSQL
 * several processes may share a data directory (the server key).
 *
 * @module
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE_NAME = 'parley.lock';

/** Mode of files that hold secrets (the database and its WAL and shared-memory files). */
const PRIVATE_FILE_MODE = 0o600;

export class DataDirInUseError extends Error {
  constructor(dir: string) {
    super(`the data directory ${dir} is in use by another parley serve (one process per SQLite data directory: give this one its own --data <dir>, or stop the other; processes sharing one deployment need DATABASE_URL)`);
    this.name = 'DataDirInUseError';
  }
}

export interface DataDir {
  readonly path: string;
  /** Drop the lock (if any). Idempotent. */
  release(): void;
}

/** Create `dir` (0700) if needed and, when `exclusive`, take its lock; DataDirInUseError if another process holds it. */
export function openDataDir(dir: string, options: { exclusive: boolean }): DataDir {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`the data directory ${dir} is not a directory`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!options.exclusive) return { path: dir, release: () => undefined };
  const lockPath = join(dir, LOCK_FILE_NAME);
  createPrivate(lockPath);
  const lock = new Database(lockPath, { timeout: 0 });
  try {
    lock.pragma('journal_mode = MEMORY'); // no journal file: nothing is ever written
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    lock.close();
    if ((e as { code?: unknown }).code === 'SQLITE_BUSY') throw new DataDirInUseError(dir);
    throw e;
  }
  let held = true;
  return {
    path: dir,
    release: () => {
      if (!held) return;
      held = false;
      lock.close();
    },
  };
}

/**
 * Make `file` (a SQLite database) and the WAL and shared-memory files beside
 * it readable by the owner only: a new database is created empty at 0600
 * (SQLite gives its WAL and shared-memory files the database's mode), an
 * existing one is narrowed to it.
 */
export function protectDatabaseFiles(file: string): void {
  if (!existsSync(file)) createPrivate(file);
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    if (!existsSync(path)) continue;
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, PRIVATE_FILE_MODE);
  }
}

function createPrivate(path: string): void {
  closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
}
