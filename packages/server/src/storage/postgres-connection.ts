/**
 * The connection pool of the PostgreSQL store, as every part of
 * `PostgresStorage` uses it: the pool with its session timeouts, the query
 * helpers, READ COMMITTED transactions on one pooled connection, and the
 * schema's migrations. Apart from the storage so that each part of it (room
 * log, rooms, key directory, …) can be handed this alone.
 *
 * Durability is PostgreSQL's: a COMMIT returns after its WAL record is
 * flushed (keep `synchronous_commit` on, the default).
 *
 * @module
 */

import pg from 'pg';
import { MIGRATIONS, migrationSql, migrationsTableSql } from './_schema.ts';
import type { CountRow } from './_shared.ts';
import { UnknownDeviceError } from './types.ts';

export interface PostgresOptions {
  /** `postgres://user@host:port/database` (any libpq-style URL node-postgres accepts). */
  connectionString: string;
  /**
   * Keep Parley's tables in this schema (created by `migrate()` if absent)
   * instead of the connection's default `search_path`. Lower-case letters,
   * digits and `_`, starting with a letter or `_`, at most 63 characters.
   */
  schema?: string;
  /** Pool size (default 10). */
  maxConnections?: number;
  /** Row-lock wait before a statement fails (default {@link LOCK_TIMEOUT_MS}). */
  lockTimeoutMs?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** BIGINT arrives as text; every BIGINT here (ms timestamps, seqs, ids, counts) fits a double exactly. */
function parseBigint(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`storage: integer ${text} is beyond 2^53`);
  return n;
}

const TYPES = new pg.TypeOverrides();
TYPES.setTypeParser(pg.types.builtins.INT8, parseBigint);

/** `deviceTx`'s body found no device. */
const NO_DEVICE: unique symbol = Symbol('no device');

/** Returned by a transaction body to end it with ROLLBACK and still yield a value. */
export class Rollback<T> {
  readonly value: T;
  constructor(value: T) {
    this.value = value;
  }
}

export type Param = string | number | Uint8Array | null | readonly (number | Uint8Array | string | null)[];

/** How long a session may sit idle inside a transaction before PostgreSQL ends it (ms). */
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000;
/** How long a statement waits for a row lock before failing (ms). */
export const LOCK_TIMEOUT_MS = 10_000;
/** The longest any one statement may run (ms). */
export const STATEMENT_TIMEOUT_MS = 30_000;

export class PostgresConnection {
  readonly #pool: pg.Pool;
  readonly #schema: string | undefined;
  #closed = false;
  /** The connection that holds the process lock (`holdProcessLock`), out of the pool until close. */
  #lockHolder: pg.PoolClient | null = null;

  constructor(options: PostgresOptions) {
    const { connectionString, schema, maxConnections = 10, lockTimeoutMs = LOCK_TIMEOUT_MS } = options;
    if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
      throw new RangeError(`schema must match ${String(SCHEMA_NAME)}, got ${JSON.stringify(schema)}`);
    }
    this.#schema = schema;
    this.#pool = new pg.Pool({
      connectionString,
      max: maxConnections,
      types: TYPES,
      // A process that stops mid-transaction (paused VM, partition) would hold
      // its room's row lock for ever and stall that room on every process:
      // PostgreSQL ends such a session, and a waiter gives up with an error
      // (the client retries) rather than hang.
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
      lock_timeout: lockTimeoutMs,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      // Names Parley's sessions in pg_stat_activity (and the schema's, when it has one).
      application_name: schema === undefined ? 'parley' : `parley:${schema}`,
      ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
    });
    // An idle connection that dies (server restart, network) is dropped by
    // the pool and replaced on next use; without a listener the 'error'
    // event would crash the process. A checked-out one can die too (a
    // terminated backend whose FATAL arrives between two queries): it has
    // no pool listener then, so each connection gets its own. The next
    // query on it fails, and `tx` destroys it.
    this.#pool.on('error', () => {});
    this.#pool.on('connect', (c) => c.on('error', () => {}));
  }

  /** Runs a statement on `c` (inside its transaction), or on any pooled connection without one. */
  async query<R extends object>(sql: string, params: readonly Param[] = [], c?: pg.PoolClient): Promise<pg.QueryResult<R>> {
    return (c ?? this.#pool).query<R>(sql, params as unknown[]);
  }

  async one<R extends object>(sql: string, params: readonly Param[], c?: pg.PoolClient): Promise<R | undefined> {
    return (await this.query<R>(sql, params, c)).rows[0];
  }

  /** Runs a statement; returns how many rows it changed. */
  async changed(sql: string, params: readonly Param[], c?: pg.PoolClient): Promise<number> {
    return (await this.query(sql, params, c)).rowCount ?? 0;
  }

  async count(sql: string, params: readonly Param[], c?: pg.PoolClient): Promise<number> {
    return (await this.one<CountRow>(sql, params, c))?.n ?? 0;
  }

  /**
   * Runs `fn` on one pooled connection inside BEGIN … COMMIT; if `fn`
   * returns a `Rollback`, the transaction is rolled back instead. On any error
   * the connection is destroyed rather than returned to the pool, which
   * also aborts whatever transaction it had open.
   */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T | Rollback<T>>): Promise<T> {
    const c = await this.#pool.connect();
    try {
      await c.query('BEGIN');
      const r = await fn(c);
      if (r instanceof Rollback) {
        await c.query('ROLLBACK');
        c.release();
        return r.value as T;
      }
      await c.query('COMMIT');
      c.release();
      return r;
    } catch (e) {
      c.release(e instanceof Error ? e : true);
      throw e;
    }
  }

  /**
   * Runs `fn` as `tx` does, after a key-share lock on the device's row (the
   * lock a foreign-key check takes; a sign-out's UPDATE of the row does not
   * wait on it). A removal's DELETE of the row then waits for this
   * transaction to commit, and its later DELETEs of the device's rows (new
   * snapshots: READ COMMITTED) delete what `fn` wrote; a removal that
   * committed first leaves no row, and this rejects with an
   * `UnknownDeviceError`, nothing written. The lock comes first, so a
   * removal is never waited on while holding a row it deletes.
   */
  async deviceTx<T>(userId: string, deviceId: string, fn: (c: pg.PoolClient) => Promise<T | Rollback<T>>): Promise<T> {
    const r = await this.tx<T | typeof NO_DEVICE>(async (c) => {
      const device = await this.one('SELECT 1 AS one FROM devices WHERE user_id = $1 AND device_id = $2 FOR KEY SHARE', [userId, deviceId], c);
      // Rolled back rather than thrown: a throw would cost the pooled connection.
      return device === undefined ? new Rollback(NO_DEVICE) : fn(c);
    });
    if (r === NO_DEVICE) throw new UnknownDeviceError(userId, deviceId);
    return r;
  }

  async migrate(): Promise<void> {
    await this.tx(async (c) => {
      // Several servers may start at once: one migrates, the others wait
      // here (also around CREATE SCHEMA IF NOT EXISTS, which races otherwise).
      const key = "hashtext('parley:migrate:' || coalesce($1::text, current_schema(), ''))";
      await this.query(`SELECT pg_advisory_xact_lock(${key})`, [this.#schema ?? null], c);
      if (this.#schema !== undefined) await this.query(`CREATE SCHEMA IF NOT EXISTS ${this.#schema}`, [], c);
      await this.query(migrationsTableSql('postgres'), [], c);
      const applied = new Set(
        (await this.query<{ version: number }>('SELECT version FROM schema_migrations', [], c)).rows.map((r) => r.version),
      );
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        const sql = migrationSql(m, 'postgres');
        if (sql !== null) await this.query(sql, [], c);
        const record = 'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)';
        await this.query(record, [m.version, m.name, Date.now()], c);
      }
    });
  }

  /**
   * Take this deployment's process lock (an advisory lock of the schema) on
   * a connection of its own, held until `close`: `sole` for a process that
   * must be the only one on the database, `shared` for one of several.
   * False when another process holds it in a way that excludes this one.
   */
  async holdProcessLock(mode: 'sole' | 'shared'): Promise<boolean> {
    const c = await this.#pool.connect();
    const key = "hashtext('parley:process:' || coalesce($1::text, current_schema(), ''))";
    const fn = mode === 'sole' ? 'pg_try_advisory_lock' : 'pg_try_advisory_lock_shared';
    try {
      const r = await c.query<{ held: boolean }>(`SELECT ${fn}(${key}) AS held`, [this.#schema ?? null]);
      if (r.rows[0]?.held !== true) {
        c.release();
        return false;
      }
    } catch (e) {
      c.release(true);
      throw e;
    }
    this.#lockHolder = c;
    return true;
  }

  /** Ends the pool (once; a second call does nothing). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Destroyed, not returned: its session, and with it the lock, ends.
    this.#lockHolder?.release(true);
    this.#lockHolder = null;
    await this.#pool.end();
  }
}
