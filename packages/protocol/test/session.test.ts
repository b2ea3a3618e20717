/**
 * Sessions end to end: conversations, out-of-order and lost messages,
 * replays, the initiator's prekey messages until the first reply, the
 * responder that cannot speak first, simultaneous initiation, and the
 * argument checks of the public methods.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isPrekeyMessage } from '../src/envelope.ts';
import { Session, type DecryptOptions } from '../src/session.ts';
import { expectCode, makeDevice, str, text, type Device } from './_helpers.ts';

interface Pair {
  alice: Device;
  bob: Device;
  a: Session;
  b: Session;
  /** Options Bob needs to accept Alice's session. */
  responder: DecryptOptions;
}

function pair(withOneTime = true): Pair {
  const alice = makeDevice('alice', 'laptop');
  const bob = makeDevice('bob', 'phone');
  const a = Session.initiate(alice.identity, bob.bundle(withOneTime), alice.address, bob.address);
  const b = Session.create(bob.address, alice.address);
  return { alice, bob, a, b, responder: { identity: bob.identity, prekeys: bob.prekeys } };
}

describe('conversations', () => {
  for (const withOneTime of [true, false]) {
    test(`ping-pong, ${withOneTime ? 'with' : 'without'} a one-time prekey`, () => {
      const { a, b, responder } = pair(withOneTime);
      assert.equal(str(b.decrypt(a.encrypt(text('ping 0')), responder)), 'ping 0');
      for (let i = 0; i < 20; i++) {
        assert.equal(str(a.decrypt(b.encrypt(text(`pong ${i}`)))), `pong ${i}`);
        assert.equal(str(b.decrypt(a.encrypt(text(`ping ${i + 1}`)))), `ping ${i + 1}`);
      }
      assert.equal(a.stateCount, 1);
      assert.equal(b.stateCount, 1);
    });
  }

  test('bursts in both directions, with empty and binary plaintexts and per-message ad', () => {
    const { a, b, responder } = pair();
    b.decrypt(a.encrypt(new Uint8Array(0)), responder);
    for (let round = 0; round < 5; round++) {
      const fromA = Array.from({ length: round + 1 }, (_, i) => Uint8Array.of(round, i, 0, 255));
      const fromB = Array.from({ length: 3 }, (_, i) => text(`${round}.${i}`));
      const envA = fromA.map((m, i) => a.encrypt(m, text(`ad ${i}`)));
      const envB = fromB.map((m) => b.encrypt(m));
      envA.forEach((e, i) => assert.deepEqual(b.decrypt(e, { ad: text(`ad ${i}`) }), fromA[i]));
      envB.forEach((e, i) => assert.deepEqual(a.decrypt(e), fromB[i]));
    }
  });

  test('the associated data must match', () => {
    const { a, b, responder } = pair();
    b.decrypt(a.encrypt(text('hi')), responder);
    const env = a.encrypt(text('bound'), text('room 1'));
    expectCode(() => b.decrypt(env), 'DECRYPT_FAILED');
    expectCode(() => b.decrypt(env, { ad: text('room 2') }), 'DECRYPT_FAILED');
    assert.equal(str(b.decrypt(env, { ad: text('room 1') })), 'bound');
  });

  test('out-of-order delivery within one chain and across ratchet steps', () => {
    const { a, b, responder } = pair();
    const first = [0, 1, 2, 3, 4].map((i) => a.encrypt(text(`a${i}`)));
    // Bob gets them backwards: the session starts from the last prekey message.
    for (const i of [4, 2, 3, 0, 1]) assert.equal(str(b.decrypt(first[i] as Uint8Array, responder)), `a${i}`);
    const replies = [0, 1, 2].map((i) => b.encrypt(text(`b${i}`)));
    assert.equal(str(a.decrypt(replies[2] as Uint8Array)), 'b2');
    // Alice's next chain reaches Bob before the rest of her replies arrive, and before her old chain is done.
    const second = [0, 1, 2].map((i) => a.encrypt(text(`c${i}`)));
    const more = b.encrypt(text('b3'));
    assert.equal(str(b.decrypt(second[1] as Uint8Array)), 'c1');
    assert.equal(str(a.decrypt(replies[0] as Uint8Array)), 'b0');
    assert.equal(str(a.decrypt(more)), 'b3');
    assert.equal(str(b.decrypt(second[0] as Uint8Array)), 'c0');
    assert.equal(str(a.decrypt(replies[1] as Uint8Array)), 'b1');
    assert.equal(str(b.decrypt(second[2] as Uint8Array)), 'c2');
  });

  test('messages lost forever do not break later ones', () => {
    const { a, b, responder } = pair();
    b.decrypt(a.encrypt(text('start')), responder);
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 3; i++) a.encrypt(text('lost'));
      assert.equal(str(b.decrypt(a.encrypt(text(`a${round}`)))), `a${round}`);
      b.encrypt(text('lost too'));
      assert.equal(str(a.decrypt(b.encrypt(text(`b${round}`)))), `b${round}`);
    }
  });

  test('a replayed message is a DUPLICATE and changes nothing', () => {
    const { a, b, responder } = pair();
    const m0 = a.encrypt(text('m0'));
    const m1 = a.encrypt(text('m1'));
    const m2 = a.encrypt(text('m2'));
    b.decrypt(m0, responder);
    b.decrypt(m2);
    const before = b.serialize();
    expectCode(() => b.decrypt(m0, responder), 'DUPLICATE');
    expectCode(() => b.decrypt(m2), 'DUPLICATE');
    assert.deepEqual(b.serialize(), before);
    // The skipped one is still there, once.
    assert.equal(str(b.decrypt(m1)), 'm1');
    expectCode(() => b.decrypt(m1), 'DUPLICATE');
    // After a ratchet step, replays of the closed chain are still recognised.
    a.decrypt(b.encrypt(text('reply')));
    b.decrypt(a.encrypt(text('new chain')));
    expectCode(() => b.decrypt(m2), 'DUPLICATE');
  });
});

describe('starting a session', () => {
  test('the initiator sends prekey messages until the first reply, so a lost first message costs nothing', () => {
    const { a, b, responder } = pair();
    const lost = a.encrypt(text('lost'));
    const second = a.encrypt(text('second'));
    assert.ok(isPrekeyMessage(lost) && isPrekeyMessage(second));
    assert.equal(a.awaitingReply, true);
    assert.equal(str(b.decrypt(second, responder)), 'second');
    // Still no reply: still prekey messages, which Bob treats as messages of the same session.
    const third = a.encrypt(text('third'));
    assert.ok(isPrekeyMessage(third));
    assert.equal(str(b.decrypt(third, responder)), 'third');
    assert.equal(b.stateCount, 1);
    const reply = b.encrypt(text('reply'));
    assert.ok(!isPrekeyMessage(reply));
    assert.equal(str(a.decrypt(reply)), 'reply');
    assert.equal(a.awaitingReply, false);
    assert.ok(!isPrekeyMessage(a.encrypt(text('fourth'))));
    // The lost one turns up after all.
    assert.equal(str(b.decrypt(lost, responder)), 'lost');
  });

  test('the responder cannot send first; a session with no state cannot encrypt', () => {
    const { alice, bob } = pair();
    expectCode(() => Session.create(bob.address, alice.address).encrypt(text('x')), 'NO_SESSION');
  });

  test('a prekey message for a new session needs the responder keys', () => {
    const { a, b } = pair();
    expectCode(() => b.decrypt(a.encrypt(text('x'))), 'INVALID_ARGUMENT');
    assert.equal(b.established, false);
  });

  test('an untrusted initiator is refused before anything is consumed; trusting it afterwards works', () => {
    const { a, b, alice, bob, responder } = pair();
    const env = a.encrypt(text('hello'));
    const count = bob.prekeys.oneTimePrekeyCount;
    expectCode(() => b.decrypt(env, { ...responder, isTrustedIdentity: () => false }), 'UNTRUSTED_IDENTITY');
    assert.equal(b.established, false);
    assert.equal(bob.prekeys.oneTimePrekeyCount, count);
    let seen: Uint8Array | undefined;
    assert.equal(str(b.decrypt(env, { ...responder, isTrustedIdentity: (k) => ((seen = k), true) })), 'hello');
    assert.deepEqual(seen, alice.identity.publicKey);
    assert.deepEqual(b.remoteIdentityKey, alice.identity.publicKey);
    assert.equal(bob.prekeys.oneTimePrekeyCount, count - 1);
  });

  test('simultaneous initiation: both sides converge on one session', () => {
    const alice = makeDevice('alice', 'laptop');
    const bob = makeDevice('bob', 'phone');
    const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
    const b = Session.initiate(bob.identity, alice.bundle(), bob.address, alice.address);
    const fromA = a.encrypt(text('from alice'));
    const fromB = b.encrypt(text('from bob'));
    assert.equal(str(b.decrypt(fromA, { identity: bob.identity, prekeys: bob.prekeys })), 'from alice');
    assert.equal(str(a.decrypt(fromB, { identity: alice.identity, prekeys: alice.prekeys })), 'from bob');
    assert.equal(a.stateCount, 2);
    assert.equal(b.stateCount, 2);
    // Each now sends on the session the other started; each receiver finds it among its states.
    for (let i = 0; i < 3; i++) {
      assert.equal(str(b.decrypt(a.encrypt(text(`a${i}`)))), `a${i}`);
      assert.equal(str(a.decrypt(b.encrypt(text(`b${i}`)))), `b${i}`);
    }
  });

  test('a peer that starts over (new PQXDH) replaces the session; messages in flight on the old one still decrypt', () => {
    const { alice, bob, a, b, responder } = pair();
    b.decrypt(a.encrypt(text('old 0')), responder);
    a.decrypt(b.encrypt(text('ack')));
    const inFlight = a.encrypt(text('old 1'));
    const restarted = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
    assert.equal(str(b.decrypt(restarted.encrypt(text('new 0')), responder)), 'new 0');
    assert.equal(b.stateCount, 2);
    assert.equal(str(b.decrypt(inFlight)), 'old 1');
    // Whichever state decrypted last is current: Bob now answers on the old one; Alice's old session reads it.
    assert.equal(str(a.decrypt(b.encrypt(text('on old')))), 'on old');
  });
});

describe('argument checks', () => {
  test('wrong types and a destroyed session', () => {
    const { a, b, responder } = pair();
    expectCode(() => a.encrypt('text' as unknown as Uint8Array), 'INVALID_ARGUMENT');
    expectCode(() => a.encrypt(text('x'), [1] as unknown as Uint8Array), 'INVALID_ARGUMENT');
    expectCode(() => b.decrypt(null as unknown as Uint8Array, responder), 'INVALID_ARGUMENT');
    expectCode(() => Session.create({ userId: '', deviceId: 'd' }, { userId: 'u', deviceId: 'd' }), 'INVALID_ARGUMENT');
    expectCode(() => Session.create({ userId: 'u', deviceId: '\ud800' }, { userId: 'u', deviceId: 'd' }), 'INVALID_ARGUMENT');
    expectCode(() => Session.create(null as unknown as { userId: string; deviceId: string }, { userId: 'u', deviceId: 'd' }), 'INVALID_ARGUMENT');
    expectCode(() => Session.initiate({} as never, makeDevice('c', 'd').bundle(), a.localAddress, a.remoteAddress), 'INVALID_ARGUMENT');
    const env = a.encrypt(text('x'));
    expectCode(() => b.decrypt(env, { identity: {} as never, prekeys: responder.prekeys }), 'INVALID_ARGUMENT');
    assert.equal(str(b.decrypt(env, responder)), 'x');
    assert.equal(str(a.decrypt(b.encrypt(text('y')), undefined)), 'y');
    a.destroy();
    expectCode(() => a.encrypt(text('x')), 'INVALID_STATE');
    expectCode(() => a.serialize(), 'INVALID_STATE');
    assert.equal(a.established, false);
  });
});
