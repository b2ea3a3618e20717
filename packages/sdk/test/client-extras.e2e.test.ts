/**
 * The client methods the `parley` chat commands use, against a real
 * `parley serve`: typing (sent, throttled, received as an event),
 * `findDirect` (never creates a room), `search` over a live conversation,
 * `safetyNumber` (the same on both sides, over every device), the key
 * backup frames (`storeKeyBackup`, `loadKeyBackup`, `fetchKeyBackup`
 * before login), and `discardStaleOneTimePrekeys` after a restore.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hello, registerDevice } from '../src/auth.ts';
import { ParleyClient } from '../src/client.ts';
import { Connection } from '../src/connection.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { SqliteClientStore } from '../src/sqlite-store.ts';
import { SdkError } from '../src/errors.ts';
import type { TypingEvent } from '../src/events.ts';
import { backupFetchSecret, exportKeyBackup, importKeyBackup, readKeyBackupOwner } from '../src/key-backup.ts';
import { closeAll, provisionDevice, recorder, startServer, until, type ServerProcess } from './_harness.ts';

describe('client extras', () => {
  let server: ServerProcess & { url: string };
  const clients: ParleyClient[] = [];
  let alice: ParleyClient;
  let bob: ParleyClient;
  const rb = recorder();
  const bobTyping: TypingEvent[] = [];

  before(async () => {
    server = await startServer();
    alice = await ParleyClient.register(server.url, 'alice', 'laptop');
    bob = await ParleyClient.register(server.url, 'bob', 'phone', { on: { ...rb.on, typing: (t) => bobTyping.push(t) } });
    clients.push(alice, bob);
  });
  after(async () => {
    await closeAll(clients);
    server.cleanup();
  });

  it('findDirect finds an existing direct room and never creates one', async () => {
    assert.equal(await alice.findDirect('bob'), null);
    assert.equal(await bob.findDirect('alice'), null);
    const room = await alice.startDirect('bob');
    assert.equal(await alice.findDirect('bob'), room);
    assert.equal(await bob.findDirect('alice'), room);
    await assert.rejects(alice.findDirect('alice'), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    // rooms(): every room the user is in, the direct one too.
    const listed = await bob.rooms();
    const direct = listed.find((r) => r.roomId === room);
    assert.equal(direct?.kind, 'direct');
    assert.ok((direct?.lastSeq ?? 0) >= 2, 'the two member-added events');
  });

  it('register again after an attempt whose answer was lost: the registration stands and the device logs in; a taken user id stays refused', async () => {
    const store = MemoryClientStore.create();
    // The first attempt reached the server, and its answer never reached the client.
    const raw = await Connection.open(server.url, { onFrame: () => undefined, onClose: () => undefined });
    await hello(raw);
    await registerDevice(raw, store.identity.identityKeyPair(), { userId: 'lost-answer', deviceId: 'tab' });
    raw.close();
    assert.equal(store.account(), null);
    const again = await ParleyClient.register(server.url, 'lost-answer', 'tab', { store });
    clients.push(again);
    assert.deepEqual(store.account(), { userId: 'lost-answer', deviceId: 'tab' });
    // Another identity asking for the same user: still refused, as taken.
    await assert.rejects(ParleyClient.register(server.url, 'lost-answer', 'tab'), (e: unknown) => SdkError.is(e, 'AUTH_FAILED') && e.serverCode === 'conflict');
  });

  it('one live client per store: a second on the same store is refused until the first is closed', async () => {
    const store = MemoryClientStore.create();
    const first = await ParleyClient.register(server.url, 'one-client', 'dev', { store });
    await assert.rejects(ParleyClient.login(server.url, 'one-client', 'dev', { store }), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await first.close();
    const second = await ParleyClient.login(server.url, 'one-client', 'dev', { store });
    clients.push(second);
  });

  it('misused arguments are SdkError INVALID_ARGUMENT, never a TypeError from inside, and nothing reaches the server', async () => {
    const room = await alice.startDirect('bob');
    const calls: [string, () => unknown][] = [
      ['downloadFile(undefined)', () => alice.downloadFile(undefined as never)],
      ['downloadFile({})', () => alice.downloadFile({} as never)],
      ['deleteFile(undefined)', () => alice.deleteFile(undefined as never)],
      ['addDevice(null)', () => alice.addDevice(null as never)],
      ['history(room, null)', () => alice.history(room, null as never)],
      ['search("x", null)', () => alice.search('x', null as never)],
      ['sendFile(room, bytes, null)', () => alice.sendFile(room, new Uint8Array(1), null as never)],
      ['login(url, u, d, {})', () => ParleyClient.login(server.url, 'alice', 'laptop', {} as never)],
      ['register(url, u, d, null)', () => ParleyClient.register(server.url, 'argless', 'dev', null as never)],
      ['deviceLinkRequest(null, u, d)', () => ParleyClient.deviceLinkRequest(null as never, 'alice', 'x')],
      ['exportKeyBackup(null, pass)', () => exportKeyBackup(null as never, 'pass')],
      ['exportKeyBackup({}, pass)', () => exportKeyBackup({} as never, 'pass')],
      ['register(url, u, d, { store: {} })', () => ParleyClient.register(server.url, 'argless2', 'dev', { store: {} as never })],
      ['login(url, u, d, { store: {} })', () => ParleyClient.login(server.url, 'alice', 'laptop', { store: {} as never })],
      ['SqliteClientStore.open(path, pass, null)', () => SqliteClientStore.open(':memory:', 'pass', null as never)],
    ];
    for (const [what, call] of calls) {
      await assert.rejects(Promise.resolve().then(call), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'), what);
    }
  });

  it('on/next refuse an unknown event or a listener that is not a function (a misspelt name would wait for ever)', async () => {
    assert.throws(() => alice.on('mesage' as never, () => undefined), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    assert.throws(() => alice.on('message', 5 as never), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await assert.rejects(alice.next('mesage' as never), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
  });

  it('verify refuses an unusable secret, and an unknown user, before any attempt: no verification event, nothing sent', async () => {
    const outcomes: unknown[] = [];
    const off = alice.on('verification', (o) => outcomes.push(o));
    try {
      await assert.rejects(alice.verify('bob', ''), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
      await assert.rejects(alice.verify('bob', 5 as never), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
      await assert.rejects(alice.verify('nobody-here', 'secret'), (e: unknown) => SdkError.is(e, 'SERVER'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(outcomes, []);
      assert.equal(alice.verificationRequest('bob'), null);
    } finally {
      off();
    }
  });

  it('close: a next() still waiting rejects CLOSED, later ones too, and nothing is emitted after close resolves (a verification cancelled just before)', async () => {
    const dave = await ParleyClient.register(server.url, 'dave', 'd1');
    const erin = await ParleyClient.register(server.url, 'erin', 'e1');
    clients.push(dave, erin);
    const asked = erin.next('verificationRequest');
    const attempt = dave.verify('erin', 'a secret').catch(() => null);
    await asked;
    erin.cancelVerification('dave');
    const waiting = erin.next('message');
    const late: string[] = [];
    for (const event of ['error', 'verification', 'connection', 'message'] as const) erin.on(event, () => late.push(event));
    await erin.close();
    const after = late.length;
    // Bounded, so that a next() left pending fails the test instead of hanging it.
    const pending = new Promise((_, reject) => setTimeout(() => reject(new Error('next() still pending after close')), 5000).unref());
    await assert.rejects(Promise.race([waiting, pending]), (e: unknown) => SdkError.is(e, 'CLOSED'));
    await assert.rejects(erin.next('message'), (e: unknown) => SdkError.is(e, 'CLOSED'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(late.length, after, `emitted after close: ${late.slice(after).join(', ')}`);
    // erin's abort may not have left before she closed: dave gives up too, rather than wait out the timeout.
    dave.cancelVerification('erin');
    await attempt;
  });

  it('typing reaches the other member as an event, at most once per interval', async () => {
    const room = await alice.startDirect('bob');
    assert.equal(alice.typing(room), true);
    assert.equal(alice.typing(room), false, 'a second call within TYPING_INTERVAL_MS is dropped');
    await until(() => bobTyping.length === 1, 'the typing event');
    assert.deepEqual(bobTyping[0], { roomId: room, from: { userId: 'alice', deviceId: 'laptop' } });
    assert.throws(() => alice.typing('not a room!'), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
  });

  it('search finds kept messages, sent and received, every word required, newest first, per room', async () => {
    const room = await alice.startDirect('bob');
    await alice.send(room, 'Dinner on Friday at the Café?');
    await alice.send(room, 'or lunch on Saturday');
    await bob.send(room, 'Friday DINNER works');
    await until(() => rb.messages.length === 2, "bob's deliveries");
    await until(() => alice.search('works').then((r) => r.length === 1), "alice's delivery");
    const a = await alice.search('dinner friday');
    assert.deepEqual(
      a.map((m) => (m.kind === 'text' ? m.text : '')),
      ['Friday DINNER works', 'Dinner on Friday at the Café?'],
    );
    assert.equal((await alice.search('cafe', { roomId: room }))[0]?.seq, a[1]?.seq);
    assert.deepEqual(await alice.search('dinner', { roomId: 'another-room' }), []);
    assert.equal((await bob.search(['saturday'])).length, 1);
    assert.equal((await bob.search('dinner', { limit: 1 })).length, 1);
    await assert.rejects(bob.search('!!'), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
  });

  it('search works after close while the store is open (a sqlite store too), and an empty text is refused before anything is sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-search-'));
    const store = await SqliteClientStore.open(join(dir, 'dora.db'), 'search after close');
    const dora = await ParleyClient.register(server.url, 'dora', 'desk', { store });
    const room = await dora.startDirect('alice');
    await assert.rejects(dora.send(room, ''), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await dora.send(room, 'remember the blue door');
    await dora.close();
    assert.deepEqual(
      (await dora.search('blue door')).map((m) => (m.kind === 'text' ? m.text : '')),
      ['remember the blue door'],
    );
    store.close();
    await assert.rejects(dora.search('blue'), (e: unknown) => SdkError.is(e, 'CLOSED'), 'a closed store: CLOSED, not an empty result');
    rmSync(dir, { recursive: true, force: true });
  });

  it('safetyNumber is the same on both sides and covers every device', async () => {
    const tablet = MemoryClientStore.create();
    await provisionDevice(bob, tablet, 'tablet');
    const bob2 = await ParleyClient.login(server.url, 'bob', 'tablet', { store: tablet });
    clients.push(bob2);
    const fromAlice = await alice.safetyNumber('bob');
    const fromBob = await bob.safetyNumber('alice');
    assert.match(fromAlice.digits, /^\d{60}$/);
    assert.equal(fromAlice.digits, fromBob.digits);
    assert.equal(fromAlice.formatted.split(' ').length, 12);
    assert.deepEqual(
      fromAlice.remote.devices.map((d) => d.deviceId),
      ['phone', 'tablet'],
    );
    assert.ok(fromAlice.remote.devices.every((d) => d.trusted));
    assert.equal((await bob2.safetyNumber('alice')).digits, fromAlice.digits);
    await assert.rejects(alice.safetyNumber('nobody'), (e: unknown) => SdkError.is(e, 'SERVER') && e.serverCode === 'not_found');
    await assert.rejects(alice.safetyNumber('alice'), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
  });

  it('key backup: stored with a fetch secret, read back logged in, fetched before login only with the secret', async () => {
    assert.equal(await alice.loadKeyBackup(), null);
    const passphrase = 'a long passphrase for the backup';
    const backup = await exportKeyBackup(alice.store, passphrase);
    const secret = await backupFetchSecret(passphrase, 'alice');
    const stored = await alice.storeKeyBackup(backup, secret);
    assert.ok(stored.updatedAt > 0);
    const loaded = await alice.loadKeyBackup();
    assert.deepEqual(loaded?.backup, backup);
    const fetched = await ParleyClient.fetchKeyBackup(server.url, 'alice', secret);
    assert.deepEqual(fetched.backup, backup);
    assert.deepEqual(readKeyBackupOwner(fetched.backup), { userId: 'alice', deviceId: 'laptop' });
    const wrong = secret.slice();
    wrong[0] = (wrong[0] as number) ^ 1;
    await assert.rejects(ParleyClient.fetchKeyBackup(server.url, 'alice', wrong), (e: unknown) => SdkError.is(e, 'AUTH_FAILED') && e.serverCode === 'invalid_credentials');
    await assert.rejects(ParleyClient.fetchKeyBackup(server.url, 'alice', secret.subarray(1)), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await assert.rejects(alice.storeKeyBackup(new Uint8Array(0)), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
  });

  it('after restores, discardStaleOneTimePrekeys replaces the earlier copies\' one-time prekeys, so a new contact can write — also to the second of two copies restored from one backup', async () => {
    const passphrase = 'another long passphrase for the backup';
    const backup = await exportKeyBackup(alice.store, passphrase);
    await alice.close(); // the earlier copy of the device goes away
    // A first restore, which publishes its keys (ids from the backup's counter)…
    const first = await ParleyClient.login(server.url, 'alice', 'laptop', { store: await importKeyBackup(backup, passphrase, { userId: 'alice', deviceId: 'laptop' }) });
    clients.push(first);
    assert.ok((await first.discardStaleOneTimePrekeys()) >= 90, "the original's stock");
    await first.close();
    // …then another from the same backup: its ids are the first copy's, and only its own keys may be handed out.
    const ra = recorder();
    const restoredAlice = await ParleyClient.login(server.url, 'alice', 'laptop', { store: await importKeyBackup(backup, passphrase, { userId: 'alice', deviceId: 'laptop' }), on: ra.on });
    clients.push(restoredAlice);
    const stale = await restoredAlice.discardStaleOneTimePrekeys();
    assert.ok(stale >= 100, `${stale} one-time prekeys dropped (the first copy's, and this one's first upload)`);
    const carol = await ParleyClient.register(server.url, 'carol', 'desk');
    clients.push(carol);
    await carol.send(await carol.startDirect('alice'), 'hello restored alice');
    // (What bob wrote to the earlier copy is DECRYPT_FAILED here: no sessions in a backup.)
    const fromCarol = (): { ok: string[]; failed: number } => ({
      ok: ra.messages.filter((m) => m.sender.userId === 'carol').map((m) => (m.kind === 'text' ? m.text : '')),
      failed: ra.failures.filter((f) => f.from.userId === 'carol').length,
    });
    await until(() => fromCarol().ok.length + fromCarol().failed > 0, "carol's message");
    assert.deepEqual(fromCarol(), { ok: ['hello restored alice'], failed: 0 });
  });
});
