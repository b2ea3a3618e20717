/**
 * One better-sqlite3 connection to the SQLite store's file, as every part
 * of `SqliteStorage` uses it: opened with the pragmas below, statements
 * prepared once and reused (by SQL text), `BEGIN IMMEDIATE` transactions,
 * and the schema's migrations. Apart from the storage so that each part of
 * it (room log, rooms, key directory, …) can be handed this alone.
 *
 * Durability: WAL journal with `synchronous = FULL`, so every commit fsyncs
 * the WAL before the call returns. `NORMAL` would survive a process crash
 * (kill -9) too — the WAL write reaches the OS before commit returns — but
 * could lose the last commits on power loss or a kernel crash, and the
 * storage contract says an acknowledged write is durable. We pay one fsync
 * per write transaction instead.
 *
 * @module
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { protectDatabaseFiles } from '../data-dir.ts';
import { Checkpointer } from './sqlite-checkpointer.ts';
import { MIGRATIONS, migrationSql, migrationsTableSql } from './_schema.ts';
import { dedupeDigest } from './sqlite-dedupe.ts';
import type { CountRow } from './_shared.ts';
import { UnknownDeviceError } from './types.ts';

/** The database file's name inside the data directory. */
export const SQLITE_FILE_NAME = 'parley.db';

/** How long a write waits for another connection's lock before failing (ms). */
const BUSY_TIMEOUT_MS = 5000;

export type Param = string | number | Uint8Array | null;

export class SqliteConnection {
  readonly #db: Database.Database;
  /** Prepared statements by SQL text (prepared on first use: tables must exist first). */
  readonly #statements = new Map<string, Database.Statement<Param[]>>();
  readonly #checkpointer: Checkpointer | null;

  /**
   * Opens (creating if needed) `dir/parley.db`. Call `migrate()` before
   * anything else. A `reader` connection refuses writes (`query_only`) and
   * leaves checkpoints to the writer: `ThreadedSqliteStorage` reads through
   * one on the event loop while its writer thread owns a `writer`.
   */
  constructor(dir: string, options: { role?: 'writer' | 'reader' } = {}) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // It holds the access-token secret (server_secrets): owner-only, whatever the umask.
    protectDatabaseFiles(join(dir, SQLITE_FILE_NAME));
    this.#db = new Database(join(dir, SQLITE_FILE_NAME));
    const mode = this.#db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') {
      this.#db.close();
      throw new Error(`storage: SQLite refused WAL mode (got ${String(mode)})`);
    }
    this.#db.pragma('synchronous = FULL');
    this.#db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Checkpoints run in a worker thread (sqlite-checkpointer.ts), never
    // inside a commit on the event loop.
    this.#db.pragma('wal_autocheckpoint = 0');
    this.#db.function('parley_dedupe', { deterministic: true }, dedupeDigest);
    if (options.role === 'reader') {
      this.#db.pragma('query_only = ON');
      this.#checkpointer = null;
    } else {
      this.#checkpointer = new Checkpointer(join(dir, SQLITE_FILE_NAME));
    }
  }

  stmt(sql: string): Database.Statement<Param[]> {
    let s = this.#statements.get(sql);
    if (s === undefined) {
      s = this.#db.prepare<Param[]>(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  get<R>(sql: string, ...params: Param[]): R | undefined {
    return this.stmt(sql).get(...params) as R | undefined;
  }

  all<R>(sql: string, ...params: Param[]): R[] {
    return this.stmt(sql).all(...params) as R[];
  }

  /** Runs a statement; returns how many rows it changed. */
  run(sql: string, ...params: Param[]): number {
    return this.stmt(sql).run(...params).changes;
  }

  count(sql: string, ...params: Param[]): number {
    return this.get<CountRow>(sql, ...params)?.n ?? 0;
  }

  /** Runs `fn` in a BEGIN IMMEDIATE transaction (rolled back if it throws). */
  tx<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  /**
   * Runs `fn` in a transaction if the device exists, checked inside it: with
   * one writer at a time, a removal then comes wholly before the check (and
   * the write is refused) or after the write (and deletes what it wrote).
   * Otherwise rejects with an `UnknownDeviceError`, nothing written.
   */
  deviceTx<T>(userId: string, deviceId: string, fn: () => T): T {
    return this.tx(() => {
      const device = this.get<{ one: number }>('SELECT 1 AS one FROM devices WHERE user_id = ? AND device_id = ?', userId, deviceId);
      if (device === undefined) throw new UnknownDeviceError(userId, deviceId);
      return fn();
    });
  }

  /** Runs `fn` inside the transaction under way as a savepoint: if it throws, only its own statements are undone. */
  savepoint<T>(fn: () => T): T {
    return this.#db.transaction(fn)();
  }

  async migrate(): Promise<void> {
    this.tx(() => {
      this.#db.exec(migrationsTableSql('sqlite'));
      const applied = new Set(
        this.#db
          .prepare<[], { version: number }>('SELECT version FROM schema_migrations')
          .all()
          .map((r) => r.version),
      );
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        const sql = migrationSql(m, 'sqlite');
        if (sql !== null) this.#db.exec(sql);
        this.#db
          .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
          .run(m.version, m.name, Date.now());
      }
    });
  }

  /** Stops the checkpointer and closes the file (commit what is pending first). */
  async close(): Promise<void> {
    await this.#checkpointer?.stop();
    this.#statements.clear();
    this.#db.close();
  }
}
