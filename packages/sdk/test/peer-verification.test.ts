/**
 * The client's verification rules (peer-verification.ts) with two real
 * `VerificationSession`s (real Secure Comparator) and the room between them
 * played by the test, so delivery order, delay and replay are in its hands:
 * both sides starting at once, a stale request replayed, this user's own
 * devices' messages, a peer starting over, the pending limit, timeouts.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { DeviceRef } from '../src/frames.ts';
import { VERIFICATION_PENDING_MAX, VERIFICATION_TIMEOUT_MS } from '../src/limits.ts';
import { nth } from './_harness.ts';
import { toHex } from '../src/_bytes.ts';
import { decodeVerificationMessage } from '../src/verification-message.ts';
import { PeerVerifications, type KeptVerification, type VerificationOutcome, type VerificationRequest } from '../src/peer-verification.ts';

const KEYS: Record<string, Uint8Array[]> = { alice: [new Uint8Array(32).fill(1)], bob: [new Uint8Array(32).fill(2)] };

/** Both clocks a control message carries, as of now. */
function clocksNow(): { sentAt: number; serverTs: number } {
  const t = Date.now();
  return { sentAt: t, serverTs: t };
}

function keysOf(userId: string): Uint8Array[] {
  const keys = KEYS[userId];
  if (keys === undefined) throw new Error(`no keys for ${userId}`);
  return keys;
}

interface Side {
  readonly me: DeviceRef;
  readonly manager: PeerVerifications;
  readonly requests: VerificationRequest[];
  readonly outcomes: VerificationOutcome[];
  readonly verified: string[];
  /** Control messages sent, not yet delivered. */
  readonly outbox: Uint8Array[];
  /** What the client store keeps (hooks.keep), by peer user. */
  readonly kept: Map<string, KeptVerification>;
}

/** `kept`: the store of an earlier side of the same device, to start where it left off. */
function side(userId: string, deviceId: string, now: () => number = Date.now, kept = new Map<string, KeptVerification>()): Side {
  const me = { userId, deviceId };
  const requests: VerificationRequest[] = [];
  const outcomes: VerificationOutcome[] = [];
  const verified: string[] = [];
  const outbox: Uint8Array[] = [];
  const manager = new PeerVerifications(userId, {
    parties: async (peer) => ({
      parties: { local: { userId, identityKeys: keysOf(userId) }, remote: { userId: peer, identityKeys: keysOf(peer) } },
      remote: [{ deviceId: 'd', identityKey: nth(keysOf(peer), 0) }],
    }),
    room: async () => 'room',
    // The room's stored messages are what the test delivers: caught up by the next turn.
    caughtUp: async () => undefined,
    send: async (_room, control) => {
      outbox.push(control);
    },
    keep: (peer, k) => {
      if (k === null) kept.delete(peer);
      else kept.set(peer, k);
    },
    verified: (peer) => verified.push(peer),
    request: (r) => requests.push(r),
    outcome: (o) => outcomes.push(o),
    error: (e) => assert.fail(String(e)),
    now,
  });
  const made = { me, manager, requests, outcomes, verified, outbox, kept };
  sides.push(made);
  return made;
}

/** Every side made, so a test that fails half-way leaves no attempt (and its 5-minute timer) open. */
const sides: Side[] = [];

/** Deliver everything `from` has sent to `to` (the type byte stripped, as the client does), until both are quiet. */
async function pump(a: Side, b: Side): Promise<void> {
  for (let round = 0; round < 20; round++) {
    await new Promise((resolve) => setImmediate(resolve));
    if (a.outbox.length === 0 && b.outbox.length === 0) return;
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      for (const m of from.outbox.splice(0)) to.manager.receive('room', from.me, clocksNow(), m.subarray(1));
    }
  }
}

describe('verification in conversations (rules)', () => {
  it('a request, answered: both verified, the peer recorded', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    const started = a.manager.verify('bob', 'secret');
    await pump(a, b);
    assert.equal(b.requests.length, 1);
    const answered = b.manager.accept('alice', 'secret');
    await pump(a, b);
    assert.equal((await started).state, 'verified');
    assert.equal((await answered).state, 'verified');
    assert.deepEqual(a.verified, ['bob']);
    assert.deepEqual(b.verified, ['alice']);
    assert.deepEqual([a.kept.size, b.kept.size], [0, 0], 'an attempt that ended is forgotten by the store');
  });

  it('a request left unanswered when the client closes is offered again by the next client on the store, and answered: both verified', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    const started = a.manager.verify('bob', 'secret');
    await pump(a, b);
    const request = nth(b.requests, 0);
    assert.ok(Math.abs(request.expiresAt - (Date.now() + VERIFICATION_TIMEOUT_MS)) < 5_000, 'answerable for the timeout from when it came');
    assert.equal(b.kept.get('alice')?.state, 'request');
    b.manager.closeAll(); // a reload: the attempt ends here, its record stays
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(b.kept.get('alice')?.state, 'request');

    const b2 = side('bob', 'phone', Date.now, b.kept);
    const restored = b2.manager.restore([...b.kept.values()]);
    assert.deepEqual(restored.requests, [request]);
    assert.deepEqual(restored.outcomes, []);
    assert.deepEqual(b2.manager.requests(), [request]);
    assert.deepEqual(b2.requests, [], 'restore reports nothing itself: the client does, on its next turn');
    const answered = b2.manager.accept('alice', 'secret');
    await pump(a, b2);
    assert.equal((await started).state, 'verified');
    assert.equal((await answered).state, 'verified');
    assert.deepEqual(b2.verified, ['alice']);
    assert.equal(b2.kept.size, 0);
  });

  it('an attempt under way when the client closes is ended by the next client on the store, and the peer told at once', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    const started = a.manager.verify('bob', 'secret');
    await pump(a, b);
    void b.manager.accept('alice', 'secret');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(b.outbox.length, 1, 'step 2 sent');
    const running = a.kept.get('bob');
    assert.ok(running?.state === 'running', 'kept as under way');
    a.manager.closeAll(); // alice's tab goes away before step 2 arrives
    assert.equal((await started).state, 'aborted');

    const a2 = side('alice', 'laptop', Date.now, a.kept);
    const restored = a2.manager.restore([...a.kept.values()]);
    assert.deepEqual(restored.requests, []);
    assert.deepEqual(restored.outcomes.map((o) => [o.userId, o.state, o.reason]), [['bob', 'aborted', 'interrupted']]);
    assert.equal(a2.kept.size, 1, 'kept until the abort is stored');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(a2.kept.size, 0, 'forgotten once it is');
    const abort = decodeVerificationMessage(nth(a2.outbox, 0).subarray(1));
    assert.deepEqual([abort.kind, toHex(abort.id)], ['abort', running.verificationId], 'an abort naming the attempt');
    await pump(a2, b);
    assert.deepEqual(b.outcomes.map((o) => [o.state, o.reason, o.peerReason]), [['aborted', 'peer-aborted', 'cancelled']], 'bob hears of it without waiting for his timeout');
    assert.equal(b.kept.size, 0);
  });

  it('kept records that do not hold together (another store implementation, a bug) are forgotten, never thrown on; the good ones still restored', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    void a.manager.verify('bob', 'secret');
    await pump(a, b);
    const good = b.kept.get('alice');
    assert.ok(good?.state === 'request');
    b.manager.closeAll();
    const bad = [
      { state: 'running', userId: 'carol', roomId: 'room', verificationId: 'not hex' },
      { state: 'request', request: { ...good.request, userId: 'dave', from: { userId: 'dave', deviceId: 'x' }, verificationId: 'ab' }, start: good.start },
      { state: 'request', request: { ...good.request, userId: 'erin', from: { userId: 'erin', deviceId: 'x' } }, start: 'not bytes' },
      { state: 'request', request: { ...good.request, userId: 'frank', from: { userId: 'mallory', deviceId: 'x' } }, start: good.start },
    ] as unknown as KeptVerification[];
    const kept = new Map(b.kept);
    for (const k of bad) kept.set(k.state === 'running' ? k.userId : k.request.userId, k);
    const b2 = side('bob', 'phone', Date.now, kept);
    const restored = b2.manager.restore([...kept.values()]);
    assert.deepEqual(restored.requests.map((r) => r.userId), ['alice']);
    assert.deepEqual(restored.outcomes, []);
    assert.deepEqual([...kept.keys()], ['alice'], 'the malformed records are forgotten');
    assert.equal(b2.outbox.length, 0, 'no abort sent for a record that names no attempt');
    b2.manager.closeAll();
    a.manager.closeAll();
  });

  it('a kept request that expired meanwhile is not offered again: dropped, reported as timed out', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    void a.manager.verify('bob', 'secret');
    await pump(a, b);
    b.manager.closeAll();
    const later = Date.now() + VERIFICATION_TIMEOUT_MS + 1;
    const b2 = side('bob', 'phone', () => later, b.kept);
    const restored = b2.manager.restore([...b.kept.values()]);
    assert.deepEqual(restored.requests, []);
    assert.deepEqual(restored.outcomes.map((o) => [o.userId, o.reason]), [['alice', 'timeout']]);
    assert.equal(b2.kept.size, 0);
    assert.equal(b2.manager.request('alice'), null);
    a.manager.closeAll();
  });

  it('both start at once: one attempt wins the tie, both verified', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    const pa = a.manager.verify('bob', 'same words');
    const pb = b.manager.verify('alice', 'same words');
    await pump(a, b);
    assert.equal((await pa).state, 'verified');
    assert.equal((await pb).state, 'verified');
  });

  it('a start older than VERIFICATION_TIMEOUT_MS by the sender’s clock or the server’s (a replay, or held back) is not offered', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    void a.manager.verify('bob', 'x');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const start = nth(a.outbox.splice(0, 1), 0);
    const old = Date.now() - VERIFICATION_TIMEOUT_MS - 1;
    const fresh = Date.now() - VERIFICATION_TIMEOUT_MS + 1000;
    // Old by the server's clock, or by the sender's (a start the server held back and delivers with a fresh ts).
    b.manager.receive('room', a.me, { sentAt: fresh, serverTs: old }, start.subarray(1));
    b.manager.receive('room', a.me, { sentAt: old, serverTs: Date.now() }, start.subarray(1));
    assert.equal(b.requests.length, 0);
    // Clocks a few minutes off either way (sender behind, receiver ahead of the server): each check compares two clocks.
    const skew = VERIFICATION_TIMEOUT_MS * 0.6;
    const skewed = { sentAt: Date.now() - 2 * skew, serverTs: Date.now() - skew };
    b.manager.receive('room', a.me, skewed, start.subarray(1));
    assert.equal(b.requests.length, 1);
    assert.equal(b.requests[0]?.requestedAt, skewed.sentAt, 'the older of the two clocks');
    a.manager.closeAll();
    b.manager.closeAll();
  });

  it("ignores this user's own devices' messages, and garbage when nothing runs", async () => {
    const a = side('alice', 'laptop');
    const a2 = side('alice', 'tablet');
    void a.manager.verify('bob', 'x');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    a2.manager.receive('room', a.me, clocksNow(), nth(a.outbox, 0).subarray(1));
    a2.manager.receive('room', { userId: 'bob', deviceId: 'phone' }, clocksNow(), Uint8Array.of(1, 2, 3));
    assert.deepEqual(a2.requests, []);
    assert.equal(a2.manager.request('alice'), null);
    a.manager.closeAll();
  });

  it('a peer that starts over replaces its open request', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    void a.manager.verify('bob', 'one');
    await pump(a, b);
    a.manager.cancel('bob');
    const second = a.manager.verify('bob', 'two');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    // The abort is lost; only the new start arrives.
    const [abort, start] = a.outbox.splice(0);
    assert.ok(abort !== undefined && start !== undefined);
    b.manager.receive('room', a.me, clocksNow(), start.subarray(1));
    assert.equal(b.requests.length, 2);
    await new Promise((resolve) => setImmediate(resolve)); // outcomes are reported after the last send settles
    assert.deepEqual(b.outcomes.map((o) => o.reason), ['replaced']);
    const answered = b.manager.accept('alice', 'two');
    await pump(a, b);
    assert.equal((await second).state, 'verified');
    assert.equal((await answered).state, 'verified');
  });

  it(`at most VERIFICATION_PENDING_MAX (${VERIFICATION_PENDING_MAX}) users have an open attempt`, async () => {
    const b = side('bob', 'phone');
    const starters = Array.from({ length: VERIFICATION_PENDING_MAX + 1 }, (_, i) => side(`u${i}`, 'd'));
    for (const s of starters) KEYS[s.me.userId] = [new Uint8Array(32).fill(3)];
    for (const s of starters) void s.manager.verify('bob', 'x');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const deliver = (s: Side): void => b.manager.receive('room', s.me, clocksNow(), nth(s.outbox, 0).subarray(1));
    for (const s of starters.slice(0, VERIFICATION_PENDING_MAX)) deliver(s);
    assert.equal(b.requests.length, VERIFICATION_PENDING_MAX);
    assert.equal(b.outcomes.length, 0, 'all kept at the limit');
    // One more: offered, and the oldest unanswered request is given up — reported, not silent.
    deliver(nth(starters, VERIFICATION_PENDING_MAX));
    assert.equal(b.requests.length, VERIFICATION_PENDING_MAX + 1);
    assert.notEqual(b.manager.request(`u${VERIFICATION_PENDING_MAX}`), null);
    assert.equal(b.manager.request('u0'), null);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(b.outcomes.map((o) => [o.userId, o.state, o.reason]), [['u0', 'aborted', 'crowded-out']]);
    for (const s of starters) s.manager.closeAll();
    b.manager.closeAll();
  });

  it('when every open attempt is under way, a new request is not kept and that is reported', async () => {
    const b = side('bob', 'phone');
    const peers = Array.from({ length: VERIFICATION_PENDING_MAX }, (_, i) => `w${i}`);
    for (const p of peers) KEYS[p] = [new Uint8Array(32).fill(4)];
    KEYS['late'] = [new Uint8Array(32).fill(5)];
    // Bob himself starts verifying every one of them (attempts under way, not requests).
    for (const p of peers) void b.manager.verify(p, 'x');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const late = side('late', 'd');
    void late.manager.verify('bob', 'y');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    b.manager.receive('room', late.me, clocksNow(), nth(late.outbox, 0).subarray(1));
    assert.equal(b.manager.request('late'), null);
    assert.deepEqual(b.outcomes.map((o) => [o.userId, o.state, o.reason]), [['late', 'aborted', 'crowded-out']]);
    late.manager.closeAll();
    b.manager.closeAll();
  });

  it('an attempt nobody answers times out and tells the peer', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const a = side('alice', 'laptop');
      const b = side('bob', 'phone');
      const started = a.manager.verify('bob', 'x');
      await pump(a, b);
      assert.equal(b.requests.length, 1);
      mock.timers.tick(VERIFICATION_TIMEOUT_MS);
      const result = await started;
      assert.deepEqual([result.state, result.reason], ['aborted', 'timeout']);
      assert.deepEqual(b.outcomes.map((o) => o.reason), ['timeout'], "bob's unanswered request expired too");
      await pump(a, b); // alice's abort reaches bob, whose request is already gone: nothing happens
      assert.equal(b.outcomes.length, 1);
    } finally {
      mock.timers.reset();
    }
  });
});

/** Everything `from` has sent so far, taken from its outbox (type byte stripped), to hand to whoever the test chooses. */
async function drainOutbox(from: Side): Promise<Uint8Array[]> {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
  return from.outbox.splice(0).map((m) => m.subarray(1));
}

async function turns(n = 4): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Alice asks bob to verify; the start reaches both of bob's devices, phone and tablet. */
async function requestToTwoDevices(): Promise<{ a: Side; phone: Side; tablet: Side; started: Promise<VerificationOutcome> }> {
  const a = side('alice', 'laptop');
  const phone = side('bob', 'phone');
  const tablet = side('bob', 'tablet');
  const started = a.manager.verify('bob', 'secret');
  const [start] = await drainOutbox(a);
  assert.ok(start !== undefined);
  phone.manager.receive('room', a.me, clocksNow(), start);
  tablet.manager.receive('room', a.me, clocksNow(), start);
  return { a, phone, tablet, started };
}

describe('kept verifications (review: interleavings around a restart)', () => {
  afterEach(() => {
    for (const s of sides.splice(0)) s.manager.closeAll();
  });

  it('a restored request answered at once, before the catch-up shows that another device of this user answered it: ends answered-elsewhere, never runs the comparator on the other device’s step', async () => {
    const { a, phone, tablet, started } = await requestToTwoDevices();
    tablet.manager.closeAll(); // the tablet's app is closed with the request open
    // The phone answers; alice's step 3 goes to every bob device (the tablet gets it on its catch-up).
    const answered = phone.manager.accept('alice', 'secret');
    const forTablet: Uint8Array[] = [];
    for (let round = 0; round < 6; round++) {
      for (const m of await drainOutbox(phone)) a.manager.receive('room', phone.me, clocksNow(), m);
      for (const m of await drainOutbox(a)) {
        forTablet.push(m);
        phone.manager.receive('room', a.me, clocksNow(), m);
      }
    }
    assert.equal((await started).state, 'verified');
    assert.equal((await answered).state, 'verified');
    assert.equal(forTablet.length, 1, "alice's step 3");

    // The tablet's app starts again: the restored request is listed at once, and the app answers it at once.
    const tablet2 = side('bob', 'tablet', Date.now, tablet.kept);
    assert.equal(tablet2.manager.restore([...tablet.kept.values()]).requests.length, 1);
    const late = tablet2.manager.accept('alice', 'secret');
    // The catch-up delivers what was stored meanwhile: alice's step 3, meant for the phone.
    for (const m of forTablet) tablet2.manager.receive('room', a.me, clocksNow(), m);
    const outcome = await late;
    await turns();
    assert.deepEqual([outcome.state, outcome.reason], ['aborted', 'answered-elsewhere'], `the tablet got ${outcome.state}/${String(outcome.reason)}`);
    assert.deepEqual(tablet2.kept.size, 0);
  });

  it('two devices of one user answering one request together: the one whose step 2 the other sees first runs it; the other ends answered-elsewhere and sends nothing', async () => {
    const { a, phone, tablet, started } = await requestToTwoDevices();
    const onPhone = phone.manager.accept('alice', 'secret');
    const [step2] = await drainOutbox(phone);
    assert.ok(step2 !== undefined);
    // The tablet's user answers too, while the phone's step 2 reaches it (a copy to this user's own devices).
    const onTablet = tablet.manager.accept('alice', 'secret');
    tablet.manager.receive('room', phone.me, clocksNow(), step2);
    a.manager.receive('room', phone.me, clocksNow(), step2);
    const [step3] = await drainOutbox(a);
    assert.ok(step3 !== undefined);
    tablet.manager.receive('room', a.me, clocksNow(), step3);
    phone.manager.receive('room', a.me, clocksNow(), step3);
    for (const m of await drainOutbox(phone)) a.manager.receive('room', phone.me, clocksNow(), m);
    const t = await onTablet;
    assert.deepEqual([t.state, t.reason], ['aborted', 'answered-elsewhere']);
    await turns();
    assert.equal(tablet.outbox.length, 0, 'the tablet sent no step 2 and no abort');
    assert.equal((await onPhone).state, 'verified');
    assert.equal((await started).state, 'verified');
    assert.equal(tablet.kept.size, 0);
  });

  it('a restored request answered at once while the catch-up brings the peer’s abort of it and a new start: the new start is offered as a request, not lost', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    void a.manager.verify('bob', 'one');
    const [start1] = await drainOutbox(a);
    assert.ok(start1 !== undefined);
    b.manager.receive('room', a.me, clocksNow(), start1);
    b.manager.closeAll();
    // While bob is away alice gives up and starts again.
    a.manager.cancel('bob');
    const second = a.manager.verify('bob', 'two');
    const [abort1, start2] = await drainOutbox(a);
    assert.ok(abort1 !== undefined && start2 !== undefined);
    assert.equal(decodeVerificationMessage(abort1).kind, 'abort');
    assert.equal(decodeVerificationMessage(start2).kind, 'start');

    const b2 = side('bob', 'phone', Date.now, b.kept);
    b2.manager.restore([...b.kept.values()]);
    const first = b2.manager.accept('alice', 'one'); // the app answers the restored request at once
    b2.manager.receive('room', a.me, clocksNow(), abort1); // the catch-up, meanwhile
    b2.manager.receive('room', a.me, clocksNow(), start2);
    const outcome = await first;
    await turns();
    assert.deepEqual([outcome.state, outcome.reason], ['aborted', 'peer-aborted']);
    const request = b2.manager.request('alice');
    assert.equal(request?.verificationId, toHex(decodeVerificationMessage(start2).id), 'alice’s new request is open at bob');
    assert.equal(b2.kept.get('alice')?.state, 'request', 'and kept');
    // And it can be answered.
    const answered = b2.manager.accept('alice', 'two');
    await pump(a, b2);
    assert.equal((await answered).state, 'verified');
    assert.equal((await second).state, 'verified');
  });

  it('closing while accept() fetches the key sets keeps the request; the next client offers it again and it is answered', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    const started = a.manager.verify('bob', 'secret');
    await pump(a, b);
    const pending = b.manager.accept('alice', 'secret'); // key sets being fetched…
    b.manager.closeAll(); // …when the tab goes away
    const cut = await pending;
    assert.deepEqual([cut.state, cut.reason], ['aborted', 'cancelled']);
    await turns();
    assert.equal(b.outbox.length, 0, 'nothing was sent: the peer still waits');
    assert.equal(b.kept.get('alice')?.state, 'request', 'still a request in the store');
    const b2 = side('bob', 'phone', Date.now, b.kept);
    assert.equal(b2.manager.restore([...b.kept.values()]).requests.length, 1);
    const answered = b2.manager.accept('alice', 'secret');
    await pump(a, b2);
    assert.equal((await answered).state, 'verified');
    assert.equal((await started).state, 'verified');
    assert.equal(b2.kept.size, 0);
  });

  it('the same start delivered again after the restore (a catch-up that replays it) changes nothing: one request, answered, verified', async () => {
    const a = side('alice', 'laptop');
    const b = side('bob', 'phone');
    const started = a.manager.verify('bob', 'secret');
    const [start] = await drainOutbox(a);
    assert.ok(start !== undefined);
    b.manager.receive('room', a.me, clocksNow(), start);
    b.manager.closeAll();
    const b2 = side('bob', 'phone', Date.now, b.kept);
    b2.manager.restore([...b.kept.values()]);
    b2.manager.receive('room', a.me, clocksNow(), start);
    b2.manager.receive('room', a.me, clocksNow(), start);
    assert.deepEqual(b2.requests, [], 'not reported again');
    assert.equal(b2.manager.requests().length, 1);
    const answered = b2.manager.accept('alice', 'secret');
    await pump(a, b2);
    assert.equal((await answered).state, 'verified');
    assert.equal((await started).state, 'verified');
  });

  it(`restoring more than VERIFICATION_PENDING_MAX kept records: running ones are ended and told, the newest ${VERIFICATION_PENDING_MAX} requests offered, the older crowded out and forgotten`, async () => {
    const n = VERIFICATION_PENDING_MAX + 3;
    const starters = Array.from({ length: n }, (_, i) => side(`r${i}`, 'd'));
    for (const s of starters) KEYS[s.me.userId] = [new Uint8Array(32).fill(6)];
    for (const s of starters) void s.manager.verify('bob', 'x');
    await turns();
    const base = Date.now();
    const kept = new Map<string, KeptVerification>();
    // Records as a store could hold them (e.g. written by two app versions): n requests, request i made at base - i s.
    starters.forEach((s, i) => {
      const start = nth(s.outbox, 0).subarray(1);
      const id = toHex(decodeVerificationMessage(start).id);
      kept.set(s.me.userId, { state: 'request', request: { userId: s.me.userId, roomId: 'room', from: s.me, verificationId: id, requestedAt: base - i * 1000 }, start, receivedAt: base - i * 1000 });
    });
    kept.set('runner', { state: 'running', userId: 'runner', roomId: 'room-runner', verificationId: '00'.repeat(16) });
    const b2 = side('bob', 'phone', Date.now, kept);
    const restored = b2.manager.restore([...kept.values()]);
    assert.deepEqual(restored.requests.map((r) => r.userId), starters.slice(0, VERIFICATION_PENDING_MAX).map((s) => s.me.userId));
    assert.deepEqual(
      restored.outcomes.map((o) => [o.userId, o.reason]),
      [['runner', 'interrupted'], ...starters.slice(VERIFICATION_PENDING_MAX).map((s) => [s.me.userId, 'crowded-out'])],
    );
    await turns(); // the running record goes once its abort is stored
    assert.equal(kept.size, VERIFICATION_PENDING_MAX, 'the store keeps exactly what is open');
    assert.equal(kept.has('runner'), false);
    await turns();
    assert.equal(b2.outbox.length, 1, 'one abort, for the running one');
    // A new request now crowds out the oldest restored one, as in receive().
    const late = side('late2', 'd');
    KEYS['late2'] = [new Uint8Array(32).fill(7)];
    void late.manager.verify('bob', 'y');
    b2.manager.receive('room', late.me, clocksNow(), nth(await drainOutbox(late), 0));
    assert.notEqual(b2.manager.request('late2'), null);
    assert.equal(b2.manager.requests().length, VERIFICATION_PENDING_MAX);
    for (const s of [...starters, late]) s.manager.closeAll();
    b2.manager.closeAll();
  });

  it('both start at once: each side keeps the attempt under the id that won, so a restart of either ends the attempt the other really runs', async () => {
    for (let trial = 0; trial < 6; trial++) {
      const a = side('alice', 'laptop');
      const b = side('bob', 'phone');
      const pa = a.manager.verify('bob', 'crossing');
      const pb = b.manager.verify('alice', 'crossing');
      const [sa] = await drainOutbox(a);
      const [sb] = await drainOutbox(b);
      assert.ok(sa !== undefined && sb !== undefined);
      a.manager.receive('room', b.me, clocksNow(), sb);
      b.manager.receive('room', a.me, clocksNow(), sa);
      await turns();
      const ka = a.kept.get('bob');
      const kb = b.kept.get('alice');
      assert.ok(ka?.state === 'running' && kb?.state === 'running');
      assert.equal(ka.verificationId, kb.verificationId, 'both name the winning attempt');
      // The loser's tab closes now; its next client tells the winner.
      const ida = toHex(decodeVerificationMessage(sa).id);
      const loser = ka.verificationId === ida ? b : a;
      const winner = loser === a ? b : a;
      const lost = loser === a ? pa : pb;
      const won = loser === a ? pb : pa;
      loser.outbox.splice(0); // its step 2 never left
      loser.manager.closeAll();
      assert.equal((await lost).state, 'aborted');
      const again = side(loser.me.userId, loser.me.deviceId, Date.now, loser.kept);
      again.manager.restore([...loser.kept.values()]);
      for (const m of await drainOutbox(again)) winner.manager.receive('room', again.me, clocksNow(), m);
      const o = await won;
      assert.deepEqual([o.state, o.reason, o.peerReason], ['aborted', 'peer-aborted', 'cancelled']);
      assert.equal(winner.kept.size, 0);
    }
  });

  it('a request from a peer whose clock is a few minutes behind (accepted live) survives a reload while the peer still waits for it', async () => {
    const a = side('alice', 'laptop');
    const t0 = Date.now();
    const b = side('bob', 'phone', () => t0);
    void a.manager.verify('bob', 'x');
    const [start] = await drainOutbox(a);
    assert.ok(start !== undefined);
    // Alice's clock is 0.6 × the timeout behind: the live rules accept it (see the skew test above),
    // and the live request would wait the whole timeout from here.
    const skew = VERIFICATION_TIMEOUT_MS * 0.6;
    b.manager.receive('room', a.me, { sentAt: t0 - skew, serverTs: t0 }, start);
    assert.equal(b.requests.length, 1);
    b.manager.closeAll();
    // Bob reloads half a timeout later; alice (whose own timer started at t0) still waits for another half.
    const b2 = side('bob', 'phone', () => t0 + VERIFICATION_TIMEOUT_MS * 0.5, b.kept);
    const restored = b2.manager.restore([...b.kept.values()]);
    assert.deepEqual(restored.outcomes.map((o) => o.reason), [], 'not dropped as timed out');
    assert.equal(restored.requests.length, 1);
    assert.equal(restored.requests[0]?.expiresAt, t0 + VERIFICATION_TIMEOUT_MS, 'it expires when it would have without the reload (this device\'s clock)');
    a.manager.closeAll();
    b2.manager.closeAll();
  });
});
