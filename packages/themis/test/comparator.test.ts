/**
 * Secure Comparator API contract: call-order errors (always a ThemisError
 * with code INVALID_STATE — never another exception type), argument checks,
 * the legacy numeric result, and secrets hygiene (no textual form of a
 * comparator shows its secret). The last tests set the legacy error numbers
 * beside what the real peer, wasm-themis 0.15.0, does for the same misuse.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { format, inspect } from 'node:util';
import { SecureComparator, ThemisError, ThemisErrorCode, type ThemisErrorCodeName } from '../src/index.ts';
import { describeError, peer, utf8 } from './_interop.ts';

const SECRET = utf8('correct horse battery staple / parley');
const OTHER = utf8('incorrect horse');

/** `fn` must throw our ThemisError with `code` from the SecureComparator subsystem, and nothing else. */
function expectError(fn: () => unknown, code: ThemisErrorCodeName, what: string, legacy: number = ThemisErrorCode.INVALID_PARAMETER): ThemisError {
  let thrown: unknown;
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    thrown = e;
  }
  assert.ok(threw, `${what}: no exception`);
  assert.ok(thrown instanceof ThemisError, `${what}: threw ${describeError(thrown)}, not a ThemisError`);
  assert.equal(thrown.code, code, `${what}: ${describeError(thrown)}`);
  assert.equal(thrown.errorCode, legacy, `${what}: legacy errorCode`);
  assert.equal(thrown.subsystem, 'SecureComparator', `${what}: subsystem`);
  return thrown;
}

const expectInvalidState = (fn: () => unknown, what: string): ThemisError => expectError(fn, 'INVALID_STATE', what);
/** compareEqual() before the end: INVALID_STATE, with the peer's number for it (SCOMPARE_NOT_READY, 0). */
const expectNotReady = (fn: () => unknown, what: string): ThemisError => expectError(fn, 'INVALID_STATE', what, ThemisErrorCode.SCOMPARE_NOT_READY);

/** A finished comparison between two of ours; returns both sides and every message. */
function finished(aliceSecret = SECRET, bobSecret = SECRET) {
  const alice = new SecureComparator(aliceSecret);
  const bob = new SecureComparator(bobSecret);
  const m1 = alice.begin();
  const m2 = bob.proceed(m1);
  const m3 = alice.proceed(m2);
  const m4 = bob.proceed(m3);
  const m5 = alice.proceed(m4);
  return { alice, bob, m1, m2, m3, m4, m5 };
}

/** Finish a comparison `alice` has begun (its first message `m1`) against a fresh Bob. */
function finishWithBob(alice: SecureComparator, m1: Uint8Array, bobSecret: Uint8Array): { alice: boolean; bob: boolean } {
  const bob = new SecureComparator(bobSecret);
  alice.proceed(bob.proceed(alice.proceed(bob.proceed(m1))));
  return { alice: alice.compareEqual(), bob: bob.compareEqual() };
}

describe('comparator: call order', () => {
  test('proceed() after complete → INVALID_STATE, on both sides; the result is unchanged', () => {
    for (const [aliceSecret, match] of [
      [SECRET, true],
      [OTHER, false],
    ] as const) {
      const { alice, bob, m1, m2, m3, m4 } = finished(aliceSecret);
      for (const m of [m1, m2, m3, m4]) {
        expectInvalidState(() => alice.proceed(m), `Alice, ${m.length}-byte message`);
        expectInvalidState(() => bob.proceed(m), `Bob, ${m.length}-byte message`);
      }
      assert.equal(alice.compareEqual(), match);
      assert.equal(bob.compareEqual(), match);
      assert.equal(alice.result(), match ? ThemisErrorCode.SCOMPARE_MATCH : ThemisErrorCode.SCOMPARE_NO_MATCH);
    }
  });

  test('begin() twice → INVALID_STATE; the comparison already started is not disturbed', () => {
    const alice = new SecureComparator(SECRET);
    const m1 = alice.begin();
    expectInvalidState(() => alice.begin(), 'second begin()');
    assert.deepEqual(finishWithBob(alice, m1, SECRET), { alice: true, bob: true });
  });

  test('begin() on Bob once he has proceeded, or on anyone after complete → INVALID_STATE', () => {
    const alice = new SecureComparator(SECRET);
    const bob = new SecureComparator(SECRET);
    const m2 = bob.proceed(alice.begin());
    expectInvalidState(() => bob.begin(), 'Bob after message 1');
    const m4 = bob.proceed(alice.proceed(m2));
    alice.proceed(m4);
    expectInvalidState(() => alice.begin(), 'Alice after complete');
    expectInvalidState(() => bob.begin(), 'Bob after complete');
    assert.equal(alice.compareEqual(), true);
  });

  test('append() after begin, after Bob proceeded, or after complete → INVALID_STATE; the secret is not changed', () => {
    const alice = new SecureComparator(SECRET);
    const m1 = alice.begin();
    expectInvalidState(() => alice.append(utf8('more')), 'Alice after begin()');
    // Still compares the original secret: a Bob holding it matches.
    assert.deepEqual(finishWithBob(alice, m1, SECRET), { alice: true, bob: true });
    expectInvalidState(() => alice.append(utf8('more')), 'Alice after complete');

    const a2 = new SecureComparator(SECRET);
    const b2 = new SecureComparator(SECRET);
    const m2 = b2.proceed(a2.begin());
    expectInvalidState(() => b2.append(utf8('more')), 'Bob after message 1');
    a2.proceed(b2.proceed(a2.proceed(m2)));
    assert.equal(b2.compareEqual(), true);
    expectInvalidState(() => b2.append(utf8('more')), 'Bob after complete');
  });

  test('compareEqual() before complete → INVALID_STATE at every stage; complete() is false and result() is NOT_READY (0)', () => {
    const alice = new SecureComparator(SECRET);
    const bob = new SecureComparator(SECRET);
    const notYet = (c: SecureComparator, what: string): void => {
      expectNotReady(() => c.compareEqual(), what);
      assert.equal(c.complete(), false, what);
      assert.equal(c.result(), ThemisErrorCode.SCOMPARE_NOT_READY, what);
    };
    notYet(alice, 'Alice before begin()');
    notYet(bob, 'Bob before message 1');
    const m1 = alice.begin();
    notYet(alice, 'Alice waiting for message 2');
    const m2 = bob.proceed(m1);
    notYet(bob, 'Bob waiting for message 3');
    const m3 = alice.proceed(m2);
    notYet(alice, 'Alice waiting for message 4');
    const m4 = bob.proceed(m3);
    assert.equal(bob.compareEqual(), true);
    notYet(alice, 'Alice holding message 4');
    alice.proceed(m4);
    assert.equal(alice.compareEqual(), true);
    assert.equal(ThemisErrorCode.SCOMPARE_NOT_READY, 0);
  });

  test('begin() with no secret → INVALID_STATE; appending one afterwards makes begin() work', () => {
    const alice = new SecureComparator();
    expectInvalidState(() => alice.begin(), 'begin() with no secret');
    alice.append(SECRET);
    assert.deepEqual(finishWithBob(alice, alice.begin(), SECRET), { alice: true, bob: true });
  });

  test('Bob proceeding with no secret → INVALID_STATE; appending one afterwards makes it work', () => {
    const alice = new SecureComparator(SECRET);
    const bob = new SecureComparator();
    const m1 = alice.begin();
    expectInvalidState(() => bob.proceed(m1), 'proceed() with no secret');
    bob.append(SECRET);
    const m4 = bob.proceed(alice.proceed(bob.proceed(m1)));
    alice.proceed(m4);
    assert.deepEqual([alice.compareEqual(), bob.compareEqual()], [true, true]);
  });

  test('use after destroy → INVALID_STATE for every method; complete() false, result() 0; destroy() again is harmless', () => {
    const fresh = (): SecureComparator => new SecureComparator(SECRET);
    const aliceMid = (): SecureComparator => {
      const c = fresh();
      c.begin();
      return c;
    };
    const done = (): SecureComparator => finished().alice;
    const { m1 } = finished();
    for (const [stage, make] of [
      ['before begin', fresh],
      ['mid-protocol', aliceMid],
      ['after complete', done],
    ] as const) {
      const c = make();
      c.destroy();
      expectInvalidState(() => c.begin(), `begin() ${stage}`);
      expectInvalidState(() => c.append(SECRET), `append() ${stage}`);
      expectInvalidState(() => c.proceed(m1), `proceed() ${stage}`);
      expectInvalidState(() => c.compareEqual(), `compareEqual() ${stage}`);
      assert.equal(c.complete(), false, stage);
      assert.equal(c.result(), ThemisErrorCode.SCOMPARE_NOT_READY, stage);
      c.destroy();
    }
  });

  test('result() gives the legacy numbers: 21 MATCH, 22 NO_MATCH', () => {
    const same = finished();
    assert.deepEqual([same.alice.result(), same.bob.result()], [21, 21]);
    const diff = finished(SECRET, OTHER);
    assert.deepEqual([diff.alice.result(), diff.bob.result()], [22, 22]);
    assert.equal(ThemisErrorCode.SCOMPARE_MATCH, 21);
    assert.equal(ThemisErrorCode.SCOMPARE_NO_MATCH, 22);
  });
});

describe('comparator: arguments', () => {
  test('an empty secret or message → EMPTY_INPUT; something that is not bytes → INVALID_ARGUMENT', () => {
    expectError(() => new SecureComparator(new Uint8Array(0)), 'EMPTY_INPUT', 'empty secret in the constructor');
    const c = new SecureComparator();
    expectError(() => c.append(new Uint8Array(0)), 'EMPTY_INPUT', 'empty secret');
    expectError(() => c.append('secret' as unknown as Uint8Array), 'INVALID_ARGUMENT', 'a string secret');
    expectError(() => c.append([1, 2, 3] as unknown as Uint8Array), 'INVALID_ARGUMENT', 'an array secret');
    c.append(SECRET);
    expectError(() => c.proceed(new Uint8Array(0)), 'EMPTY_INPUT', 'empty message');
    expectError(() => c.proceed(null as unknown as Uint8Array), 'INVALID_ARGUMENT', 'null message');
    // None of these changed anything: c still works as Bob.
    const alice = new SecureComparator(SECRET);
    alice.proceed(c.proceed(alice.proceed(c.proceed(alice.begin()))));
    assert.deepEqual([alice.compareEqual(), c.compareEqual()], [true, true]);
  });

  test('the secret is copied at append(): changing the caller’s buffer afterwards changes nothing, and it is never wiped', () => {
    for (const peerIsAlice of [false, true]) {
      const mine = Uint8Array.from(SECRET);
      const ours = new SecureComparator(mine);
      mine.fill(0);
      const theirs = new peer.SecureComparator(SECRET);
      try {
        const [alice, bob] = peerIsAlice ? [theirs, ours] : [ours, theirs];
        const m4 = bob.proceed(alice.proceed(bob.proceed(alice.begin())));
        alice.proceed(m4);
        assert.equal(ours.compareEqual(), true, 'ours compared the bytes it had at append()');
        assert.equal(theirs.compareEqual(), true);
      } finally {
        theirs.destroy();
      }
    }
    // Ours wipes its own copies, never the caller's arrays.
    const kept = Uint8Array.from(SECRET);
    const { alice, bob } = finished(kept, kept);
    assert.deepEqual(kept, Uint8Array.from(SECRET), 'after the comparison');
    alice.destroy();
    bob.destroy();
    assert.deepEqual(kept, Uint8Array.from(SECRET), 'after destroy()');
  });
});

describe('comparator: secrets hygiene', () => {
  const hex = Buffer.from(SECRET).toString('hex');
  const b64 = Buffer.from(SECRET).toString('base64');
  const digest = createHash('sha256').update(SECRET).digest();
  const forbidden = [
    utf8ToString(SECRET),
    'correct horse',
    hex,
    b64,
    Array.from(SECRET.subarray(0, 6)).join(', '), // how inspect() prints a Uint8Array
    digest.toString('hex'),
    digest.toString('base64'),
  ];

  function utf8ToString(b: Uint8Array): string {
    return new TextDecoder().decode(b);
  }

  function renderings(c: SecureComparator): Record<string, string> {
    return {
      'util.inspect': inspect(c),
      'util.inspect (showHidden, depth ∞, getters)': inspect(c, { showHidden: true, depth: Infinity, getters: true }),
      'util.inspect of a wrapper object': inspect({ c, list: [c] }, { depth: Infinity }),
      String: String(c),
      'template literal': `${c}`,
      'JSON.stringify': JSON.stringify(c) ?? 'undefined',
      'JSON.stringify of a wrapper': JSON.stringify({ c }),
      'util.format %o %O %j %s': format('%o %O %j %s', c, c, c, c),
      'Object.entries': inspect(Object.entries(c)),
      'Object.getOwnPropertyNames': Object.getOwnPropertyNames(c).join(','),
    };
  }

  function assertClean(c: SecureComparator, stage: string): void {
    for (const [how, text] of Object.entries(renderings(c))) {
      for (const f of forbidden) assert.ok(!text.includes(f), `${stage}, ${how}: shows ${JSON.stringify(f.slice(0, 16))}…: ${text.slice(0, 120)}`);
      // No long numbers or hex strings at all: a scalar would show as one (bigint or bytes).
      assert.doesNotMatch(text, /\d{20,}/, `${stage}, ${how}: a long number`);
      assert.doesNotMatch(text, /[0-9a-f]{32,}/i, `${stage}, ${how}: a long hex string`);
    }
  }

  test('util.inspect / String / JSON.stringify never show the secret, at any stage', () => {
    const alice = new SecureComparator(SECRET);
    const bob = new SecureComparator();
    bob.append(SECRET.subarray(0, 10));
    bob.append(SECRET.subarray(10));
    assertClean(alice, 'Alice with a secret');
    assertClean(bob, 'Bob with a secret in two pieces');
    const m2 = bob.proceed(alice.begin());
    assertClean(alice, 'Alice after begin()');
    assertClean(bob, 'Bob after message 1');
    const m4 = bob.proceed(alice.proceed(m2));
    assertClean(alice, 'Alice waiting for message 4');
    assertClean(bob, 'Bob complete');
    alice.proceed(m4);
    assertClean(alice, 'Alice complete');
    alice.destroy();
    assertClean(alice, 'Alice destroyed');
  });

  test('error messages from misuse never contain the secret', () => {
    const c = new SecureComparator(SECRET);
    c.begin();
    const errors = [
      expectInvalidState(() => c.begin(), 'begin twice'),
      expectInvalidState(() => c.append(SECRET), 'append after begin'),
      expectNotReady(() => c.compareEqual(), 'compareEqual mid-protocol'),
      expectError(() => c.proceed(SECRET), 'MALFORMED', 'the secret sent as message 2'),
    ];
    for (const e of errors) {
      const text = `${e.message} ${inspect(e)}`;
      for (const f of forbidden) assert.ok(!text.includes(f), `${e.code}: ${text.slice(0, 120)}`);
    }
  });
});

describe('comparator: misuse, side by side with the peer', () => {
  /** The peer must throw its own ThemisError; returns its numeric errorCode (never prints the error). */
  function peerErrorCode(fn: () => unknown, what: string): number {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof peer.ThemisError, `${what}: the peer threw ${describeError(e)}`);
      return (e as { errorCode: number }).errorCode;
    }
    assert.fail(`${what}: the peer accepted it`);
  }

  test('begin twice, append after begin, proceed after complete, begin with no secret, use after destroy: both give errorCode 12', () => {
    const P = peer.SecureComparator;
    const cases: Array<[string, () => unknown, () => unknown]> = [];
    {
      const p = new P(SECRET);
      p.begin();
      const o = new SecureComparator(SECRET);
      o.begin();
      cases.push(['begin() twice', () => p.begin(), () => o.begin()]);
      cases.push(['append() after begin()', () => p.append(SECRET), () => o.append(SECRET)]);
      cases.push(['(cleanup)', () => p.destroy(), () => o.destroy()]);
    }
    {
      const pa = new P(SECRET);
      const pb = new P(SECRET);
      const m1 = pa.begin();
      const m2 = pb.proceed(m1);
      const m4 = pb.proceed(pa.proceed(m2));
      pa.proceed(m4);
      const o = finished();
      cases.push(['Alice proceed() after complete', () => pa.proceed(m4), () => o.alice.proceed(o.m4)]);
      cases.push(['Bob proceed() after complete', () => pb.proceed(m1), () => o.bob.proceed(o.m1)]);
      cases.push([
        '(cleanup)',
        () => {
          pa.destroy();
          pb.destroy();
        },
        () => undefined,
      ]);
    }
    {
      const p = new P();
      const o = new SecureComparator();
      cases.push(['begin() with no secret', () => p.begin(), () => o.begin()]);
      cases.push(['(cleanup)', () => p.destroy(), () => undefined]);
    }
    {
      const p = new P(SECRET);
      p.destroy();
      const o = new SecureComparator(SECRET);
      o.destroy();
      const m1 = new SecureComparator(SECRET).begin();
      cases.push(['begin() after destroy', () => p.begin(), () => o.begin()]);
      cases.push(['append() after destroy', () => p.append(SECRET), () => o.append(SECRET)]);
      cases.push(['proceed() after destroy', () => p.proceed(m1), () => o.proceed(m1)]);
      cases.push(['compareEqual() after destroy', () => p.compareEqual(), () => o.compareEqual()]);
    }
    for (const [what, theirs, ours] of cases) {
      if (what === '(cleanup)') {
        theirs();
        ours();
        continue;
      }
      assert.equal(peerErrorCode(theirs, what), peer.ThemisErrorCode.INVALID_PARAMETER, `${what}: peer`);
      expectInvalidState(ours, `${what}: ours`);
    }
  });

  test('documented divergences from the peer (asserted, so a change on either side is noticed)', () => {
    // 1. (Now the same.) compareEqual() before complete: the peer throws with
    //    errorCode 0 (SCOMPARE_NOT_READY); ours throws INVALID_STATE, legacy 0 too.
    const p = new peer.SecureComparator(SECRET);
    try {
      assert.equal(peerErrorCode(() => p.compareEqual(), 'peer compareEqual() before begin'), peer.ThemisErrorCode.SCOMPARE_NOT_READY);
    } finally {
      p.destroy();
    }
    expectNotReady(() => new SecureComparator(SECRET).compareEqual(), 'ours compareEqual() before begin');

    // 2. A rejected proceed() after complete rewrites the peer's result (its C
    //    core re-runs Bob's first step, which fails a proof check and sets
    //    NO_MATCH before erroring out); ours leaves the result alone.
    const pa = new peer.SecureComparator(SECRET);
    const pb = new peer.SecureComparator(SECRET);
    try {
      const m2 = pb.proceed(pa.begin());
      const m4 = pb.proceed(pa.proceed(m2));
      pa.proceed(m4);
      assert.equal(pa.compareEqual(), true);
      peerErrorCode(() => pa.proceed(m2), 'peer Alice proceed() after complete');
      assert.equal(pa.compareEqual(), false, 'the peer now reports NO_MATCH');
    } finally {
      pa.destroy();
      pb.destroy();
    }
    const o = finished();
    expectInvalidState(() => o.alice.proceed(o.m2), 'ours Alice proceed() after complete');
    assert.equal(o.alice.compareEqual(), true, 'ours still reports MATCH');

    // 3. Bob with no secret: the peer proceeds (comparing SHA-256 of nothing);
    //    ours refuses with INVALID_STATE.
    const oursAlice = new SecureComparator(SECRET);
    const peerNoSecret = new peer.SecureComparator();
    try {
      const m2 = peerNoSecret.proceed(oursAlice.begin());
      assert.equal(m2.length, 352, 'the peer answers message 1 without a secret');
    } finally {
      peerNoSecret.destroy();
    }
    expectInvalidState(() => new SecureComparator().proceed(new SecureComparator(SECRET).begin()), 'ours Bob with no secret');

    // 4. complete() after destroy: the peer returns true (its result getter
    //    returns INVALID_PARAMETER ≠ NOT_READY); ours returns false.
    const pd = new peer.SecureComparator(SECRET);
    pd.destroy();
    assert.equal(pd.complete(), true);
    const od = new SecureComparator(SECRET);
    od.destroy();
    assert.equal(od.complete(), false);
  });
});
