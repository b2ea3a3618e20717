/**
 * Model-based test of Secure Session data exchange (fast-check): two sessions
 * talk through a simulated network that randomly drops, reorders (each
 * message overtaken at most 8 times), duplicates and replays messages in both
 * directions, and an attacker injects forged, reflected and random messages.
 *
 * Properties, checked at every delivery:
 * - every accepted plaintext equals the one sent with that message;
 * - nothing is accepted that was not sent by the other end (forgeries,
 *   reflections and garbage are always refused);
 * - a strict receiver (ours, default) accepts each message at most once;
 * - every receiver decides exactly as the window model says: Themis's rule
 *   (seq within ±8 of the last accepted, spec §5.7) for the peer and our
 *   lenient mode; that rule plus "not yet accepted, not 64 or more below the
 *   highest" for our strict mode (replay-window.ts).
 *
 * Property 1 is ours ↔ ours; property 2 is ours ↔ the real peer
 * (wasm-themis 0.15.0), with fewer runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backendName, ThemisError, type ReplayMode } from '../src/index.ts';
import { assertSameBytes, describeError, flipByte, handshake, IV_TAIL, numbered, ok, ourSession, outcome, party, type AnySession } from './_session.ts';
import { peer, peerSession } from './_session-peer.ts';

const alice = party('alice');
const bob = party('bob');

type Dir = 0 | 1; // 0: end 0 → end 1, 1: end 1 → end 0
type Act =
  | { kind: 'send'; dir: Dir; extra: number }
  | { kind: 'deliver' | 'drop' | 'duplicate'; dir: Dir; pick: number }
  | { kind: 'replay' | 'reflect'; dir: Dir; back: number }
  | { kind: 'forge'; dir: Dir; back: number; byte: number; mask: number }
  | { kind: 'garbage'; dir: Dir; bytes: Uint8Array };

const dir = fc.constantFrom<Dir>(0, 1);
const act: fc.Arbitrary<Act> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('send' as const), dir, extra: fc.nat(40) }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('deliver' as const), dir, pick: fc.nat(8) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), dir, pick: fc.nat(8) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), dir, pick: fc.nat(8) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replay' as const), dir, back: fc.nat(200) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reflect' as const), dir, back: fc.nat(200) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('forge' as const), dir, back: fc.nat(200), byte: fc.nat(200), mask: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('garbage' as const), dir, bytes: fc.uint8Array({ minLength: 1, maxLength: 120 }) }) },
);

/** Which messages a receiver accepts, by send index (seq − initial seq). */
class WindowModel {
  last = 0; // Themis's in_seq starts at the peer's initial seq = message 0
  highest = -1;
  readonly accepted = new Set<number>();
  readonly strict: boolean;
  constructor(strict: boolean) {
    this.strict = strict;
  }
  accepts(i: number): boolean {
    if (Math.abs(i - this.last) > 8) return false;
    return !this.strict || (!this.accepted.has(i) && this.highest - i < 64);
  }
  commit(i: number): void {
    this.last = i;
    this.highest = Math.max(this.highest, i);
    this.accepted.add(i);
  }
}

interface End {
  name: string;
  session: AnySession;
  ours: boolean;
  /** Receiver mode: ours strict, or Themis's rule (the peer, ours lenient). */
  strict: boolean;
}

interface Tally {
  accepted: number;
  refusedAuthentic: number;
  refusedForged: number;
  ivTailAccepted: number;
}

/** Run one script of network events between ends[0] and ends[1]; throws on any violated property. */
function simulate(actions: readonly Act[], ends: readonly [End, End], tally: Tally): void {
  const sent: Array<Array<{ wrapped: Uint8Array; plain: Uint8Array }>> = [[], []];
  const queue: Array<Array<{ idx: number; overtaken: number }>> = [[], []];
  const seen: number[][] = [[], []]; // indexes delivered (recorded by the attacker), per direction
  const model = [new WindowModel(ends[1].strict), new WindowModel(ends[0].strict)];

  const receive = (d: Dir, idx: number, bytes: Uint8Array, forged: boolean, what: string): void => {
    const rx = ends[d === 0 ? 1 : 0];
    const r = outcome(() => rx.session.unwrap(bytes));
    if (forged) {
      if (r.ok) assert.fail(`${what}: ${rx.name} accepted a message that was never sent (${r.value.length} bytes)`);
      if (rx.ours) assert.ok(ThemisError.is(r.error, 'DECRYPT_FAILED'), `${what}: ${rx.name} refused with ${describeError(r.error)}`);
      else assert.ok(r.error instanceof peer.ThemisError, `${what}: the peer threw ${describeError(r.error)}`);
      tally.refusedForged++;
      return;
    }
    const m = model[d] as WindowModel;
    const expected = m.accepts(idx);
    if (r.ok) {
      assertSameBytes(r.value, (sent[d]?.[idx] as { plain: Uint8Array }).plain, `${what}: ${rx.name} accepted message ${idx} with other content`);
      if (rx.strict) assert.ok(!m.accepted.has(idx), `${what}: ${rx.name} (strict) accepted message ${idx} a second time`);
      assert.ok(expected, `${what}: ${rx.name} accepted message ${idx}; the model refuses it (last ${m.last}, highest ${m.highest})`);
      m.commit(idx);
      tally.accepted++;
    } else {
      if (rx.ours) assert.ok(ThemisError.is(r.error, 'REPLAY'), `${what}: ${rx.name} refused an authentic message with ${describeError(r.error)}`);
      else assert.ok(r.error instanceof peer.ThemisError, `${what}: the peer threw ${describeError(r.error)}`);
      assert.ok(!expected, `${what}: ${rx.name} refused message ${idx}; the model accepts it (last ${m.last}, highest ${m.highest})`);
      tally.refusedAuthentic++;
    }
  };

  for (const [step, a] of actions.entries()) {
    const d = a.dir;
    const q = queue[d] as Array<{ idx: number; overtaken: number }>;
    const out = sent[d] as Array<{ wrapped: Uint8Array; plain: Uint8Array }>;
    const what = `step ${step} ${a.kind} ${d === 0 ? `${ends[0].name}→${ends[1].name}` : `${ends[1].name}→${ends[0].name}`}`;
    switch (a.kind) {
      case 'send': {
        const plain = numbered(out.length, a.extra);
        const tx = ends[d];
        out.push({ wrapped: ok(`${what}: wrap`, () => tx.session.wrap(plain)), plain });
        queue[d]?.push({ idx: out.length - 1, overtaken: 0 });
        break;
      }
      case 'deliver':
      case 'duplicate':
      case 'drop': {
        if (q.length === 0) break;
        // Reordering bound: a message may be overtaken at most 8 times.
        let k = Math.min(a.pick, q.length - 1);
        for (let j = 0; j < k; j++) {
          if ((q[j] as { overtaken: number }).overtaken >= 8) {
            k = j;
            break;
          }
        }
        const item = q[k] as { idx: number };
        if (a.kind !== 'duplicate') q.splice(k, 1);
        if (a.kind === 'drop') break;
        for (let j = 0; j < k; j++) (q[j] as { overtaken: number }).overtaken++;
        seen[d]?.push(item.idx);
        receive(d, item.idx, (out[item.idx] as { wrapped: Uint8Array }).wrapped, false, `${what} #${item.idx}`);
        break;
      }
      case 'replay': {
        const s = seen[d] as number[];
        if (s.length === 0) break;
        const idx = s[a.back % s.length] as number;
        receive(d, idx, (out[idx] as { wrapped: Uint8Array }).wrapped, false, `${what} #${idx}`);
        break;
      }
      case 'reflect': {
        // A message back to the end that sent it: the other direction's key, never valid.
        if (out.length === 0) break;
        const w = (out[a.back % out.length] as { wrapped: Uint8Array }).wrapped;
        receive(d === 0 ? 1 : 0, -1, w, true, what);
        break;
      }
      case 'forge': {
        if (out.length === 0) break;
        const idx = a.back % out.length;
        const w = (out[idx] as { wrapped: Uint8Array }).wrapped;
        const pos = a.byte % w.length;
        const ivTail = (IV_TAIL as readonly number[]).includes(pos);
        // The 4 unused IV bytes are not authenticated (spec §5.7): such a copy is the same message.
        if (ivTail) tally.ivTailAccepted++;
        receive(d, idx, flipByte(w, pos, a.mask), !ivTail, `${what} #${idx} byte ${pos}`);
        break;
      }
      case 'garbage':
        receive(d, -1, a.bytes, true, what);
        break;
    }
  }
}

/** Handshakes dominate on the pure-JS backend; fewer runs there. */
const RUNS_OURS = backendName === 'noble' ? 60 : 200;
const RUNS_PEER = backendName === 'noble' ? 20 : 50;

const tally1: Tally = { accepted: 0, refusedAuthentic: 0, refusedForged: 0, ivTailAccepted: 0 };

test(`model, ours ↔ ours: through drops, ±8 reordering, duplicates, replays and forgeries, plaintexts match, nothing unsent is accepted, strict accepts each message at most once, decisions match the window model (${RUNS_OURS} runs)`, () => {
  const T = 1_800_000_000; // fixed clock: no real time involved
  fc.assert(
    fc.property(fc.constantFrom<ReplayMode>('strict', 'lenient'), fc.constantFrom<ReplayMode>('strict', 'lenient'), fc.array(act, { minLength: 20, maxLength: 160, size: 'max' }), (modeA, modeB, actions) => {
      const a = ourSession(alice, [bob], { replay: modeA, clock: () => T });
      const b = ourSession(bob, [alice], { replay: modeB, clock: () => T });
      handshake(a, b, 'ours ↔ ours');
      simulate(
        actions,
        [
          { name: `alice(${modeA})`, session: a, ours: true, strict: modeA === 'strict' },
          { name: `bob(${modeB})`, session: b, ours: true, strict: modeB === 'strict' },
        ],
        tally1,
      );
    }),
    { numRuns: RUNS_OURS },
  );
  // Not vacuous: every kind of outcome occurred.
  assert.ok(tally1.accepted > 500, `accepted ${tally1.accepted}`);
  assert.ok(tally1.refusedAuthentic > 20, `refused authentic ${tally1.refusedAuthentic}`);
  assert.ok(tally1.refusedForged > 50, `refused forged ${tally1.refusedForged}`);
});

const tally2: Tally = { accepted: 0, refusedAuthentic: 0, refusedForged: 0, ivTailAccepted: 0 };

test(`model, ours ↔ the peer (wasm-themis): the same network; the peer follows Themis's rule (replays within ±8 accepted), ours its mode; both refuse everything unsent (${RUNS_PEER} runs)`, () => {
  fc.assert(
    fc.property(fc.constantFrom<'client' | 'server'>('client', 'server'), fc.constantFrom<ReplayMode>('strict', 'lenient'), fc.array(act, { minLength: 20, maxLength: 100, size: 'max' }), (ourRole, mode, actions) => {
      const sessions: Array<{ destroy(): void }> = [];
      try {
        const ours = ourSession(ourRole === 'client' ? alice : bob, [ourRole === 'client' ? bob : alice], { replay: mode });
        const theirs = peerSession(null, ourRole === 'client' ? bob : alice, [ourRole === 'client' ? alice : bob]);
        sessions.push(theirs);
        if (ourRole === 'client') handshake(ours, theirs, 'our client ↔ peer server');
        else handshake(theirs, ours, 'peer client ↔ our server');
        simulate(
          actions,
          [
            { name: `ours(${mode})`, session: ours, ours: true, strict: mode === 'strict' },
            { name: 'peer', session: theirs, ours: false, strict: false },
          ],
          tally2,
        );
      } finally {
        for (const s of sessions) s.destroy();
      }
    }),
    { numRuns: RUNS_PEER },
  );
  assert.ok(tally2.accepted > 100, `accepted ${tally2.accepted}`);
  assert.ok(tally2.refusedAuthentic > 5, `refused authentic ${tally2.refusedAuthentic}`);
  assert.ok(tally2.refusedForged > 10, `refused forged ${tally2.refusedForged}`);
});
