/**
 * Identity verification and key-change warnings in `ParleyClient`, against
 * a real `parley serve`: Secure Comparator runs inside the encrypted direct
 * conversation (same secret → verified on both sides; different → failed;
 * declined → aborted; answered on one of two devices → the other's request
 * ends), a device added to a verified user ends the verification with a
 * `keysChanged` warning, and a key the server swaps for a device (its
 * database edited under it, as a compromised server would) is reported and
 * refused — never used, and verification is refused while it is listed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ParleyClient } from '../src/client.ts';
import { MemoryClientStore, type ClientStore } from '../src/client-store.ts';
import { SdkError } from '../src/errors.ts';
import { SqliteClientStore } from '../src/sqlite-store.ts';
import type { KeysChange } from '../src/peer-keys.ts';
import type { VerificationOutcome, VerificationRequest } from '../src/peer-verification.ts';
import { nth, provisionDevice, recorder, serverForSuite, texts, until } from './_harness.ts';

interface Party {
  client: ParleyClient;
  requests: VerificationRequest[];
  outcomes: VerificationOutcome[];
  changes: KeysChange[];
  rec: ReturnType<typeof recorder>;
}

describe('verification in the client', () => {
  const server = serverForSuite();
  const { clients } = server;

  async function party(userId: string, deviceId: string, how: 'register' | 'login' = 'register', store: ClientStore = MemoryClientStore.create()): Promise<Party> {
    const requests: VerificationRequest[] = [];
    const outcomes: VerificationOutcome[] = [];
    const changes: KeysChange[] = [];
    const rec = recorder();
    const on = { ...rec.on, verificationRequest: (r: VerificationRequest) => requests.push(r), verification: (o: VerificationOutcome) => outcomes.push(o), keysChanged: (c: KeysChange) => changes.push(c) };
    const client = how === 'register' ? await ParleyClient.register(server.url, userId, deviceId, { on, store }) : await ParleyClient.login(server.url, userId, deviceId, { on, store });
    clients.push(client);
    return { client, requests, outcomes, changes, rec };
  }

  /** Edit the server's SQLite database under it (a server that lies, or was broken into). */
  function editServerDb(edit: (db: Database.Database) => void): void {
    const file = readdirSync(server.dataDir).find((f) => /\.(db|sqlite3?)$/.test(f));
    assert.ok(file !== undefined, 'the server keeps a SQLite file');
    const db = new Database(join(server.dataDir, file));
    try {
      edit(db);
    } finally {
      db.close();
    }
  }

  /** Two users who have exchanged a message each (so both have sessions). */
  async function pair(name: string, aliceStore?: ClientStore): Promise<{ a: Party; b: Party; room: string }> {
    const a = await party(`${name}-a`, 'laptop', 'register', aliceStore);
    const b = await party(`${name}-b`, 'phone');
    const room = await a.client.startDirect(b.client.userId);
    await a.client.send(room, 'hello');
    await until(() => b.rec.messages.length === 1, 'the first message');
    await b.client.send(room, 'hi');
    await until(() => a.rec.messages.length === 1, 'the reply');
    return { a, b, room };
  }

  it('the same secret on both sides: verified on both, recorded, and no control message shows as a message', async () => {
    const { a, b, room } = await pair('same');
    assert.equal(a.client.verificationStatus(b.client.userId).verified, false);
    const started = a.client.verify(b.client.userId, 'purple elephant 42');
    await until(() => b.requests.length === 1, 'the request');
    const request = nth(b.requests, 0);
    assert.equal(request.userId, a.client.userId);
    assert.equal(request.roomId, room);
    assert.deepEqual(request.from, { userId: a.client.userId, deviceId: 'laptop' });
    assert.deepEqual(b.client.verificationRequest(a.client.userId), request);
    // Typed a little differently: NFKC and trimming make it the same secret.
    const answered = await b.client.acceptVerification(a.client.userId, '  purple elephant 42 ');
    const result = await started;
    assert.equal(result.state, 'verified');
    assert.deepEqual(result.peerDevice, { userId: b.client.userId, deviceId: 'phone' });
    assert.equal(answered.state, 'verified');
    assert.deepEqual(answered.peerDevice, { userId: a.client.userId, deviceId: 'laptop' });
    assert.equal(a.client.verificationStatus(b.client.userId).verified, true);
    assert.equal(b.client.verificationStatus(a.client.userId).verified, true);
    assert.deepEqual(a.outcomes.map((o) => o.state), ['verified']);
    assert.deepEqual(b.outcomes.map((o) => o.state), ['verified']);
    // Four control messages went through the room; none surfaced as a message or a failure.
    await a.client.send(room, 'after');
    await until(() => b.rec.messages.length === 2, 'the message after');
    assert.deepEqual(texts(b.rec.messages), ['hello', 'after']);
    assert.deepEqual([...a.rec.failures, ...b.rec.failures], []);
    const page = await b.client.history(room, { limit: 50 });
    assert.deepEqual(
      page.filter((e) => e.type !== 'membership').map((e) => e.type),
      ['message', 'message', 'verification', 'verification', 'verification', 'verification', 'message'],
    );
  });

  it('different secrets: failed on both sides, nothing recorded', async () => {
    const { a, b } = await pair('diff');
    const started = a.client.verify(b.client.userId, 'our dog is called Rex');
    await until(() => b.requests.length === 1, 'the request');
    const answered = await b.client.verify(a.client.userId, 'our dog is called Max'); // verify answers an open request
    assert.equal((await started).state, 'failed');
    assert.equal(answered.state, 'failed');
    assert.equal(a.client.verificationStatus(b.client.userId).verified, false);
    assert.equal(b.client.verificationStatus(a.client.userId).verified, false);
  });

  it('verified, then an attempt with different secrets: failed on both, and the earlier verification of the same keys stands', async () => {
    const { a, b } = await pair('again');
    const first = a.client.verify(b.client.userId, 'the blue boat');
    await until(() => b.requests.length === 1, 'the first request');
    await b.client.acceptVerification(a.client.userId, 'the blue boat');
    assert.equal((await first).state, 'verified');
    const before = a.client.verificationStatus(b.client.userId);
    assert.equal(before.verified, true);
    const second = a.client.verify(b.client.userId, 'the red boat');
    await until(() => b.requests.length === 2, 'the second request');
    assert.equal((await b.client.acceptVerification(a.client.userId, 'the green boat')).state, 'failed');
    assert.equal((await second).state, 'failed');
    // The keys verified are the keys both still see: a mistyped secret does not undo the verification.
    assert.deepEqual(a.client.verificationStatus(b.client.userId), before);
    assert.equal(b.client.verificationStatus(a.client.userId).verified, true);
  });

  it('declined: the initiator sees aborted, with the peer’s reason', async () => {
    const { a, b } = await pair('decline');
    const started = a.client.verify(b.client.userId, 'whatever');
    await until(() => b.requests.length === 1, 'the request');
    b.client.cancelVerification(a.client.userId);
    const result = await started;
    assert.equal(result.state, 'aborted');
    assert.equal(result.reason, 'peer-aborted');
    assert.equal(result.peerReason, 'cancelled');
    assert.equal(b.client.verificationRequest(a.client.userId), null);
    await assert.rejects(b.client.acceptVerification(a.client.userId, 'whatever'), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
  });

  it('a request reaches both of the peer’s devices; answered on one, it ends on the other; a new device then ends the verification with a warning', async () => {
    const { a, b, room } = await pair('multi');
    const tabletStore = MemoryClientStore.create();
    await provisionDevice(b.client, tabletStore, 'tablet');
    const tablet = await party(b.client.userId, 'tablet', 'login', tabletStore);
    // Alice learns of the tablet when it writes: a device added, reported (not verified yet, so nothing lapses).
    await tablet.client.send(room, 'from the tablet');
    await until(() => a.rec.messages.length === 2, "the tablet's message");
    await until(() => a.changes.length === 1, 'the key change');
    assert.deepEqual(nth(a.changes, 0).added.map((d) => d.deviceId), ['tablet']);
    assert.equal(nth(a.changes, 0).wasVerified, false);

    const started = a.client.verify(b.client.userId, 'the blue door');
    await until(() => b.requests.length === 1 && tablet.requests.length === 1, 'the request on both devices');
    assert.equal((await b.client.acceptVerification(a.client.userId, 'the blue door')).state, 'verified');
    assert.equal((await started).state, 'verified');
    await until(() => tablet.outcomes.length === 1, "the tablet's request to end");
    assert.deepEqual(tablet.outcomes[0], { userId: a.client.userId, state: 'aborted', reason: 'answered-elsewhere', peerReason: null, peerDevice: null });
    const status = a.client.verificationStatus(b.client.userId);
    assert.equal(status.verified, true);
    assert.deepEqual(status.devices.map((d) => d.deviceId).sort(), ['phone', 'tablet']);

    // A third device appears: the verification covered two, so it ends, and alice is warned.
    const deskStore = MemoryClientStore.create();
    await provisionDevice(b.client, deskStore, 'desk');
    const desk = await party(b.client.userId, 'desk', 'login', deskStore);
    await desk.client.send(room, 'from the desk');
    await until(() => a.changes.length === 2, 'the second key change');
    assert.deepEqual(nth(a.changes, 1).added.map((d) => d.deviceId), ['desk']);
    assert.equal(nth(a.changes, 1).wasVerified, true);
    assert.equal(nth(a.changes, 1).verified, false);
    assert.equal(a.client.verificationStatus(b.client.userId).verified, false);
  });

  it('two devices of one user verifying the same peer at once: one runs, the other ends at once as superseded (not after the timeout)', async () => {
    const { a, b, room } = await pair('twodev');
    const tabletStore = MemoryClientStore.create();
    await provisionDevice(a.client, tabletStore, 'tablet');
    const tablet = await party(a.client.userId, 'tablet', 'login', tabletStore);
    await tablet.client.send(room, 'from the tablet');
    await until(() => b.rec.messages.length === 2, "the tablet's message");
    const attempts = [a.client.verify(b.client.userId, 'same words'), tablet.client.verify(b.client.userId, 'same words')];
    // Both starts are in: the second one replaces the first as bob's request (and tells its device it lost its place).
    await until(() => b.requests.length >= 2, 'both requests at bob', 20_000);
    const accepted = await b.client.acceptVerification(a.client.userId, 'same words');
    assert.equal(accepted.state, 'verified');
    const started = Date.now();
    const outcomes = await Promise.all(attempts);
    assert.ok(Date.now() - started < 10_000, 'both attempts settled promptly');
    const states = outcomes.map((o) => o.state).sort();
    assert.deepEqual(states, ['aborted', 'verified']);
    const lost = outcomes.find((o) => o.state === 'aborted');
    assert.deepEqual([lost?.reason, lost?.peerReason], ['peer-aborted', 'superseded']);
  });

  it('both users starting at once, in every tie-break: verified on both, and the request on a third device ends (answered elsewhere)', async () => {
    const { a, b, room } = await pair('crossed');
    const tabletStore = MemoryClientStore.create();
    await provisionDevice(b.client, tabletStore, 'tablet');
    const tablet = await party(b.client.userId, 'tablet', 'login', tabletStore);
    await tablet.client.send(room, 'from the tablet');
    await until(() => a.rec.messages.length === 2, "the tablet's message");
    for (let trial = 0; trial < 4; trial++) {
      const outcomes = await Promise.all([a.client.verify(b.client.userId, 'crossing'), b.client.verify(a.client.userId, 'crossing')]);
      assert.deepEqual(outcomes.map((o) => o.state), ['verified', 'verified'], `trial ${trial}`);
      await until(() => tablet.client.verificationRequest(a.client.userId) === null, `trial ${trial}: the tablet's request to end`);
    }
    assert.ok(tablet.outcomes.every((o) => o.state === 'aborted' && (o.reason === 'answered-elsewhere' || o.reason === 'replaced')), JSON.stringify(tablet.outcomes));
  });

  it('a key the server swaps for a known device is reported once, refused, and blocks verification', async () => {
    const { a, b, room } = await pair('swap');
    assert.equal((await a.client.safetyNumber(b.client.userId)).remote.devices[0]?.trusted, true);
    // The server's database, edited under it: bob's phone gets another identity key.
    const forged = new Uint8Array(32).fill(7);
    editServerDb((db) => {
      const changed = db.prepare('UPDATE devices SET identity_key = ? WHERE user_id = ? AND device_id = ?').run(forged, b.client.userId, 'phone').changes;
      assert.equal(changed, 1);
    });
    const report = await a.client.safetyNumber(b.client.userId);
    assert.equal(report.remote.devices[0]?.trusted, false, 'the listed key is not the trusted one');
    await until(() => a.changes.length === 1, 'the warning');
    const change = nth(a.changes, 0);
    assert.equal(change.userId, b.client.userId);
    assert.deepEqual(change.added, []);
    assert.equal(change.changed.length, 1);
    assert.equal(nth(change.changed, 0).deviceId, 'phone');
    assert.deepEqual(nth(change.changed, 0).listedKey, forged);
    assert.notDeepEqual(nth(change.changed, 0).trustedKey, forged);
    await assert.rejects(a.client.verify(b.client.userId, 'anything'), (e: unknown) => SdkError.is(e, 'IDENTITY_CHANGED'));
    // Reported once: looking again says nothing new.
    await a.client.safetyNumber(b.client.userId);
    assert.equal(a.changes.length, 1);
    // Messages still go to bob's real phone over the session made with its real key.
    a.client.refreshDevices(b.client.userId);
    const sent = await a.client.send(room, 'still to the real phone');
    assert.deepEqual(sent.recipients, [{ userId: b.client.userId, deviceId: 'phone' }]);
    await until(() => b.rec.messages.length === 2, 'bob reads it');
    assert.deepEqual(texts(b.rec.messages), ['hello', 'still to the real phone']);
  });
  it('a device the key directory does not list, writing as the peer, is reported before its message and ends the verification', async () => {
    const aliceStore = MemoryClientStore.create();
    const { a: first, b, room } = await pair('hidden', aliceStore);
    const started = first.client.verify(b.client.userId, 'green kettle');
    await until(() => b.requests.length === 1, 'the request');
    assert.equal((await b.client.acceptVerification(first.client.userId, 'green kettle')).state, 'verified');
    assert.equal((await started).state, 'verified');
    // alice is away while a device of bob's is added and writes (she misses the server's
    // devices.changed); the server then leaves it out of the directory (its row removed).
    await first.client.close();
    const shadowStore = MemoryClientStore.create();
    await provisionDevice(b.client, shadowStore, 'shadow');
    const shadow = await party(b.client.userId, 'shadow', 'login', shadowStore);
    await shadow.client.send(room, 'from a device you were not shown');
    editServerDb((db) => {
      db.pragma('foreign_keys = OFF');
      db.prepare('DELETE FROM devices WHERE user_id = ? AND device_id = ?').run(b.client.userId, 'shadow');
    });
    const a = await party('hidden-a', 'laptop', 'login', aliceStore);
    const order: string[] = [];
    a.client.on('keysChanged', () => order.push('keysChanged'));
    a.client.on('message', () => order.push('message'));
    await until(() => a.rec.messages.some((m) => m.kind === 'text' && m.text === 'from a device you were not shown'), "the shadow device's message");
    const added = a.changes.find((c) => c.added.some((d) => d.deviceId === 'shadow'));
    assert.ok(added !== undefined, 'the new device is reported');
    assert.equal(added.wasVerified, true);
    assert.equal(added.verified, false);
    assert.deepEqual(order.slice(0, 2), ['keysChanged', 'message'], 'reported before its message is delivered');
    assert.equal(a.client.verificationStatus(b.client.userId).verified, false, 'the verification ended');
  });

  it('a server that adds a user to a direct room gets nothing encrypted for them, even by a restarted client', async () => {
    const aliceStore = MemoryClientStore.create();
    const first = await party('inject-a', 'laptop', 'register', aliceStore);
    const b = await party('inject-b', 'phone');
    const room = await first.client.startDirect(b.client.userId);
    await first.client.send(room, 'hello');
    await until(() => b.rec.messages.length === 1, 'the first message');
    await first.client.close();
    const m = await party('inject-mallory', 'pc');
    // The server's database, edited under it: mallory joins the direct room (the server itself refuses that).
    editServerDb((db) => {
      db.prepare("INSERT INTO members (room_id, user_id, role) VALUES (?, ?, 'member')").run(room, m.client.userId);
    });
    // A restarted client (no member list in memory) asks the server, which now lists mallory too.
    const a = await party('inject-a', 'laptop', 'login', aliceStore);
    const sent = await a.client.send(room, 'for bob only');
    assert.deepEqual(sent.recipients.map((r) => r.userId).sort(), [b.client.userId].sort());
    await until(() => b.rec.messages.length === 2, 'bob reads it');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(m.rec.messages.length, 0, 'mallory reads nothing');
  });
  it('a request that arrived while offline still reaches the user when the app loads history first', async () => {
    const aliceStore = MemoryClientStore.create();
    const first = await party('early-a', 'laptop', 'register', aliceStore);
    const b = await party('early-b', 'phone');
    const room = await first.client.startDirect(b.client.userId);
    await first.client.send(room, 'hi');
    await until(() => b.rec.messages.length === 1, 'bob has the room');
    await first.client.close();
    const started = b.client.verify(first.client.userId, 'shared words');
    // The request is stored while alice is away: bob's own history shows it once the server stored it.
    await until(async () => (await b.client.history(room, { limit: 20 })).some((e) => e.type === 'verification'), "bob's request stored by the server", 20_000);
    const a = await party('early-a', 'laptop', 'login', aliceStore);
    // The app loads the room at once, before the catch-up has delivered the request.
    const page = await a.client.history(room, { limit: 20 });
    assert.ok(page.some((e) => e.type === 'verification'), 'history shows the verification step');
    await until(() => a.requests.length === 1, 'the request is still delivered');
    assert.equal((await a.client.acceptVerification(b.client.userId, 'shared words')).state, 'verified');
    assert.equal((await started).state, 'verified');
  });

  it('a request left unanswered when the device closes is offered again after a restart on its sealed store, and answered: verified on both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-verify-restart-'));
    const path = join(dir, 'alice.parley');
    try {
      const aliceStore = await SqliteClientStore.open(path, 'pass phrase');
      const first = await party('kept-a', 'laptop', 'register', aliceStore);
      const b = await party('kept-b', 'phone');
      const room = await first.client.startDirect(b.client.userId);
      await first.client.send(room, 'hi');
      await until(() => b.rec.messages.length === 1, 'bob has the room');
      const started = b.client.verify(first.client.userId, 'shared words');
      await until(() => first.requests.length === 1, 'the request');
      const request = nth(first.requests, 0);
      await first.client.close();
      aliceStore.close();

      const reopened = await SqliteClientStore.open(path, 'pass phrase', { mustExist: true });
      try {
        const a = await party('kept-a', 'laptop', 'login', reopened);
        // At once: the open request is there before any catch-up; then reported as an event too, once.
        assert.deepEqual(a.client.verificationRequests(), [request]);
        assert.deepEqual(a.client.verificationRequest(b.client.userId), request);
        await until(() => a.requests.length === 1, 'the request reported again');
        await a.client.synced();
        assert.equal(a.requests.length, 1, 'reported once, though the catch-up ran');
        assert.equal((await a.client.acceptVerification(b.client.userId, 'shared words')).state, 'verified');
        assert.equal((await started).state, 'verified');
        assert.equal(a.client.verificationStatus(b.client.userId).verified, true);
        assert.deepEqual(reopened.keptVerifications(), [], 'forgotten once it ended');
        await a.client.close();
      } finally {
        reopened.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('(review) a restored request answered at once, when another device of this user answered it while this one was closed: ends answered-elsewhere, not failed', async () => {
    const { a, b, room } = await pair('restored-elsewhere');
    const tabletStore = MemoryClientStore.create();
    await provisionDevice(b.client, tabletStore, 'tablet');
    const tablet = await party(b.client.userId, 'tablet', 'login', tabletStore);
    await tablet.client.send(room, 'from the tablet');
    await until(() => a.rec.messages.length === 2, "the tablet's message");
    const started = a.client.verify(b.client.userId, 'the green gate');
    await until(() => b.requests.length === 1 && tablet.requests.length === 1, 'the request on both devices');
    await tablet.client.close(); // the tablet's app is closed with the request open
    assert.equal((await b.client.acceptVerification(a.client.userId, 'the green gate')).state, 'verified');
    assert.equal((await started).state, 'verified');

    const tablet2 = await party(b.client.userId, 'tablet', 'login', tabletStore);
    // The app answers the request it lists at once (the user had typed the secret before the reload).
    assert.equal(tablet2.client.verificationRequests().length, 1);
    const late = await tablet2.client.acceptVerification(a.client.userId, 'the green gate');
    assert.deepEqual([late.state, late.reason], ['aborted', 'answered-elsewhere'], `the tablet got ${late.state}/${String(late.reason)}: a false alarm`);
  });

  it('(review) an attempt under way when the device closes: the peer is told even when the next client on the store is closed again at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-verify-interrupted-'));
    const path = join(dir, 'alice.parley');
    try {
      let store = await SqliteClientStore.open(path, 'pass phrase');
      const first = await party('quick-a', 'laptop', 'register', store);
      const b = await party('quick-b', 'phone');
      const room = await first.client.startDirect(b.client.userId);
      await first.client.send(room, 'hi');
      await until(() => b.rec.messages.length === 1, 'bob has the room');
      const started = first.client.verify(b.client.userId, 'shared words');
      await until(() => b.requests.length === 1, "bob has alice's request");
      await first.client.close(); // under way (alice's start is out): kept as running
      assert.equal((await started).state, 'aborted');
      assert.equal(store.keptVerifications()[0]?.state, 'running');
      store.close();

      // A restart that is over at once (a reload loop, a short CLI command).
      store = await SqliteClientStore.open(path, 'pass phrase', { mustExist: true });
      const second = await party('quick-a', 'laptop', 'login', store);
      await second.client.close();
      store.close();

      store = await SqliteClientStore.open(path, 'pass phrase', { mustExist: true });
      try {
        const third = await party('quick-a', 'laptop', 'login', store);
        await third.client.synced();
        await until(() => b.outcomes.length === 1, "bob hears that alice's attempt ended (not after his 5-minute timeout)");
        assert.deepEqual([b.outcomes[0]?.reason, b.outcomes[0]?.peerReason], ['peer-aborted', 'cancelled']);
        await third.client.close();
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
