/**
 * The server's SQLite store: reads on the event loop, writes on a thread.
 *
 * better-sqlite3 is synchronous, and with `synchronous = FULL` every commit
 * waits for an fsync of the WAL. On the event loop that wait stops every
 * connection: in the 2-member-room benchmark the loop spent a quarter of its
 * time inside commits, and each publish's latency included every other
 * publish's fsync (bench/SERVER-RESULTS.md). Here a writer thread owns the
 * write connection — a plain `SqliteStorage`, group commit included — and
 * every method that writes is a message to it; while it commits, the event
 * loop keeps reading frames, and what arrives meanwhile joins the next
 * commit. Reads stay synchronous on a `query_only` connection of the event
 * loop's own: WAL readers never wait for the writer, and they see every
 * commit whose result has come back.
 *
 *   event loop                         writer thread
 *   ──────────                         ─────────────
 *   append(), setMember(), …  ─calls─▶  SqliteStorage (BEGIN IMMEDIATE …
 *     (batched per loop turn)           COMMIT + fsync, one per batch)
 *   promises settle in order ◀results─  (batched per thread turn)
 *   getRoom(), readAfter(), …
 *     on the reader connection
 *
 * Calls reach the thread in call order and results come back in completion
 * order, which for appends is call order: `appendsInCallOrder` holds.
 *
 * The writer thread's loop and the messages to and from it:
 * sqlite-writer.ts.
 *
 * @module
 */
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { mkdirSync } from 'node:fs';
import { SqliteStorage } from './sqlite.ts';
import { rebuild, runWriter, WRITER_ROLE, type Call, type FromWorker, type ToWorker, type WriteMethod } from './sqlite-writer.ts';
import type {
  AppendOptions,
  ChangeMemberOptions,
  AppendResult,
  MembershipChange,
  Role,
  DeviceAddition,
  DeviceLimits,
  DeviceRecord,
  DeviceRemoval,
  KeyPackage,
  MailboxInput,
  MailboxEnqueued,
  Member,
  OneTimePrekey,
  KeyBackupRecord,
  BlobCutoffs,
  BlobRecord,
  PqPrekey,
  ReadMarker,
  RefreshPolicy,
  RefreshRotation,
  RefreshSuccessor,
  RefreshTokenRecord,
  RoomEntryInput,
  RoomRecord,
  SignedPrekey,
  Storage,
  UserRecord,
} from './types.ts';

export class ThreadedSqliteStorage implements Storage {
  readonly appendsInCallOrder = true;
  readonly #reader: SqliteStorage;
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  #outbox: Call[] = [];
  #scheduled = false;
  #nextId = 1;
  #failure: Error | null = null;
  #closed: Promise<void> | null = null;
  #onClosed: (() => void) | null = null;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    // The reader first: it creates the file and switches it to WAL before
    // the writer thread opens it.
    this.#reader = new SqliteStorage(dir, { role: 'reader' });
    this.#worker = new Worker(new URL(import.meta.url), { workerData: { role: WRITER_ROLE, dir } });
    this.#worker.on('message', (m: FromWorker) => this.#onMessage(m));
    this.#worker.on('error', (err) => this.#fail(new Error(`storage: writer thread failed: ${err.message}`)));
    this.#worker.on('exit', () => {
      this.#fail(new Error('storage: writer thread stopped'));
      this.#onClosed?.();
    });
  }

  #call(method: WriteMethod, args: unknown[]): Promise<unknown> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    if (this.#closed !== null) return Promise.reject(new Error('storage: closed'));
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      this.#pending.set(id, { resolve, reject });
      this.#outbox.push({ id, method, args });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#post());
      }
    });
  }

  #post(): void {
    this.#scheduled = false;
    if (this.#outbox.length === 0 || this.#failure !== null) return;
    const calls = this.#outbox;
    this.#outbox = [];
    this.#worker.postMessage({ calls } satisfies ToWorker);
  }

  #onMessage(m: FromWorker): void {
    if ('closed' in m) return;
    for (const r of m.results) {
      const p = this.#pending.get(r.id);
      if (p === undefined) continue;
      this.#pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(rebuild(r.error));
    }
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const p of this.#pending.values()) p.reject(this.#failure);
    this.#pending.clear();
    this.#outbox = [];
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#post();
      if (this.#failure === null) {
        const exited = new Promise<void>((resolve) => {
          this.#onClosed = resolve;
        });
        this.#worker.postMessage({ close: true } satisfies ToWorker);
        await exited;
      }
      await this.#reader.close();
    })();
    return this.#closed;
  }

  // ---- writes: on the writer thread ----

  migrate(): Promise<void> {
    return this.#call('migrate', []) as Promise<void>;
  }

  createUser(user: UserRecord, firstDevice?: DeviceRecord): Promise<boolean> {
    return this.#call('createUser', [user, firstDevice]) as Promise<boolean>;
  }

  addDevice(device: DeviceRecord): Promise<boolean> {
    return this.#call('addDevice', [device]) as Promise<boolean>;
  }

  addDeviceWithin(device: DeviceRecord, limits: DeviceLimits): Promise<DeviceAddition> {
    return this.#call('addDeviceWithin', [device, limits]) as Promise<DeviceAddition>;
  }

  removeDevice(userId: string, deviceId: string, removedAt: number): Promise<DeviceRemoval> {
    return this.#call('removeDevice', [userId, deviceId, removedAt]) as Promise<DeviceRemoval>;
  }

  resetSessions(userId: string, epoch: string): Promise<number> {
    return this.#call('resetSessions', [userId, epoch]) as Promise<number>;
  }

  setSignedPrekey(userId: string, deviceId: string, prekey: SignedPrekey): Promise<void> {
    return this.#call('setSignedPrekey', [userId, deviceId, prekey]) as Promise<void>;
  }

  addOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<number> {
    return this.#call('addOneTimePrekeys', [userId, deviceId, prekeys]) as Promise<number>;
  }

  replaceOneTimePrekeys(userId: string, deviceId: string, prekeys: readonly OneTimePrekey[]): Promise<{ dropped: number; held: number }> {
    return this.#call('replaceOneTimePrekeys', [userId, deviceId, prekeys]) as Promise<{ dropped: number; held: number }>;
  }

  claimOneTimePrekey(userId: string, deviceId: string): Promise<OneTimePrekey | null> {
    return this.#call('claimOneTimePrekey', [userId, deviceId]) as Promise<OneTimePrekey | null>;
  }

  setPqPrekey(userId: string, deviceId: string, prekey: PqPrekey): Promise<void> {
    return this.#call('setPqPrekey', [userId, deviceId, prekey]) as Promise<void>;
  }

  addKeyPackages(userId: string, deviceId: string, packages: readonly KeyPackage[]): Promise<number> {
    return this.#call('addKeyPackages', [userId, deviceId, packages]) as Promise<number>;
  }

  claimKeyPackage(userId: string, deviceId: string): Promise<KeyPackage | null> {
    return this.#call('claimKeyPackage', [userId, deviceId]) as Promise<KeyPackage | null>;
  }

  createRoom(room: RoomRecord): Promise<boolean> {
    return this.#call('createRoom', [room]) as Promise<boolean>;
  }

  setMember(roomId: string, member: Member): Promise<void> {
    return this.#call('setMember', [roomId, member]) as Promise<void>;
  }

  removeMember(roomId: string, userId: string): Promise<boolean> {
    return this.#call('removeMember', [roomId, userId]) as Promise<boolean>;
  }

  append(roomId: string, input: RoomEntryInput, options?: AppendOptions): Promise<AppendResult> {
    // A new entry comes back as its seq alone (the rest is the input), so
    // the body crosses the thread boundary once, not twice.
    return (this.#call('append', options === undefined ? [roomId, input] : [roomId, input, options]) as Promise<AppendResult | { seq: number }>).then((r) =>
      'seq' in r
        ? { entry: { roomId, seq: r.seq, kind: input.kind, senderUserId: input.senderUserId, senderDeviceId: input.senderDeviceId, clientId: input.clientId, body: input.body, createdAt: input.createdAt }, duplicate: false }
        : r,
    );
  }

  enqueueMailbox(userId: string, deviceId: string, input: MailboxInput, max: number, maxFromSender = max): Promise<MailboxEnqueued | null> {
    return this.#call('enqueueMailbox', [userId, deviceId, input, max, maxFromSender]) as Promise<MailboxEnqueued | null>;
  }

  ackMailbox(userId: string, deviceId: string, upToId: number): Promise<number> {
    return this.#call('ackMailbox', [userId, deviceId, upToId]) as Promise<number>;
  }

  putRefreshToken(record: RefreshTokenRecord, familiesMax: number): Promise<boolean> {
    return this.#call('putRefreshToken', [record, familiesMax]) as Promise<boolean>;
  }

  rotateRefreshToken(tokenHash: string, successor: RefreshSuccessor, policy: RefreshPolicy): Promise<RefreshRotation> {
    return this.#call('rotateRefreshToken', [tokenHash, successor, policy]) as Promise<RefreshRotation>;
  }

  deleteRefreshTokensOf(userId: string, deviceId: string): Promise<number> {
    return this.#call('deleteRefreshTokensOf', [userId, deviceId]) as Promise<number>;
  }

  putKeyBackup(userId: string, record: KeyBackupRecord): Promise<void> {
    return this.#call('putKeyBackup', [userId, record]) as Promise<void>;
  }

  changeMember(roomId: string, userId: string, expected: Role | null, role: Role | null, event: RoomEntryInput, options?: ChangeMemberOptions): Promise<MembershipChange | null> {
    return this.#call('changeMember', options === undefined ? [roomId, userId, expected, role, event] : [roomId, userId, expected, role, event, options]) as Promise<MembershipChange | null>;
  }

  serverSecret(name: string, initial: Uint8Array): Promise<Uint8Array> {
    return this.#call('serverSecret', [name, initial]) as Promise<Uint8Array>;
  }

  setReceipt(roomId: string, userId: string, kind: 'delivered' | 'read', seq: number, at: number): Promise<{ marker: ReadMarker; changed: boolean }> {
    return this.#call('setReceipt', [roomId, userId, kind, seq, at]) as Promise<{ marker: ReadMarker; changed: boolean }>;
  }

  createBlob(blob: Omit<BlobRecord, 'complete' | 'completedAt'>): Promise<void> {
    return this.#call('createBlob', [blob]) as Promise<void>;
  }

  putBlobChunk(blobId: string, index: number, data: Uint8Array): Promise<boolean> {
    return this.#call('putBlobChunk', [blobId, index, data]) as Promise<boolean>;
  }

  completeBlob(blobId: string, at: number): Promise<boolean> {
    return this.#call('completeBlob', [blobId, at]) as Promise<boolean>;
  }

  deleteBlob(blobId: string): Promise<boolean> {
    return this.#call('deleteBlob', [blobId]) as Promise<boolean>;
  }

  expireBlobs(cutoffs: BlobCutoffs, limit: number): Promise<number> {
    return this.#call('expireBlobs', [cutoffs, limit]) as Promise<number>;
  }

  // ---- reads: on the event loop ----

  listReceipts(roomId: string): Promise<ReadMarker[]> {
    return this.#reader.listReceipts(roomId);
  }

  getUser(userId: string): ReturnType<Storage['getUser']> {
    return this.#reader.getUser(userId);
  }

  getDevice(userId: string, deviceId: string): ReturnType<Storage['getDevice']> {
    return this.#reader.getDevice(userId, deviceId);
  }

  listDevices(userId: string): ReturnType<Storage['listDevices']> {
    return this.#reader.listDevices(userId);
  }

  removedDeviceKey(userId: string, deviceId: string): ReturnType<Storage['removedDeviceKey']> {
    return this.#reader.removedDeviceKey(userId, deviceId);
  }

  getSignedPrekey(userId: string, deviceId: string): ReturnType<Storage['getSignedPrekey']> {
    return this.#reader.getSignedPrekey(userId, deviceId);
  }

  countOneTimePrekeys(userId: string, deviceId: string): ReturnType<Storage['countOneTimePrekeys']> {
    return this.#reader.countOneTimePrekeys(userId, deviceId);
  }

  getPqPrekey(userId: string, deviceId: string): ReturnType<Storage['getPqPrekey']> {
    return this.#reader.getPqPrekey(userId, deviceId);
  }

  countKeyPackages(userId: string, deviceId: string): ReturnType<Storage['countKeyPackages']> {
    return this.#reader.countKeyPackages(userId, deviceId);
  }

  countStoredOneTimePrekeys(userId: string, deviceId: string, keyIds: readonly number[]): ReturnType<Storage['countStoredOneTimePrekeys']> {
    return this.#reader.countStoredOneTimePrekeys(userId, deviceId, keyIds);
  }

  countStoredKeyPackages(userId: string, deviceId: string, refs: readonly string[]): ReturnType<Storage['countStoredKeyPackages']> {
    return this.#reader.countStoredKeyPackages(userId, deviceId, refs);
  }

  getRoom(roomId: string): ReturnType<Storage['getRoom']> {
    return this.#reader.getRoom(roomId);
  }

  getMember(roomId: string, userId: string): ReturnType<Storage['getMember']> {
    return this.#reader.getMember(roomId, userId);
  }

  listMembers(roomId: string): ReturnType<Storage['listMembers']> {
    return this.#reader.listMembers(roomId);
  }

  listRoomsOf(userId: string): ReturnType<Storage['listRoomsOf']> {
    return this.#reader.listRoomsOf(userId);
  }

  countRoomsOf(userId: string): ReturnType<Storage['countRoomsOf']> {
    return this.#reader.countRoomsOf(userId);
  }

  readMembershipEvents(roomId: string, afterSeq: number, limit: number): ReturnType<Storage['readMembershipEvents']> {
    return this.#reader.readMembershipEvents(roomId, afterSeq, limit);
  }

  readAfter(roomId: string, afterSeq: number, limit: number, maxBytes?: number): ReturnType<Storage['readAfter']> {
    return this.#reader.readAfter(roomId, afterSeq, limit, maxBytes);
  }

  readBefore(roomId: string, beforeSeq: number, limit: number, maxBytes?: number): ReturnType<Storage['readBefore']> {
    return this.#reader.readBefore(roomId, beforeSeq, limit, maxBytes);
  }

  lastSeq(roomId: string): ReturnType<Storage['lastSeq']> {
    return this.#reader.lastSeq(roomId);
  }

  readMailbox(userId: string, deviceId: string, afterId: number, limit: number): ReturnType<Storage['readMailbox']> {
    return this.#reader.readMailbox(userId, deviceId, afterId, limit);
  }

  getKeyBackup(userId: string): ReturnType<Storage['getKeyBackup']> {
    return this.#reader.getKeyBackup(userId);
  }

  getBlob(blobId: string): ReturnType<Storage['getBlob']> {
    return this.#reader.getBlob(blobId);
  }

  countBlobChunks(blobId: string): ReturnType<Storage['countBlobChunks']> {
    return this.#reader.countBlobChunks(blobId);
  }

  getBlobChunk(blobId: string, index: number): ReturnType<Storage['getBlobChunk']> {
    return this.#reader.getBlobChunk(blobId, index);
  }

  blobUsage(userId: string): ReturnType<Storage['blobUsage']> {
    return this.#reader.blobUsage(userId);
  }
}

// ---------------------------------------------------------------- the thread
// The Worker above runs this module; its loop is in sqlite-writer.ts.
if (!isMainThread && (workerData as { role?: unknown } | null)?.role === WRITER_ROLE) runWriter((workerData as { dir: string }).dir);
