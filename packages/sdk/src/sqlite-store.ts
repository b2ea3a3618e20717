/**
 * `SqliteClientStore`: a ClientStore in one SQLite file (better-sqlite3),
 * every record sealed with Secure Cell under a key only the passphrase
 * opens (the store's logic: sealed-client-store.ts; key hierarchy, row ids
 * and record format: sealed-records.ts).
 * Node only — import it from `@parley/sdk/node`, so browser bundles of the
 * SDK never pull in better-sqlite3.
 *
 * The file holds two tables:
 *
 * ```
 * meta    (name TEXT PRIMARY KEY, value)            -- 'format' = 1, 'master' = the passphrase-sealed master key
 * records (kind TEXT, id BLOB, ord INTEGER, cell BLOB, PRIMARY KEY (kind, id))
 * ```
 *
 * `kind` is the record kind in clear, `id` the HMAC row id, `cell` the
 * sealed record; `ord` orders the kinds that need it (kept messages, oldest
 * evicted first; the outbound queue) and is 0 for the others.
 *
 * Durability and atomicity. WAL journal, `synchronous = FULL`: a write that
 * returned is on disk. Each method is one statement or one transaction, and
 * `transaction(fn)` makes everything `fn` writes one transaction — the
 * client runs each received room entry (decrypting it may spend a one-time
 * prekey, trust an identity, advance a session, keep the message and move
 * the room cursor), each sealed send (sessions advanced + the queued
 * message), each acknowledgement and each history page in one. The file is
 * locked for the connection's life (`locking_mode = EXCLUSIVE`): a second
 * process, or a second open in this one, gets `STORE`. Deleted records are
 * overwritten in the file (`secure_delete`), and `close` checkpoints and
 * empties the WAL.
 *
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { IdentityKeyPair } from '@parley/protocol';
import { SdkError } from './errors.ts';
import type { RecordRow, RecordTable } from './record-table.ts';
import { checkOpenArguments, identityRow, SealedClientStore, type SealedStoreOptions } from './sealed-client-store.ts';
import { RecordKeys, type Passphrase, type RecordKind } from './sealed-records.ts';

/** The file format this code writes and reads. */
export const STORE_FORMAT = 1;

const SCHEMA = `
  CREATE TABLE meta (name TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID;
  CREATE TABLE records (
    kind TEXT NOT NULL,
    id BLOB NOT NULL,
    ord INTEGER NOT NULL,
    cell BLOB NOT NULL,
    PRIMARY KEY (kind, id)
  ) WITHOUT ROWID;
  CREATE INDEX records_by_ord ON records (kind, ord);
`;

export interface SqliteStoreOptions extends SealedStoreOptions {
  /** Refuse to create a new store when `path` holds none (`STORE`); default false. */
  readonly mustExist?: boolean;
}

/** Whatever better-sqlite3 threw, as `STORE` (its messages carry no bound values). */
function storeError(what: string, e: unknown): SdkError {
  if (e instanceof SdkError) return e;
  const code = typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : '';
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return new SdkError('STORE', `${what}: the store is in use by another connection`, { cause: e });
  return new SdkError('STORE', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/** The `records` table, one statement per operation. */
class SqliteTable implements RecordTable {
  readonly #sql;
  /** Runs its argument in a transaction (a savepoint when one is open). */
  readonly #atomic: Database.Transaction<(fn: () => unknown) => unknown>;

  constructor(db: Database.Database) {
    this.#sql = {
      get: db.prepare<[string, Uint8Array], { cell: Uint8Array }>('SELECT cell FROM records WHERE kind = ? AND id = ?'),
      put: db.prepare<[string, Uint8Array, number, Uint8Array]>('INSERT INTO records (kind, id, ord, cell) VALUES (?, ?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET ord = excluded.ord, cell = excluded.cell'),
      remove: db.prepare<[string, Uint8Array]>('DELETE FROM records WHERE kind = ? AND id = ?'),
      all: db.prepare<[string], RecordRow>('SELECT kind, id, ord, cell FROM records WHERE kind = ? ORDER BY ord, id'),
      rows: db.prepare<[], RecordRow>('SELECT kind, id, ord, cell FROM records'),
      clear: db.prepare('DELETE FROM records'),
      nextOrd: db.prepare<[string], { n: number }>('SELECT COALESCE(MAX(ord), 0) + 1 AS n FROM records WHERE kind = ?'),
      count: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM records WHERE kind = ?'),
      evict: db.prepare<[string, string, number]>('DELETE FROM records WHERE kind = ? AND id IN (SELECT id FROM records WHERE kind = ? ORDER BY ord, id LIMIT ?)'),
    };
    this.#atomic = db.transaction((fn: () => unknown) => fn());
  }

  #run<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw storeError(what, e);
    }
  }

  get(kind: RecordKind, id: Uint8Array): Uint8Array | undefined {
    return this.#run(`reading a ${kind} record`, () => this.#sql.get.get(kind, id)?.cell);
  }
  put(row: RecordRow): void {
    this.#run(`writing a ${row.kind} record`, () => this.#sql.put.run(row.kind, row.id, row.ord, row.cell));
  }
  remove(kind: RecordKind, id: Uint8Array): boolean {
    return this.#run(`deleting a ${kind} record`, () => this.#sql.remove.run(kind, id).changes === 1);
  }
  all(kind: RecordKind): readonly RecordRow[] {
    return this.#run(`reading ${kind} records`, () => this.#sql.all.all(kind));
  }
  nextOrd(kind: RecordKind): number {
    return this.#run(`reading ${kind} records`, () => this.#sql.nextOrd.get(kind)?.n ?? 1);
  }
  count(kind: RecordKind): number {
    return this.#run(`counting ${kind} records`, () => this.#sql.count.get(kind)?.n ?? 0);
  }
  evict(kind: RecordKind, n: number): void {
    this.#run(`evicting ${kind} records`, () => this.#sql.evict.run(kind, kind, n));
  }
  rows(): readonly RecordRow[] {
    return this.#run('reading every record', () => this.#sql.rows.all());
  }
  replaceAll(rows: readonly RecordRow[]): void {
    this.#run('rewriting every record', () => {
      this.#sql.clear.run();
      for (const r of rows) this.#sql.put.run(r.kind, r.id, r.ord, r.cell);
    });
  }
  transaction<T>(fn: () => T): T {
    let failed = false;
    const wrapped = (): T => {
      try {
        return fn();
      } catch (e) {
        failed = true;
        throw e;
      }
    };
    try {
      return this.#atomic(wrapped) as T;
    } catch (e) {
      // An error from fn is the caller's; one from BEGIN/COMMIT is the store's.
      throw failed ? e : storeError('transaction', e);
    }
  }
}

export class SqliteClientStore extends SealedClientStore {
  protected readonly storeName = 'SqliteClientStore';
  readonly #db: Database.Database;

  private constructor(db: Database.Database, keys: RecordKeys, messagesMax: number) {
    super(new SqliteTable(db), keys, messagesMax);
    this.#db = db;
  }

  /**
   * Open the store in the file at `path`, creating it (with a new identity
   * key pair, or `options.identity`) when the file does not exist or is
   * empty. PBKDF2 runs once, off the event loop. `BAD_PASSPHRASE` when the
   * passphrase does not open it, `STORE` for a file that is not a Parley
   * store, is from another format version, or is open elsewhere — in every
   * failure the file is left as it was. Close it with {@link close} when
   * done (after the client).
   */
  static async open(path: string, passphrase: Passphrase, options: SqliteStoreOptions = {}): Promise<SqliteClientStore> {
    if (typeof path !== 'string' || path.length === 0) throw new SdkError('INVALID_ARGUMENT', 'path must be a non-empty string');
    const messagesMax = checkOpenArguments(passphrase, options);
    // SQLite takes a file too short for its header for an empty database and would write a new
    // store over it: anything but a missing or empty file must start as an SQLite file does.
    const kind = fileKind(path);
    if (kind === 'other') throw new SdkError('STORE', `${path} is not an SQLite file (left as it was)`);
    // An empty file is a new store only when one may be made: opening it would write SQLite's header.
    if (kind === 'empty' && options.mustExist === true) throw new SdkError('STORE', `${path} is empty: it holds no Parley store (left as it was)`);
    let db: Database.Database;
    try {
      db = new Database(path, { fileMustExist: options.mustExist === true });
    } catch (e) {
      throw storeError(`cannot open ${path}`, e);
    }
    let keys: RecordKeys | null = null;
    try {
      const tables = SqliteClientStore.#prepareConnection(db, path);
      if (tables.length === 0) {
        if (options.mustExist === true) throw new SdkError('STORE', `${path} holds no Parley store`);
        const created = await RecordKeys.create(passphrase);
        keys = created.keys;
        SqliteClientStore.#initialise(db, created.keys, created.sealedMaster, options.identity);
      } else {
        if (options.identity !== undefined) throw new SdkError('INVALID_ARGUMENT', `${path} already holds a store: identity is only for a new one`);
        keys = await RecordKeys.unlock(SqliteClientStore.#sealedMaster(db, path), passphrase);
      }
      return new SqliteClientStore(db, keys, messagesMax);
    } catch (e) {
      keys?.destroy();
      db.close();
      throw storeError(`cannot open ${path}`, e);
    }
  }

  /**
   * Pragmas and the exclusive lock; the names of the tables the file has.
   * Nothing is changed in a file that is not (yet) a Parley store.
   */
  static #prepareConnection(db: Database.Database, path: string): string[] {
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('busy_timeout = 0');
    // Take the lock now (held until close), so a second user of the file fails here, not mid-conversation.
    db.exec('BEGIN EXCLUSIVE; COMMIT');
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => r.name);
    if (tables.length > 0 && !(tables.includes('meta') && tables.includes('records'))) throw new SdkError('STORE', `${path} is an SQLite database but not a Parley store`);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal' && mode !== 'memory') throw new SdkError('STORE', `journal mode ${String(mode)} instead of WAL`);
    db.pragma('synchronous = FULL');
    db.pragma('secure_delete = ON');
    return tables;
  }

  static #sealedMaster(db: Database.Database, path: string): Uint8Array {
    const meta = new Map(db.prepare<[], { name: string; value: unknown }>('SELECT name, value FROM meta').all().map((r) => [r.name, r.value]));
    const format = meta.get('format');
    if (format !== STORE_FORMAT) throw new SdkError('STORE', `${path} is a store of format ${String(format)}; this SDK reads format ${STORE_FORMAT}`);
    const master = meta.get('master');
    if (!(master instanceof Uint8Array)) throw new SdkError('STORE', `${path} has no master key`);
    return master;
  }

  /** A new store: schema, sealed master key and a fresh identity, in one transaction. */
  static #initialise(db: Database.Database, keys: RecordKeys, sealedMaster: Uint8Array, given: IdentityKeyPair | undefined): void {
    const row = identityRow(keys, given);
    db.transaction(() => {
      db.exec(SCHEMA);
      const meta = db.prepare('INSERT INTO meta (name, value) VALUES (?, ?)');
      meta.run('format', STORE_FORMAT);
      meta.run('master', sealedMaster);
      db.prepare('INSERT INTO records (kind, id, ord, cell) VALUES (?, ?, ?, ?)').run(row.kind, row.id, row.ord, row.cell);
    })();
  }

  // ------------------------------------------------------------ the file

  /**
   * Seal the store under a new passphrase. The master key is replaced too and
   * every record re-sealed (one transaction), so a copy of the file taken
   * before, opened with the old passphrase, reveals nothing written after.
   */
  async changePassphrase(newPassphrase: Passphrase): Promise<void> {
    this.assertOpen();
    const { keys, sealedMaster } = await RecordKeys.create(newPassphrase);
    try {
      this.reseal(keys, () => this.#db.prepare("UPDATE meta SET value = ? WHERE name = 'master'").run(sealedMaster));
    } catch (e) {
      keys.destroy();
      throw e;
    }
    this.#checkpoint();
  }

  /** Close the file: checkpoint and empty the WAL, release the lock, wipe the keys. Idempotent. Close the client first. */
  close(): void {
    if (this.closed) return;
    try {
      this.#checkpoint();
    } finally {
      this.markClosed();
      this.#db.close();
    }
  }

  #checkpoint(): void {
    try {
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (e) {
      throw storeError('checkpoint', e);
    }
  }
}

const SQLITE_MAGIC = new TextEncoder().encode('SQLite format 3\0');

/** What is at `path`: nothing, an empty file, a file beginning with the SQLite header string, or anything else. */
function fileKind(path: string): 'absent' | 'empty' | 'sqlite' | 'other' {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return 'absent';
    throw storeError(`cannot open ${path}`, e);
  }
  try {
    if (fstatSync(fd).size === 0) return 'empty';
    const head = new Uint8Array(SQLITE_MAGIC.length);
    const n = readSync(fd, head, 0, head.length, 0);
    return n === head.length && head.every((b, i) => b === SQLITE_MAGIC[i]) ? 'sqlite' : 'other';
  } finally {
    closeSync(fd);
  }
}
