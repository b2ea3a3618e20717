/**
 * Safety numbers (safety-number.ts) and the secret-comparison verification
 * flow (verification.ts): two in-process parties, hostile and replayed
 * control messages, concurrent starts, and one side played by the real
 * wasm-themis Secure Comparator.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SdkError } from '../src/errors.ts';
import {
  formatSafetyNumber,
  safetyNumber,
  safetyNumberBinding,
  SAFETY_NUMBER_ITERATIONS,
  SAFETY_NUMBER_KEYS_MAX,
  type SafetyNumberParty,
} from '../src/safety-number.ts';
import {
  COMPARATOR_MESSAGE_BYTES,
  decodeVerificationMessage,
  encodeVerificationMessage,
  VERIFICATION_ID_BYTES,
  VERIFICATION_MESSAGE_BYTES_MAX,
  type VerificationMessage,
} from '../src/verification-message.ts';
import { VERIFICATION_SECRET_BYTES_MAX, verificationComparatorSecret, type VerificationParties } from '../src/verification-secret.ts';
import { VerificationSession, type VerificationUpdate } from '../src/verification.ts';

const key = (): Uint8Array => new Uint8Array(randomBytes(32));
const isCode = (code: string) => (e: unknown) => SdkError.is(e) && e.code === code;
const ALICE_DEVICE = 'alice/laptop';
const BOB_DEVICE = 'bob/phone';

/** A copy of `b` with bit 0 of byte `at` flipped. */
function flip(b: Uint8Array, at: number): Uint8Array {
  const out = b.slice();
  out[at] = (out[at] as number) ^ 1;
  return out;
}

/** The comparator data of a start or step. */
function dataOf(m: VerificationMessage): Uint8Array {
  assert.ok(m.kind !== 'abort', 'expected a start or a step');
  return m.data;
}

function reply(u: VerificationUpdate): Uint8Array {
  assert.ok(u.reply !== null, `expected a reply in state ${u.state}`);
  return u.reply;
}

// ---------------------------------------------------------------------------
// Safety numbers

/** The spec of safety-number.ts, written again with node:crypto. */
function referenceHalf(userId: string, keys: Uint8Array[]): string {
  const sorted = [...keys].sort((x, y) => Buffer.compare(x, y));
  const block = Buffer.concat([Buffer.from([sorted.length >> 8, sorted.length & 0xff]), ...sorted]);
  let h: Buffer = Buffer.concat([Buffer.from([0, 0]), block, Buffer.from(userId, 'utf8')]);
  for (let i = 0; i < 5200; i++) h = createHash('sha512').update(h).update(block).digest();
  let out = '';
  for (let j = 0; j < 6; j++) out += String(h.readUIntBE(j * 5, 5) % 100000).padStart(5, '0');
  return out;
}

const fixedKey = (start: number): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => (start + i) & 0xff);

describe('safety numbers', () => {
  const alice: SafetyNumberParty = { userId: 'alice', identityKeys: [fixedKey(0x40), fixedKey(0x00)] };
  const bob: SafetyNumberParty = { userId: 'bob', identityKeys: [fixedKey(0x80)] };

  it('match a reference computed with node:crypto, and a frozen known answer', () => {
    assert.equal(SAFETY_NUMBER_ITERATIONS, 5200);
    const expected = referenceHalf('alice', [...alice.identityKeys]) + referenceHalf('bob', [...bob.identityKeys]);
    const got = safetyNumber(alice, bob);
    assert.equal(got, expected);
    // Frozen: a change of format must be deliberate (and bump SAFETY_NUMBER_VERSION).
    assert.equal(got, FROZEN_SAFETY_NUMBER);
  });

  it('are symmetric: argument order and key order do not matter', () => {
    const n = safetyNumber(alice, bob);
    assert.equal(safetyNumber(bob, alice), n);
    assert.equal(safetyNumber({ ...alice, identityKeys: [...alice.identityKeys].reverse() }, bob), n);
    assert.match(n, /^[0-9]{60}$/);
    // Halves ordered by user id: "alice" < "bob", whoever computes.
    assert.equal(n.slice(0, 30), referenceHalf('alice', [...alice.identityKeys]));
  });

  it('change when any device key changes, or a device is added or removed', () => {
    const base = safetyNumber(alice, bob);
    const seen = new Set([base]);
    for (let i = 0; i < alice.identityKeys.length; i++) {
      const keys = alice.identityKeys.map((k, j) => (j === i ? flip(k, 31) : k));
      seen.add(safetyNumber({ userId: 'alice', identityKeys: keys }, bob));
    }
    const bobKey = flip(bob.identityKeys[0] as Uint8Array, 0);
    seen.add(safetyNumber(alice, { userId: 'bob', identityKeys: [bobKey] }));
    seen.add(safetyNumber(alice, { userId: 'bob', identityKeys: [...bob.identityKeys, key()] }));
    seen.add(safetyNumber({ userId: 'alice', identityKeys: [alice.identityKeys[0] as Uint8Array] }, bob));
    seen.add(safetyNumber({ ...alice, userId: 'alicia' }, bob));
    assert.equal(seen.size, 7, 'every change gives a different number');
  });

  it('format as 12 groups of 5 digits', () => {
    const f = formatSafetyNumber(FROZEN_SAFETY_NUMBER);
    assert.equal(f.split(' ').length, 12);
    assert.match(f, /^[0-9]{5}( [0-9]{5}){11}$/);
    assert.equal(f.replaceAll(' ', ''), FROZEN_SAFETY_NUMBER);
    for (const bad of ['', '1'.repeat(59), '1'.repeat(61), 'a'.repeat(60), f]) {
      assert.throws(() => formatSafetyNumber(bad), isCode('INVALID_ARGUMENT'), JSON.stringify(bad));
    }
  });

  it('refuse malformed parties', () => {
    const bad: [string, unknown, unknown][] = [
      ['same user', alice, { ...bob, userId: 'alice' }],
      ['no keys', alice, { userId: 'bob', identityKeys: [] }],
      ['short key', alice, { userId: 'bob', identityKeys: [new Uint8Array(31)] }],
      ['key not bytes', alice, { userId: 'bob', identityKeys: [Array.from(fixedKey(1))] }],
      ['duplicate key', alice, { userId: 'bob', identityKeys: [fixedKey(1), fixedKey(1)] }],
      ['bad user id', alice, { userId: 'Bob Smith', identityKeys: [fixedKey(1)] }],
      ['too many keys', alice, { userId: 'bob', identityKeys: Array.from({ length: SAFETY_NUMBER_KEYS_MAX + 1 }, (_, i) => fixedKey(i)) }],
      ['not an object', alice, null],
    ];
    for (const [what, a, b] of bad) {
      assert.throws(() => safetyNumber(a as SafetyNumberParty, b as SafetyNumberParty), isCode('INVALID_ARGUMENT'), what);
      assert.throws(() => safetyNumberBinding(a as SafetyNumberParty, b as SafetyNumberParty), isCode('INVALID_ARGUMENT'), what);
    }
  });

  it('have a binding digest that is symmetric and covers every key', () => {
    const b = safetyNumberBinding(alice, bob);
    assert.equal(b.length, 64);
    assert.deepEqual(safetyNumberBinding(bob, alice), b);
    const other = safetyNumberBinding(alice, { userId: 'bob', identityKeys: [...bob.identityKeys, key()] });
    assert.notDeepEqual(other, b);
  });
});

/** safetyNumber(alice, bob) of the test above, computed once with the reference. */
const FROZEN_SAFETY_NUMBER = '892177449092691352345316012707880532932789519167973126015353';

// ---------------------------------------------------------------------------
// Control messages

describe('verification control messages', () => {
  const id = new Uint8Array(VERIFICATION_ID_BYTES).fill(7);
  const data = (step: 1 | 2 | 3 | 4): Uint8Array => new Uint8Array(COMPARATOR_MESSAGE_BYTES[step]).fill(step);

  it('have the documented layout', () => {
    const start = encodeVerificationMessage({ kind: 'start', id, data: data(1) });
    assert.deepEqual([...start.subarray(0, 18)], [1, 1, ...id]);
    assert.equal(start.length, 18 + 192);
    const step = encodeVerificationMessage({ kind: 'step', id, step: 2, data: data(2) });
    assert.deepEqual([...step.subarray(0, 19)], [1, 2, ...id, 2]);
    assert.equal(step.length, VERIFICATION_MESSAGE_BYTES_MAX);
    assert.deepEqual([...encodeVerificationMessage({ kind: 'abort', id, reason: 'timeout' })], [1, 3, ...id, 2]);
  });

  it('round-trip every kind', () => {
    const all: VerificationMessage[] = [
      { kind: 'start', id, data: data(1) },
      { kind: 'step', id, step: 2, data: data(2) },
      { kind: 'step', id, step: 3, data: data(3) },
      { kind: 'step', id, step: 4, data: data(4) },
      ...(['cancelled', 'timeout', 'malformed', 'unexpected', 'unspecified'] as const).map((reason) => ({ kind: 'abort' as const, id, reason })),
    ];
    for (const m of all) assert.deepEqual(decodeVerificationMessage(encodeVerificationMessage(m)), m);
    // An abort reason from a newer peer is read, not refused.
    assert.deepEqual(decodeVerificationMessage(Uint8Array.of(1, 3, ...id, 0x77)), { kind: 'abort', id, reason: 'unspecified' });
  });

  it('refuse malformed bytes with MALFORMED, bounded', () => {
    const good = encodeVerificationMessage({ kind: 'step', id, step: 3, data: data(3) });
    const patched = (at: number, v: number): Uint8Array => {
      const b = good.slice();
      b[at] = v;
      return b;
    };
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['version', patched(0, 2)],
      ['kind 0', patched(1, 0)],
      ['kind 4', patched(1, 4)],
      ['step 1', patched(18, 1)],
      ['step 5', patched(18, 5)],
      ['step 2 with step 3 data', patched(18, 2)],
      ['step 4 with step 3 data (trailing)', patched(18, 4)],
      ['trailing byte', Uint8Array.of(...good, 0)],
      ['above the maximum', new Uint8Array(VERIFICATION_MESSAGE_BYTES_MAX + 1).fill(1)],
      ['abort without reason', Uint8Array.of(1, 3, ...id)],
    ];
    for (let n = 0; n < good.length; n++) cases.push([`truncated to ${n}`, good.subarray(0, n)]);
    for (const [what, bytes] of cases) assert.throws(() => decodeVerificationMessage(bytes), isCode('MALFORMED'), what);
  });

  it('refuse to encode wrong sizes', () => {
    assert.throws(() => encodeVerificationMessage({ kind: 'start', id, data: data(2) }), isCode('INVALID_ARGUMENT'));
    assert.throws(() => encodeVerificationMessage({ kind: 'abort', id: id.subarray(1), reason: 'timeout' }), isCode('INVALID_ARGUMENT'));
  });
});

// ---------------------------------------------------------------------------
// Sessions

interface World {
  aliceKeys: Uint8Array[];
  bobKeys: Uint8Array[];
  /** What Alice's device sees. */
  alice: VerificationParties;
  /** What Bob's device sees. */
  bob: VerificationParties;
}

function world(): World {
  const aliceKeys = [key(), key()];
  const bobKeys = [key()];
  const a = { userId: 'alice', identityKeys: aliceKeys };
  const b = { userId: 'bob', identityKeys: bobKeys };
  return { aliceKeys, bobKeys, alice: { local: a, remote: b }, bob: { local: b, remote: a } };
}

/** Deliver `first` to `to`, then the replies back and forth until none is left. */
function exchange(first: Uint8Array, to: VerificationSession, a: VerificationSession, b: VerificationSession): void {
  let msg: Uint8Array | null = first;
  let receiver = to;
  for (let hops = 0; msg !== null; hops++) {
    assert.ok(hops < 10, 'the exchange ends');
    const u: VerificationUpdate = receiver.receive(msg, receiver === a ? BOB_DEVICE : ALICE_DEVICE);
    assert.equal(u.ignored, null, `message taken by ${receiver === a ? 'alice' : 'bob'} (${u.state})`);
    msg = u.reply;
    receiver = receiver === a ? b : a;
  }
}

/** Alice starts with `secretA`, Bob accepts with `secretB`; runs to the end. */
function converse(w: World, secretA: string | Uint8Array, secretB: string | Uint8Array): [VerificationSession, VerificationSession] {
  const a = new VerificationSession(w.alice);
  const b = new VerificationSession(w.bob);
  const start = reply(a.start(secretA));
  assert.equal(a.state, 'in-progress');
  const u = b.receive(start, ALICE_DEVICE);
  assert.deepEqual(u, { state: 'awaiting-secret', reply: null, ignored: null });
  assert.equal(b.verificationId, a.verificationId);
  exchange(reply(b.accept(secretB)), a, a, b);
  return [a, b];
}

describe('verification sessions', () => {
  it('reach verified on both sides with the same secret', () => {
    const [a, b] = converse(world(), 'correct horse battery staple', 'correct horse battery staple');
    assert.equal(a.state, 'verified');
    assert.equal(b.state, 'verified');
    assert.equal(a.role, 'initiator');
    assert.equal(b.role, 'responder');
    assert.equal(a.peer, BOB_DEVICE);
    assert.equal(b.peer, ALICE_DEVICE);
    assert.equal(a.abortReason, null);
  });

  it('reach failed with different secrets', () => {
    const [a, b] = converse(world(), 'correct horse battery staple', 'correct horse battery stapler');
    assert.equal(a.state, 'failed');
    assert.equal(b.state, 'failed');
  });

  it('normalise a text secret (NFKC, surrounding space) but not bytes', () => {
    const [a, b] = converse(world(), '  ﬁve Straße\u00a0', 'five Straße');
    assert.equal(a.state, 'verified');
    assert.equal(b.state, 'verified');
    const [c, d] = converse(world(), new TextEncoder().encode(' x'), new TextEncoder().encode('x'));
    assert.equal(c.state, 'failed');
    assert.equal(d.state, 'failed');
  });

  it("fail when one side sees another key for the peer (a relaying man in the middle), even with the same secret", () => {
    const w = world();
    // Alice was given Mallory's key for Bob; Bob sees Alice right.
    const mitm: World = { ...w, alice: { local: w.alice.local, remote: { userId: 'bob', identityKeys: [key()] } } };
    const [a, b] = converse(mitm, 'same secret', 'same secret');
    assert.equal(a.state, 'failed');
    assert.equal(b.state, 'failed');
    // The same with one of Alice's two devices substituted in Bob's view.
    const mitm2: World = { ...w, bob: { local: w.bob.local, remote: { userId: 'alice', identityKeys: [w.aliceKeys[0] as Uint8Array, key()] } } };
    const [c, d] = converse(mitm2, 'same secret', 'same secret');
    assert.equal(c.state, 'failed');
    assert.equal(d.state, 'failed');
  });

  it('cannot catch a man in the middle who knows the secret and runs each comparison himself (documented limit)', () => {
    const w = world();
    const malloryKey = [key()];
    // Alice sees Mallory's key as Bob's; Mallory, knowing the secret, answers with Alice's view.
    const aliceView: World = { ...w, alice: { local: w.alice.local, remote: { userId: 'bob', identityKeys: malloryKey } } };
    const malloryAsBob: World = { ...aliceView, bob: { local: { userId: 'bob', identityKeys: malloryKey }, remote: w.alice.local } };
    const [a, m] = converse(malloryAsBob, 'guessable', 'guessable');
    assert.equal(a.state, 'verified');
    assert.equal(m.state, 'verified');
  });

  it('ignore exact duplicates, and messages after the end', () => {
    const w = world();
    const a = new VerificationSession(w.alice);
    const b = new VerificationSession(w.bob);
    const start = reply(a.start('s'));
    b.receive(start, ALICE_DEVICE);
    assert.equal(b.receive(start, ALICE_DEVICE).ignored, 'duplicate');
    const step2 = reply(b.accept('s'));
    const step3 = reply(a.receive(step2, BOB_DEVICE));
    assert.deepEqual(a.receive(step2, BOB_DEVICE), { state: 'in-progress', reply: null, ignored: 'duplicate' });
    assert.equal(b.receive(start, ALICE_DEVICE).ignored, 'duplicate');
    const step4 = reply(b.receive(step3, ALICE_DEVICE));
    assert.equal(b.state, 'verified');
    assert.equal(b.receive(step3, ALICE_DEVICE).ignored, 'finished');
    assert.equal(a.receive(step4, BOB_DEVICE).state, 'verified');
    for (const m of [start, step2, step3, step4]) {
      assert.deepEqual(a.receive(m, BOB_DEVICE), { state: 'verified', reply: null, ignored: 'finished' });
    }
    // A step or abort of that finished attempt, replayed into a new one, changes nothing.
    const a2 = new VerificationSession(w.alice);
    reply(a2.start('s'));
    assert.equal(a2.receive(step2, BOB_DEVICE).ignored, 'other-verification');
    assert.equal(a2.receive(step4, BOB_DEVICE).ignored, 'other-verification');
    assert.equal(a2.state, 'in-progress');
    // And an idle session takes only a start.
    const idle = new VerificationSession(w.bob);
    assert.equal(idle.receive(step3, ALICE_DEVICE).ignored, 'other-verification');
    assert.equal(idle.state, 'idle');
  });

  it('abort on a wrong step, and tell the peer', () => {
    const w = world();
    const a = new VerificationSession(w.alice);
    const b = new VerificationSession(w.bob);
    const start = reply(a.start('s'));
    const id = decodeVerificationMessage(start).id;
    b.receive(start, ALICE_DEVICE);
    // Step 4 before step 2: out of order.
    const early = encodeVerificationMessage({ kind: 'step', id, step: 4, data: new Uint8Array(96) });
    const u = a.receive(early, BOB_DEVICE);
    assert.equal(u.state, 'aborted');
    assert.equal(u.ignored, null);
    assert.equal(a.abortReason, 'unexpected');
    assert.deepEqual(decodeVerificationMessage(reply(u)), { kind: 'abort', id, reason: 'unexpected' });
    assert.deepEqual(b.receive(reply(u), ALICE_DEVICE), { state: 'aborted', reply: null, ignored: null });
    assert.equal(b.abortReason, 'peer-aborted');
    assert.equal(b.peerAbortReason, 'unexpected');
    assert.throws(() => b.accept('s'), isCode('INVALID_ARGUMENT'));

    // A step before the responder answered; a second, different start under the same id.
    const c = new VerificationSession(w.bob);
    c.receive(start, ALICE_DEVICE);
    assert.equal(c.receive(encodeVerificationMessage({ kind: 'step', id, step: 3, data: new Uint8Array(256) }), ALICE_DEVICE).state, 'aborted');
    assert.equal(c.abortReason, 'unexpected');
    const d = new VerificationSession(w.bob);
    d.receive(start, ALICE_DEVICE);
    const otherStart = encodeVerificationMessage({ kind: 'start', id, data: new Uint8Array(192).fill(1) });
    assert.equal(d.receive(otherStart, ALICE_DEVICE).state, 'aborted');
    assert.equal(d.abortReason, 'unexpected');
  });

  it('abort on malformed input, never throwing, in every state', () => {
    const w = world();
    const garbage = [new Uint8Array(0), Uint8Array.of(9, 9, 9), new Uint8Array(5000)];
    for (const g of garbage) {
      const idle = new VerificationSession(w.bob);
      assert.deepEqual(idle.receive(g, ALICE_DEVICE), { state: 'aborted', reply: null, ignored: null });
      assert.equal(idle.abortReason, 'malformed');

      const a = new VerificationSession(w.alice);
      const start = reply(a.start('s'));
      const u = a.receive(g, BOB_DEVICE);
      assert.equal(u.state, 'aborted');
      assert.equal(decodeVerificationMessage(reply(u)).kind, 'abort');

      const b = new VerificationSession(w.bob);
      b.receive(start, ALICE_DEVICE);
      assert.equal(b.receive(g, ALICE_DEVICE).state, 'aborted');
      assert.equal(b.abortReason, 'malformed');
    }
  });

  it('abort when well-framed comparator data is not a valid point', () => {
    // y = 2 is no Ed25519 point ((y² − 1) / (d·y² + 1) is not a square), so every point field fails to decode.
    const notPoints = (length: number): Uint8Array => Uint8Array.from({ length }, (_, i) => (i % 32 === 0 ? 2 : 0));
    const w = world();
    const a = new VerificationSession(w.alice);
    const start = decodeVerificationMessage(reply(a.start('s')));
    // The responder finds out when it runs step 1, on accept.
    const b = new VerificationSession(w.bob);
    const bad = { ...start, data: notPoints(192) };
    b.receive(encodeVerificationMessage(bad), ALICE_DEVICE);
    const u = b.accept('s');
    assert.equal(u.state, 'aborted');
    assert.equal(b.abortReason, 'malformed');
    assert.deepEqual(decodeVerificationMessage(reply(u)), { kind: 'abort', id: start.id, reason: 'malformed' });
    // The initiator, on a step 2 with invalid points.
    const step2 = encodeVerificationMessage({ kind: 'step', id: start.id, step: 2, data: notPoints(352) });
    assert.equal(a.receive(step2, BOB_DEVICE).state, 'aborted');
    assert.equal(a.abortReason, 'malformed');
  });

  it('end failed, not verified, when comparator proofs are tampered with', () => {
    const w = world();
    const a = new VerificationSession(w.alice);
    const b = new VerificationSession(w.bob);
    b.receive(reply(a.start('s')), ALICE_DEVICE);
    const step3 = flip(reply(a.receive(reply(b.accept('s')), BOB_DEVICE)), 19 + 64 + 10); // inside the proof after Pa ‖ Qa
    b.receive(step3, ALICE_DEVICE);
    assert.equal(b.state, 'failed');
  });

  it('survive random bytes in every state without throwing (property)', () => {
    const w = world();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 0, max: 2 }), (bytes, where) => {
        const a = new VerificationSession(w.alice);
        const b = new VerificationSession(w.bob);
        const start = reply(a.start('s'));
        const target = where === 0 ? new VerificationSession(w.bob) : where === 1 ? a : b;
        if (where === 2) b.receive(start, ALICE_DEVICE);
        const u = target.receive(bytes, where === 1 ? BOB_DEVICE : ALICE_DEVICE);
        assert.ok(u.state === 'aborted' || u.ignored !== null || u.state === 'awaiting-secret', `${u.state} ${String(u.ignored)}`);
      }),
      { numRuns: 200 },
    );
  });

  it('settle concurrent starts on the lower verification id, and still verify', () => {
    for (let round = 0; round < 4; round++) {
      const w = world();
      const a = new VerificationSession(w.alice);
      const b = new VerificationSession(w.bob);
      const startA = reply(a.start('both pressed verify'));
      const startB = reply(b.start('both pressed verify'));
      const aLower = Buffer.compare(decodeVerificationMessage(startA).id, decodeVerificationMessage(startB).id) < 0;
      // The starts cross in flight.
      const atA = a.receive(startB, BOB_DEVICE);
      const atB = b.receive(startA, ALICE_DEVICE);
      const [winner, loser, atWinner, atLoser] = aLower ? [a, b, atA, atB] : [b, a, atB, atA];
      assert.deepEqual(atWinner, { state: 'in-progress', reply: null, ignored: 'tie-break' });
      assert.equal(atLoser.ignored, null);
      assert.equal(loser.role, 'responder');
      assert.equal(winner.role, 'initiator');
      assert.equal(loser.verificationId, winner.verificationId);
      exchange(reply(atLoser), winner, a, b);
      assert.equal(a.state, 'verified');
      assert.equal(b.state, 'verified');
    }
  });

  it('settle concurrent starts with different secrets as failed', () => {
    const w = world();
    const a = new VerificationSession(w.alice);
    const b = new VerificationSession(w.bob);
    const startA = reply(a.start('one'));
    const startB = reply(b.start('two'));
    const atA = a.receive(startB, BOB_DEVICE);
    const atB = b.receive(startA, ALICE_DEVICE);
    if (atA.reply !== null) exchange(atA.reply, b, a, b);
    else exchange(reply(atB), a, a, b);
    assert.equal(a.state, 'failed');
    assert.equal(b.state, 'failed');
  });

  it('run with the first device of the peer that answers', () => {
    const w = world();
    const a = new VerificationSession(w.alice);
    const phone = new VerificationSession(w.bob);
    const laptop = new VerificationSession(w.bob);
    const start = reply(a.start('s'));
    phone.receive(start, ALICE_DEVICE);
    laptop.receive(start, ALICE_DEVICE);
    const fromPhone = reply(phone.accept('s'));
    const fromLaptop = reply(laptop.accept('s'));
    const step3 = reply(a.receive(fromPhone, 'bob/phone'));
    assert.equal(a.peer, 'bob/phone');
    assert.deepEqual(a.receive(fromLaptop, 'bob/laptop'), { state: 'in-progress', reply: null, ignored: 'other-device' });
    const step4 = reply(phone.receive(step3, ALICE_DEVICE));
    a.receive(step4, 'bob/phone');
    assert.equal(a.state, 'verified');
    assert.equal(phone.state, 'verified');
    assert.equal(laptop.state, 'in-progress', 'the other device times out (its caller aborts it)');
  });

  it('report a new start from the peer while one runs, for the caller to restart', () => {
    const w = world();
    const a1 = new VerificationSession(w.alice);
    const b = new VerificationSession(w.bob);
    b.receive(reply(a1.start('s')), ALICE_DEVICE);
    reply(b.accept('s'));
    const a2 = new VerificationSession(w.alice);
    const start2 = reply(a2.start('s'));
    assert.deepEqual(b.receive(start2, ALICE_DEVICE), { state: 'in-progress', reply: null, ignored: 'new-verification' });
    const abort = b.abort();
    assert.ok(abort !== null);
    assert.equal(a2.receive(abort, BOB_DEVICE).ignored, 'other-verification', 'the abort of the old attempt does not touch the new one');
    const b2 = new VerificationSession(w.bob);
    b2.receive(start2, ALICE_DEVICE);
    exchange(reply(b2.accept('s')), a2, a2, b2);
    assert.equal(a2.state, 'verified');
  });

  it('abort on the caller’s cancel or timeout, telling the peer why', () => {
    const w = world();
    const a = new VerificationSession(w.alice);
    const b = new VerificationSession(w.bob);
    b.receive(reply(a.start('s')), ALICE_DEVICE);
    const msg = b.abort('timeout');
    assert.ok(msg !== null);
    assert.equal(b.state, 'aborted');
    assert.equal(b.abortReason, 'timeout');
    assert.equal(b.abort(), null, 'a second abort is a no-op');
    assert.equal(b.abortReason, 'timeout');
    a.receive(msg, BOB_DEVICE);
    assert.equal(a.state, 'aborted');
    assert.equal(a.abortReason, 'peer-aborted');
    assert.equal(a.peerAbortReason, 'timeout');
    const idle = new VerificationSession(w.alice);
    assert.equal(idle.abort(), null);
    assert.equal(idle.state, 'aborted');
    assert.equal(idle.abortReason, 'cancelled');
  });

  it('refuse misuse by the caller with typed errors', () => {
    const w = world();
    const s = new VerificationSession(w.alice);
    assert.throws(() => s.accept('s'), isCode('INVALID_ARGUMENT'));
    assert.throws(() => s.start(''), isCode('INVALID_ARGUMENT'));
    assert.throws(() => s.start('   '), isCode('INVALID_ARGUMENT'));
    assert.throws(() => s.start('x'.repeat(VERIFICATION_SECRET_BYTES_MAX + 1)), isCode('LIMIT'));
    assert.throws(() => s.start(42 as unknown as string), isCode('INVALID_ARGUMENT'));
    assert.equal(s.state, 'idle', 'a refused start changes nothing');
    s.start('x'.repeat(VERIFICATION_SECRET_BYTES_MAX));
    assert.throws(() => s.start('s'), isCode('INVALID_ARGUMENT'));
    assert.throws(() => s.receive('hi' as unknown as Uint8Array, BOB_DEVICE), isCode('INVALID_ARGUMENT'));
    assert.throws(() => s.receive(new Uint8Array(1), ''), isCode('INVALID_ARGUMENT'));
    assert.throws(() => s.abort('bored' as 'cancelled'), isCode('INVALID_ARGUMENT'));
    assert.throws(() => new VerificationSession({ local: w.alice.local, remote: w.alice.local }), isCode('INVALID_ARGUMENT'));
    assert.throws(() => new VerificationSession(null as unknown as VerificationParties), isCode('INVALID_ARGUMENT'));
  });

  it('keep the secret out of toString, JSON and inspect', () => {
    const s = new VerificationSession(world().alice);
    s.start('hunter2-hunter2');
    for (const text of [String(s), JSON.stringify({ s }), inspect(s, { showHidden: true, depth: 5 })]) {
      assert.ok(!text.includes('hunter2'), text);
      assert.match(text, /VerificationSession\(in-progress\)/);
    }
  });
});

// ---------------------------------------------------------------------------
// The real Secure Comparator on one side

// wasm-themis is untyped here, used exactly as applications do.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Peer = any;

/** wasm-themis 0.15.0 (as packages/themis/test/_peer.ts loads it: global fetch hidden while it initialises). */
async function loadPeer(): Promise<Peer> {
  const saved = globalThis.fetch;
  (globalThis as { fetch: unknown }).fetch = undefined;
  try {
    // While it initialises, its Emscripten glue installs process-wide handlers that rethrow every
    // uncaught error and unhandled rejection, killing the test process with
    // the module's whole source as the 'line' and hiding the real error;
    // removed so node:test reports such errors against the failing test.
    const before = new Set<unknown>([...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')]);
    const peer = createRequire(import.meta.url)('wasm-themis');
    await peer.initialized;
    for (const l of process.listeners('uncaughtException')) if (!before.has(l)) process.removeListener('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!before.has(l)) process.removeListener('unhandledRejection', l);
    return peer;
  } finally {
    globalThis.fetch = saved;
  }
}

/** Run a wasm-themis call; its exceptions can hold the whole Emscripten module source, so only a short description survives. */
function peerCall<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const code = (e as { errorCode?: unknown } | null)?.errorCode;
    assert.fail(`${what}: wasm-themis threw (errorCode ${String(code)}): ${e instanceof Error ? e.message.slice(0, 200) : typeof e}`);
  }
}

describe('verification against wasm-themis Secure Comparator', () => {
  for (const same of [true, false]) {
    it(`ours as initiator, wasm-themis as responder (${same ? 'same' : 'different'} secret)`, async () => {
      const peer = await loadPeer();
      const w = world();
      const a = new VerificationSession(w.alice);
      const start = decodeVerificationMessage(reply(a.start('shared')));
      const cmp = peerCall('new', () => new peer.SecureComparator(verificationComparatorSecret(same ? 'shared' : 'other', w.bob)));
      try {
        const m2: Uint8Array = peerCall('proceed 1', () => cmp.proceed(dataOf(start)));
        const m3 = decodeVerificationMessage(reply(a.receive(encodeVerificationMessage({ kind: 'step', id: start.id, step: 2, data: m2 }), BOB_DEVICE)));
        assert.equal(m3.kind === 'step' && m3.step, 3);
        const m4: Uint8Array = peerCall('proceed 3', () => cmp.proceed(dataOf(m3)));
        assert.equal(peerCall('complete', () => cmp.complete()), true);
        const u = a.receive(encodeVerificationMessage({ kind: 'step', id: start.id, step: 4, data: m4 }), BOB_DEVICE);
        assert.equal(u.state, same ? 'verified' : 'failed');
        assert.equal(peerCall('compareEqual', () => cmp.compareEqual()), same);
      } finally {
        cmp.destroy();
      }
    });
  }

  it('wasm-themis as initiator, ours as responder', async () => {
    const peer = await loadPeer();
    const w = world();
    const cmp = peerCall('new', () => new peer.SecureComparator(verificationComparatorSecret('shared', w.alice)));
    try {
      const id = new Uint8Array(randomBytes(VERIFICATION_ID_BYTES));
      const m1: Uint8Array = peerCall('begin', () => cmp.begin());
      const b = new VerificationSession(w.bob);
      b.receive(encodeVerificationMessage({ kind: 'start', id, data: m1 }), ALICE_DEVICE);
      const s2 = decodeVerificationMessage(reply(b.accept('shared')));
      const m3: Uint8Array = peerCall('proceed 2', () => cmp.proceed(dataOf(s2)));
      const s4 = decodeVerificationMessage(reply(b.receive(encodeVerificationMessage({ kind: 'step', id, step: 3, data: m3 }), ALICE_DEVICE)));
      assert.equal(b.state, 'verified');
      peerCall('proceed 4', () => cmp.proceed(dataOf(s4)));
      assert.equal(peerCall('compareEqual', () => cmp.compareEqual()), true);
    } finally {
      cmp.destroy();
    }
  });
});
