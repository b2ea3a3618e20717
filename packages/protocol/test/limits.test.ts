/**
 * Every limit in limits.ts at its edge: the value itself is accepted, one
 * more is refused with the documented code, and the session keeps working
 * after a refusal.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../src/errors.ts';
import { readEnvelope } from '../src/envelope.ts';
import {
  ADDRESS_PART_BYTES_MAX,
  ARCHIVED_STATES_MAX,
  ASSOCIATED_DATA_BYTES_MAX,
  CHAIN_LENGTH_MAX,
  ENVELOPE_BYTES_MAX,
  MAX_SKIP,
  ONE_TIME_PREKEYS_PER_BATCH_MAX,
  PLAINTEXT_BYTES_MAX,
  PREVIOUS_CHAINS_MAX,
  RETIRED_BASE_KEYS_MAX,
  SKIPPED_KEYS_MAX,
} from '../src/limits.ts';
import { OneTimePrekey } from '../src/prekeys.ts';
import { Session, type DecryptOptions } from '../src/session.ts';
import { deserializeSessionRecord, serializeSessionRecord } from '../src/session-state.ts';
import { expectCode, hex, makeDevice, outcome, str, text, type Device } from './_helpers.ts';

interface Pair {
  alice: Device;
  bob: Device;
  a: Session;
  b: Session;
  responder: DecryptOptions;
}

function pair(): Pair {
  const alice = makeDevice('alice', 'laptop');
  const bob = makeDevice('bob', 'phone', 12);
  const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
  const b = Session.create(bob.address, alice.address);
  return { alice, bob, a, b, responder: { identity: bob.identity, prekeys: bob.prekeys } };
}

/** A started conversation: Bob has received one message and replied, Alice has the reply. */
function started(): Pair {
  const p = pair();
  p.b.decrypt(p.a.encrypt(text('hello')), p.responder);
  p.a.decrypt(p.b.encrypt(text('hi')));
  return p;
}

/** `count` messages from `s`, numbered in their text. */
function burst(s: Session, count: number, label: string): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => s.encrypt(text(`${label}${i}`)));
}

function skippedCount(s: Session): number {
  const state = deserializeSessionRecord(s.serialize()).states[0];
  assert.ok(state !== undefined);
  return state.ratchet.skipped.size;
}

describe('MAX_SKIP', () => {
  test(`a jump of exactly ${MAX_SKIP} in the current chain is accepted, ${MAX_SKIP + 1} refused; the session goes on`, () => {
    for (const jump of [MAX_SKIP, MAX_SKIP + 1]) {
      const { a, b } = started();
      // Message 0 of Alice's new chain arrives; then the one `jump` messages past the next expected (1).
      const envs = burst(a, jump + 2, 'm');
      assert.equal(str(b.decrypt(envs[0] as Uint8Array)), 'm0');
      const far = envs[jump + 1] as Uint8Array;
      const before = hex(b.serialize());
      if (jump === MAX_SKIP) {
        assert.equal(str(b.decrypt(far)), `m${jump + 1}`);
        assert.equal(skippedCount(b), MAX_SKIP);
        assert.equal(str(b.decrypt(envs[1] as Uint8Array)), 'm1');
      } else {
        expectCode(() => b.decrypt(far), 'TOO_MANY_SKIPPED');
        assert.equal(hex(b.serialize()), before);
        // A nearer message still works, and then the far one is within reach.
        assert.equal(str(b.decrypt(envs[1] as Uint8Array)), 'm1');
        assert.equal(str(b.decrypt(far)), `m${jump + 1}`);
      }
      assert.equal(str(a.decrypt(b.encrypt(text('still here')))), 'still here');
    }
  });

  test(`a new chain whose first message is N = ${MAX_SKIP} is accepted, N = ${MAX_SKIP + 1} refused`, () => {
    for (const n of [MAX_SKIP, MAX_SKIP + 1]) {
      const { a, b } = started();
      b.decrypt(a.encrypt(text('on chain 1')));
      a.decrypt(b.encrypt(text('turn')));
      const envs = burst(a, n + 1, 'c');
      const code = outcome(() => b.decrypt(envs[n] as Uint8Array));
      assert.equal(code, n === MAX_SKIP ? 'ok' : 'TOO_MANY_SKIPPED');
      assert.equal(str(b.decrypt(envs[1] as Uint8Array)), 'c1');
      if (n > MAX_SKIP) assert.equal(str(b.decrypt(envs[n] as Uint8Array)), `c${n}`);
    }
  });

  test(`closing a chain at PN: ${MAX_SKIP} unread messages are accepted, ${MAX_SKIP + 1} refused`, () => {
    for (const unread of [MAX_SKIP, MAX_SKIP + 1]) {
      const { a, b } = started();
      // Alice sends one message Bob reads, then `unread` he does not, then Bob's reply reaches her.
      b.decrypt(a.encrypt(text('read')));
      const lost = burst(a, unread, 'u');
      a.decrypt(b.encrypt(text('turn')));
      const next = a.encrypt(text('next chain'));
      if (unread === MAX_SKIP) {
        assert.equal(str(b.decrypt(next)), 'next chain');
        assert.equal(str(b.decrypt(lost[unread - 1] as Uint8Array)), `u${unread - 1}`);
      } else {
        expectCode(() => b.decrypt(next), 'TOO_MANY_SKIPPED');
        assert.equal(str(b.decrypt(lost[0] as Uint8Array)), 'u0');
        assert.equal(str(b.decrypt(next)), 'next chain');
      }
    }
  });
});

describe('SKIPPED_KEYS_MAX', () => {
  test(`exactly ${SKIPPED_KEYS_MAX} skipped keys are all kept; one more evicts the oldest`, () => {
    const { a, b } = started();
    // Chain 1 of Alice: Bob reads only message MAX_SKIP (skipping MAX_SKIP keys).
    const chain1 = burst(a, MAX_SKIP + 1, 'x');
    b.decrypt(chain1[MAX_SKIP] as Uint8Array);
    a.decrypt(b.encrypt(text('turn 1')));
    // Chain 2: Bob reads only message SKIPPED_KEYS_MAX − MAX_SKIP.
    const n2 = SKIPPED_KEYS_MAX - MAX_SKIP;
    const chain2 = burst(a, n2 + 1, 'y');
    b.decrypt(chain2[n2] as Uint8Array);
    assert.equal(skippedCount(b), SKIPPED_KEYS_MAX);
    // At the limit nothing was lost: the oldest key is still there.
    const atLimit = Session.deserialize(b.serialize());
    assert.equal(str(atLimit.decrypt(chain1[0] as Uint8Array)), 'x0');

    // One more skipped key (chain 3, message 1 before message 0) evicts chain 1's message 0.
    a.decrypt(b.encrypt(text('turn 2')));
    const chain3 = burst(a, 2, 'z');
    b.decrypt(chain3[1] as Uint8Array);
    assert.equal(skippedCount(b), SKIPPED_KEYS_MAX);
    expectCode(() => b.decrypt(chain1[0] as Uint8Array), 'DUPLICATE');
    assert.equal(str(b.decrypt(chain1[1] as Uint8Array)), 'x1');
    assert.equal(str(b.decrypt(chain3[0] as Uint8Array)), 'z0');
    assert.equal(str(b.decrypt(chain2[0] as Uint8Array)), 'y0');
  });
});

describe('SKIPPED_KEYS_MAX across the states of a session', () => {
  const totalSkipped = (s: Session): number[] => deserializeSessionRecord(s.serialize()).states.map((st) => st.ratchet.skipped.size);

  test('a peer starting session after session, each with the largest jumps, keeps the whole record at SKIPPED_KEYS_MAX keys: the archived states\' oldest go first', () => {
    const { alice, bob, responder } = pair();
    const b = Session.create(bob.address, alice.address);
    const starts: { a: Session; skipped: Uint8Array[] }[] = [];
    for (let i = 0; i < ARCHIVED_STATES_MAX + 1; i++) {
      // Each new session: a first message at N = MAX_SKIP (skipping MAX_SKIP keys), read by Bob.
      const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
      const envs = burst(a, MAX_SKIP + 1, `s${i}-`);
      assert.equal(str(b.decrypt(envs[MAX_SKIP] as Uint8Array, responder)), `s${i}-${MAX_SKIP}`);
      starts.push({ a, skipped: envs });
      const counts = totalSkipped(b);
      assert.ok(counts.reduce((x, y) => x + y, 0) <= SKIPPED_KEYS_MAX, `after session ${i}: ${counts.join('+')}`);
      assert.equal(counts[0], MAX_SKIP, 'the current state keeps all of its own');
    }
    assert.equal(totalSkipped(b).reduce((x, y) => x + y, 0), SKIPPED_KEYS_MAX);
    // The newest archived state keeps its keys; the older ones lost theirs.
    const newest = starts[starts.length - 2];
    const oldest = starts[0];
    assert.ok(newest !== undefined && oldest !== undefined);
    assert.equal(str(b.decrypt(newest.skipped[0] as Uint8Array, responder)), `s${starts.length - 2}-0`);
    expectCode(() => b.decrypt(oldest.skipped[0] as Uint8Array, responder), 'DUPLICATE');
  });
});

describe('PREVIOUS_CHAINS_MAX', () => {
  test(`replays from the last ${PREVIOUS_CHAINS_MAX} closed chains are DUPLICATE; older ones DECRYPT_FAILED`, () => {
    const { a, b } = started();
    const firsts: Uint8Array[] = [];
    for (let i = 0; i < PREVIOUS_CHAINS_MAX + 1; i++) {
      const env = a.encrypt(text(`chain ${i}`));
      b.decrypt(env);
      firsts.push(env);
      a.decrypt(b.encrypt(text(`turn ${i}`)));
    }
    // One more chain so that all the above are closed.
    b.decrypt(a.encrypt(text('current')));
    expectCode(() => b.decrypt(firsts[0] as Uint8Array), 'DECRYPT_FAILED');
    for (let i = 1; i <= PREVIOUS_CHAINS_MAX; i++) expectCode(() => b.decrypt(firsts[i] as Uint8Array), 'DUPLICATE', `chain ${i}`);
  });
});

describe('ARCHIVED_STATES_MAX', () => {
  test(`1 + ${ARCHIVED_STATES_MAX} states are kept; the oldest is dropped and its messages no longer decrypt`, () => {
    const { alice, bob, responder } = pair();
    const b = Session.create(bob.address, alice.address);
    const sessions: Session[] = [];
    for (let i = 0; i < ARCHIVED_STATES_MAX + 2; i++) {
      const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
      assert.equal(str(b.decrypt(a.encrypt(text(`start ${i}`)), responder)), `start ${i}`);
      sessions.push(a);
      assert.equal(b.stateCount, Math.min(i + 1, 1 + ARCHIVED_STATES_MAX));
    }
    // The oldest kept one still decrypts (and becomes current) ...
    assert.equal(str(b.decrypt((sessions[1] as Session).encrypt(text('s1')), responder)), 's1');
    assert.equal(str((sessions[1] as Session).decrypt(b.encrypt(text('back')))), 'back');
    // ... the dropped one does not (its one-time prekey is spent, so PQXDH cannot run again).
    expectCode(() => b.decrypt((sessions[0] as Session).encrypt(text('s0')), responder), 'DECRYPT_FAILED');
  });
});

describe('sizes', () => {
  test(`a plaintext of ${PLAINTEXT_BYTES_MAX} bytes fits a prekey message within ENVELOPE_BYTES_MAX; one more is LIMIT`, () => {
    const { a, b, responder } = pair();
    const big = new Uint8Array(PLAINTEXT_BYTES_MAX).fill(7);
    const env = a.encrypt(big);
    assert.ok(env.length <= ENVELOPE_BYTES_MAX, `${env.length}`);
    assert.deepEqual(b.decrypt(env, responder), big);
    expectCode(() => a.encrypt(new Uint8Array(PLAINTEXT_BYTES_MAX + 1)), 'LIMIT');
  });

  test(`envelopes of ENVELOPE_BYTES_MAX are read, longer ones refused before any work`, () => {
    const { a, b, responder } = started();
    const env = a.encrypt(text('x'));
    // Pad the ciphertext to exactly the limit (keeping it a multiple of 16 plus 16): parses, then fails its tag.
    const padded = new Uint8Array(ENVELOPE_BYTES_MAX);
    padded.set(env);
    const excess = (ENVELOPE_BYTES_MAX - env.length) % 16;
    const exact = padded.subarray(0, ENVELOPE_BYTES_MAX - excess);
    assert.doesNotThrow(() => readEnvelope(exact));
    expectCode(() => b.decrypt(exact, responder), 'DECRYPT_FAILED');
    const over = new Uint8Array(ENVELOPE_BYTES_MAX + 1);
    over.set(env);
    assert.throws(() => readEnvelope(over), (e) => ProtocolError.is(e, 'MALFORMED') && /longer than/.test(e.message));
    expectCode(() => b.decrypt(over, responder), 'DECRYPT_FAILED');
    assert.equal(str(b.decrypt(env)), 'x');
  });

  test(`ad of ${ASSOCIATED_DATA_BYTES_MAX} bytes is accepted, one more is LIMIT (both directions)`, () => {
    const { a, b } = started();
    const ad = new Uint8Array(ASSOCIATED_DATA_BYTES_MAX).fill(1);
    assert.equal(str(b.decrypt(a.encrypt(text('ok'), ad), { ad })), 'ok');
    expectCode(() => a.encrypt(text('no'), new Uint8Array(ASSOCIATED_DATA_BYTES_MAX + 1)), 'LIMIT');
    expectCode(() => b.decrypt(a.encrypt(text('no')), { ad: new Uint8Array(ASSOCIATED_DATA_BYTES_MAX + 1) }), 'LIMIT');
  });

  test(`a sending chain carries at most CHAIN_LENGTH_MAX messages`, () => {
    const { a } = started();
    // A's sending chain starts with its first message after the reply (the DH step's sending half).
    a.encrypt(text('opens the chain'));
    const record = deserializeSessionRecord(a.serialize());
    const sending = record.states[0]?.ratchet.sending;
    assert.ok(sending !== undefined && sending !== null);
    sending.index = CHAIN_LENGTH_MAX - 1;
    const near = Session.deserialize(serializeSessionRecord(record));
    const last = near.encrypt(text('last'));
    const header = readEnvelope(last).header;
    assert.equal(header.messageNumber, CHAIN_LENGTH_MAX - 1);
    expectCode(() => near.encrypt(text('one too many')), 'LIMIT');
  });

  test(`address parts of ${ADDRESS_PART_BYTES_MAX} UTF-8 bytes are accepted, one more refused`, () => {
    const other = { userId: 'u', deviceId: 'd' };
    // 'é' is two bytes in UTF-8: 127 of them and one 'a' make 255 bytes.
    const s = Session.create({ userId: 'é'.repeat(127) + 'a', deviceId: 'x'.repeat(ADDRESS_PART_BYTES_MAX) }, other);
    assert.equal(Session.deserialize(s.serialize()).localAddress.deviceId, 'x'.repeat(ADDRESS_PART_BYTES_MAX));
    expectCode(() => Session.create({ userId: 'é'.repeat(128), deviceId: 'x' }, other), 'LIMIT');
    expectCode(() => Session.create({ userId: 'u', deviceId: 'x'.repeat(ADDRESS_PART_BYTES_MAX + 1) }, other), 'LIMIT');
  });

  test(`one-time prekeys: ${ONE_TIME_PREKEYS_PER_BATCH_MAX} per batch, ids wrap at 2^32`, () => {
    const batch = OneTimePrekey.generate(0xffff_fff0, ONE_TIME_PREKEYS_PER_BATCH_MAX);
    assert.equal(batch.length, ONE_TIME_PREKEYS_PER_BATCH_MAX);
    assert.equal(new Set(batch.map((k) => k.keyId)).size, ONE_TIME_PREKEYS_PER_BATCH_MAX);
    assert.equal(batch[16]?.keyId, 0);
    expectCode(() => OneTimePrekey.generate(0, ONE_TIME_PREKEYS_PER_BATCH_MAX + 1), 'LIMIT');
    expectCode(() => OneTimePrekey.generate(0, 0), 'INVALID_ARGUMENT');
    expectCode(() => OneTimePrekey.generate(2 ** 32, 1), 'INVALID_ARGUMENT');
  });
});

describe('replayed first messages (no one-time prekey: nothing else makes them single-use)', () => {
  /** Alice starts a new session (no one-time prekey left) and the two exchange a message each. */
  function renew(p: Pair): Uint8Array {
    p.a.initiate(p.alice.identity, p.bob.bundle(false));
    const first = p.a.encrypt(text('new session'));
    assert.equal(str(p.b.decrypt(first, p.responder)), 'new session');
    assert.equal(str(p.a.decrypt(p.b.encrypt(text('reply')))), 'reply');
    return first;
  }

  test(`a first message replayed after its state left the archive is refused (DECRYPT_FAILED; RETIRED_BASE_KEYS_MAX = ${RETIRED_BASE_KEYS_MAX}), and the session goes on; one retired beyond that is forgotten`, () => {
    const p = pair();
    const firsts = [renew(p)];
    // Each renewal pushes an older state out once the archive is full.
    for (let i = 0; i < ARCHIVED_STATES_MAX + RETIRED_BASE_KEYS_MAX + 1; i++) firsts.push(renew(p));
    const first = firsts[0];
    const oldestRemembered = firsts[1];
    assert.ok(first !== undefined && oldestRemembered !== undefined);
    const before = hex(p.b.serialize());
    expectCode(() => p.b.decrypt(oldestRemembered, p.responder), 'DECRYPT_FAILED');
    // Sealed and opened, the record keeps them.
    const key = new Uint8Array(32).fill(7);
    const reopened = Session.open(p.b.seal(key), key, p.bob.address, p.alice.address);
    expectCode(() => reopened.decrypt(oldestRemembered, p.responder), 'DECRYPT_FAILED');
    assert.equal(hex(p.b.serialize()), before, 'nothing changed');
    // The refused replay did not become the current state: Bob's next message reaches Alice.
    assert.equal(str(p.a.decrypt(p.b.encrypt(text('still here')))), 'still here');
    // The oldest, one beyond the bound, is no longer remembered: it starts a state again (as before this bound existed).
    assert.equal(str(p.b.decrypt(first, p.responder)), 'new session');
  });

  test('a record written before retired base keys existed (version 1) is still read', () => {
    const { b } = started();
    const v2 = b.serialize();
    assert.equal(v2[0], 0x02);
    assert.equal(v2[v2.length - 1], 0, 'no retired keys yet');
    const v1 = Uint8Array.from(v2.subarray(0, v2.length - 1));
    v1[0] = 0x01;
    assert.equal(hex(Session.deserialize(v1).serialize()), hex(v2));
    expectCode(() => Session.deserialize(Uint8Array.of(...v1, 0)), 'MALFORMED');
  });
});

describe('stored-record bounds', () => {
  test('a record with more states, closed chains or skipped keys than the limits is MALFORMED', () => {
    const { b } = started();
    const record = deserializeSessionRecord(b.serialize());
    const state = record.states[0];
    assert.ok(state !== undefined);

    const tooManyStates = { ...record, states: Array.from({ length: ARCHIVED_STATES_MAX + 2 }, () => state) };
    expectCode(() => Session.deserialize(serializeSessionRecord(tooManyStates)), 'MALFORMED');
    const maxStates = { ...record, states: Array.from({ length: ARCHIVED_STATES_MAX + 1 }, () => state) };
    assert.equal(Session.deserialize(serializeSessionRecord(maxStates)).stateCount, ARCHIVED_STATES_MAX + 1);

    const chain = { ratchetKey: new Uint8Array(32), headerKey: new Uint8Array(32) };
    state.ratchet.closedChains = Array.from({ length: PREVIOUS_CHAINS_MAX }, () => chain);
    assert.doesNotThrow(() => Session.deserialize(serializeSessionRecord(record)));
    state.ratchet.closedChains.push(chain);
    expectCode(() => Session.deserialize(serializeSessionRecord(record)), 'MALFORMED');
    state.ratchet.closedChains = [];

    for (let i = 0; i < SKIPPED_KEYS_MAX; i++) state.ratchet.skipped.set(`k${i}`, { ratchetKey: new Uint8Array(32), messageNumber: i, messageKey: new Uint8Array(32) });
    assert.doesNotThrow(() => Session.deserialize(serializeSessionRecord(record)));
    state.ratchet.skipped.set('one more', { ratchetKey: Uint8Array.of(1, ...new Uint8Array(31)), messageNumber: 0, messageKey: new Uint8Array(32) });
    expectCode(() => Session.deserialize(serializeSessionRecord(record)), 'MALFORMED');
  });

  test('SKIPPED_KEYS_MAX holds across the states of a record (a session never keeps more), and retired base keys are bounded', () => {
    const { b } = started();
    const record = deserializeSessionRecord(b.serialize());
    const stateWith = (n: number, tag: number): NonNullable<(typeof record.states)[0]> => {
      const state = deserializeSessionRecord(b.serialize()).states[0];
      assert.ok(state !== undefined);
      for (let i = 0; i < n; i++) state.ratchet.skipped.set(`${tag}:${i}`, { ratchetKey: Uint8Array.of(tag, ...new Uint8Array(31)), messageNumber: i, messageKey: new Uint8Array(32) });
      return state;
    };
    const half = SKIPPED_KEYS_MAX / 2;
    assert.doesNotThrow(() => Session.deserialize(serializeSessionRecord({ ...record, states: [stateWith(half, 1), stateWith(half, 2)] })));
    expectCode(() => Session.deserialize(serializeSessionRecord({ ...record, states: [stateWith(half, 1), stateWith(half + 1, 2)] })), 'MALFORMED');
    const keys = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => Uint8Array.of(i, ...new Uint8Array(31)));
    assert.doesNotThrow(() => Session.deserialize(serializeSessionRecord({ ...record, retiredBaseKeys: keys(RETIRED_BASE_KEYS_MAX) })));
    expectCode(() => Session.deserialize(serializeSessionRecord({ ...record, retiredBaseKeys: keys(RETIRED_BASE_KEYS_MAX + 1) })), 'MALFORMED');
  });
});
