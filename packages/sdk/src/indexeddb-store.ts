/**
 * `IndexedDbClientStore`: the browser's persistent ClientStore — the same
 * sealed records as `SqliteClientStore` (sealed-client-store.ts), kept in
 * an IndexedDB database per store name:
 *
 * ```
 * meta     key → value      'format' = 1, 'master' = the passphrase-sealed master key
 * records  key → { kind, id, ord, cell }    key = kind ":" hex(id)
 * ```
 *
 * The client's store interface is synchronous and IndexedDB is not, so the
 * records live in memory (sealed, as on disk) and every change is written
 * through: each write, or each `transaction(fn)` as a whole, becomes one
 * IndexedDB readwrite transaction, started at once; IndexedDB runs them in
 * the order they were started. So the database always holds a prefix of
 * the store's transactions, never half of one. What the last milliseconds
 * wrote may be lost if the page is closed before IndexedDB commits it:
 * `flush()` resolves once everything written so far is committed (`close()`
 * flushes). A write IndexedDB refuses (quota, a deleted database) makes
 * every later store call throw `STORE`: the client stops rather than go on
 * with state the disk does not have.
 *
 * One open per store name at a time, across the tabs of an origin: the
 * store holds a Web Lock (`navigator.locks`) named after the database until
 * `close` (which resolves once it is free again); a second open gets
 * `STORE`. Where the platform has no Web Locks (not a secure context), an
 * open is refused unless the application takes that on (`singleTab`).
 *
 * @module
 */
import { toHex } from './_bytes.ts';
import { SdkError } from './errors.ts';
import type { RecordRow, RecordTable } from './record-table.ts';
import { checkOpenArguments, identityRow, SealedClientStore, type SealedStoreOptions } from './sealed-client-store.ts';
import { RecordKeys, type Passphrase, type RecordKind } from './sealed-records.ts';

/** The database format this code writes and reads (the records are SqliteClientStore's). */
export const INDEXEDDB_STORE_FORMAT = 1;
const DB_VERSION = 1;
const DB_PREFIX = 'parley-store:';
/** Longest store name (it names the database and the lock). */
export const STORE_NAME_MAX = 128;

export interface IndexedDbStoreOptions extends SealedStoreOptions {
  /** Refuse to create a new store when none has this name (`STORE`); default false. */
  readonly mustExist?: boolean;
  /** The IndexedDB to use (default: `globalThis.indexedDB`). */
  readonly indexedDB?: IDBFactory;
  /**
   * Open even where the platform has no Web Locks (`navigator.locks`: only
   * secure contexts — https, localhost — have them), which alone keep a
   * second tab from opening the same store. Two tabs on one store each run
   * the same ratchets and lose messages for good, so this is for an
   * application that makes sure of one tab itself. Default false: `STORE`.
   */
  readonly singleTab?: boolean;
}


function rowKey(kind: RecordKind, id: Uint8Array): string {
  return `${kind}:${toHex(id)}`;
}

function compareRows(a: RecordRow, b: RecordRow): number {
  if (a.ord !== b.ord) return a.ord - b.ord;
  const x = toHex(a.id);
  const y = toHex(b.id);
  return x < y ? -1 : x > y ? 1 : 0;
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

function storeError(what: string, e: unknown): SdkError {
  if (e instanceof SdkError) return e;
  return new SdkError('STORE', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/** What a committed transaction changed: rows to put (by key) or delete (null); `cleared`: the rows are all there is. */
export interface Changes {
  readonly cleared: boolean;
  readonly puts: ReadonlyMap<string, RecordRow | null>;
}

/**
 * The records in memory, with undo for failed transactions and a change set
 * per committed one. Changes are collected as the keys touched and read
 * back at commit, so a nested transaction that failed (and was undone)
 * writes the restored values; after `replaceAll` the commit rewrites
 * everything.
 */
export class MemoryTable implements RecordTable {
  readonly #rows: Map<string, RecordRow>;
  readonly #commit: (changes: Changes) => void;
  #depth = 0;
  #undo: (() => void)[] = [];
  #touched = new Set<string>();
  #cleared = false;

  constructor(rows: readonly RecordRow[], commit: (changes: Changes) => void) {
    this.#rows = new Map(rows.map((r) => [rowKey(r.kind, r.id), r]));
    this.#commit = commit;
  }

  #write(key: string, row: RecordRow | null): void {
    const before = this.#rows.get(key);
    this.#undo.push(() => (before === undefined ? this.#rows.delete(key) : this.#rows.set(key, before)));
    if (row === null) this.#rows.delete(key);
    else this.#rows.set(key, row);
    this.#touched.add(key);
    if (this.#depth === 0) this.#flush();
  }

  #flush(): void {
    const keys = this.#cleared ? [...this.#rows.keys()] : [...this.#touched];
    const changes: Changes = { cleared: this.#cleared, puts: new Map(keys.map((k) => [k, this.#rows.get(k) ?? null])) };
    this.#touched = new Set();
    this.#cleared = false;
    this.#undo = [];
    if (changes.cleared || changes.puts.size > 0) this.#commit(changes);
  }

  get(kind: RecordKind, id: Uint8Array): Uint8Array | undefined {
    return this.#rows.get(rowKey(kind, id))?.cell;
  }
  put(row: RecordRow): void {
    this.#write(rowKey(row.kind, row.id), { kind: row.kind, id: row.id.slice(), ord: row.ord, cell: row.cell.slice() });
  }
  remove(kind: RecordKind, id: Uint8Array): boolean {
    const key = rowKey(kind, id);
    if (!this.#rows.has(key)) return false;
    this.#write(key, null);
    return true;
  }
  all(kind: RecordKind): readonly RecordRow[] {
    return [...this.#rows.values()].filter((r) => r.kind === kind).sort(compareRows);
  }
  nextOrd(kind: RecordKind): number {
    let max = 0;
    for (const r of this.#rows.values()) if (r.kind === kind && r.ord > max) max = r.ord;
    return max + 1;
  }
  count(kind: RecordKind): number {
    let n = 0;
    for (const r of this.#rows.values()) if (r.kind === kind) n++;
    return n;
  }
  evict(kind: RecordKind, n: number): void {
    this.transaction(() => {
      for (const r of this.all(kind).slice(0, n)) this.remove(r.kind, r.id);
    });
  }
  rows(): readonly RecordRow[] {
    return [...this.#rows.values()];
  }
  replaceAll(rows: readonly RecordRow[]): void {
    this.transaction(() => {
      for (const key of [...this.#rows.keys()]) this.#write(key, null);
      this.#cleared = true;
      for (const r of rows) this.put(r);
    });
  }
  transaction<T>(fn: () => T): T {
    this.#depth++;
    const mark = this.#undo.length;
    let result: T;
    try {
      result = fn();
    } catch (e) {
      // Undo this level's writes, newest first; an outer level decides about the rest.
      for (const undo of this.#undo.splice(mark).reverse()) undo();
      this.#depth--;
      if (this.#depth === 0) {
        this.#touched = new Set();
        this.#cleared = false;
      }
      throw e;
    }
    this.#depth--;
    if (this.#depth === 0) this.#flush();
    return result;
  }
}

interface LockManagerLike {
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<void>): Promise<void>;
}

/**
 * Hold the Web Lock `name` until `release` is called; `held` false when
 * another holder has it, null when the platform has no Web Locks. `release`
 * resolves once the lock manager has let go, so that an open or delete
 * right after it finds the lock free.
 */
async function holdLock(name: string): Promise<{ held: boolean | null; release: () => Promise<void> }> {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  if (locks === undefined) return { held: null, release: async () => undefined };
  let letGo: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (letGo = resolve));
  let finished: Promise<void> = Promise.resolve();
  const held = await new Promise<boolean>((resolve) => {
    finished = locks
      .request(name, { ifAvailable: true }, async (lock) => {
        resolve(lock !== null);
        if (lock !== null) await released;
      })
      .then(
        () => undefined,
        () => undefined,
      );
  });
  return {
    held,
    release: async () => {
      letGo();
      await finished;
    },
  };
}

export class IndexedDbClientStore extends SealedClientStore {
  protected readonly storeName = 'IndexedDbClientStore';
  readonly #db: IDBDatabase;
  readonly #releaseLock: () => Promise<void>;
  /** Settles when every write started so far is committed (or one failed). */
  #written: Promise<void> = Promise.resolve();
  #failure: SdkError | null = null;
  /** A new sealed master key to write with the next commit (changePassphrase). */
  #pendingMaster: Uint8Array | null = null;

  private constructor(db: IDBDatabase, rows: readonly RecordRow[], keys: RecordKeys, messagesMax: number, releaseLock: () => Promise<void>) {
    // The table reports commits to this store, which exists only after super() returns; nothing is written before.
    const target: { store: IndexedDbClientStore | null } = { store: null };
    super(new MemoryTable(rows, (changes) => target.store?.persist(changes)), keys, messagesMax);
    target.store = this;
    this.#db = db;
    this.#releaseLock = releaseLock;
  }

  /**
   * Open the store named `name` in this origin's IndexedDB, creating it
   * (with a new identity key pair, or `options.identity`) when there is
   * none. PBKDF2 runs once. `BAD_PASSPHRASE` when the passphrase does not
   * open it; `STORE` when it is open elsewhere (another tab), of another
   * format, or IndexedDB fails. Close it with {@link close} (after the client).
   */
  static async open(name: string, passphrase: Passphrase, options: IndexedDbStoreOptions = {}): Promise<IndexedDbClientStore> {
    if (typeof name !== 'string' || name.length === 0 || name.length > STORE_NAME_MAX) throw new SdkError('INVALID_ARGUMENT', `name must be 1…${STORE_NAME_MAX} characters`);
    const messagesMax = checkOpenArguments(passphrase, options);
    const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (factory === undefined) throw new SdkError('INVALID_ARGUMENT', 'this platform has no IndexedDB: pass options.indexedDB');
    const dbName = DB_PREFIX + name;
    const lock = await holdLock(dbName);
    if (lock.held === false) throw new SdkError('STORE', `the store ${name} is open elsewhere (another tab?)`);
    if (lock.held === null && options.singleTab !== true) {
      throw new SdkError('STORE', 'this page has no Web Locks (not a secure context?) to keep a second tab off the store: serve it over https or localhost, or pass singleTab: true if the application ensures one tab');
    }
    let db: IDBDatabase | null = null;
    let keys: RecordKeys | null = null;
    try {
      const opening = factory.open(dbName, DB_VERSION);
      let absent = false;
      opening.onupgradeneeded = (event) => {
        if (options.mustExist === true && event.oldVersion === 0) {
          // Opening would create the database: abort that, so a check for a store leaves no empty one behind.
          absent = true;
          opening.transaction?.abort();
          return;
        }
        const upgrading = opening.result;
        if (!upgrading.objectStoreNames.contains('meta')) upgrading.createObjectStore('meta');
        if (!upgrading.objectStoreNames.contains('records')) upgrading.createObjectStore('records');
      };
      db = await request(opening).catch((e: unknown) => {
        throw absent ? new SdkError('STORE', `there is no store ${name}`) : e;
      });
      const read = db.transaction(['meta', 'records'], 'readonly');
      const [format, master, values] = await Promise.all([
        request(read.objectStore('meta').get('format')),
        request(read.objectStore('meta').get('master')),
        request(read.objectStore('records').getAll()),
      ]);
      let rows: RecordRow[];
      if (format === undefined) {
        if (options.mustExist === true) throw new SdkError('STORE', `there is no store ${name}`);
        const created = await RecordKeys.create(passphrase);
        keys = created.keys;
        const identity = identityRow(created.keys, options.identity);
        const write = db.transaction(['meta', 'records'], 'readwrite');
        write.objectStore('meta').put(INDEXEDDB_STORE_FORMAT, 'format');
        write.objectStore('meta').put(created.sealedMaster, 'master');
        write.objectStore('records').put(identity, rowKey(identity.kind, identity.id));
        await done(write);
        rows = [identity];
      } else {
        if (format !== INDEXEDDB_STORE_FORMAT) throw new SdkError('STORE', `the store ${name} has format ${String(format)}; this SDK reads format ${INDEXEDDB_STORE_FORMAT}`);
        if (options.identity !== undefined) throw new SdkError('INVALID_ARGUMENT', `the store ${name} exists: identity is only for a new one`);
        if (!(master instanceof Uint8Array)) throw new SdkError('STORE', `the store ${name} has no master key`);
        rows = values.map((v: unknown) => readRow(v));
        keys = await RecordKeys.unlock(master, passphrase);
      }
      return new IndexedDbClientStore(db, rows, keys, messagesMax, lock.release);
    } catch (e) {
      keys?.destroy();
      db?.close();
      await lock.release();
      throw storeError(`cannot open the store ${name}`, e);
    }
  }

  /** Delete the store named `name` (it must not be open). */
  static async delete(name: string, options: { indexedDB?: IDBFactory } = {}): Promise<void> {
    if (typeof name !== 'string' || name.length === 0 || name.length > STORE_NAME_MAX) throw new SdkError('INVALID_ARGUMENT', `name must be 1…${STORE_NAME_MAX} characters`);
    const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (factory === undefined) throw new SdkError('INVALID_ARGUMENT', 'this platform has no IndexedDB');
    const dbName = DB_PREFIX + name;
    // An open store (this tab or another) holds the lock: refuse at once. Without
    // this, IndexedDB queues the deletion until that store closes, and carries it
    // out then — long after the caller gave up on it.
    const lock = await holdLock(dbName);
    if (lock.held === false) throw new SdkError('STORE', `the store ${name} is open (in this or another tab): close it first`);
    try {
      await new Promise<void>((resolve, reject) => {
        const req = factory.deleteDatabase(dbName);
        req.onsuccess = () => resolve();
        req.onerror = () => reject(req.error ?? new Error('deleteDatabase failed'));
        // Where the platform has no Web Locks, a store still open elsewhere
        // blocks this until it closes (IndexedDB cannot cancel a deletion).
      });
    } catch (e) {
      throw storeError(`cannot delete the store ${name}`, e);
    } finally {
      await lock.release();
    }
  }

  /** Write one committed change set through (started now; IndexedDB keeps the order). Internal. */
  protected persist(changes: Changes): void {
    if (this.#failure !== null) throw this.#failure;
    let tx: IDBTransaction;
    try {
      tx = this.#db.transaction(['meta', 'records'], 'readwrite');
      const records = tx.objectStore('records');
      if (changes.cleared) records.clear();
      for (const [key, row] of changes.puts) {
        if (row === null) records.delete(key);
        else records.put(row, key);
      }
      if (this.#pendingMaster !== null) {
        tx.objectStore('meta').put(this.#pendingMaster, 'master');
        this.#pendingMaster = null;
      }
    } catch (e) {
      this.#failure = storeError('writing to IndexedDB', e);
      throw this.#failure;
    }
    const committed = done(tx).catch((e: unknown) => {
      this.#failure ??= storeError('writing to IndexedDB', e);
    });
    this.#written = this.#written.then(() => committed);
  }

  override transaction<T>(fn: () => T): T {
    if (this.#failure !== null) throw this.#failure;
    return super.transaction(fn);
  }

  /** Resolves once everything written so far is in IndexedDB; rejects with the write failure, if any. */
  async flush(): Promise<void> {
    await this.#written;
    if (this.#failure !== null) throw this.#failure;
  }

  /**
   * Seal the store under a new passphrase: a new master key, every record
   * re-sealed, in one IndexedDB transaction.
   */
  async changePassphrase(newPassphrase: Passphrase): Promise<void> {
    this.assertOpen();
    const { keys, sealedMaster } = await RecordKeys.create(newPassphrase);
    try {
      this.reseal(keys, () => (this.#pendingMaster = sealedMaster));
    } catch (e) {
      this.#pendingMaster = null;
      keys.destroy();
      throw e;
    }
    await this.flush();
  }

  /** Flush, close the database, release the lock, wipe the keys. Idempotent. Close the client first. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.markClosed();
    try {
      await this.flush();
    } finally {
      this.#db.close();
      // Resolves once the lock is free: this tab may open or delete the store right after.
      await this.#releaseLock();
    }
  }
}

function readRow(v: unknown): RecordRow {
  const o = v as Partial<RecordRow> | null;
  if (typeof o !== 'object' || o === null || typeof o.kind !== 'string' || !(o.id instanceof Uint8Array) || typeof o.ord !== 'number' || !(o.cell instanceof Uint8Array)) {
    throw new SdkError('STORE', 'a record in IndexedDB is not a Parley record');
  }
  return { kind: o.kind, id: o.id, ord: o.ord, cell: o.cell };
}
