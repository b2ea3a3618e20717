/**
 * Secure Session against the real peer, `wasm-themis` 0.15.0 (wire-format
 * spec §5 and §7), in both roles: our client ↔ peer server and peer client ↔
 * our server.
 *
 * Every random choice comes from a seeded generator; the seed is in the test
 * name, so a failure reproduces. Expected outcomes come from the spec or from
 * the peer itself (ours is compared with the peer's decision on the same
 * input), never from our own output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecureSession, ThemisError, type SecureSessionOptions, type SessionState } from '../src/index.ts';
import { limits, readContainer, writeContainer } from '../src/hazmat.ts';
import {
  type AnySession,
  assertSameBytes,
  flipByte,
  handshake,
  IV_TAIL,
  numbered,
  ok,
  ourSession,
  outcome,
  OVERHEAD,
  party,
  readU32BE,
  rewrapTspm,
  Rng,
  sameBytes,
  tspmPayload,
  oursRejects,
} from './_session.ts';
import { peer, peerRejects, peerSession } from './_session-peer.ts';

const client = party('client');
const server = party('server');
const stranger = party('mallory');

/** A session pair with ours and the peer in the given roles. */
interface Pair {
  ours: SecureSession;
  theirs: AnySession;
}

function ourClientPair(t: Parameters<typeof peerSession>[0], options?: SecureSessionOptions): Pair & { hs: ReturnType<typeof handshake> } {
  const ours = ourSession(client, [server], options);
  const theirs = peerSession(t, server, [client]);
  const hs = handshake(ours, theirs, 'our client ↔ peer server');
  return { ours, theirs, hs };
}

function ourServerPair(t: Parameters<typeof peerSession>[0], options?: SecureSessionOptions): Pair & { hs: ReturnType<typeof handshake> } {
  const ours = ourSession(server, [client], options);
  const theirs = peerSession(t, client, [server]);
  const hs = handshake(theirs, ours, 'peer client ↔ our server');
  return { ours, theirs, hs };
}

/** Sizes from 1 B to 64 KiB: half uniform, half log-uniform (so small sizes are well covered); the first two are the edges. */
function bulkSize(rng: Rng, i: number): number {
  if (i === 0) return 1;
  if (i === 1) return 65536;
  if (rng.int(0, 1) === 0) return rng.int(1, 65536);
  const e = rng.int(0, 16);
  return rng.int(Math.max(1, 2 ** (e - 1)), 2 ** e);
}

// ---------------------------------------------------------------------------
// 1. Bulk traffic and on-wire layout
// ---------------------------------------------------------------------------

const BULK = 1000;

for (const [role, seed] of [
  ['our client ↔ peer server', 0x5e55_0001],
  ['peer client ↔ our server', 0x5e55_0002],
] as const) {
  test(`bulk (${role}): ${BULK} messages each way, sizes 1 B–64 KiB, seed ${seed.toString(16)}; wrapped = n + 52, one session id on the wire`, (t) => {
    const { ours, theirs } = role === 'our client ↔ peer server' ? ourClientPair(t) : ourServerPair(t);
    const rng = new Rng(seed);
    let sid: number | undefined;
    const checkLayout = (wrapped: Uint8Array, n: number, what: string): void => {
      assert.equal(wrapped.length, n + OVERHEAD, `${what}: wrapped length`);
      const s = readU32BE(wrapped, 0);
      sid ??= s;
      assert.equal(s, sid, `${what}: session id ${s.toString(16)} differs from the session's ${sid.toString(16)}`);
    };
    for (let i = 0; i < BULK; i++) {
      // ours → peer
      const a = rng.bytes(bulkSize(rng, i));
      const wa = ok(`ours wrap #${i}`, () => ours.wrap(a));
      checkLayout(wa, a.length, `ours → peer #${i} (${a.length} B)`);
      assertSameBytes(ok(`peer unwrap #${i}`, () => theirs.unwrap(wa)), a, `ours → peer #${i} (${a.length} B)`);
      // peer → ours
      const b = rng.bytes(bulkSize(rng, i));
      const wb = ok(`peer wrap #${i}`, () => theirs.wrap(b));
      checkLayout(wb, b.length, `peer → ours #${i} (${b.length} B)`);
      assertSameBytes(ok(`ours unwrap #${i}`, () => ours.unwrap(wb)), b, `peer → ours #${i} (${b.length} B)`);
    }
  });
}

test('handshake messages have the sizes Themis produces: M1/M2 = 12 + 12 + |id| + 45 + DER signature, M3 = 12 + signature + 32, M4 = 44', (t) => {
  for (const [name, hs] of [
    ['our client ↔ peer server', ourClientPair(t).hs],
    ['peer client ↔ our server', ourServerPair(t).hs],
  ] as const) {
    // A DER ECDSA-P256 signature (SEQUENCE, its length byte, then r and s) is 70–72 bytes
    // most of the time, shorter when r or s happens to start with zero bits (about 1 in 128
    // signatures is 69 bytes): read its length from its own header (spec §7: 145–146 for id "client").
    const der = (m: Uint8Array, at: number): number => {
      assert.equal(m[at], 0x30, `${name}: a DER SEQUENCE at ${at}`);
      const length = 2 + (m[at + 1] as number);
      assert.ok(length >= 8 && length <= 72, `${name}: DER signature of ${length} bytes`);
      return length;
    };
    assert.equal(hs.m1.length, 12 + 12 + 6 + 45 + der(hs.m1, 12 + 12 + 6 + 45), `${name}: M1`);
    assert.equal(hs.m2.length, 12 + 12 + 6 + 45 + der(hs.m2, 12 + 12 + 6 + 45), `${name}: M2`);
    assert.equal(hs.m3.length, 12 + der(hs.m3, 12) + 32, `${name}: M3`);
    assert.equal(hs.m4.length, 44, `${name}: M4`);
  }
});

// ---------------------------------------------------------------------------
// 2. Reordering within the window
// ---------------------------------------------------------------------------

/**
 * A random permutation of 0..n−1 in which every element lies within ±8 of its
 * position. With `themisWindow`, additionally every delivered index is within
 * ±8 of the previous one (of 0 for the first): the reordering a Themis
 * receiver accepts in full, since Themis checks each seq against the last
 * accepted one.
 */
function windowPermutation(n: number, rng: Rng, themisWindow: boolean): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  const valid = (): boolean => {
    for (let p = 0; p < n; p++) {
      const v = a[p] as number;
      if (Math.abs(v - p) > 8) return false;
      if (themisWindow && Math.abs(v - (p === 0 ? 0 : (a[p - 1] as number))) > 8) return false;
    }
    // …and the next message sent after the burst is within ±8 of the last one delivered.
    return !themisWindow || n - (a[n - 1] as number) <= 8;
  };
  for (let k = 0; k < n * 30; k++) {
    const i = rng.int(0, n - 2);
    const j = Math.min(n - 1, i + rng.int(1, 8));
    const before = a.slice(i, j + 1);
    if (rng.int(0, 1) === 0) {
      [a[i], a[j]] = [a[j] as number, a[i] as number];
    } else {
      // Move the element at j in front of i (deliver a later message first).
      a.splice(i, 0, ...a.splice(j, 1));
    }
    if (!valid()) a.splice(i, before.length, ...before);
  }
  return a;
}

function maxJump(order: readonly number[]): number {
  let m = 0;
  for (let p = 0; p < order.length; p++) m = Math.max(m, Math.abs((order[p] as number) - (p === 0 ? 0 : (order[p - 1] as number))));
  return m;
}

/** Deliver `wrapped` in `order` to `unwrap`; returns per-delivery acceptance and checks each accepted plaintext. */
function deliver(order: readonly number[], wrapped: readonly Uint8Array[], unwrap: (m: Uint8Array) => Uint8Array, isOurs: boolean, what: string): boolean[] {
  return order.map((idx) => {
    const r = outcome(() => unwrap(wrapped[idx] as Uint8Array));
    if (r.ok) {
      assertSameBytes(r.value, numbered(idx), `${what}: message ${idx}`);
      return true;
    }
    if (isOurs) {
      assert.ok(r.error instanceof ThemisError && r.error.code === 'REPLAY', `${what}: message ${idx} refused with ${String((r.error as ThemisError).code)}, expected REPLAY`);
    } else {
      assert.ok(r.error instanceof peer.ThemisError, `${what}: message ${idx}: the peer threw something other than its ThemisError`);
    }
    return false;
  });
}

const REORDER_N = 120;

test(`reordering a Themis sender within its ±8 window: every message accepted exactly once by ours (strict and lenient) and by the peer (3 permutations of ${REORDER_N}, seed 0x0e0d)`, (t) => {
  const rng = new Rng(0x0e0d);
  for (let round = 0; round < 3; round++) {
    const order = windowPermutation(REORDER_N, rng, true);
    assert.ok(order.some((v, p) => Math.abs(v - p) === 8), `round ${round}: permutation reaches a displacement of 8`);
    assert.ok(maxJump(order) <= 8);
    const strict = ourClientPair(t);
    const lenient = ourClientPair(t, { replay: 'lenient' });
    const fromPeerStrict = Array.from({ length: REORDER_N }, (_, i) => ok('peer wrap', () => strict.theirs.wrap(numbered(i))));
    const fromPeerLenient = Array.from({ length: REORDER_N }, (_, i) => ok('peer wrap', () => lenient.theirs.wrap(numbered(i))));
    const fromOurs = Array.from({ length: REORDER_N }, (_, i) => strict.ours.wrap(numbered(i)));
    const a = deliver(order, fromPeerStrict, (m) => strict.ours.unwrap(m), true, `round ${round} peer → ours (strict)`);
    const b = deliver(order, fromPeerLenient, (m) => lenient.ours.unwrap(m), true, `round ${round} peer → ours (lenient)`);
    const c = deliver(order, fromOurs, (m) => strict.theirs.unwrap(m), false, `round ${round} ours → peer`);
    assert.equal(a.filter(Boolean).length, REORDER_N, `round ${round}: ours (strict) accepted all`);
    assert.equal(b.filter(Boolean).length, REORDER_N, `round ${round}: ours (lenient) accepted all`);
    assert.equal(c.filter(Boolean).length, REORDER_N, `round ${round}: the peer accepted all`);
    // Exactly once: the strict receiver now refuses every one of them again.
    for (let i = 0; i < REORDER_N; i++) oursRejects(`round ${round}: second delivery of ${i}`, () => strict.ours.unwrap(fromPeerStrict[i] as Uint8Array), 'REPLAY');
    // And traffic continues in order afterwards, both ways.
    assertSameBytes(ok('peer unwrap after reorder', () => strict.theirs.unwrap(strict.ours.wrap(numbered(REORDER_N)))), numbered(REORDER_N), 'ours → peer after reorder');
    assertSameBytes(strict.ours.unwrap(ok('peer wrap', () => strict.theirs.wrap(numbered(REORDER_N)))), numbered(REORDER_N), 'peer → ours after reorder');
    assertSameBytes(lenient.ours.unwrap(ok('peer wrap', () => lenient.theirs.wrap(numbered(REORDER_N)))), numbered(REORDER_N), 'peer → ours (lenient) after reorder');
  }
});

test(`arbitrary ±8 reordering (jumps up to 16): ours (strict and lenient) accepts exactly the messages the peer accepts (4 permutations of ${REORDER_N}, seed 0x0e0e)`, (t) => {
  const rng = new Rng(0x0e0e);
  let refusedSomewhere = 0;
  for (let round = 0; round < 4; round++) {
    const order = windowPermutation(REORDER_N, rng, false);
    const strict = ourClientPair(t);
    const lenient = ourServerPair(t, { replay: 'lenient' });
    const fromPeerStrict = Array.from({ length: REORDER_N }, (_, i) => ok('peer wrap', () => strict.theirs.wrap(numbered(i))));
    const fromPeerLenient = Array.from({ length: REORDER_N }, (_, i) => ok('peer wrap', () => lenient.theirs.wrap(numbered(i))));
    const fromOurs = Array.from({ length: REORDER_N }, (_, i) => strict.ours.wrap(numbered(i)));
    const peerDecisions = deliver(order, fromOurs, (m) => strict.theirs.unwrap(m), false, `round ${round} ours → peer`);
    const strictDecisions = deliver(order, fromPeerStrict, (m) => strict.ours.unwrap(m), true, `round ${round} peer → ours (strict)`);
    const lenientDecisions = deliver(order, fromPeerLenient, (m) => lenient.ours.unwrap(m), true, `round ${round} peer → ours (lenient)`);
    const diff = (x: boolean[]): number[] => order.filter((_, p) => x[p] !== peerDecisions[p]);
    assert.deepEqual(diff(strictDecisions), [], `round ${round}: messages where ours (strict) and the peer disagree`);
    assert.deepEqual(diff(lenientDecisions), [], `round ${round}: messages where ours (lenient) and the peer disagree`);
    refusedSomewhere += peerDecisions.filter((x) => !x).length;
  }
  // Not vacuous: the peer refused some jumps of more than 8.
  assert.ok(refusedSomewhere > 0, 'some deliveries were refused by the peer');
});

// ---------------------------------------------------------------------------
// 3. Replays and the ±8 window edge
// ---------------------------------------------------------------------------

test('an exact replay of a peer message is refused by ours (strict, REPLAY) but accepted by ours in lenient mode and by the peer (Themis has no replay protection)', (t) => {
  const strict = ourClientPair(t);
  const p0 = ok('peer wrap', () => strict.theirs.wrap(numbered(0)));
  const p1 = ok('peer wrap', () => strict.theirs.wrap(numbered(1)));
  assertSameBytes(strict.ours.unwrap(p0), numbered(0), 'first delivery of 0');
  assertSameBytes(strict.ours.unwrap(p1), numbered(1), 'first delivery of 1');
  oursRejects('strict: replay of the last message', () => strict.ours.unwrap(p1), 'REPLAY');
  oursRejects('strict: replay of an earlier message', () => strict.ours.unwrap(p0), 'REPLAY');
  assertSameBytes(strict.ours.unwrap(ok('peer wrap', () => strict.theirs.wrap(numbered(2)))), numbered(2), 'traffic continues');

  const lenient = ourServerPair(t, { replay: 'lenient' });
  const q0 = ok('peer wrap', () => lenient.theirs.wrap(numbered(0)));
  for (let k = 0; k < 3; k++) assertSameBytes(lenient.ours.unwrap(q0), numbered(0), `lenient: delivery ${k + 1} of the same message`);

  // The peer as receiver (ours sending), documenting Themis's behaviour.
  const o0 = strict.ours.wrap(numbered(100));
  for (let k = 0; k < 3; k++) assertSameBytes(ok(`peer: delivery ${k + 1} of the same message`, () => strict.theirs.unwrap(o0)), numbered(100), 'peer replay');
});

test('the ±8 window: S+8 / S−7 accepted, S+9 / S−9 refused, identically by ours (strict and lenient) and by the peer', (t) => {
  // Deliveries by send index; message 0 carries the initial seq S0.
  //   9: S0+9 refused · 8: +8 accepted · 17: 8+9 refused · 16: 8+8 accepted · 7: 16−9 refused · 9: 16−7 accepted
  const order = [9, 8, 17, 16, 7, 9];
  const expected = [false, true, false, true, false, true];
  const strict = ourClientPair(t);
  const lenient = ourServerPair(t, { replay: 'lenient' });
  const fromPeerStrict = Array.from({ length: 18 }, (_, i) => ok('peer wrap', () => strict.theirs.wrap(numbered(i))));
  const fromPeerLenient = Array.from({ length: 18 }, (_, i) => ok('peer wrap', () => lenient.theirs.wrap(numbered(i))));
  const fromOurs = Array.from({ length: 18 }, (_, i) => strict.ours.wrap(numbered(i)));
  assert.deepEqual(deliver(order, fromOurs, (m) => strict.theirs.unwrap(m), false, 'ours → peer'), expected, 'the peer');
  assert.deepEqual(deliver(order, fromPeerStrict, (m) => strict.ours.unwrap(m), true, 'peer → ours (strict)'), expected, 'ours (strict)');
  assert.deepEqual(deliver(order, fromPeerLenient, (m) => lenient.ours.unwrap(m), true, 'peer → ours (lenient)'), expected, 'ours (lenient)');
});

// ---------------------------------------------------------------------------
// 4. Tampering
// ---------------------------------------------------------------------------

test('data messages: every flipped byte of a peer message is refused by ours (DECRYPT_FAILED; the 4 unused IV bytes → REPLAY once delivered), as is every truncation; the session keeps working', (t) => {
  const { ours, theirs } = ourServerPair(t);
  let cases = 0;
  const msg = numbered(7, 24);
  // Before the original is delivered: every byte except the unused IV tail must fail authentication.
  const fresh = ok('peer wrap', () => theirs.wrap(msg));
  for (let i = 0; i < fresh.length; i++) {
    if ((IV_TAIL as readonly number[]).includes(i)) continue;
    for (const mask of [0x01, 0x80, 0xff]) {
      oursRejects(`undelivered, byte ${i} ^ ${mask}`, () => ours.unwrap(flipByte(fresh, i, mask)), 'DECRYPT_FAILED');
      cases++;
    }
  }
  assertSameBytes(ours.unwrap(fresh), msg, 'the original after the tampered copies');
  // After delivery: the unused IV bytes still authenticate, so those copies are replays.
  for (let i = 0; i < fresh.length; i++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      oursRejects(`delivered, byte ${i} ^ ${mask}`, () => ours.unwrap(flipByte(fresh, i, mask)), (IV_TAIL as readonly number[]).includes(i) ? 'REPLAY' : 'DECRYPT_FAILED');
      cases++;
    }
  }
  const next = ok('peer wrap', () => theirs.wrap(msg));
  for (let len = 1; len < next.length; len++) {
    oursRejects(`truncated to ${len}`, () => ours.unwrap(next.subarray(0, len)), 'DECRYPT_FAILED');
    cases++;
  }
  for (const extra of [1, 16]) {
    const longer = new Uint8Array(next.length + extra);
    longer.set(next);
    oursRejects(`${extra} bytes appended`, () => ours.unwrap(longer), 'DECRYPT_FAILED');
    cases++;
  }
  oursRejects('empty', () => ours.unwrap(new Uint8Array(0)), ['EMPTY_INPUT', 'DECRYPT_FAILED']);
  assert.ok(cases > 400, `${cases} tampered deliveries`);
  // The session keeps working, both ways, and the untampered message is still accepted once.
  assertSameBytes(ours.unwrap(next), msg, 'untampered message after the tampering');
  for (let i = 0; i < 3; i++) {
    assertSameBytes(ours.unwrap(ok('peer wrap', () => theirs.wrap(numbered(i)))), numbered(i), `peer → ours ${i} after tampering`);
    assertSameBytes(ok('peer unwrap', () => theirs.unwrap(ours.wrap(numbered(i)))), numbered(i), `ours → peer ${i} after tampering`);
  }
});

test('data messages: the peer refuses the same flips of our messages (except the 4 unused IV bytes, which it accepts as a replay)', (t) => {
  const { ours, theirs } = ourClientPair(t);
  const msg = numbered(3, 20);
  const w = ours.wrap(msg);
  assertSameBytes(ok('peer unwrap', () => theirs.unwrap(w)), msg, 'original');
  for (let i = 0; i < w.length; i++) {
    const flipped = flipByte(w, i, 0x01);
    if ((IV_TAIL as readonly number[]).includes(i)) assertSameBytes(ok(`peer: IV tail byte ${i}`, () => theirs.unwrap(flipped)), msg, `IV tail byte ${i}`);
    else peerRejects(`peer: byte ${i} flipped`, () => theirs.unwrap(flipped));
  }
  assertSameBytes(ok('peer unwrap after', () => theirs.unwrap(ours.wrap(numbered(4)))), numbered(4), 'session keeps working');
});

test('documents the wire format: the last 4 IV bytes are not authenticated, so a first delivery with them altered yields the original plaintext (never other data) in ours and in the peer', (t) => {
  const { ours, theirs } = ourClientPair(t);
  const fromPeer = ok('peer wrap', () => theirs.wrap(numbered(1)));
  assertSameBytes(ours.unwrap(flipByte(fromPeer, 18, 0x5a)), numbered(1), 'ours, altered IV tail');
  oursRejects('the unaltered original is then a replay', () => ours.unwrap(fromPeer), 'REPLAY');
  const fromOurs = ours.wrap(numbered(2));
  assertSameBytes(ok('peer, altered IV tail', () => theirs.unwrap(flipByte(fromOurs, 16, 0xa5))), numbered(2), 'peer, altered IV tail');
});

type Region = 'id' | 'ephemeral' | 'signature' | 'mac';

/** Payload regions of a handshake message (spec §5.3–§5.5). */
function regions(kind: 'M1' | 'M2' | 'M3' | 'M4', payload: Uint8Array): Array<[Region, number, number]> {
  if (kind === 'M4') return [['mac', 0, payload.length]];
  if (kind === 'M3') return [['signature', 0, payload.length - 32], ['mac', payload.length - 32, payload.length]];
  const idEnd = readU32BE(payload, 4);
  return [
    ['id', 0, idEnd],
    ['ephemeral', idEnd, idEnd + 45],
    ['signature', idEnd + 45, payload.length],
  ];
}

interface Tampered {
  what: string;
  bytes: Uint8Array;
  codes: readonly ThemisError['code'][];
}

/** Every tampering of one handshake message: raw byte flips (CRC area included), flips behind a fixed CRC, truncations. */
function tamperings(kind: 'M1' | 'M2' | 'M3' | 'M4', message: Uint8Array): Tampered[] {
  const out: Tampered[] = [];
  const payload = tspmPayload(message);
  // Our re-wrapping is faithful: the untouched payload re-wraps to the peer's exact bytes.
  assertSameBytes(rewrapTspm(payload), message, `${kind}: re-wrapped untouched payload`);
  for (let i = 0; i < message.length; i++) {
    const area = i < 4 ? 'tag' : i < 8 ? 'size' : i < 12 ? 'CRC' : 'payload';
    out.push({ what: `${kind} raw flip of byte ${i} (${area})`, bytes: flipByte(message, i, 0x01), codes: ['MALFORMED'] });
  }
  for (const [region, start, end] of regions(kind, payload)) {
    for (let j = start; j < end; j++) {
      const strictCodes: Tampered['codes'] = region === 'signature' || region === 'mac' ? ['INVALID_SIGNATURE'] : ['MALFORMED', 'INVALID_SIGNATURE', 'UNKNOWN_PEER', 'INVALID_KEY'];
      out.push({ what: `${kind} ${region} byte ${j - start} flipped, CRC fixed`, bytes: rewrapTspm(flipByte(payload, j, 0x01)), codes: strictCodes });
    }
  }
  for (const len of [1, 4, 8, 11, 12, message.length - 16, message.length - 1]) {
    out.push({ what: `${kind} truncated to ${len} bytes`, bytes: message.slice(0, len), codes: ['MALFORMED'] });
  }
  for (const cut of [1, 2, 16, 31]) {
    if (payload.length - cut <= 0) continue;
    out.push({
      what: `${kind} payload cut by ${cut} bytes, CRC fixed`,
      bytes: rewrapTspm(payload.slice(0, payload.length - cut)),
      codes: ['MALFORMED', 'INVALID_SIGNATURE'],
    });
  }
  out.push({ what: `${kind} empty payload, CRC fixed`, bytes: writeContainer('TSPM', new Uint8Array(0)), codes: ['MALFORMED'] });
  return out;
}

/** Deliver every tampering of `message` to `ours`, which must refuse each and stay exactly as it was. */
function refuseAll(ours: SecureSession, kind: 'M1' | 'M2' | 'M3' | 'M4', message: Uint8Array): number {
  const state: SessionState = ours.state;
  const peerId = ours.peerId;
  const cases = tamperings(kind, message);
  for (const c of cases) {
    oursRejects(c.what, () => ours.negotiateReply(c.bytes), c.codes);
    assert.equal(ours.state, state, `${c.what}: state changed`);
    assert.equal(ours.established(), false, `${c.what}: established`);
    assert.deepEqual(ours.peerId === null ? null : Uint8Array.from(ours.peerId), peerId === null ? null : Uint8Array.from(peerId), `${c.what}: peerId changed`);
  }
  return cases.length;
}

test('handshake tampering: every flipped byte (raw and behind a fixed CRC: id, ephemeral key, signature, MAC) and truncation of the peer\'s M1, M2, M3, M4 is refused by ours, the state is unchanged, and the real message then completes the handshake', (t) => {
  const counts: Record<string, number> = {};
  // Our server receives M1 and M3 from a peer client.
  {
    const theirs = peerSession(t, client, [server]);
    const ours = ourSession(server, [client]);
    const m1 = ok('peer M1', () => theirs.connectionRequest());
    counts['M1'] = refuseAll(ours, 'M1', m1);
    const m2 = ok('ours M1→M2', () => ours.negotiateReply(m1));
    const m3 = ok('peer M2→M3', () => theirs.negotiateReply(m2));
    counts['M3'] = refuseAll(ours, 'M3', m3);
    const m4 = ok('ours M3→M4', () => ours.negotiateReply(m3));
    assert.equal(ok('peer M4', () => theirs.negotiateReply(m4)).length, 0);
    assert.ok(ours.established() && theirs.established());
    assertSameBytes(ok('peer unwrap', () => theirs.unwrap(ours.wrap(numbered(1)))), numbered(1), 'our server → peer client');
    assertSameBytes(ours.unwrap(ok('peer wrap', () => theirs.wrap(numbered(2)))), numbered(2), 'peer client → our server');
  }
  // Our client receives M2 and M4 from a peer server.
  {
    const theirs = peerSession(t, server, [client]);
    const ours = ourSession(client, [server]);
    const m1 = ours.connectionRequest();
    const m2 = ok('peer M1→M2', () => theirs.negotiateReply(m1));
    counts['M2'] = refuseAll(ours, 'M2', m2);
    const m3 = ok('ours M2→M3', () => ours.negotiateReply(m2));
    const m4 = ok('peer M3→M4', () => theirs.negotiateReply(m3));
    counts['M4'] = refuseAll(ours, 'M4', m4);
    assert.equal(ok('ours M4', () => ours.negotiateReply(m4)).length, 0);
    assert.ok(ours.established() && theirs.established());
    assertSameBytes(ok('peer unwrap', () => theirs.unwrap(ours.wrap(numbered(1)))), numbered(1), 'our client → peer server');
    assertSameBytes(ours.unwrap(ok('peer wrap', () => theirs.wrap(numbered(2)))), numbered(2), 'peer server → our client');
  }
  for (const k of ['M1', 'M2', 'M3', 'M4']) assert.ok((counts[k] ?? 0) > 40, `${k}: ${counts[k]} tamperings`);
});

test('documents Themis: the peer client accepts an M4 whose MAC is cut to 1 byte; ours refuses an M4 with any MAC shorter than 32 bytes', (t) => {
  // Peer client, our server: our M4 cut to its first MAC byte (CRC fixed).
  {
    const theirs = peerSession(t, client, [server]);
    const ours = ourSession(server, [client]);
    const m3 = ok('peer M2→M3', () => theirs.negotiateReply(ours.negotiateReply(ok('peer M1', () => theirs.connectionRequest()))));
    const m4 = ours.negotiateReply(m3);
    const cut = rewrapTspm(tspmPayload(m4).subarray(0, 1));
    assert.equal(ok('peer takes the 1-byte MAC', () => theirs.negotiateReply(cut)).length, 0);
    assert.equal(theirs.established(), true, 'the peer client is established');
    assertSameBytes(ok('peer unwrap', () => theirs.unwrap(ours.wrap(numbered(5)))), numbered(5), 'traffic after the cut M4');
  }
  // Our client, peer server: ours refuses every shortened MAC, then takes the real M4.
  {
    const theirs = peerSession(t, server, [client]);
    const ours = ourSession(client, [server]);
    const m3 = ours.negotiateReply(ok('peer M1→M2', () => theirs.negotiateReply(ours.connectionRequest())));
    const m4 = ok('peer M3→M4', () => theirs.negotiateReply(m3));
    const mac = tspmPayload(m4);
    for (let n = 1; n < 32; n++) {
      oursRejects(`M4 with a ${n}-byte MAC`, () => ours.negotiateReply(rewrapTspm(mac.subarray(0, n))), 'MALFORMED');
      assert.equal(ours.state, 'wait-m4');
    }
    assert.equal(ours.negotiateReply(m4).length, 0);
    assert.equal(ours.state, 'established');
  }
});

test('bytes after a handshake container\'s size are ignored, by ours and by the peer alike', (t) => {
  const pad = (m: Uint8Array): Uint8Array => {
    const out = new Uint8Array(m.length + 7);
    out.set(m);
    out.fill(0xa5, m.length);
    return out;
  };
  // Peer client → our server: M1 and M3 padded.
  {
    const theirs = peerSession(t, client, [server]);
    const ours = ourSession(server, [client]);
    const m2 = ours.negotiateReply(pad(ok('peer M1', () => theirs.connectionRequest())));
    const m4 = ours.negotiateReply(pad(ok('peer M3', () => theirs.negotiateReply(pad(m2)))));
    assert.equal(ok('peer M4', () => theirs.negotiateReply(pad(m4))).length, 0);
    assert.ok(ours.established() && theirs.established());
  }
  // Our client → peer server: M2 and M4 padded.
  {
    const theirs = peerSession(t, server, [client]);
    const ours = ourSession(client, [server]);
    const m2 = ok('peer M2', () => theirs.negotiateReply(pad(ours.connectionRequest())));
    const m4 = ok('peer M4', () => theirs.negotiateReply(pad(ours.negotiateReply(pad(m2)))));
    assert.equal(ours.negotiateReply(pad(m4)).length, 0);
    assert.ok(ours.established() && theirs.established());
  }
});

test('an unknown peer id (callback returns null) gives UNKNOWN_PEER / errorCode 21 on our server (M1) and our client (M2), the same code as the peer', (t) => {
  // Server side: our server knows nobody; M1 from a peer client.
  const pc = peerSession(t, client, [server]);
  const lonelyServer = ourSession(server, []);
  const m1 = ok('peer M1', () => pc.connectionRequest());
  const e1 = oursRejects('our server, unknown client', () => lonelyServer.negotiateReply(m1), 'UNKNOWN_PEER');
  assert.equal(e1.errorCode, 21);
  assert.equal(lonelyServer.state, 'idle');
  // The peer as server in the same situation (our M1).
  const lonelyPeerServer = peerSession(t, server, []);
  const oc = ourSession(client, [server]);
  assert.equal(peerRejects('peer server, unknown client', () => lonelyPeerServer.negotiateReply(oc.connectionRequest())), 21);

  // Client side: our client knows nobody; M2 from a peer server.
  const ps = peerSession(t, server, [client]);
  const lonelyClient = ourSession(client, []);
  const m2 = ok('peer M2', () => ps.negotiateReply(lonelyClient.connectionRequest()));
  const e2 = oursRejects('our client, unknown server', () => lonelyClient.negotiateReply(m2), 'UNKNOWN_PEER');
  assert.equal(e2.errorCode, 21);
  assert.equal(lonelyClient.state, 'wait-m2');
  // The peer as client in the same situation (our M2).
  const lonelyPeerClient = peerSession(t, client, []);
  const os = ourSession(server, [client]);
  const m2ours = os.negotiateReply(ok('peer M1', () => lonelyPeerClient.connectionRequest()));
  assert.equal(peerRejects('peer client, unknown server', () => lonelyPeerClient.negotiateReply(m2ours)), 21);

  // A known id with the wrong key: the signature check fails instead.
  const fooledServer = new SecureSession(server.id, server.keys.privateKey, () => stranger.keys.publicKey);
  oursRejects('our server, wrong key for the id', () => fooledServer.negotiateReply(m1), 'INVALID_SIGNATURE');
  assert.equal(fooledServer.state, 'idle');
});

test('a data message from another session (same parties) is refused by ours and by the peer, also with its session id rewritten; both sessions keep working', (t) => {
  const s1 = ourClientPair(t);
  const s2 = ourClientPair(t);
  const sid1 = readU32BE(s1.ours.wrap(numbered(0)), 0);
  const sid2 = readU32BE(ok('peer wrap', () => s2.theirs.wrap(numbered(0))), 0);
  assert.notEqual(sid1, sid2, 'two sessions have different ids (fails with probability 2^-32)');
  const fromPeer2 = ok('peer wrap', () => s2.theirs.wrap(numbered(1)));
  oursRejects('peer message of session 2 → ours in session 1', () => s1.ours.unwrap(fromPeer2), 'DECRYPT_FAILED');
  const relabelled = Uint8Array.from(fromPeer2);
  new DataView(relabelled.buffer).setUint32(0, sid1, false);
  oursRejects('…with session 1\'s id', () => s1.ours.unwrap(relabelled), 'DECRYPT_FAILED');
  const fromOurs1 = s1.ours.wrap(numbered(2));
  peerRejects('our message of session 1 → peer in session 2', () => s2.theirs.unwrap(fromOurs1));
  // Both keep working.
  assertSameBytes(s1.ours.unwrap(ok('peer wrap', () => s1.theirs.wrap(numbered(3)))), numbered(3), 'session 1');
  assertSameBytes(s2.ours.unwrap(fromPeer2), numbered(1), 'session 2 takes its own message');
  assertSameBytes(ok('peer unwrap', () => s2.theirs.unwrap(s2.ours.wrap(numbered(4)))), numbered(4), 'session 2');
});

test('wrap/unwrap before establishment: ours throws NOT_ESTABLISHED (errorCode 19) in every handshake state; the peer\'s wrap "succeeds" under session id 0 (documented Themis behaviour)', (t) => {
  const pc = peerSession(t, client, [server]);
  const ours = ourSession(server, [client]);
  const states: SessionState[] = [];
  const check = (s: SecureSession): void => {
    const before = s.state;
    states.push(before);
    const e = oursRejects(`wrap in ${before}`, () => s.wrap(numbered(0)), 'NOT_ESTABLISHED');
    assert.equal(e.errorCode, 19);
    oursRejects(`unwrap in ${before}`, () => s.unwrap(ok('peer wrap', () => pc.wrap(numbered(0)))), 'NOT_ESTABLISHED');
    assert.equal(s.state, before);
  };
  check(ours); // server idle
  const m1 = ok('peer M1', () => pc.connectionRequest());
  const m2 = ours.negotiateReply(m1);
  check(ours); // server wait-m3
  const ourClient = ourSession(client, [server]);
  check(ourClient); // (fresh, idle)
  const ps = peerSession(t, server, [client]);
  const m2b = ok('peer M2', () => ps.negotiateReply(ourClient.connectionRequest()));
  check(ourClient); // client wait-m2
  const m4b = ok('peer M4', () => ps.negotiateReply(ourClient.negotiateReply(m2b)));
  check(ourClient); // client wait-m4
  assert.deepEqual(states, ['idle', 'wait-m3', 'idle', 'wait-m2', 'wait-m4']);
  // Both handshakes still complete.
  assert.equal(ourClient.negotiateReply(m4b).length, 0);
  assert.equal(ok('peer M4', () => pc.negotiateReply(ours.negotiateReply(ok('peer M3', () => pc.negotiateReply(m2))))).length, 0);
  assert.ok(ours.established() && ourClient.established());
  // The peer before establishment: n + 52 bytes under session id 0.
  const fresh = peerSession(t, server, [client]);
  const w = ok('peer wrap before establishment', () => fresh.wrap(numbered(0, 10)));
  assert.equal(w.length, 18 + OVERHEAD);
  assert.equal(readU32BE(w, 0), 0);
});

test('negotiateReply out of order (peer messages from this and another handshake, in every state) is refused and leaves the state unchanged; the handshake then completes', (t) => {
  // A reference handshake between two peer sessions with the same identities: messages of another session.
  const ref = handshake(peerSession(t, client, [server]), peerSession(t, server, [client]), 'peer ↔ peer reference');
  const refuse = (s: SecureSession, what: string, message: Uint8Array): void => {
    const before = s.state;
    oursRejects(`${before}: ${what}`, () => s.negotiateReply(message), ['MALFORMED', 'INVALID_SIGNATURE', 'UNKNOWN_PEER', 'INVALID_STATE']);
    assert.equal(s.state, before, `${what}: state changed`);
  };
  let cases = 0;
  // Our server with a peer client.
  {
    const pc = peerSession(t, client, [server]);
    const os = ourSession(server, [client]);
    for (const [w, m] of [['M2 (other)', ref.m2], ['M3 (other)', ref.m3], ['M4 (other)', ref.m4]] as const) {
      refuse(os, w, m);
      cases++;
    }
    const m1 = ok('peer M1', () => pc.connectionRequest());
    const m2 = os.negotiateReply(m1);
    assert.equal(os.state, 'wait-m3');
    for (const [w, m] of [['M1 (again)', m1], ['M1 (other)', ref.m1], ['M2 (own, reflected)', m2], ['M2 (other)', ref.m2], ['M3 (other)', ref.m3], ['M4 (other)', ref.m4]] as const) {
      refuse(os, w, m);
      cases++;
    }
    const m3 = ok('peer M3', () => pc.negotiateReply(m2));
    const m4 = os.negotiateReply(m3);
    assert.equal(ok('peer M4', () => pc.negotiateReply(m4)).length, 0);
    for (const [w, m] of [['M1', m1], ['M3 (again)', m3]] as const) {
      refuse(os, w, m);
      cases++;
    }
    assert.equal(os.state, 'established');
    assertSameBytes(os.unwrap(ok('peer wrap', () => pc.wrap(numbered(1)))), numbered(1), 'our server works');
  }
  // Our client with a peer server.
  {
    const ps = peerSession(t, server, [client]);
    const oc = ourSession(client, [server]);
    const m1 = oc.connectionRequest();
    oursRejects('connectionRequest twice', () => oc.connectionRequest(), 'INVALID_STATE');
    for (const [w, m] of [['M1 (own, reflected)', m1], ['M1 (other)', ref.m1], ['M2 (other)', ref.m2], ['M3 (other)', ref.m3], ['M4 (other)', ref.m4]] as const) {
      refuse(oc, w, m);
      cases++;
    }
    const m2 = ok('peer M2', () => ps.negotiateReply(m1));
    const m3 = oc.negotiateReply(m2);
    assert.equal(oc.state, 'wait-m4');
    for (const [w, m] of [['M1 (other)', ref.m1], ['M2 (again)', m2], ['M2 (other)', ref.m2], ['M3 (own, reflected)', m3], ['M3 (other)', ref.m3], ['M4 (other)', ref.m4]] as const) {
      refuse(oc, w, m);
      cases++;
    }
    assert.equal(oc.negotiateReply(ok('peer M4', () => ps.negotiateReply(m3))).length, 0);
    refuse(oc, 'M2 after establishment', m2);
    cases++;
    oursRejects('connectionRequest when established', () => oc.connectionRequest(), 'INVALID_STATE');
    assertSameBytes(oc.unwrap(ok('peer wrap', () => ps.wrap(numbered(2)))), numbered(2), 'our client works');
  }
  // The peer refuses the same kind of input (a fresh server given M3 or M4).
  const fresh = peerSession(t, server, [client]);
  peerRejects('fresh peer server given M3', () => fresh.negotiateReply(ref.m3));
  peerRejects('fresh peer server given M4', () => fresh.negotiateReply(ref.m4));
  assert.equal(cases, 3 + 6 + 2 + 5 + 6 + 1);
});

test(`ids of 1, 1000, 20000 and ${limits.SESSION_ID_LENGTH_MAX} bytes (binary, with zero bytes) work with the peer in both roles`, (t) => {
  for (const n of [1, 1000, 20_000, limits.SESSION_ID_LENGTH_MAX]) {
    const a: typeof client = { name: `a${n}`, id: new Rng(n).bytes(n), keys: client.keys };
    const b: typeof server = { name: `b${n}`, id: new Uint8Array(n), keys: server.keys };
    const oc = ourSession(a, [b]);
    const ps = peerSession(t, b, [a]);
    handshake(oc, ps, `${n}-byte ids, our client`);
    assertSameBytes(ok('peer unwrap', () => ps.unwrap(oc.wrap(numbered(n)))), numbered(n), `${n}-byte ids, our client`);
    const pc = peerSession(t, a, [b]);
    const os = ourSession(b, [a]);
    handshake(pc, os, `${n}-byte ids, our server`);
    assertSameBytes(os.unwrap(ok('peer wrap', () => pc.wrap(numbered(n)))), numbered(n), `${n}-byte ids, our server`);
  }
});

test(`an incoming peer id longer than SESSION_ID_LENGTH_MAX (${limits.SESSION_ID_LENGTH_MAX}) is refused before the key callback runs (limits.ts: "largest session id accepted in a handshake")`, (t) => {
  const n = limits.SESSION_ID_LENGTH_MAX + 1;
  const long = { name: 'long', id: new Uint8Array(n).fill(0x41) };
  let asked = 0;
  // Our server, peer client with a long id (the peer emits it: it has no such limit).
  const pc = peerSession(t, { ...long, keys: client.keys }, [server]);
  const os = new SecureSession(server.id, server.keys.privateKey, () => {
    asked++;
    return client.keys.publicKey;
  });
  const m1 = ok('peer M1 with a long id', () => pc.connectionRequest());
  oursRejects(`our server, ${n}-byte client id`, () => os.negotiateReply(m1), ['LIMIT_EXCEEDED', 'MALFORMED']);
  assert.equal(os.state, 'idle');
  // Our client, peer server with a long id.
  const ps = peerSession(t, { ...long, keys: server.keys }, [client]);
  const oc = new SecureSession(client.id, client.keys.privateKey, () => {
    asked++;
    return server.keys.publicKey;
  });
  const m2 = ok('peer M2 with a long id', () => ps.negotiateReply(oc.connectionRequest()));
  oursRejects(`our client, ${n}-byte server id`, () => oc.negotiateReply(m2), ['LIMIT_EXCEEDED', 'MALFORMED']);
  assert.equal(oc.state, 'wait-m2');
  assert.equal(asked, 0, 'the key callback was never asked about an over-long id');
});

// ---------------------------------------------------------------------------
// 5. Timestamps
// ---------------------------------------------------------------------------

test('timestamps: with our clock 23 h ahead of or behind the peer\'s, messages pass both ways; 25 h ahead/behind or 2 days behind, both refuse (Themis: ±24 h)', (t) => {
  const HOUR = 3600;
  let offset = 0;
  const clock = (): number => Math.floor(Date.now() / 1000) + offset;
  for (const make of [ourClientPair, ourServerPair]) {
    const { ours, theirs } = make(t, { clock });
    let i = 0;
    for (const hours of [0, 23, 25, -23, -25, -48, 23, -23]) {
      offset = hours * HOUR;
      const accepted = Math.abs(hours) < 24;
      const m = numbered(i++);
      const fromPeer = ok('peer wrap', () => theirs.wrap(m));
      if (accepted) assertSameBytes(ok(`ours at ${hours} h`, () => ours.unwrap(fromPeer)), m, `peer → ours at ${hours} h`);
      else oursRejects(`ours at ${hours} h`, () => ours.unwrap(fromPeer), 'REPLAY');
      const fromOurs = ours.wrap(m);
      if (accepted) assertSameBytes(ok(`peer, ours at ${hours} h`, () => theirs.unwrap(fromOurs)), m, `ours → peer at ${hours} h`);
      else peerRejects(`peer, ours at ${hours} h`, () => theirs.unwrap(fromOurs));
    }
    offset = 0;
  }
});

// ---------------------------------------------------------------------------
// 6. save() / restore() against the peer
// ---------------------------------------------------------------------------

test('save()/restore() mid-conversation with the peer (ours as client and as server): TSSC layout, traffic continues both ways, pre-save messages cannot be replayed, an in-flight message is still accepted', (t) => {
  for (const [make, me, isClient] of [
    [ourClientPair, client, 1],
    [ourServerPair, server, 0],
  ] as const) {
    const other = me === client ? server : client;
    const { ours, theirs } = make(t);
    const received: Uint8Array[] = [];
    for (let i = 0; i < 10; i++) {
      const w = ok('peer wrap', () => theirs.wrap(numbered(i)));
      assertSameBytes(ours.unwrap(w), numbered(i), `before save, peer → ours ${i}`);
      received.push(w);
      assertSameBytes(ok('peer unwrap', () => theirs.unwrap(ours.wrap(numbered(100 + i)))), numbered(100 + i), `before save, ours → peer ${i}`);
    }
    const inFlight = ok('peer wrap', () => theirs.wrap(numbered(10)));
    const saved = ours.save();
    // Layout (spec §5.9): TSSC container, 48-byte payload; the session id is the one on the wire (from the peer's message).
    const c = readContainer(saved, true);
    assert.ok(c !== null, 'saved state is a valid container (size, CRC)');
    assert.equal(c.tag, 'TSSC');
    assert.equal(saved.length, 60);
    assert.equal(readU32BE(c.payload, 0), readU32BE(inFlight, 0), 'saved session id = the id on the peer\'s messages');
    assert.equal(readU32BE(c.payload, 4), isClient, 'is_client');
    ours.destroy();
    oursRejects('the destroyed session', () => ours.wrap(numbered(0)), 'INVALID_STATE');

    const restored = SecureSession.restore(saved, me.id, me.keys.privateKey, (id) => (new TextDecoder().decode(id) === other.name ? other.keys.publicKey : null));
    assert.equal(restored.state, 'established');
    for (const [i, w] of received.entries()) oursRejects(`replay of pre-save message ${i}`, () => restored.unwrap(w), 'REPLAY');
    assertSameBytes(restored.unwrap(inFlight), numbered(10), 'in-flight message after restore');
    for (let i = 11; i < 21; i++) {
      assertSameBytes(restored.unwrap(ok('peer wrap', () => theirs.wrap(numbered(i)))), numbered(i), `after restore, peer → ours ${i}`);
      assertSameBytes(ok('peer unwrap', () => theirs.unwrap(restored.wrap(numbered(100 + i)))), numbered(100 + i), `after restore, ours → peer ${i}`);
    }
  }
});

// ---------------------------------------------------------------------------
// 7. receive(): the single entry point
// ---------------------------------------------------------------------------

test('receive() drives a whole handshake and data exchange with the peer, in both roles', (t) => {
  // Our server.
  {
    const pc = peerSession(t, client, [server]);
    const os = ourSession(server, [client]);
    const r1 = os.receive(ok('peer M1', () => pc.connectionRequest()));
    assert.equal(r1.kind, 'send');
    const r2 = os.receive(ok('peer M3', () => pc.negotiateReply((r1 as { message: Uint8Array }).message)));
    assert.equal(r2.kind, 'send', 'the server answers M3 with M4');
    assert.equal(os.state, 'established');
    assert.equal(ok('peer M4', () => pc.negotiateReply((r2 as { message: Uint8Array }).message)).length, 0);
    for (let i = 0; i < 5; i++) {
      const w = ok('peer wrap', () => pc.wrap(numbered(i, i * 100)));
      const r = os.receive(w);
      assert.equal(r.kind, 'data');
      assertSameBytes((r as { data: Uint8Array }).data, numbered(i, i * 100), `receive data ${i}`);
      oursRejects(`receive replay ${i}`, () => os.receive(w), 'REPLAY');
      assertSameBytes(ok('peer unwrap', () => pc.unwrap(os.wrap(numbered(i)))), numbered(i), `reply ${i}`);
    }
  }
  // Our client.
  {
    const ps = peerSession(t, server, [client]);
    const oc = ourSession(client, [server]);
    const m2 = ok('peer M2', () => ps.negotiateReply(oc.connectionRequest()));
    oursRejects('receive data before establishment', () => oc.receive(ok('peer wrap', () => ps.wrap(numbered(0)))), 'NOT_ESTABLISHED');
    const r1 = oc.receive(m2);
    assert.equal(r1.kind, 'send');
    const m4 = ok('peer M4', () => ps.negotiateReply((r1 as { message: Uint8Array }).message));
    assert.deepEqual(oc.receive(m4), { kind: 'established' });
    for (let i = 0; i < 5; i++) {
      const r = oc.receive(ok('peer wrap', () => ps.wrap(numbered(i, 3))));
      assert.equal(r.kind, 'data');
      assertSameBytes((r as { data: Uint8Array }).data, numbered(i, 3), `receive data ${i}`);
    }
    // A handshake message after establishment is not data from this session.
    oursRejects('receive M4 again after establishment', () => oc.receive(m4), ['DECRYPT_FAILED', 'INVALID_STATE']);
  }
});

test('two wraps of the same plaintext by the peer differ (random IV) and both decrypt once in ours', (t) => {
  const { ours, theirs } = ourClientPair(t);
  const a = ok('peer wrap', () => theirs.wrap(numbered(0)));
  const b = ok('peer wrap', () => theirs.wrap(numbered(0)));
  assert.ok(!sameBytes(a.subarray(4), b.subarray(4)), 'two wraps of the same plaintext differ');
  assertSameBytes(ours.unwrap(a), numbered(0), 'a');
  assertSameBytes(ours.unwrap(b), numbered(0), 'b');
});
