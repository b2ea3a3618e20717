/**
 * Secure Comparator: the Socialist Millionaire Protocol over Ed25519, so two
 * parties learn whether their secrets are equal and nothing else
 * (wire-format spec §6). Alice calls `begin()`; Bob's first call is
 * `proceed()`.
 *
 * ```
 * 1. A→B 192 B  G2a ‖ DL₁(a2) ‖ G3a ‖ DL₂(a3)
 * 2. B→A 352 B  G2b ‖ DL₃(b2) ‖ G3b ‖ DL₄(b3) ‖ Pb ‖ Qb ‖ DB₅(r_b, y)
 * 3. A→B 256 B  Pa ‖ Qa ‖ DB₆(r_a, x) ‖ Ra ‖ DLeq₇(a3)
 * 4. B→A  96 B  Rb ‖ DLeq₈(b3)
 * ```
 * (points 32 B; proofs per `proofs.ts`). Result: MATCH iff (Pa − Pb) = Rab
 * and Rab is not the identity.
 *
 * Failure semantics follow Themis: a bad proof or an identity point does not
 * abort — it forces NO_MATCH while the protocol runs to the end, so the peer
 * learns nothing from when it failed. An undecodable point or a short message
 * aborts with `MALFORMED`. Extra trailing bytes are ignored.
 *
 * @module
 */
import { backend } from '#backend';
import { abytes, concatBytes, wipe } from '../_bytes.ts';
import { ThemisError, ThemisErrorCode } from '../errors.ts';
import { clamp, decodePoint, encodePoint, isIdentity, mul, mulBase, POINT_LENGTH, randomScalar, type Point } from './group.ts';
import {
  DL_EQUALITY_PROOF_LENGTH,
  DL_PROOF_LENGTH,
  DOUBLE_BASE_PROOF_LENGTH,
  proveDL,
  proveDLEquality,
  proveDoubleBase,
  verifyDL,
  verifyDLEquality,
  verifyDoubleBase,
} from './proofs.ts';

const S = 'SecureComparator' as const;

export const MESSAGE_1_LENGTH = 2 * POINT_LENGTH + 2 * DL_PROOF_LENGTH; // 192
export const MESSAGE_2_LENGTH = 4 * POINT_LENGTH + 2 * DL_PROOF_LENGTH + DOUBLE_BASE_PROOF_LENGTH; // 352
export const MESSAGE_3_LENGTH = 3 * POINT_LENGTH + DOUBLE_BASE_PROOF_LENGTH + DL_EQUALITY_PROOF_LENGTH; // 256
export const MESSAGE_4_LENGTH = POINT_LENGTH + DL_EQUALITY_PROOF_LENGTH; // 96

type Step = 'collecting' | 'alice-wait-2' | 'alice-wait-4' | 'bob-wait-3' | 'done' | 'destroyed';

/** Sequential reader over a protocol message; throws MALFORMED on short input or a bad point. */
class Reader {
  #off = 0;
  readonly #buf: Uint8Array;
  constructor(buf: Uint8Array, expected: number) {
    if (buf.length < expected) throw new ThemisError(S, 'MALFORMED', `comparator message too short (${buf.length} < ${expected})`);
    this.#buf = buf;
  }
  bytes(n: number): Uint8Array {
    const v = this.#buf.subarray(this.#off, this.#off + n);
    this.#off += n;
    return v;
  }
  point(): Point {
    const p = decodePoint(this.bytes(POINT_LENGTH));
    if (p === null) throw new ThemisError(S, 'MALFORMED', 'invalid point in comparator message');
    return p;
  }
}

export class SecureComparator {
  #parts: Uint8Array[] = [];
  #step: Step = 'collecting';
  /** False as soon as any proof or identity check fails. */
  #ok = true;
  #match = false;
  #secret = 0n;
  // Protocol values (scalars are secret; points are public).
  #x2 = 0n; // a2 or b2
  #x3 = 0n; // a3 or b3
  #g2: Point | null = null;
  #g3: Point | null = null;
  #peerG3: Point | null = null;
  #P: Point | null = null; // own P
  #Q: Point | null = null; // own Q
  #peerP: Point | null = null;

  constructor(...secrets: Uint8Array[]) {
    for (const s of secrets) this.append(s);
  }

  /** Add a part of the secret; all parts are concatenated, as Themis does. */
  append(secret: Uint8Array): void {
    if (this.#step !== 'collecting') throw new ThemisError(S, 'INVALID_STATE', 'cannot append after the comparison started');
    this.#parts.push(Uint8Array.from(abytes(S, secret, 'secret')));
  }

  #start(): void {
    if (this.#parts.length === 0) throw new ThemisError(S, 'INVALID_STATE', 'no secret appended');
    const joined = concatBytes(...this.#parts);
    const h = backend.sha256(joined);
    this.#secret = clamp(h);
    wipe(joined, h, ...this.#parts);
    this.#parts = [];
    this.#x2 = randomScalar();
    this.#x3 = randomScalar();
  }

  /** Alice: start the comparison. Returns message 1. */
  begin(): Uint8Array {
    if (this.#step !== 'collecting') throw new ThemisError(S, 'INVALID_STATE', 'comparison already started');
    this.#start();
    const G2a = mulBase(this.#x2);
    const G3a = mulBase(this.#x3);
    this.#step = 'alice-wait-2';
    return concatBytes(encodePoint(G2a), proveDL(this.#x2, 1), encodePoint(G3a), proveDL(this.#x3, 2));
  }

  /** Process the peer's message; returns the reply (empty after Alice's last step). */
  proceed(message: Uint8Array): Uint8Array {
    const msg = abytes(S, message, 'message');
    switch (this.#step) {
      case 'collecting':
        return this.#bobStep1(msg);
      case 'alice-wait-2':
        return this.#aliceStep2(msg);
      case 'bob-wait-3':
        return this.#bobStep3(msg);
      case 'alice-wait-4':
        this.#aliceStep4(msg);
        return new Uint8Array(0);
      case 'done':
        throw new ThemisError(S, 'INVALID_STATE', 'comparison already complete');
      default:
        throw new ThemisError(S, 'INVALID_STATE', 'comparator destroyed');
    }
  }

  #check(ok: boolean): void {
    if (!ok) this.#ok = false;
  }

  #bobStep1(msg: Uint8Array): Uint8Array {
    const r = new Reader(msg, MESSAGE_1_LENGTH);
    const G2a = r.point();
    const dl1 = r.bytes(DL_PROOF_LENGTH);
    const G3a = r.point();
    const dl2 = r.bytes(DL_PROOF_LENGTH);
    this.#start();
    this.#check(verifyDL(dl1, G2a, 1));
    this.#check(verifyDL(dl2, G3a, 2));
    const G2b = mulBase(this.#x2);
    const G3b = mulBase(this.#x3);
    const g2 = mul(G2a, this.#x2);
    const g3 = mul(G3a, this.#x3);
    this.#check(!isIdentity(g2) && !isIdentity(g3));
    const rb = randomScalar();
    const Pb = mul(g3, rb);
    const Qb = mulBase(rb).add(mul(g2, this.#secret));
    this.#g2 = g2;
    this.#g3 = g3;
    this.#peerG3 = G3a;
    this.#P = Pb;
    this.#Q = Qb;
    this.#step = 'bob-wait-3';
    return concatBytes(
      encodePoint(G2b),
      proveDL(this.#x2, 3),
      encodePoint(G3b),
      proveDL(this.#x3, 4),
      encodePoint(Pb),
      encodePoint(Qb),
      proveDoubleBase(rb, this.#secret, g2, g3, 5),
    );
  }

  #aliceStep2(msg: Uint8Array): Uint8Array {
    const r = new Reader(msg, MESSAGE_2_LENGTH);
    const G2b = r.point();
    const dl3 = r.bytes(DL_PROOF_LENGTH);
    const G3b = r.point();
    const dl4 = r.bytes(DL_PROOF_LENGTH);
    const Pb = r.point();
    const Qb = r.point();
    const db5 = r.bytes(DOUBLE_BASE_PROOF_LENGTH);
    const g2 = mul(G2b, this.#x2);
    const g3 = mul(G3b, this.#x3);
    this.#check(verifyDL(dl3, G2b, 3));
    this.#check(verifyDL(dl4, G3b, 4));
    this.#check(!isIdentity(g2) && !isIdentity(g3));
    this.#check(verifyDoubleBase(db5, Pb, Qb, g2, g3, 5));
    const ra = randomScalar();
    const Pa = mul(g3, ra);
    const Qa = mulBase(ra).add(mul(g2, this.#secret));
    const D = Qa.subtract(Qb);
    const Ra = mul(D, this.#x3);
    this.#g2 = g2;
    this.#g3 = g3;
    this.#peerG3 = G3b;
    this.#P = Pa;
    this.#Q = D; // Alice keeps D = Qa − Qb for the last step.
    this.#peerP = Pb;
    this.#step = 'alice-wait-4';
    return concatBytes(
      encodePoint(Pa),
      encodePoint(Qa),
      proveDoubleBase(ra, this.#secret, g2, g3, 6),
      encodePoint(Ra),
      proveDLEquality(this.#x3, D, 7),
    );
  }

  #bobStep3(msg: Uint8Array): Uint8Array {
    const r = new Reader(msg, MESSAGE_3_LENGTH);
    const Pa = r.point();
    const Qa = r.point();
    const db6 = r.bytes(DOUBLE_BASE_PROOF_LENGTH);
    const Ra = r.point();
    const dleq7 = r.bytes(DL_EQUALITY_PROOF_LENGTH);
    const { g2, g3, peerG3, P: Pb, Q: Qb } = this.#values();
    this.#check(verifyDoubleBase(db6, Pa, Qa, g2, g3, 6));
    const D = Qa.subtract(Qb);
    this.#check(verifyDLEquality(dleq7, peerG3, D, Ra, 7));
    const Rb = mul(D, this.#x3);
    const Rab = mul(Ra, this.#x3);
    const reply = concatBytes(encodePoint(Rb), proveDLEquality(this.#x3, D, 8));
    this.#decide(Rab, Pa.subtract(Pb));
    return reply;
  }

  #aliceStep4(msg: Uint8Array): void {
    const r = new Reader(msg, MESSAGE_4_LENGTH);
    const Rb = r.point();
    const dleq8 = r.bytes(DL_EQUALITY_PROOF_LENGTH);
    const { peerG3, P: Pa, Q: D } = this.#values();
    if (this.#peerP === null) throw new ThemisError(S, 'INTERNAL', 'comparator state missing');
    this.#check(verifyDLEquality(dleq8, peerG3, D, Rb, 8));
    const Rab = mul(Rb, this.#x3);
    this.#decide(Rab, Pa.subtract(this.#peerP));
  }

  #values(): { g2: Point; g3: Point; peerG3: Point; P: Point; Q: Point } {
    if (this.#g2 === null || this.#g3 === null || this.#peerG3 === null || this.#P === null || this.#Q === null) {
      throw new ThemisError(S, 'INTERNAL', 'comparator state missing');
    }
    return { g2: this.#g2, g3: this.#g3, peerG3: this.#peerG3, P: this.#P, Q: this.#Q };
  }

  #decide(Rab: Point, PaMinusPb: Point): void {
    this.#check(!isIdentity(Rab));
    this.#match = this.#ok && Rab.equals(PaMinusPb);
    this.#step = 'done';
    this.#secret = 0n;
    this.#x2 = 0n;
    this.#x3 = 0n;
  }

  /** True once this side has its result. */
  complete(): boolean {
    return this.#step === 'done';
  }

  /** The result; throws if the comparison is not complete. */
  compareEqual(): boolean {
    if (this.#step === 'destroyed') throw new ThemisError(S, 'INVALID_STATE', 'comparator destroyed');
    // The peer reports its result code here: SCOMPARE_NOT_READY (0) until the comparison is done.
    if (this.#step !== 'done') {
      throw new ThemisError(S, 'INVALID_STATE', 'comparison is not complete', { legacyCode: ThemisErrorCode.SCOMPARE_NOT_READY });
    }
    return this.#match;
  }

  /** Legacy numeric result: SCOMPARE_MATCH, SCOMPARE_NO_MATCH or SCOMPARE_NOT_READY. */
  result(): number {
    if (this.#step !== 'done') return ThemisErrorCode.SCOMPARE_NOT_READY;
    return this.#match ? ThemisErrorCode.SCOMPARE_MATCH : ThemisErrorCode.SCOMPARE_NO_MATCH;
  }

  /** Forget secrets (best effort); the comparator is unusable afterwards. */
  destroy(): void {
    wipe(...this.#parts);
    this.#parts = [];
    this.#secret = 0n;
    this.#x2 = 0n;
    this.#x3 = 0n;
    this.#step = 'destroyed';
  }

  toString(): string {
    return `SecureComparator(${this.#step})`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}
