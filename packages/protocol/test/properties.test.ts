/**
 * Model-based property test (fast-check): two devices talk through a network
 * that delays, reorders, drops and duplicates messages, while either side
 * restarts from its serialized (or sealed) state at any time.
 *
 * Invariants, checked after every step:
 * - a delivered message decrypts to exactly what was sent;
 * - a message decrypts at most once: a re-delivery never yields plaintext
 *   and leaves the receiver unchanged;
 * - when the network finally delivers everything it still holds (in a random
 *   order), every one of those messages decrypts — nothing is stranded.
 *
 * Runs stay far below MAX_SKIP and SKIPPED_KEYS_MAX, whose edges
 * limits.test.ts covers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../src/errors.ts';
import { Session, type DecryptOptions } from '../src/session.ts';
import { hex, makeDevice, str, text } from './_helpers.ts';

type Side = 'A' | 'B';
type Command =
  | { readonly kind: 'send'; readonly from: Side }
  | { readonly kind: 'deliver' | 'drop' | 'replay'; readonly to: Side; readonly pick: number }
  | { readonly kind: 'restart'; readonly who: Side; readonly sealed: boolean };

const side = fc.constantFrom<Side>('A', 'B');
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('send' as const), from: side }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('deliver' as const), to: side, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), to: side, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replay' as const), to: side, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), who: side, sealed: fc.boolean() }) },
);

interface Message {
  readonly envelope: Uint8Array;
  readonly plaintext: string;
}

function run(commands: readonly Command[], withOneTime: boolean, finalOrder: readonly number[]): void {
  const alice = makeDevice('alice', 'laptop', 1);
  const bob = makeDevice('bob', 'phone', 1);
  const key = new Uint8Array(32).fill(0x5a);
  const sessions: Record<Side, Session> = {
    A: Session.initiate(alice.identity, bob.bundle(withOneTime), alice.address, bob.address),
    B: Session.create(bob.address, alice.address),
  };
  const options: Record<Side, DecryptOptions> = { A: {}, B: { identity: bob.identity, prekeys: bob.prekeys } };
  /** In flight towards each side, and already delivered to each side. */
  const network: Record<Side, Message[]> = { A: [], B: [] };
  const delivered: Record<Side, Message[]> = { A: [], B: [] };
  const other = (s: Side): Side => (s === 'A' ? 'B' : 'A');
  let sent = 0;

  const deliver = (to: Side, m: Message): void => {
    assert.equal(str(sessions[to].decrypt(m.envelope, options[to])), m.plaintext);
    delivered[to].push(m);
  };

  for (const c of commands) {
    switch (c.kind) {
      case 'send': {
        // The responder cannot speak before it has heard from the initiator.
        if (!sessions[c.from].established) break;
        const plaintext = `${c.from}${sent++}`;
        network[other(c.from)].push({ envelope: sessions[c.from].encrypt(text(plaintext)), plaintext });
        break;
      }
      case 'deliver':
      case 'drop': {
        const queue = network[c.to];
        if (queue.length === 0) break;
        const [m] = queue.splice(c.pick % queue.length, 1);
        if (m !== undefined && c.kind === 'deliver') deliver(c.to, m);
        break;
      }
      case 'replay': {
        const done = delivered[c.to];
        const m = done[c.pick % Math.max(done.length, 1)];
        if (m === undefined) break;
        const before = hex(sessions[c.to].serialize());
        assert.throws(
          () => sessions[c.to].decrypt(m.envelope, options[c.to]),
          // DUPLICATE while the message's chain is remembered; an opaque failure after that.
          (e) => ProtocolError.is(e, 'DUPLICATE') || ProtocolError.is(e, 'DECRYPT_FAILED'),
        );
        assert.equal(hex(sessions[c.to].serialize()), before);
        break;
      }
      case 'restart': {
        const s = sessions[c.who];
        sessions[c.who] = c.sealed ? Session.open(s.seal(key), key, s.localAddress, s.remoteAddress) : Session.deserialize(s.serialize());
        s.destroy();
        break;
      }
    }
  }

  // Deliver everything still in flight, interleaving the two directions in a random order.
  const rest: [Side, Message][] = [...network.B.map((m): [Side, Message] => ['B', m]), ...network.A.map((m): [Side, Message] => ['A', m])];
  const order = finalOrder.length === 0 ? rest : shuffle(rest, finalOrder);
  for (const [to, m] of order) deliver(to, m);
}

function shuffle<T>(items: readonly T[], seeds: readonly number[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (seeds[i % seeds.length] as number) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

test('random interleavings of sends, deliveries, drops, replays and restarts', () => {
  fc.assert(
    fc.property(fc.array(command, { minLength: 1, maxLength: 80 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 16 }), (commands, withOneTime, order) => {
      run(commands, withOneTime, order);
    }),
    { numRuns: 150 },
  );
});

test('a scripted run through every kind of step', () => {
  run(
    [
      { kind: 'send', from: 'A' },
      { kind: 'send', from: 'A' },
      { kind: 'send', from: 'B' }, // ignored: Bob has no session yet
      { kind: 'deliver', to: 'B', pick: 1 },
      { kind: 'replay', to: 'B', pick: 0 },
      { kind: 'restart', who: 'B', sealed: true },
      { kind: 'send', from: 'B' },
      { kind: 'send', from: 'B' },
      { kind: 'drop', to: 'A', pick: 0 },
      { kind: 'restart', who: 'A', sealed: false },
      { kind: 'deliver', to: 'A', pick: 0 },
      { kind: 'send', from: 'A' },
      { kind: 'replay', to: 'A', pick: 0 },
    ],
    true,
    [3, 1, 4],
  );
});
