/**
 * `SqliteClientStore`: a ClientStore in one SQLite file (better-sqlite3),
 * every record sealed with Secure Cell under a key only the passphrase
 * opens (key hierarchy, row ids and record format: sealed-records.ts).
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
import Database from 'better-sqlite3';
import { IdentityKeyPair, OneTimePrekey, PqPrekey, Session, SignedPrekey, type DeviceAddress, type IdentityStore, type PrekeyStore, type SessionStore } from '@parley/protocol';
import { equalBytes, wipe } from '@parley/themis/hazmat';
import { fromUtf8, utf8 } from './_bytes.ts';
import type { Account } from './auth.ts';
import { messageKey, type ClientStore } from './client-store.ts';
import { SdkError } from './errors.ts';
import type { KeptMessage } from './events.ts';
import { peerRecordFromJson, peerRecordToJson, type PeerRecord } from './peer-keys.ts';
import { MESSAGE_CACHE_MAX } from './limits.ts';
import type { QueuedMessage } from './outbound-queue.ts';
import type { StoredContent } from './payload.ts';
import { headerInt, headerString, recordPart, RecordKeys, type Passphrase, type PlainRecord, type RecordKind } from './sealed-records.ts';

/** The file format this code writes and reads. */
export const STORE_FORMAT = 1;

const inspectSymbol: unique symbol = Symbol.for('nodejs.util.inspect.custom');

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

export interface SqliteStoreOptions {
  /** Refuse to create a new store when `path` holds none (`STORE`); default false. */
  readonly mustExist?: boolean;
  /** Kept messages (for `history`), oldest evicted first; default MESSAGE_CACHE_MAX. */
  readonly messagesMax?: number;
  /**
   * The identity of a new store (e.g. from `openKeyBackup`), instead of a
   * fresh one; copied, the caller keeps its object. `INVALID_ARGUMENT` when
   * the file already holds a store.
   */
  readonly identity?: IdentityKeyPair;
}

interface Row {
  readonly id: Uint8Array;
  readonly cell: Uint8Array;
}

/** Whatever better-sqlite3 threw, as `STORE` (its messages carry no bound values). */
function storeError(what: string, e: unknown): SdkError {
  if (e instanceof SdkError) return e;
  const code = typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : '';
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return new SdkError('STORE', `${what}: the store is in use by another connection`, { cause: e });
  return new SdkError('STORE', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

function addressKey(a: DeviceAddress): string {
  return JSON.stringify([a.userId, a.deviceId]);
}

export class SqliteClientStore implements ClientStore {
  readonly identity: IdentityStore;
  readonly prekeys: PrekeyStore;
  readonly sessions: SessionStore;
  readonly #db: Database.Database;
  #keys: RecordKeys;
  readonly #identityKeyPair: IdentityKeyPair;
  readonly #messagesMax: number;
  readonly #sql: {
    readonly get: Database.Statement<[string, Uint8Array], { cell: Uint8Array }>;
    readonly put: Database.Statement<[string, Uint8Array, number, Uint8Array]>;
    readonly remove: Database.Statement<[string, Uint8Array]>;
    readonly all: Database.Statement<[string], Row>;
    readonly nextOrd: Database.Statement<[string], { n: number }>;
    readonly count: Database.Statement<[string], { n: number }>;
    readonly evict: Database.Statement<[string, string, number]>;
  };
  /** Runs its argument in a transaction (a savepoint when one is open). */
  readonly #atomic: Database.Transaction<(fn: () => unknown) => unknown>;
  #closed = false;
  /** Who the store belongs to, for toString only (account() reads the record). */
  #label: string;

  private constructor(db: Database.Database, keys: RecordKeys, options: SqliteStoreOptions) {
    this.#db = db;
    this.#keys = keys;
    this.#messagesMax = options.messagesMax ?? MESSAGE_CACHE_MAX;
    this.#sql = {
      get: db.prepare('SELECT cell FROM records WHERE kind = ? AND id = ?'),
      put: db.prepare('INSERT INTO records (kind, id, ord, cell) VALUES (?, ?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET ord = excluded.ord, cell = excluded.cell'),
      remove: db.prepare('DELETE FROM records WHERE kind = ? AND id = ?'),
      all: db.prepare('SELECT id, cell FROM records WHERE kind = ? ORDER BY ord, id'),
      nextOrd: db.prepare('SELECT COALESCE(MAX(ord), 0) + 1 AS n FROM records WHERE kind = ?'),
      count: db.prepare('SELECT COUNT(*) AS n FROM records WHERE kind = ?'),
      evict: db.prepare('DELETE FROM records WHERE kind = ? AND id IN (SELECT id FROM records WHERE kind = ? ORDER BY ord, id LIMIT ?)'),
    };
    this.#atomic = db.transaction((fn: () => unknown) => fn());
    const identity = this.#get('identity', '');
    if (identity === undefined) throw new SdkError('STORE', 'the store has no identity record');
    const seed = recordPart(identity, 0, 'identity');
    try {
      this.#identityKeyPair = IdentityKeyPair.fromSeed(seed);
    } catch {
      throw new SdkError('STORE', 'the identity record does not hold an identity seed');
    } finally {
      wipe(seed);
    }
    const account = this.account();
    this.#label = account === null ? 'unregistered' : `${account.userId}/${account.deviceId}`;
    this.identity = this.#identityStore();
    this.prekeys = this.#prekeyStore();
    this.sessions = this.#sessionStore();
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
    if (!(typeof passphrase === 'string' || passphrase instanceof Uint8Array) || passphrase.length === 0) throw new SdkError('INVALID_ARGUMENT', 'passphrase must be a non-empty string or Uint8Array');
    const messagesMax = options.messagesMax ?? MESSAGE_CACHE_MAX;
    if (!Number.isSafeInteger(messagesMax) || messagesMax < 1) throw new SdkError('INVALID_ARGUMENT', 'messagesMax must be a positive integer');
    if (options.identity !== undefined && !(options.identity instanceof IdentityKeyPair)) throw new SdkError('INVALID_ARGUMENT', 'identity must be an IdentityKeyPair');
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
      return new SqliteClientStore(db, keys, options);
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
    let seed: Uint8Array;
    if (given !== undefined) seed = given.exportSeed();
    else {
      const identity = IdentityKeyPair.generate();
      seed = identity.exportSeed();
      identity.destroy();
    }
    try {
      db.transaction(() => {
        db.exec(SCHEMA);
        const meta = db.prepare('INSERT INTO meta (name, value) VALUES (?, ?)');
        meta.run('format', STORE_FORMAT);
        meta.run('master', sealedMaster);
        const id = keys.rowId('identity', '');
        db.prepare('INSERT INTO records (kind, id, ord, cell) VALUES (?, ?, 0, ?)').run('identity', id, keys.seal('identity', id, '', { header: {}, parts: [seed] }));
      })();
    } finally {
      wipe(seed);
    }
  }

  // ------------------------------------------------------------ records

  #live(): void {
    if (this.#closed) throw new SdkError('CLOSED', 'store closed');
  }

  #get(kind: RecordKind, key: string): PlainRecord | undefined {
    this.#live();
    const id = this.#keys.rowId(kind, key);
    let row: { cell: Uint8Array } | undefined;
    try {
      row = this.#sql.get.get(kind, id);
    } catch (e) {
      throw storeError(`reading a ${kind} record`, e);
    }
    return row === undefined ? undefined : this.#keys.open(kind, id, row.cell, key).record;
  }

  #put(kind: RecordKind, key: string, record: PlainRecord, ord = 0): void {
    this.#live();
    const id = this.#keys.rowId(kind, key);
    const cell = this.#keys.seal(kind, id, key, record);
    try {
      this.#sql.put.run(kind, id, ord, cell);
    } catch (e) {
      throw storeError(`writing a ${kind} record`, e);
    }
  }

  /** Delete a record; true iff it was there (one statement: of two racing callers, one sees true). */
  #remove(kind: RecordKind, key: string): boolean {
    this.#live();
    try {
      return this.#sql.remove.run(kind, this.#keys.rowId(kind, key)).changes === 1;
    } catch (e) {
      throw storeError(`deleting a ${kind} record`, e);
    }
  }

  /** Every record of a kind, in `ord` order. */
  #all(kind: RecordKind): PlainRecord[] {
    this.#live();
    let rows: Row[];
    try {
      rows = this.#sql.all.all(kind);
    } catch (e) {
      throw storeError(`reading ${kind} records`, e);
    }
    return rows.map((r) => this.#keys.open(kind, r.id, r.cell).record);
  }

  #nextOrd(kind: RecordKind): number {
    return this.#sql.nextOrd.get(kind)?.n ?? 1;
  }

  // ------------------------------------------------------------ the protocol's stores

  #identityStore(): IdentityStore {
    return {
      identityKeyPair: () => {
        this.#live();
        return this.#identityKeyPair;
      },
      isTrustedIdentity: (address, identityKey) => {
        const known = this.#get('trusted-identity', addressKey(address));
        return known === undefined || equalBytes(recordPart(known, 0, 'trusted-identity'), identityKey);
      },
      saveIdentity: (address, identityKey) => {
        this.#put('trusted-identity', addressKey(address), { header: {}, parts: [identityKey] });
      },
    };
  }

  #prekeyStore(): PrekeyStore {
    const load = <T>(kind: RecordKind, keyId: number, fromBytes: (b: Uint8Array) => T): T | undefined => {
      const r = this.#get(kind, String(keyId));
      if (r === undefined) return undefined;
      const bytes = recordPart(r, 0, kind);
      try {
        return fromBytes(bytes);
      } catch {
        throw new SdkError('STORE', `a ${kind} record does not hold a prekey`);
      } finally {
        wipe(bytes);
      }
    };
    return {
      loadSignedPrekey: (keyId) => load('signed-prekey', keyId, (b) => SignedPrekey.fromBytes(b)),
      loadPqPrekey: (keyId) => load('pq-prekey', keyId, (b) => PqPrekey.fromBytes(b)),
      loadOneTimePrekey: (keyId) => load('one-time-prekey', keyId, (b) => OneTimePrekey.fromBytes(b)),
      removeOneTimePrekey: (keyId) => this.#remove('one-time-prekey', String(keyId)),
    };
  }

  #sessionStore(): SessionStore {
    return {
      loadSession: (address) => {
        const r = this.#get('session', addressKey(address));
        if (r === undefined) return undefined;
        const bytes = recordPart(r, 0, 'session');
        try {
          return Session.deserialize(bytes);
        } catch {
          throw new SdkError('STORE', 'a session record does not hold a session');
        } finally {
          wipe(bytes);
        }
      },
      storeSession: (session) => {
        const bytes = session.serialize();
        try {
          this.#put('session', addressKey(session.remoteAddress), { header: {}, parts: [bytes] });
        } finally {
          wipe(bytes);
        }
      },
    };
  }

  // ------------------------------------------------------------ the client's records

  /** This device's Ed25519 identity key (what the server registers and peers pin). */
  get identityPublicKey(): Uint8Array {
    return this.#identityKeyPair.publicKey.slice();
  }

  account(): Account | null {
    const r = this.#get('state', 'account');
    return r === undefined ? null : { userId: headerString(r, 'userId', 'state'), deviceId: headerString(r, 'deviceId', 'state') };
  }
  setAccount(account: Account): void {
    this.#put('state', 'account', { header: { userId: account.userId, deviceId: account.deviceId }, parts: [] });
    this.#label = `${account.userId}/${account.deviceId}`;
  }

  addSignedPrekey(key: SignedPrekey): void {
    this.#putKey('signed-prekey', key.keyId, key.toBytes());
  }
  addPqPrekey(key: PqPrekey): void {
    this.#putKey('pq-prekey', key.keyId, key.toBytes());
  }
  addOneTimePrekeys(keys: readonly OneTimePrekey[]): void {
    this.transaction(() => {
      for (const k of keys) this.#putKey('one-time-prekey', k.keyId, k.toBytes());
    });
  }
  #putKey(kind: RecordKind, keyId: number, bytes: Uint8Array): void {
    try {
      this.#put(kind, String(keyId), { header: {}, parts: [bytes] });
    } finally {
      wipe(bytes);
    }
  }
  reserveOneTimePrekeyIds(count: number): number {
    if (!Number.isSafeInteger(count) || count < 0) throw new SdkError('INVALID_ARGUMENT', 'count must be a non-negative integer');
    return this.transaction(() => {
      const r = this.#get('state', 'next-prekey-id');
      const first = r === undefined ? 1 : headerInt(r, 'value', 'state');
      this.#put('state', 'next-prekey-id', { header: { value: first + count }, parts: [] });
      return first;
    });
  }
  prekeysPublished(): boolean {
    return this.#get('state', 'prekeys-published')?.header['value'] === true;
  }
  setPrekeysPublished(published: boolean): void {
    this.#put('state', 'prekeys-published', { header: { value: published }, parts: [] });
  }

  roomCursor(roomId: string): number {
    const r = this.#get('room-cursor', roomId);
    return r === undefined ? 0 : headerInt(r, 'seq', 'room-cursor');
  }
  roomCursors(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.#all('room-cursor')) out[headerString(r, 'roomId', 'room-cursor')] = headerInt(r, 'seq', 'room-cursor');
    return out;
  }
  setRoomCursor(roomId: string, seq: number): void {
    this.transaction(() => {
      if (seq > this.roomCursor(roomId)) this.#put('room-cursor', roomId, { header: { roomId, seq }, parts: [] });
    });
  }

  loadMessage(roomId: string, seq: number): KeptMessage | undefined {
    const r = this.#get('message', messageKey(roomId, seq));
    return r === undefined ? undefined : readMessage(r);
  }
  storeMessage(message: KeptMessage): void {
    const content = contentBytes(message);
    const header = {
      roomId: message.roomId,
      seq: message.seq,
      id: message.id,
      userId: message.sender.userId,
      deviceId: message.sender.deviceId,
      outgoing: message.outgoing,
      sentAt: message.sentAt,
      serverTs: message.serverTs,
      kind: message.kind,
    };
    this.transaction(() => {
      this.#put('message', messageKey(message.roomId, message.seq), { header, parts: [content] }, this.#nextOrd('message'));
      const excess = (this.#sql.count.get('message')?.n ?? 0) - this.#messagesMax;
      if (excess > 0) this.#sql.evict.run('message', 'message', excess);
    });
  }

  /**
   * Every kept message of `roomId` (of every room without it), oldest kept
   * first. Row ids name no room, so this opens every message record (a
   * scan; at most `messagesMax`) and keeps those of the room: nothing about
   * rooms or words is written to the file for it.
   */
  keptMessages(roomId?: string): KeptMessage[] {
    const out: KeptMessage[] = [];
    for (const r of this.#all('message')) {
      if (roomId !== undefined && r.header['roomId'] !== roomId) continue;
      out.push(readMessage(r));
    }
    return out;
  }

  peerRecord(userId: string): PeerRecord | undefined {
    const r = this.#get('peer', userId);
    return r === undefined ? undefined : peerRecordFromJson(r.header['record']);
  }
  setPeerRecord(userId: string, record: PeerRecord): void {
    this.#put('peer', userId, { header: { record: peerRecordToJson(record) }, parts: [] });
  }

  // ------------------------------------------------------------ optional capabilities

  /** Run `fn` (synchronous) as one SQLite transaction; nested calls become savepoints. `fn`'s own errors pass through unchanged. */
  transaction<T>(fn: () => T): T {
    this.#live();
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

  queuedMessages(): QueuedMessage[] {
    return this.#all('outbound').map(readQueued);
  }
  addQueuedMessage(message: QueuedMessage): void {
    const header = { roomId: message.roomId, clientId: message.clientId, sentAt: message.sentAt, kind: message.content.kind };
    this.transaction(() => this.#put('outbound', message.clientId, { header, parts: [message.body, contentBytes(message.content)] }, this.#nextOrd('outbound')));
  }
  removeQueuedMessage(clientId: string): void {
    this.#remove('outbound', clientId);
  }

  // ------------------------------------------------------------ the file

  /**
   * Seal the store under a new passphrase. The master key is replaced too and
   * every record re-sealed (one transaction), so a copy of the file taken
   * before, opened with the old passphrase, reveals nothing written after.
   */
  async changePassphrase(newPassphrase: Passphrase): Promise<void> {
    this.#live();
    const { keys, sealedMaster } = await RecordKeys.create(newPassphrase);
    this.#live();
    try {
      this.transaction(() => {
        const rows = this.#db.prepare<[], { kind: RecordKind; id: Uint8Array; ord: number; cell: Uint8Array }>('SELECT kind, id, ord, cell FROM records').all();
        this.#db.prepare('DELETE FROM records').run();
        const insert = this.#db.prepare('INSERT INTO records (kind, id, ord, cell) VALUES (?, ?, ?, ?)');
        for (const row of rows) {
          const { key, record } = this.#keys.open(row.kind, row.id, row.cell);
          const id = keys.rowId(row.kind, key);
          insert.run(row.kind, id, row.ord, keys.seal(row.kind, id, key, record));
          for (const p of record.parts) wipe(p);
        }
        this.#db.prepare("UPDATE meta SET value = ? WHERE name = 'master'").run(sealedMaster);
      });
    } catch (e) {
      keys.destroy();
      throw e;
    }
    const old = this.#keys;
    this.#keys = keys;
    old.destroy();
    this.#checkpoint();
  }

  /** Close the file: checkpoint and empty the WAL, release the lock, wipe the keys. Idempotent. Close the client first. */
  close(): void {
    if (this.#closed) return;
    try {
      this.#checkpoint();
    } finally {
      this.#closed = true;
      this.#db.close();
      this.#keys.destroy();
      this.#identityKeyPair.destroy();
    }
  }

  #checkpoint(): void {
    try {
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (e) {
      throw storeError('checkpoint', e);
    }
  }

  toString(): string {
    return `SqliteClientStore(${this.#label}, ${this.#closed ? 'closed' : 'open'}, secrets redacted)`;
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

function contentBytes(c: StoredContent): Uint8Array {
  return c.kind === 'text' ? utf8(c.text) : c.kind === 'binary' ? c.bytes : new Uint8Array(0);
}

function readContent(r: PlainRecord, part: number, kind: RecordKind): StoredContent {
  const bytes = recordPart(r, part, kind);
  const k = r.header['kind'];
  if (k === 'binary') return { kind: 'binary', bytes };
  if (k === 'control') return { kind: 'control' };
  const text = k === 'text' ? fromUtf8(bytes) : null;
  if (text === null) throw new SdkError('STORE', `a ${kind} record has no valid content`);
  return { kind: 'text', text };
}

function readMessage(r: PlainRecord): KeptMessage {
  const kind = 'message';
  const outgoing = r.header['outgoing'];
  if (typeof outgoing !== 'boolean') throw new SdkError('STORE', 'a message record lacks outgoing');
  return {
    ...readContent(r, 0, kind),
    roomId: headerString(r, 'roomId', kind),
    seq: headerInt(r, 'seq', kind),
    id: headerString(r, 'id', kind),
    sender: { userId: headerString(r, 'userId', kind), deviceId: headerString(r, 'deviceId', kind) },
    outgoing,
    sentAt: headerInt(r, 'sentAt', kind),
    serverTs: headerInt(r, 'serverTs', kind),
  };
}

function readQueued(r: PlainRecord): QueuedMessage {
  const kind = 'outbound';
  return {
    roomId: headerString(r, 'roomId', kind),
    clientId: headerString(r, 'clientId', kind),
    body: recordPart(r, 0, kind),
    sentAt: headerInt(r, 'sentAt', kind),
    content: readContent(r, 1, kind),
  };
}
