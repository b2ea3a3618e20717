/**
 * Live cross-tests of Secure Comparator against the real peer, wasm-themis
 * 0.15.0 (wire-format spec §6). Every protocol case runs in both directions —
 * our Alice with the peer's Bob, the peer's Alice with our Bob — and with ours
 * on both sides.
 *
 * Hostile-input cases rewrite messages in transit. Each runs with ours
 * receiving from the peer, the peer receiving from ours, and peer ↔ peer as
 * the reference: all three must end the same way, so the peer shows what
 * Themis itself does with the same input.
 *
 * The last group drives a dishonest party: a small SMP engine written here
 * from the spec (noble's Ed25519 group, node:crypto SHA-2), first checked
 * honest against the peer, then made to send the identity as g2/g3 with valid
 * proofs — an attack that fools any implementation without the identity checks.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { backendName, SecureComparator, ThemisError, ThemisErrorCode } from '../src/index.ts';
import { describeError, pattern, peer, size, utf8 } from './_interop.ts';

// ---------------------------------------------------------------------------
// Harness: one interface over both implementations, peer errors kept short.

type Impl = 'ours' | 'peer';
type Pairing = readonly [alice: Impl, bob: Impl];
type Step = 1 | 2 | 3 | 4;

const BOTH_WAYS: readonly Pairing[] = [
  ['ours', 'peer'],
  ['peer', 'ours'],
  ['ours', 'ours'],
];
/** Hostile cases: ours receives from the peer, the peer from ours, and the peer ↔ peer reference. */
const CROSS_AND_REFERENCE: readonly Pairing[] = [
  ['ours', 'peer'],
  ['peer', 'ours'],
  ['peer', 'peer'],
];
const label = ([a, b]: Pairing): string => `${a} Alice ↔ ${b} Bob`;

/** Message sizes of the spec (§6.3; observed on the peer, §7): Alice's last step outputs nothing. */
const SIZES = [192, 352, 256, 96, 0];
const MATCH = ThemisErrorCode.SCOMPARE_MATCH;
const NO_MATCH = ThemisErrorCode.SCOMPARE_NO_MATCH;
const INVALID_PARAMETER = ThemisErrorCode.INVALID_PARAMETER;

/** Who receives message `step`: 1 and 3 go to Bob, 2 and 4 to Alice. */
const receiverOf = (step: Step): 'alice' | 'bob' => (step % 2 === 1 ? 'bob' : 'alice');

/** A peer exception reduced to its numeric code; the original (which can be huge) is dropped. */
class PeerFailure extends Error {
  readonly errorCode: number | undefined;
  readonly themisError: boolean;
  constructor(what: string, e: unknown) {
    const themisError = e instanceof peer.ThemisError;
    const code = (e as { errorCode?: unknown } | null)?.errorCode;
    super(`${what}: the peer threw ${themisError ? `its ThemisError (errorCode ${String(code)})` : describeError(e)}`);
    this.name = 'PeerFailure';
    this.errorCode = typeof code === 'number' ? code : undefined;
    this.themisError = themisError;
  }
}

function peerCall<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new PeerFailure(what, e);
  }
}

interface Side {
  readonly impl: Impl;
  begin(): Uint8Array;
  proceed(message: Uint8Array): Uint8Array;
  complete(): boolean;
  compareEqual(): boolean;
  /** Our legacy numeric result (21 / 22 / 0); the peer has no such method. */
  legacyResult(): number | undefined;
  destroy(): void;
}

type Via = 'constructor' | 'append';

function newSide(impl: Impl, parts: readonly Uint8Array[], via: Via = 'append'): Side {
  if (impl === 'ours') {
    const c = via === 'constructor' ? new SecureComparator(...parts) : new SecureComparator();
    if (via === 'append') for (const p of parts) c.append(p);
    return {
      impl,
      begin: () => c.begin(),
      proceed: (m) => c.proceed(m),
      complete: () => c.complete(),
      compareEqual: () => c.compareEqual(),
      legacyResult: () => c.result(),
      destroy: () => c.destroy(),
    };
  }
  const c = peerCall('new SecureComparator', () => (via === 'constructor' ? new peer.SecureComparator(...parts) : new peer.SecureComparator()));
  if (via === 'append') for (const p of parts) peerCall('append', () => c.append(p));
  return {
    impl,
    begin: () => Uint8Array.from(peerCall('begin', () => c.begin())),
    proceed: (m) => Uint8Array.from(peerCall('proceed', () => c.proceed(m))),
    complete: () => peerCall('complete', () => c.complete()),
    compareEqual: () => peerCall('compareEqual', () => c.compareEqual()),
    legacyResult: () => undefined,
    destroy: () => peerCall('destroy', () => c.destroy()),
  };
}

interface Hooks {
  /** Rewrite message `step` in transit. */
  tamper?: (step: Step, message: Uint8Array) => Uint8Array;
  /** Hand message `step` to `receiver` and return its reply (default: `receiver.proceed`). */
  deliver?: (step: Step, message: Uint8Array, receiver: Side) => Uint8Array;
}

interface Outcome {
  /** Lengths of what each side produced (before any tampering): m1…m4 and Alice's final output. */
  sizes: number[];
  alice: boolean;
  bob: boolean;
  aliceLegacy: number | undefined;
  bobLegacy: number | undefined;
}

function runSides(alice: Side, bob: Side, hooks: Hooks = {}): Outcome {
  const send = (step: Step, message: Uint8Array, receiver: Side): Uint8Array => {
    const m = hooks.tamper ? hooks.tamper(step, message) : message;
    return hooks.deliver ? hooks.deliver(step, m, receiver) : receiver.proceed(m);
  };
  // Ours is complete only at the end. The peer's complete() is "result ≠
  // NOT_READY", which turns true early once a check has failed (see the
  // test "complete() after a failed check"), so mid-protocol checks are ours only.
  const notYet = (side: Side, what: string): void => {
    if (side.impl === 'ours') assert.equal(side.complete(), false, what);
  };
  const m1 = alice.begin();
  notYet(alice, 'Alice is not complete after begin()');
  const m2 = send(1, m1, bob);
  notYet(bob, 'Bob is not complete after message 1');
  const m3 = send(2, m2, alice);
  notYet(alice, 'Alice is not complete after message 2');
  const m4 = send(3, m3, bob);
  assert.equal(bob.complete(), true, 'Bob is complete after message 3');
  notYet(alice, 'Alice is not complete before message 4');
  const m5 = send(4, m4, alice);
  assert.ok(m5 instanceof Uint8Array, "Alice's last output is a Uint8Array");
  assert.equal(alice.complete(), true, 'Alice is complete after message 4');
  return {
    sizes: [m1, m2, m3, m4, m5].map((m) => m.length),
    alice: alice.compareEqual(),
    bob: bob.compareEqual(),
    aliceLegacy: alice.legacyResult(),
    bobLegacy: bob.legacyResult(),
  };
}

interface CompareOptions extends Hooks {
  aliceVia?: Via;
  bobVia?: Via;
}

/** A whole comparison between fresh comparators; both are destroyed afterwards. */
function compare(pairing: Pairing, aliceParts: readonly Uint8Array[], bobParts: readonly Uint8Array[], options: CompareOptions = {}): Outcome {
  const alice = newSide(pairing[0], aliceParts, options.aliceVia);
  let bob: Side | undefined;
  try {
    bob = newSide(pairing[1], bobParts, options.bobVia);
    return runSides(alice, bob, options);
  } finally {
    alice.destroy();
    bob?.destroy();
  }
}

function assertOutcome(o: Outcome, expected: { alice: boolean; bob: boolean }, what: string): void {
  assert.deepEqual(o.sizes, SIZES, `${what}: message sizes`);
  assert.equal(o.alice, expected.alice, `${what}: Alice's result`);
  assert.equal(o.bob, expected.bob, `${what}: Bob's result`);
  if (o.aliceLegacy !== undefined) assert.equal(o.aliceLegacy, expected.alice ? MATCH : NO_MATCH, `${what}: Alice's result()`);
  if (o.bobLegacy !== undefined) assert.equal(o.bobLegacy, expected.bob ? MATCH : NO_MATCH, `${what}: Bob's result()`);
}

const both = (match: boolean): { alice: boolean; bob: boolean } => ({ alice: match, bob: match });

/** `receiver.proceed(message)` must fail as malformed input: MALFORMED (ours) or INVALID_PARAMETER 12 (peer). */
function assertRejectedAsMalformed(receiver: Side, message: Uint8Array, what: string, oursCode: 'MALFORMED' | 'EMPTY_INPUT' = 'MALFORMED'): void {
  let thrown: unknown;
  let threw = false;
  try {
    receiver.proceed(message);
  } catch (e) {
    threw = true;
    thrown = e;
  }
  assert.ok(threw, `${what}: ${receiver.impl} accepted it`);
  if (receiver.impl === 'ours') {
    assert.ok(thrown instanceof ThemisError, `${what}: ours threw ${describeError(thrown)}, not a ThemisError`);
    assert.equal(thrown.code, oursCode, `${what}: ours threw ${describeError(thrown)}`);
    assert.equal(thrown.errorCode, INVALID_PARAMETER, `${what}: legacy errorCode`);
  } else {
    assert.ok(thrown instanceof PeerFailure && thrown.themisError, `${what}: ${describeError(thrown)}`);
    assert.equal(thrown.errorCode, peer.ThemisErrorCode.INVALID_PARAMETER, `${what}: peer errorCode`);
  }
}

// ---------------------------------------------------------------------------
// Little-endian integers and Ed25519 field facts, for crafting hostile bytes.

const P = 2n ** 255n - 19n;
/** Order of the base point (§6.1). */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function le2n(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number);
  return v;
}

function n2le(v: bigint, length = 32): Uint8Array {
  const out = new Uint8Array(length);
  let x = v;
  for (let i = 0; i < length; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  assert.equal(x, 0n, 'value fits');
  return out;
}

function modPow(base: bigint, exp: bigint): bigint {
  let r = 1n;
  let b = base % P;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return r;
}

const inv = (v: bigint): bigint => modPow(v, P - 2n);
/** Curve constant d = −121665/121666. */
const D = ((P - 121665n) * inv(121666n)) % P;

/** True if some x satisfies −x² + y² = 1 + d·x²·y², i.e. (y² − 1)/(d·y² + 1) is a square mod p. */
function yOnCurve(y: bigint): boolean {
  const x2 = ((((y * y - 1n) % P) + P) % P) * inv((D * y * y + 1n) % P) % P;
  return x2 === 0n || modPow(x2, (P - 1n) / 2n) === 1n;
}

/** 32-byte encoding: y little-endian, top bit = sign of x. */
function encodeY(y: bigint, signBit = false): Uint8Array {
  const e = n2le(y);
  if (signBit) e[31] = (e[31] as number) | 0x80;
  return e;
}

/** The smallest y with no point on the curve, found by trying y = 0, 1, 2, … */
const BAD_Y = (() => {
  assert.ok(yOnCurve(1n), 'y = 1 (the identity) is on the curve');
  assert.ok(yOnCurve((4n * inv(5n)) % P), 'the base point y = 4/5 is on the curve');
  for (let y = 0n; ; y++) if (!yOnCurve(y)) return y;
})();

/** Where the points are in each message (§6.3). */
const POINTS: ReadonlyArray<{ step: Step; name: string; at: number }> = [
  { step: 1, name: 'G2a', at: 0 },
  { step: 1, name: 'G3a', at: 96 },
  { step: 2, name: 'G2b', at: 0 },
  { step: 2, name: 'G3b', at: 96 },
  { step: 2, name: 'Pb', at: 192 },
  { step: 2, name: 'Qb', at: 224 },
  { step: 3, name: 'Pa', at: 0 },
  { step: 3, name: 'Qa', at: 32 },
  { step: 3, name: 'Ra', at: 160 },
  { step: 4, name: 'Rb', at: 0 },
];

/** Where the proofs are: a challenge c then 32-byte responses (§6.2, §6.3). */
const PROOFS: ReadonlyArray<{ step: Step; name: string; at: number; responses: readonly string[] }> = [
  { step: 1, name: 'DL₁(a2)', at: 32, responses: ['s'] },
  { step: 1, name: 'DL₂(a3)', at: 128, responses: ['s'] },
  { step: 2, name: 'DL₃(b2)', at: 32, responses: ['s'] },
  { step: 2, name: 'DL₄(b3)', at: 128, responses: ['s'] },
  { step: 2, name: 'DoubleBase₅', at: 256, responses: ['t1', 't2'] },
  { step: 3, name: 'DoubleBase₆', at: 64, responses: ['t1', 't2'] },
  { step: 3, name: 'DLEquality₇', at: 192, responses: ['s'] },
  { step: 4, name: 'DLEquality₈', at: 32, responses: ['s'] },
];

/** Every 32-byte field of every proof: the challenge and each response. */
const PROOF_FIELDS = PROOFS.flatMap((p) => [
  { step: p.step, name: `${p.name} c`, at: p.at, response: false },
  ...p.responses.map((r, i) => ({ step: p.step, name: `${p.name} ${r}`, at: p.at + 32 * (i + 1), response: true })),
]);

/** A copy of `m` with its 32-byte field at `at` replaced by `f(field)`. */
function rewriteField(m: Uint8Array, at: number, f: (field: Uint8Array) => Uint8Array): Uint8Array {
  const out = Uint8Array.from(m);
  out.set(f(Uint8Array.from(m.subarray(at, at + 32))), at);
  return out;
}

/** Tamper with message `step` only. */
const onStep =
  (step: Step, f: (m: Uint8Array) => Uint8Array) =>
  (s: Step, m: Uint8Array): Uint8Array =>
    s === step ? f(m) : m;

const SECRET = utf8('parley: the shared secret');

// ---------------------------------------------------------------------------

describe('comparator interop: results, both directions', () => {
  for (const pairing of BOTH_WAYS) {
    describe(label(pairing), () => {
      test('equal secrets: MATCH on both sides; messages are 192/352/256/96 bytes, then nothing', () => {
        assertOutcome(compare(pairing, [SECRET], [SECRET]), both(true), 'equal');
        assertOutcome(compare(pairing, [SECRET], [SECRET], { aliceVia: 'constructor', bobVia: 'constructor' }), both(true), 'equal, via constructor');
      });

      test('different secrets: NO_MATCH on both sides', () => {
        assertOutcome(compare(pairing, [SECRET], [utf8('parley: the shared secreT')]), both(false), 'last byte differs');
        assertOutcome(compare(pairing, [utf8('a')], [utf8('b')]), both(false), 'one byte, differs');
      });

      test('a secret in several pieces equals their concatenation', () => {
        const whole = [utf8('parley secret')];
        const pieces = [utf8('par'), utf8('ley '), utf8('secret')];
        assertOutcome(compare(pairing, pieces, whole), both(true), 'Alice in pieces, Bob whole');
        assertOutcome(compare(pairing, whole, pieces), both(true), 'Alice whole, Bob in pieces');
        assertOutcome(compare(pairing, pieces, whole, { aliceVia: 'constructor' }), both(true), 'pieces via the constructor');
        assertOutcome(compare(pairing, [utf8('parl'), utf8('ey secret')], [utf8('parley s'), utf8('ecret')]), both(true), 'split differently on each side');
        assertOutcome(compare(pairing, [utf8('parley'), utf8('secret')], whole), both(false), 'pieces whose concatenation differs');
        assertOutcome(compare(pairing, [utf8('secret '), utf8('parley')], [utf8('parley '), utf8('secret')]), both(false), 'same pieces, other order');
      });

      for (const n of [1, 32, 10 * 1024]) {
        test(`${size(n)} secrets`, () => {
          const s = pattern(n, n);
          const other = Uint8Array.from(s);
          other[n - 1] = (other[n - 1] as number) ^ 0x01;
          assertOutcome(compare(pairing, [s], [Uint8Array.from(s)]), both(true), `${size(n)}, equal`);
          assertOutcome(compare(pairing, [s], [other]), both(false), `${size(n)}, last bit differs`);
          if (n > 2) {
            const cut1 = Math.floor(n / 3);
            const cut2 = n - 1;
            assertOutcome(compare(pairing, [s], [s.subarray(0, cut1), s.subarray(cut1, cut2), s.subarray(cut2)]), both(true), `${size(n)}, Bob in 3 pieces`);
          }
        });
      }
    });
  }

  test('a secret given as a view into a larger buffer hashes only the view', () => {
    const big = pattern(100, 9);
    const view = big.subarray(7, 39);
    for (const pairing of BOTH_WAYS) {
      assertOutcome(compare(pairing, [view], [Uint8Array.from(view)]), both(true), label(pairing));
    }
  });

  test('random secrets and random splits: the result is "the concatenations are equal" (fast-check)', () => {
    const runs = backendName === 'noble' ? 4 : 8;
    fc.assert(
      fc.property(
        fc.constantFrom(...BOTH_WAYS),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 3 }),
        fc.nat(),
        (pairing, secret, same, cutSeeds, flip) => {
          const cuts = [...new Set(cutSeeds.map((c) => 1 + (c % Math.max(1, secret.length - 1))).filter((c) => c < secret.length))].sort((a, b) => a - b);
          const pieces = [0, ...cuts].map((start, i) => secret.subarray(start, [...cuts, secret.length][i]));
          const bobSecret = Uint8Array.from(secret);
          if (!same) bobSecret[flip % secret.length] = (bobSecret[flip % secret.length] as number) ^ (1 + ((flip >>> 8) % 255));
          assertOutcome(compare(pairing, pieces, [bobSecret]), both(same), `${label(pairing)}, ${pieces.length} pieces`);
        },
      ),
      { numRuns: runs },
    );
  });
});

describe('comparator interop: corrupted proofs', () => {
  // A bad proof does not abort: the receiver carries on to the end and ends
  // with NO_MATCH. The sender's values are untouched, so (with equal secrets)
  // the other side still ends with MATCH — in Themis as in ours.
  for (const field of PROOF_FIELDS) {
    const expected = { alice: receiverOf(field.step) === 'bob', bob: receiverOf(field.step) === 'alice' };
    test(`message ${field.step}, ${field.name}: one byte changed → the receiver (${receiverOf(field.step)}) says NO_MATCH, no exception`, () => {
      const tamper = onStep(field.step, (m) => {
        const out = Uint8Array.from(m);
        out[field.at + 11] = (out[field.at + 11] as number) ^ 0x5a;
        return out;
      });
      for (const pairing of CROSS_AND_REFERENCE) assertOutcome(compare(pairing, [SECRET], [SECRET], { tamper }), expected, label(pairing));
    });
  }

  test('complete() after a failed check: the peer reports true at once, ours only at the end (divergence)', () => {
    const tamper = onStep(1, (m) => rewriteField(m, 32, (c) => n2le(le2n(c) ^ 1n)));
    for (const bobImpl of ['peer', 'ours'] as const) {
      const alice = newSide('peer', [SECRET]);
      const bob = newSide(bobImpl, [SECRET]);
      try {
        const m2 = bob.proceed(tamper(1, alice.begin()));
        if (bobImpl === 'peer') {
          // wasm-themis: complete() is "result ≠ NOT_READY", and the failed DL₁ check already set NO_MATCH.
          assert.equal(bob.complete(), true, 'peer Bob reports complete right after the bad message 1');
          assert.equal(bob.compareEqual(), false);
        } else {
          assert.equal(bob.complete(), false, 'ours is not complete before the protocol ends');
          assert.throws(() => bob.compareEqual(), (e) => ThemisError.is(e, 'INVALID_STATE'));
        }
        const m4 = bob.proceed(alice.proceed(m2));
        alice.proceed(m4);
        assert.deepEqual([bob.complete(), bob.compareEqual(), alice.complete(), alice.compareEqual()], [true, false, true, true], `${bobImpl} Bob at the end`);
      } finally {
        alice.destroy();
        bob.destroy();
      }
    }
  });

  test('unreduced responses: s + L (< 2^253) is accepted, as Themis accepts it; s + 2L (≥ 2^253) is refused by the range check', () => {
    // Both equal s mod L, so the proof equations hold for either: only the
    // "top three bits clear" rule of §6.2 tells them apart.
    for (const field of PROOF_FIELDS.filter((f) => f.response)) {
      const plusL = onStep(field.step, (m) =>
        rewriteField(m, field.at, (r) => {
          const v = le2n(r) + L;
          assert.ok(v < 2n ** 253n, 'precondition: s + L < 2^253');
          return n2le(v);
        }),
      );
      const plus2L = onStep(field.step, (m) =>
        rewriteField(m, field.at, (r) => {
          const v = le2n(r) + 2n * L;
          assert.ok(v >= 2n ** 253n, 'precondition: s + 2L ≥ 2^253');
          return n2le(v);
        }),
      );
      const refused = { alice: receiverOf(field.step) === 'bob', bob: receiverOf(field.step) === 'alice' };
      for (const pairing of CROSS_AND_REFERENCE) {
        assertOutcome(compare(pairing, [SECRET], [SECRET], { tamper: plusL }), both(true), `${field.name} + L, ${label(pairing)}`);
        assertOutcome(compare(pairing, [SECRET], [SECRET], { tamper: plus2L }), refused, `${field.name} + 2L, ${label(pairing)}`);
      }
    }
  });

  test('an unreduced challenge (c + L) does not match the recomputed one → NO_MATCH', () => {
    for (const field of PROOF_FIELDS.filter((f) => !f.response)) {
      const tamper = onStep(field.step, (m) => rewriteField(m, field.at, (c) => n2le(le2n(c) + L)));
      const expected = { alice: receiverOf(field.step) === 'bob', bob: receiverOf(field.step) === 'alice' };
      for (const pairing of CROSS_AND_REFERENCE) assertOutcome(compare(pairing, [SECRET], [SECRET], { tamper }), expected, `${field.name}, ${label(pairing)}`);
    }
  });
});

describe('comparator interop: malformed messages', () => {
  test(`the smallest y with no curve point is found by search (y = ${BAD_Y})`, () => {
    assert.ok(!yOnCurve(BAD_Y));
    for (let y = 0n; y < BAD_Y; y++) assert.ok(yOnCurve(y));
  });

  for (const point of POINTS) {
    test(`message ${point.step}, ${point.name} replaced by an undecodable point → MALFORMED; the correct message still works afterwards`, () => {
      // With and without the sign bit at the first position; without elsewhere.
      for (const sign of point.name === 'G2a' ? [false, true] : [false]) {
        const bad = encodeY(BAD_Y, sign);
        for (const pairing of CROSS_AND_REFERENCE) {
          const deliver = (step: Step, m: Uint8Array, receiver: Side): Uint8Array => {
            if (step === point.step) {
              assertRejectedAsMalformed(receiver, rewriteField(m, point.at, () => bad), `${point.name} = y ${BAD_Y}${sign ? ' (sign bit)' : ''}, ${label(pairing)}`);
            }
            return receiver.proceed(m);
          };
          assertOutcome(compare(pairing, [SECRET], [SECRET], { deliver }), both(true), `after the bad point, ${label(pairing)}`);
        }
      }
    });
  }

  for (const step of [1, 2, 3, 4] as const) {
    test(`message ${step} one byte short, or empty → rejected; the comparator is unchanged and the correct message still works`, () => {
      for (const pairing of CROSS_AND_REFERENCE) {
        const deliver = (s: Step, m: Uint8Array, receiver: Side): Uint8Array => {
          if (s === step) {
            assertRejectedAsMalformed(receiver, m.subarray(0, m.length - 1), `${m.length - 1} bytes, ${label(pairing)}`);
            assertRejectedAsMalformed(receiver, m.subarray(0, 32), `32 bytes, ${label(pairing)}`);
            assertRejectedAsMalformed(receiver, new Uint8Array(0), `empty, ${label(pairing)}`, 'EMPTY_INPUT');
          }
          return receiver.proceed(m);
        };
        assertOutcome(compare(pairing, [SECRET], [SECRET], { deliver }), both(true), `after the short message, ${label(pairing)}`);
      }
    });

    test(`message ${step} with trailing bytes is accepted; the extra bytes are ignored`, () => {
      for (const extra of step === 1 ? [1, 33] : [33]) {
        const tamper = onStep(step, (m) => {
          const out = new Uint8Array(m.length + extra).fill(0xa5);
          out.set(m);
          return out;
        });
        for (const pairing of CROSS_AND_REFERENCE) assertOutcome(compare(pairing, [SECRET], [SECRET], { tamper }), both(true), `+${extra} bytes, ${label(pairing)}`);
      }
    });
  }
});

describe('comparator interop: identity and small-order points', () => {
  // Equal secrets throughout, so a NO_MATCH is caused by the substituted point.
  const ENCODINGS: ReadonlyArray<{ name: string; bytes: Uint8Array }> = [
    { name: 'the identity (01 00…00)', bytes: encodeY(1n) },
    { name: 'the identity with the sign bit set', bytes: encodeY(1n, true) },
    { name: 'the identity, non-canonical y = p + 1', bytes: encodeY(P + 1n) },
    { name: 'the order-2 point (y = −1)', bytes: encodeY(P - 1n) },
    { name: 'an order-4 point (y = 0)', bytes: encodeY(0n) },
    { name: 'the other order-4 point (y = 0, sign bit)', bytes: encodeY(0n, true) },
  ];
  const targets = (names: readonly string[]): typeof POINTS => POINTS.filter((p) => names.includes(p.name));

  for (const [i, encoding] of ENCODINGS.entries()) {
    // The plain identity at all four; the other encodings at one point per direction.
    const names = i === 0 ? ['G2a', 'G3a', 'G2b', 'G3b'] : ['G2a', 'G3b'];
    test(`${encoding.name} as ${names.join(', ')}: no exception, NO_MATCH on both sides`, () => {
      for (const target of targets(names)) {
        const tamper = onStep(target.step, (m) => rewriteField(m, target.at, () => encoding.bytes));
        for (const pairing of CROSS_AND_REFERENCE) assertOutcome(compare(pairing, [SECRET], [SECRET], { tamper }), both(false), `${target.name}, ${label(pairing)}`);
      }
    });
  }
});

// ---------------------------------------------------------------------------
// An SMP party written from the spec (§6), independent of src/comparator.
// With its g3 exponent (or g2 exponent) set to 0 it sends the identity with
// *valid* proofs; the honest side's identity checks are then the only thing
// standing between the attacker and a forced MATCH.

type EdPoint = typeof ed25519.Point.BASE;
const BASE = ed25519.Point.BASE;
const ZERO = ed25519.Point.ZERO;

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
};
const sha = (alg: 'sha256' | 'sha512', data: Uint8Array): Uint8Array => new Uint8Array(createHash(alg).update(data).digest());
/** H(x) = SHA-512(x) as a little-endian integer mod L. */
const H = (...parts: Uint8Array[]): bigint => le2n(sha('sha512', concat(...parts))) % L;
const times = (p: EdPoint, k: bigint): EdPoint => {
  const r = k % L;
  return r === 0n || p.is0() ? ZERO : p.multiply(r);
};
const enc = (p: EdPoint): Uint8Array => p.toBytes();
const dec = (m: Uint8Array, at: number): EdPoint => ed25519.Point.fromBytes(m.subarray(at, at + 32));
/** Uniform nonce mod L (§6.1: nonces never leave the party, so any uniform scalar works). */
const nonce = (): bigint => le2n(new Uint8Array(randomBytes(64))) % L;
const tag = (n: number): Uint8Array => Uint8Array.of(n);
/** SHA-256 of the secret, clamped (§6.1). */
function secretScalar(secret: Uint8Array): bigint {
  const h = sha('sha256', secret);
  h[0] = (h[0] as number) & 0xf8;
  h[31] = ((h[31] as number) & 0x3f) | 0x40;
  return le2n(h);
}
/** DL proof of X = x·B. */
function proveDL(x: bigint, n: number): Uint8Array {
  const r = nonce();
  const c = H(enc(times(BASE, r)), tag(n));
  return concat(n2le(c), n2le((c * x + r) % L));
}
/** Double-base proof of P = s1·g3 and Q = s2·g2 + s1·B. */
function proveDoubleBase(s1: bigint, s2: bigint, g2: EdPoint, g3: EdPoint, n: number): Uint8Array {
  const r1 = nonce();
  const r2 = nonce();
  const c = H(enc(times(g3, r1)), enc(times(g2, r2).add(times(BASE, r1))), tag(n));
  return concat(n2le(c), n2le((c * s1 + r1) % L), n2le((c * s2 + r2) % L));
}
/** DL-equality proof of X = x·B and R = x·D. */
function proveDLEquality(x: bigint, d: EdPoint, n: number): Uint8Array {
  const r = nonce();
  const c = H(enc(times(BASE, r)), enc(times(d, r)), tag(n));
  return concat(n2le(c), n2le((c * x + r) % L));
}

interface EngineOptions {
  /** Use 0 as this party's exponent for g2 or g3, so that it sends the identity (with valid proofs). */
  zeroExponent?: 'g2' | 'g3';
  /** Apply the identity-point rules when deciding (an honest party does). */
  identityChecks?: boolean;
}

/** Alice's side of the protocol, with the same call shape as a comparator. */
function engineAlice(secret: Uint8Array, options: EngineOptions = {}) {
  const x = secretScalar(secret);
  const a2 = options.zeroExponent === 'g2' ? 0n : nonce();
  const a3 = options.zeroExponent === 'g3' ? 0n : nonce();
  const checks = options.identityChecks ?? true;
  let ok = true;
  let Pa = ZERO;
  let Pb = ZERO;
  let match: boolean | undefined;
  return {
    begin: (): Uint8Array => concat(enc(times(BASE, a2)), proveDL(a2, 1), enc(times(BASE, a3)), proveDL(a3, 2)),
    step2(m2: Uint8Array): Uint8Array {
      const g2 = times(dec(m2, 0), a2);
      const g3 = times(dec(m2, 96), a3);
      if (g2.is0() || g3.is0()) ok = false;
      Pb = dec(m2, 192);
      const Qb = dec(m2, 224);
      const ra = nonce();
      Pa = times(g3, ra);
      const Qa = times(BASE, ra).add(times(g2, x));
      const d = Qa.subtract(Qb);
      return concat(enc(Pa), enc(Qa), proveDoubleBase(ra, x, g2, g3, 6), enc(times(d, a3)), proveDLEquality(a3, d, 7));
    },
    step4(m4: Uint8Array): void {
      const Rab = times(dec(m4, 0), a3);
      match = (!checks || (ok && !Rab.is0())) && Rab.equals(Pa.subtract(Pb));
    },
    result: (): boolean | undefined => match,
  };
}

/** Bob's side of the protocol. */
function engineBob(secret: Uint8Array, options: EngineOptions = {}) {
  const y = secretScalar(secret);
  const b2 = options.zeroExponent === 'g2' ? 0n : nonce();
  const b3 = options.zeroExponent === 'g3' ? 0n : nonce();
  const checks = options.identityChecks ?? true;
  let ok = true;
  let Pb = ZERO;
  let Qb = ZERO;
  let match: boolean | undefined;
  return {
    step1(m1: Uint8Array): Uint8Array {
      const g2 = times(dec(m1, 0), b2);
      const g3 = times(dec(m1, 96), b3);
      if (g2.is0() || g3.is0()) ok = false;
      const rb = nonce();
      Pb = times(g3, rb);
      Qb = times(BASE, rb).add(times(g2, y));
      return concat(enc(times(BASE, b2)), proveDL(b2, 3), enc(times(BASE, b3)), proveDL(b3, 4), enc(Pb), enc(Qb), proveDoubleBase(rb, y, g2, g3, 5));
    },
    step3(m3: Uint8Array): Uint8Array {
      const Pa = dec(m3, 0);
      const d = dec(m3, 32).subtract(Qb);
      const Rab = times(dec(m3, 160), b3);
      match = (!checks || (ok && !Rab.is0())) && Rab.equals(Pa.subtract(Pb));
      return concat(enc(times(d, b3)), proveDLEquality(b3, d, 8));
    },
    result: (): boolean | undefined => match,
  };
}

/** The engine as Alice against `bob`; returns both results. */
function engineAsAlice(bob: Side, secret: Uint8Array, options?: EngineOptions): { engine: boolean | undefined; other: boolean; sizes: number[] } {
  const alice = engineAlice(secret, options);
  const m2 = bob.proceed(alice.begin());
  const m4 = bob.proceed(alice.step2(m2));
  alice.step4(m4);
  assert.equal(bob.complete(), true);
  return { engine: alice.result(), other: bob.compareEqual(), sizes: [m2.length, m4.length] };
}

/** The engine as Bob against `alice`; returns both results. */
function engineAsBob(alice: Side, secret: Uint8Array, options?: EngineOptions): { engine: boolean | undefined; other: boolean; sizes: number[] } {
  const bob = engineBob(secret, options);
  const m3 = alice.proceed(bob.step1(alice.begin()));
  const m5 = alice.proceed(bob.step3(m3));
  assert.equal(alice.complete(), true);
  return { engine: bob.result(), other: alice.compareEqual(), sizes: [m3.length, m5.length] };
}

function withSide<T>(impl: Impl, secret: Uint8Array, fn: (s: Side) => T): T {
  const s = newSide(impl, [secret]);
  try {
    return fn(s);
  } finally {
    s.destroy();
  }
}

const OTHER_SECRET = utf8('a guess that is wrong');

describe('comparator interop: a dishonest party sending the identity with valid proofs', () => {
  test('control: the spec-written engine, honest, agrees with the peer and with ours in both roles', () => {
    for (const impl of ['peer', 'ours'] as const) {
      for (const [bobSecret, expected] of [
        [SECRET, true],
        [OTHER_SECRET, false],
      ] as const) {
        const asAlice = withSide(impl, bobSecret, (bob) => engineAsAlice(bob, SECRET));
        assert.deepEqual(asAlice, { engine: expected, other: expected, sizes: [352, 96] }, `engine Alice ↔ ${impl} Bob`);
        const asBob = withSide(impl, bobSecret, (alice) => engineAsBob(alice, SECRET));
        assert.deepEqual(asBob, { engine: expected, other: expected, sizes: [256, 0] }, `${impl} Alice ↔ engine Bob`);
      }
    }
  });

  test('the attack is real: a party without identity checks is fooled into MATCH with different secrets', () => {
    for (const zeroExponent of ['g2', 'g3'] as const) {
      // Attacker Alice vs a naive engine Bob, and attacker Bob vs a naive engine Alice.
      const naiveBob = engineBob(OTHER_SECRET, { identityChecks: false });
      const attacker = engineAlice(SECRET, { zeroExponent });
      attacker.step4(naiveBob.step3(attacker.step2(naiveBob.step1(attacker.begin()))));
      assert.equal(naiveBob.result(), true, `attacker Alice (${zeroExponent} exponent 0) fools a naive Bob`);
      const naiveAlice = engineAlice(OTHER_SECRET, { identityChecks: false });
      const attackerBob = engineBob(SECRET, { zeroExponent });
      naiveAlice.step4(attackerBob.step3(naiveAlice.step2(attackerBob.step1(naiveAlice.begin()))));
      assert.equal(naiveAlice.result(), true, `attacker Bob (${zeroExponent} exponent 0) fools a naive Alice`);
    }
  });

  for (const zeroExponent of ['g2', 'g3'] as const) {
    test(`attacker sends ${zeroExponent === 'g2' ? 'G2' : 'G3'} = identity with a valid proof: ours and the peer say NO_MATCH, in both roles`, () => {
      for (const impl of ['ours', 'peer'] as const) {
        const victimBob = withSide(impl, OTHER_SECRET, (bob) => engineAsAlice(bob, SECRET, { zeroExponent }));
        assert.deepEqual(victimBob.sizes, [352, 96], `${impl} Bob carries on to the end`);
        assert.equal(victimBob.other, false, `${impl} Bob vs attacker Alice`);
        const victimAlice = withSide(impl, OTHER_SECRET, (alice) => engineAsBob(alice, SECRET, { zeroExponent }));
        assert.deepEqual(victimAlice.sizes, [256, 0], `${impl} Alice carries on to the end`);
        assert.equal(victimAlice.other, false, `${impl} Alice vs attacker Bob`);
      }
    });
  }
});
