/**
 * SqliteClientStore without a server: every record kind round-trips and
 * survives closing and reopening the file; the passphrase is required and a
 * wrong one changes nothing; the raw bytes of the file (database and WAL)
 * hold no plaintext, no private key, no user, device or room id; records
 * cannot be moved between rows; transactions roll back; one open at a time.
 * The protocol's stores are exercised by the real protocol code
 * (`decryptFromDevice` spends a one-time prekey, trusts an identity and
 * stores a session).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { decryptFromDevice, encryptForDevices, IdentityKeyPair, makePrekeyBundle, OneTimePrekey, PqPrekey, SignedPrekey, type DeviceAddress } from '@parley/protocol';
import { MemoryClientStore } from '../src/client-store.ts';
import { SdkError } from '../src/errors.ts';
import type { ChatMessage, KeptMessage } from '../src/events.ts';
import type { QueuedMessage } from '../src/outbound-queue.ts';
import type { PeerRecord } from '../src/peer-keys.ts';
import type { KeptVerification } from '../src/peer-verification.ts';
import { ONE_TIME_PREKEYS_DISCARD_SCAN_MAX } from '../src/limits.ts';
import { RECORD_PAD_BYTES } from '../src/sealed-records.ts';
import { SqliteClientStore } from '../src/sqlite-store.ts';
import { marker } from './_harness.ts';

const PASS = 'correct horse battery staple';

/** The forms a secret could take in a file. */
function encodings(secret: Uint8Array): Buffer[] {
  const b = Buffer.from(secret);
  return [b, Buffer.from(b.toString('hex')), Buffer.from(b.toString('base64').replace(/=+$/, '')), Buffer.from(b.toString('base64url'))];
}

/** The store file and its WAL, as they are on disk now. */
function fileBytes(path: string): Buffer {
  return Buffer.concat([path, `${path}-wal`, `${path}-journal`].filter((p) => existsSync(p)).map((p) => readFileSync(p)));
}

/**
 * Every 16-byte window (step 8) of a secret record that looks random (at
 * least 12 distinct bytes, so runs of zeros and small counters, which any
 * file has, are left out): none may be on disk, whatever part leaked.
 */
function windows(bytes: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i + 16 <= bytes.length; i += 8) {
    const w = bytes.subarray(i, i + 16);
    if (new Set(w).size >= 12) out.push(Buffer.from(w));
  }
  return out;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => SdkError.is(e) && e.code === code);
}

describe('SqliteClientStore', () => {
  let dir: string;
  let n = 0;
  const open: SqliteClientStore[] = [];
  const file = (): string => join(dir, `store-${++n}.parley`);
  const track = (s: SqliteClientStore): SqliteClientStore => {
    open.push(s);
    return s;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-sdk-store-'));
  });
  after(() => {
    for (const s of open) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Bob's device on a fresh SQLite store, with published-style prekeys, and a
   * first message from Alice (in-memory) opened through the protocol's
   * multi-device layer: a session, a trusted identity, a spent one-time prekey.
   */
  async function populated(path: string) {
    const store = track(await SqliteClientStore.open(path, PASS));
    const userId = marker('user').toLowerCase();
    const room1 = marker('room-one');
    const room2 = marker('room-two');
    const bob: DeviceAddress = { userId, deviceId: marker('device') };
    const alice = MemoryClientStore.create();
    const aliceAddress: DeviceAddress = { userId: marker('peer').toLowerCase(), deviceId: 'laptop' };
    store.setAccount(bob);

    const identity = store.identity.identityKeyPair();
    const spk = SignedPrekey.generate(identity, 1);
    const pq = PqPrekey.generate(identity, 1);
    const first = store.reserveOneTimePrekeyIds(3);
    const otks = OneTimePrekey.generate(first, 3);
    const secrets: Uint8Array[] = [identity.exportSeed(), spk.exportPrivateKey(), pq.toBytes().subarray(6, 6 + 64), ...otks.map((k) => k.exportPrivateKey())];
    const records: Uint8Array[] = [spk.toBytes(), pq.toBytes(), ...otks.map((k) => k.toBytes())];
    store.addSignedPrekey(spk);
    store.addPqPrekey(pq);
    store.addOneTimePrekeys(otks);
    store.setPrekeysPublished(true);

    const ad = new TextEncoder().encode(room1);
    const firstText = marker('first-plaintext');
    const [env] = encryptForDevices(alice, aliceAddress, [{ ...bob, bundle: makePrekeyBundle(identity, spk, otks[1] ?? null, pq) }], new TextEncoder().encode(firstText), ad);
    assert.ok(env !== undefined);
    const opened = store.transaction(() => decryptFromDevice(store, bob, aliceAddress, env.envelope, ad));
    assert.equal(new TextDecoder().decode(opened), firstText);
    const session = store.sessions.loadSession(aliceAddress);
    assert.ok(session !== undefined);
    records.push(session.serialize());

    const text = marker('kept-text');
    const binary = globalThis.crypto.getRandomValues(new Uint8Array(40));
    const messages: KeptMessage[] = [
      { kind: 'text', text: `hello ${text}`, roomId: room1, seq: 7, id: marker('id'), sender: aliceAddress, outgoing: false, sentAt: 1_700_000_000_000, serverTs: 1_700_000_000_050 },
      { kind: 'binary', bytes: binary, roomId: room2, seq: 3, id: marker('id'), sender: bob, outgoing: true, sentAt: 1_700_000_000_100, serverTs: 1_700_000_000_150 },
      { kind: 'control', roomId: room1, seq: 6, id: marker('id'), sender: aliceAddress, outgoing: false, sentAt: 1_700_000_000_200, serverTs: 1_700_000_000_250 },
      { kind: 'control', controlType: 2, roomId: room2, seq: 1, id: marker('id'), sender: aliceAddress, outgoing: false, sentAt: 1_700_000_000_210, serverTs: 1_700_000_000_260 },
    ];
    const peer: PeerRecord = {
      devices: [{ deviceId: 'laptop', identityKey: alice.identityPublicKey }],
      verified: { at: 1_700_000_000_300, devices: [{ deviceId: 'laptop', identityKey: alice.identityPublicKey }] },
      refused: [{ deviceId: 'laptop', identityKey: new Uint8Array(32).fill(9) }],
      former: [{ deviceId: 'old-phone', identityKey: new Uint8Array(32).fill(8) }],
    };
    store.setPeerRecord(aliceAddress.userId, peer);
    for (const m of messages) store.storeMessage(m);
    store.setRoomCursor(room1, 7);
    store.setRoomCursor(room2, 3);
    store.setRoomCursor(room2, 2); // lower: ignored

    const queuedText = marker('queued-text');
    const body = globalThis.crypto.getRandomValues(new Uint8Array(300));
    const queued: QueuedMessage[] = [
      { roomId: room1, clientId: marker('q1'), body, sentAt: 1_700_000_001_000, content: { kind: 'text', text: queuedText } },
      { roomId: room2, clientId: marker('q2'), body: body.slice(0, 10), sentAt: 1_700_000_002_000, content: { kind: 'binary', bytes: binary.slice(0, 5) } },
    ];
    for (const q of queued) store.addQueuedMessage(q);

    // Open verifications: a request waiting for its answer (with the peer's start) and one under way.
    const start = globalThis.crypto.getRandomValues(new Uint8Array(210));
    const requestId = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(16))).toString('hex');
    const verifications: KeptVerification[] = [
      { state: 'request', request: { userId: aliceAddress.userId, roomId: room1, from: aliceAddress, verificationId: requestId, requestedAt: 1_700_000_003_000 }, start, receivedAt: 1_700_000_003_100 },
      { state: 'running', userId: marker('verifying').toLowerCase(), roomId: room2, verificationId: 'ab'.repeat(16) },
    ];
    store.keepVerification(aliceAddress.userId, { state: 'running', userId: aliceAddress.userId, roomId: room2, verificationId: 'cd'.repeat(16) });
    for (const v of verifications) store.keepVerification(v.state === 'request' ? v.request.userId : v.userId, v); // replaces the first

    return {
      store,
      bob,
      alice,
      aliceAddress,
      rooms: [room1, room2],
      messages,
      peer,
      queued,
      verifications,
      publicKey: store.identityPublicKey,
      secrets,
      records,
      plaintexts: [firstText, text, queuedText].map((t) => Buffer.from(t)).concat([Buffer.from(binary), Buffer.from(body), Buffer.from(start)]),
      ids: [userId, bob.deviceId, aliceAddress.userId, room1, room2, requestId, ...queued.map((q) => q.clientId), ...messages.map((m) => m.id)],
    };
  }

  it('keeps every kind of record, and reopening the file with the passphrase restores them all', async () => {
    const path = file();
    const p = await populated(path);
    const check = (s: SqliteClientStore, label: string): void => {
      assert.deepEqual(s.account(), p.bob, `${label}: account`);
      assert.deepEqual(Buffer.from(s.identityPublicKey), Buffer.from(p.publicKey), `${label}: identity`);
      assert.equal(s.prekeysPublished(), true, `${label}: published flag`);
      assert.equal(s.prekeys.loadSignedPrekey(1)?.keyId, 1, `${label}: signed prekey`);
      assert.deepEqual(Buffer.from(s.prekeys.loadSignedPrekey(1)?.toBytes() ?? []), Buffer.from(p.records[0] ?? []), `${label}: signed prekey bytes`);
      assert.deepEqual(Buffer.from(s.prekeys.loadPqPrekey(1)?.toBytes() ?? []), Buffer.from(p.records[1] ?? []), `${label}: PQ prekey bytes`);
      assert.ok(s.prekeys.loadOneTimePrekey(1) !== undefined && s.prekeys.loadOneTimePrekey(3) !== undefined, `${label}: unused one-time prekeys`);
      assert.equal(s.prekeys.loadOneTimePrekey(2), undefined, `${label}: the one-time prekey the first message spent`);
      assert.equal(s.identity.isTrustedIdentity(p.aliceAddress, p.alice.identityPublicKey), true, `${label}: alice trusted`);
      assert.equal(s.identity.isTrustedIdentity(p.aliceAddress, IdentityKeyPair.generate().publicKey), false, `${label}: another key for alice refused`);
      assert.deepEqual(Buffer.from(s.sessions.loadSession(p.aliceAddress)?.serialize() ?? []), Buffer.from(p.records.at(-1) ?? []), `${label}: session`);
      assert.deepEqual(s.roomCursors(), { [p.rooms[0] as string]: 7, [p.rooms[1] as string]: 3 }, `${label}: cursors`);
      assert.equal(s.roomCursor('never-seen'), 0);
      for (const m of p.messages) assert.deepEqual(s.loadMessage(m.roomId, m.seq), m, `${label}: kept message`);
      assert.equal(s.loadMessage(p.rooms[0] as string, 8), undefined);
      assert.deepEqual(s.queuedMessages(), p.queued, `${label}: outbound queue, in order`);
      assert.deepEqual(s.peerRecord(p.aliceAddress.userId), p.peer, `${label}: peer record`);
      assert.equal(s.peerRecord('nobody'), undefined);
      const byUser = (v: KeptVerification): string => (v.state === 'request' ? v.request.userId : v.userId);
      assert.deepEqual(
        s.keptVerifications().sort((a, b) => byUser(a).localeCompare(byUser(b))),
        [...p.verifications].sort((a, b) => byUser(a).localeCompare(byUser(b))),
        `${label}: open verifications, one per user`,
      );
    };
    check(p.store, 'open');
    p.store.close();
    const again = track(await SqliteClientStore.open(path, PASS, { mustExist: true }));
    check(again, 'reopened');

    // The restored stores work with the protocol: the session goes on, a one-time prekey is spent once.
    const [env] = encryptForDevices(p.alice, p.aliceAddress, [p.bob], new TextEncoder().encode('second'), new TextEncoder().encode(p.rooms[0]));
    assert.ok(env !== undefined);
    assert.equal(new TextDecoder().decode(decryptFromDevice(again, p.bob, p.aliceAddress, env.envelope, new TextEncoder().encode(p.rooms[0]))), 'second');
    assert.equal(again.prekeys.removeOneTimePrekey(3), true);
    assert.equal(again.prekeys.removeOneTimePrekey(3), false);
    assert.equal(again.reserveOneTimePrekeyIds(10), 4, 'ids are never reused');
    assert.equal(again.reserveOneTimePrekeyIds(1), 14);
    again.removeQueuedMessage(p.queued[0]?.clientId ?? '');
    assert.deepEqual(again.queuedMessages(), p.queued.slice(1));
    again.keepVerification(p.aliceAddress.userId, null);
    assert.deepEqual(again.keptVerifications(), p.verifications.slice(1));
  });

  it('keeps passed holes across a reopen; an empty set removes the record', async () => {
    const path = file();
    const s = await SqliteClientStore.open(path, PASS);
    assert.equal(s.passedHoles(), null);
    const record = { holes: [{ roomId: 'r1', first: 3, last: 6 }], at: [{ roomId: 'r1', seq: 7, identity: '["a","d","c1"]' }] };
    s.setPassedHoles(record);
    s.close();
    const again = track(await SqliteClientStore.open(path, PASS));
    assert.deepEqual(again.passedHoles(), record);
    again.setPassedHoles({ holes: [], at: [] });
    assert.equal(again.passedHoles(), null);
  });

  it('refuses a wrong passphrase with BAD_PASSPHRASE and leaves the file as it was', async () => {
    const path = file();
    const s = await SqliteClientStore.open(path, PASS);
    s.setRoomCursor('room', 5);
    s.close();
    const before = readFileSync(path);
    await rejectsWith(SqliteClientStore.open(path, 'Correct horse battery staple'), 'BAD_PASSPHRASE');
    await rejectsWith(SqliteClientStore.open(path, `${PASS} `), 'BAD_PASSPHRASE');
    assert.deepEqual(readFileSync(path), before);
    await assert.rejects(SqliteClientStore.open(path, ''), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    const ok = track(await SqliteClientStore.open(path, PASS));
    assert.equal(ok.roomCursor('room'), 5);
  });

  it('takes a passphrase as bytes too, and leaves the caller\'s buffer as it was', async () => {
    const path = file();
    const key = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const copy = key.slice();
    const s = await SqliteClientStore.open(path, key);
    s.setRoomCursor('room', 2);
    s.close();
    assert.deepEqual(key, copy);
    await rejectsWith(SqliteClientStore.open(path, key.subarray(1)), 'BAD_PASSPHRASE');
    assert.equal(track(await SqliteClientStore.open(path, key)).roomCursor('room'), 2);
  });

  it('writes no plaintext, private key, user, device or room id to disk — open, and after close', async () => {
    const path = file();
    const p = await populated(path);
    const scan = (what: string): void => {
      const bytes = fileBytes(path);
      // Positive control: what is in clear is found (record kinds), so the scan reads the real file.
      assert.ok(bytes.includes(Buffer.from('one-time-prekey')), `${what}: record kinds are visible`);
      for (const t of p.plaintexts) assert.equal(bytes.indexOf(t), -1, `${what}: a plaintext`);
      for (const s of p.secrets) for (const form of encodings(s)) assert.equal(bytes.indexOf(form), -1, `${what}: a private key`);
      const parts = p.records.flatMap(windows);
      assert.ok(parts.length > 50, `enough of the records is checked (${parts.length} windows)`);
      for (const w of parts) assert.equal(bytes.indexOf(w), -1, `${what}: part of a prekey or session record`);
      for (const id of p.ids) for (const form of [Buffer.from(id), ...encodings(Buffer.from(id))]) assert.equal(bytes.indexOf(form), -1, `${what}: the id ${id}`);
      assert.equal(bytes.indexOf(Buffer.from(p.publicKey)), -1, `${what}: even the identity public key`);
    };
    scan('while open');
    p.store.close();
    assert.equal(existsSync(`${path}-wal`) && readFileSync(`${path}-wal`).length > 0, false, 'the WAL is emptied on close');
    scan('after close');
  });

  it('pads records: values of nearby lengths seal to the same size', async () => {
    const path = file();
    const s = track(await SqliteClientStore.open(path, PASS));
    const at = (text: string, seq: number): ChatMessage => ({ kind: 'text', text, roomId: 'r', seq, id: 'x', sender: { userId: 'u', deviceId: 'd' }, outgoing: false, sentAt: 0, serverTs: 0 });
    s.storeMessage(at('a', 1));
    s.storeMessage(at('a much longer message, still well inside one block', 2));
    s.close();
    const db = new Database(path, { readonly: true });
    const sizes = db.prepare<[], { n: number }>("SELECT length(cell) AS n FROM records WHERE kind = 'message'").all().map((r) => r.n);
    db.close();
    assert.equal(sizes.length, 2);
    assert.equal(sizes[0], sizes[1]);
    assert.equal(((sizes[0] as number) - 44) % RECORD_PAD_BYTES, 0, 'Secure Cell adds 44 bytes to a padded record');
  });

  it('a record moved to another row, or changed, does not open (STORE)', async () => {
    const path = file();
    const s = await SqliteClientStore.open(path, PASS);
    s.setRoomCursor('room-a', 1);
    s.setRoomCursor('room-b', 2);
    s.close();
    const db = new Database(path);
    const rows = db.prepare<[], { id: Buffer; cell: Buffer }>("SELECT id, cell FROM records WHERE kind = 'room-cursor'").all();
    assert.equal(rows.length, 2);
    const [a, b] = rows as [{ id: Buffer; cell: Buffer }, { id: Buffer; cell: Buffer }];
    const update = db.prepare("UPDATE records SET cell = ? WHERE kind = 'room-cursor' AND id = ?");
    update.run(b.cell, a.id);
    update.run(a.cell, b.id);
    db.close();
    const swapped = track(await SqliteClientStore.open(path, PASS));
    // Detected, never taken for the other room's value: a damaged cursor reads as 0 (that room syncs
    // from its start), a scan skips it, and both are counted; nothing fails as a whole.
    assert.equal(swapped.roomCursor('room-a'), 0);
    assert.deepEqual(swapped.roomCursors(), {});
    assert.equal(swapped.damagedRecords, 3);
    swapped.close();

    const db2 = new Database(path);
    const flipped = Buffer.from(a.cell);
    flipped.writeUInt8(flipped.readUInt8(flipped.length - 1) ^ 1, flipped.length - 1);
    db2.prepare("UPDATE records SET cell = ? WHERE kind = 'room-cursor' AND id = ?").run(flipped, a.id);
    db2.close();
    const tampered = track(await SqliteClientStore.open(path, PASS));
    assert.equal(tampered.roomCursor('room-a'), 0);
    assert.equal(tampered.damagedRecords, 1);
    tampered.setRoomCursor('room-a', 5);
    assert.equal(tampered.roomCursor('room-a'), 5, 'the next cursor replaces the damaged one');
  });

  it('transactions are all or nothing, on disk too; nested ones join the outer one', async () => {
    const path = file();
    const s = await SqliteClientStore.open(path, PASS);
    const boom = new Error('boom');
    assert.throws(
      () =>
        s.transaction(() => {
          s.setRoomCursor('room', 9);
          s.addQueuedMessage({ roomId: 'room', clientId: 'c1', body: Uint8Array.of(1), sentAt: 1, content: { kind: 'text', text: 't' } });
          s.transaction(() => s.setRoomCursor('other', 1));
          throw boom;
        }),
      (e: unknown) => e === boom,
    );
    assert.equal(s.roomCursor('room'), 0);
    assert.deepEqual(s.roomCursors(), {});
    assert.deepEqual(s.queuedMessages(), []);
    assert.equal(
      s.transaction(() => {
        s.setRoomCursor('room', 4);
        return 'done';
      }),
      'done',
    );
    s.close();
    const again = track(await SqliteClientStore.open(path, PASS));
    assert.deepEqual(again.roomCursors(), { room: 4 });
  });

  it('one open at a time: a second open of the file is refused (STORE) until the first is closed', async () => {
    const path = file();
    const first = await SqliteClientStore.open(path, PASS);
    await rejectsWith(SqliteClientStore.open(path, PASS), 'STORE');
    first.close();
    assert.throws(() => first.roomCursors(), (e: unknown) => SdkError.is(e, 'CLOSED'));
    track(await SqliteClientStore.open(path, PASS));
  });

  it('refuses files that are not Parley stores, and leaves them unchanged; mustExist creates nothing', async () => {
    const garbage = file();
    writeFileSync(garbage, 'not a database at all, just some text that is long enough to look like a file');
    await rejectsWith(SqliteClientStore.open(garbage, PASS), 'STORE');
    const foreign = file();
    const db = new Database(foreign);
    db.exec('CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES (\'mine\')');
    db.close();
    const before = readFileSync(foreign);
    await rejectsWith(SqliteClientStore.open(foreign, PASS), 'STORE');
    assert.deepEqual(readFileSync(foreign), before);
    // Shorter than an SQLite header: SQLite would take it for an empty database and write a store over it.
    for (const bytes of [Buffer.from([0x53]), Buffer.from('SQLite format'), Buffer.alloc(100, 1)]) {
      const short = file();
      writeFileSync(short, bytes);
      await rejectsWith(SqliteClientStore.open(short, PASS), 'STORE');
      assert.deepEqual(readFileSync(short), bytes, 'left as it was');
    }
    const missing = file();
    await rejectsWith(SqliteClientStore.open(missing, PASS, { mustExist: true }), 'STORE');
    assert.equal(existsSync(missing), false);
    // An empty file (a store truncated to nothing): with mustExist refused and left empty, not given SQLite's header.
    const empty = file();
    writeFileSync(empty, '');
    await rejectsWith(SqliteClientStore.open(empty, PASS, { mustExist: true }), 'STORE');
    assert.equal(readFileSync(empty).length, 0, 'left as it was');
    // Without mustExist an empty file is where a new store may be made, as for a missing one.
    const made = track(await SqliteClientStore.open(empty, PASS));
    assert.equal(made.account(), null);
  });

  it('keeps at most messagesMax messages, evicting the oldest', async () => {
    const s = track(await SqliteClientStore.open(file(), PASS, { messagesMax: 3 }));
    const at = (seq: number): ChatMessage => ({ kind: 'text', text: `m${seq}`, roomId: 'r', seq, id: `i${seq}`, sender: { userId: 'u', deviceId: 'd' }, outgoing: false, sentAt: seq, serverTs: seq });
    for (let seq = 1; seq <= 5; seq++) s.storeMessage(at(seq));
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((seq) => s.loadMessage('r', seq)?.seq ?? null),
      [null, null, 3, 4, 5],
    );
    s.storeMessage(at(3)); // stored again: now the newest
    s.storeMessage(at(6));
    assert.deepEqual(
      [3, 4, 5, 6].map((seq) => s.loadMessage('r', seq)?.seq ?? null),
      [3, null, 5, 6],
    );
  });

  it('discards private one-time prekeys below an id, each id once, at most ONE_TIME_PREKEYS_DISCARD_SCAN_MAX ids a pass; the memory store likewise', async () => {
    const path = file();
    const sealed = track(await SqliteClientStore.open(path, PASS));
    for (const store of [sealed, MemoryClientStore.create()]) {
      const first = store.reserveOneTimePrekeyIds(30);
      store.addOneTimePrekeys(OneTimePrekey.generate(first, 30));
      const held = (id: number): boolean => store.prekeys.loadOneTimePrekey(id) !== undefined;
      assert.equal(store.discardOneTimePrekeysBelow(11), 10);
      assert.deepEqual([1, 10, 11, 30].map(held), [false, false, true, true]);
      assert.equal(store.discardOneTimePrekeysBelow(11), 0, 'done already');
      assert.equal(store.discardOneTimePrekeysBelow(5), 0, 'the bound only rises');
      assert.equal(store.discardOneTimePrekeysBelow(21), 10);
      // A far bound: one pass looks at ONE_TIME_PREKEYS_DISCARD_SCAN_MAX ids only, the next goes on.
      const later = store.reserveOneTimePrekeyIds(ONE_TIME_PREKEYS_DISCARD_SCAN_MAX + 10);
      store.addOneTimePrekeys(OneTimePrekey.generate(later + ONE_TIME_PREKEYS_DISCARD_SCAN_MAX, 5));
      assert.equal(store.discardOneTimePrekeysBelow(Number.MAX_SAFE_INTEGER), 10, 'ids 21 … 30 (the rest of the span held none)');
      assert.equal(held(later + ONE_TIME_PREKEYS_DISCARD_SCAN_MAX), true);
      assert.equal(store.discardOneTimePrekeysBelow(Number.MAX_SAFE_INTEGER), 5);
      assert.throws(() => store.discardOneTimePrekeysBelow(Number.NaN), (e: unknown) => e instanceof SdkError && e.code === 'INVALID_ARGUMENT');
    }
    // The bound is kept in the file.
    sealed.close();
    const again = track(await SqliteClientStore.open(path, PASS));
    assert.equal(again.discardOneTimePrekeysBelow(ONE_TIME_PREKEYS_DISCARD_SCAN_MAX), 0);
  });

  it('changePassphrase re-seals everything under a new master key; the old passphrase no longer opens the file', async () => {
    const path = file();
    const p = await populated(path);
    await p.store.changePassphrase('a new and different passphrase');
    assert.deepEqual(p.store.queuedMessages(), p.queued, 'usable at once');
    p.store.close();
    await rejectsWith(SqliteClientStore.open(path, PASS), 'BAD_PASSPHRASE');
    const again = track(await SqliteClientStore.open(path, 'a new and different passphrase'));
    assert.deepEqual(again.account(), p.bob);
    assert.deepEqual(again.roomCursors(), { [p.rooms[0] as string]: 7, [p.rooms[1] as string]: 3 });
    for (const m of p.messages) assert.deepEqual(again.loadMessage(m.roomId, m.seq), m);
    assert.ok(again.sessions.loadSession(p.aliceAddress) !== undefined);
  });

  it('a new store can take a given identity (a restored key backup); an existing one refuses it, unchanged', async () => {
    const path = file();
    const identity = IdentityKeyPair.generate();
    const s = await SqliteClientStore.open(path, PASS, { identity });
    assert.deepEqual(Buffer.from(s.identityPublicKey), Buffer.from(identity.publicKey));
    assert.ok(identity.sign(Uint8Array.of(1)).length === 64, 'the caller keeps a usable object');
    s.close();
    const before = readFileSync(path);
    await rejectsWith(SqliteClientStore.open(path, PASS, { identity: IdentityKeyPair.generate() }), 'INVALID_ARGUMENT');
    assert.deepEqual(readFileSync(path), before);
    const again = track(await SqliteClientStore.open(path, PASS));
    assert.deepEqual(Buffer.from(again.identityPublicKey), Buffer.from(identity.publicKey));
  });

  it('prints no secrets', async () => {
    const s = track(await SqliteClientStore.open(file(), PASS));
    s.setAccount({ userId: 'alice', deviceId: 'laptop' });
    const seed = Buffer.from(s.identity.identityKeyPair().exportSeed());
    for (const out of [String(s), JSON.stringify({ s }), inspect(s, { depth: 5, showHidden: true })]) {
      assert.match(out, /SqliteClientStore\(alice\/laptop, open, secrets redacted\)/);
      for (const form of encodings(seed)) assert.equal(out.includes(form.toString()), false);
      assert.equal(out.includes(PASS), false);
    }
  });
});
