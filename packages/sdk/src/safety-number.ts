/**
 * Safety numbers: 60 digits two users compare (read aloud, or side by side)
 * to check that each sees the other's real identity keys, not keys a server
 * or a man in the middle substituted. Signal's "numeric fingerprint" design,
 * over every device's Ed25519 identity key of each user.
 *
 * Per user (all integers big-endian):
 *
 * ```
 * keys  = u16be(n) ‖ k₁ ‖ … ‖ kₙ        n identity keys, 32 bytes each, sorted bytewise
 * h₀    = u16be(SAFETY_NUMBER_VERSION) ‖ keys ‖ UTF-8(userId)
 * hᵢ₊₁  = SHA-512(hᵢ ‖ keys)            for i = 0 … 5199
 * half  = for j in 0 … 5: u40be(h₅₂₀₀[5j … 5j+5]) mod 100000, as 5 digits
 * ```
 *
 * The safety number is the two 30-digit halves ordered by user id (bytewise
 * on UTF-8), so both users compute the same 60 digits; it is shown as 12
 * groups of 5. The iteration and the digit extraction are Signal's; unlike
 * Signal, the key block carries its count, so (keys, userId) splits in
 * exactly one way. Any change of any key, or a device added or removed,
 * changes the number.
 *
 * {@link safetyNumberBinding} hashes the same inputs, unabridged, for
 * protocols that bind to them (the secret comparison in verification.ts).
 *
 * @module
 */
import { backend, concatBytes } from '@parley/themis/hazmat';
import { utf8 } from './_bytes.ts';
import { SdkError } from './errors.ts';
import { USER_ID } from './frames.ts';

/** The version field of h₀ (Signal's numeric fingerprint uses 0 too). */
export const SAFETY_NUMBER_VERSION = 0;
/** SHA-512 iterations per user (Signal's value). */
export const SAFETY_NUMBER_ITERATIONS = 5200;
/** Digits of a safety number: 30 per user. */
export const SAFETY_NUMBER_DIGITS = 60;
/** Digits per displayed group. */
export const SAFETY_NUMBER_GROUP_DIGITS = 5;
/** Ed25519 identity keys are 32 bytes. */
export const IDENTITY_KEY_BYTES = 32;
/** Most identity keys accepted per user: well above the server's DEVICES_PER_USER_MAX (16). */
export const SAFETY_NUMBER_KEYS_MAX = 256;

const DIGITS_PER_USER = SAFETY_NUMBER_DIGITS / 2;
const CHUNKS_PER_USER = DIGITS_PER_USER / SAFETY_NUMBER_GROUP_DIGITS; // 6
const CHUNK_BYTES = 5;
const BINDING_LABEL = utf8('parley-safety-number-binding-v1\n');

/** One side of a conversation: a user and the identity keys of all its devices. */
export interface SafetyNumberParty {
  readonly userId: string;
  /** Every device's Ed25519 identity key (32 bytes each, any order, no duplicates). */
  readonly identityKeys: readonly Uint8Array[];
}

interface Canonical {
  readonly userId: Uint8Array;
  /** u16be(n) ‖ sorted keys */
  readonly keys: Uint8Array;
}

/**
 * The 60-digit safety number of a conversation between `a` and `b` (no
 * spaces; see {@link formatSafetyNumber}). Symmetric: the order of the
 * arguments, and of the keys in each set, does not matter. Throws
 * `INVALID_ARGUMENT` for a malformed party or two parties with one user id.
 */
export function safetyNumber(a: SafetyNumberParty, b: SafetyNumberParty): string {
  const [first, second] = ordered(canonical(a, 'a'), canonical(b, 'b'));
  return fingerprintHalf(first) + fingerprintHalf(second);
}

/** `"12345 67890 …"`: the 12 groups of 5 digits, separated by single spaces. */
export function formatSafetyNumber(digits: string): string {
  if (typeof digits !== 'string' || !/^[0-9]{60}$/.test(digits)) {
    throw new SdkError('INVALID_ARGUMENT', `a safety number is ${SAFETY_NUMBER_DIGITS} digits`);
  }
  const groups: string[] = [];
  for (let i = 0; i < SAFETY_NUMBER_DIGITS; i += SAFETY_NUMBER_GROUP_DIGITS) groups.push(digits.slice(i, i + SAFETY_NUMBER_GROUP_DIGITS));
  return groups.join(' ');
}

/**
 * A 64-byte digest of everything a safety number covers, in the same
 * symmetric order, without the truncation to digits:
 *
 * ```
 * SHA-512( UTF-8("parley-safety-number-binding-v1\n")
 *          ‖ for each party, by user id: u8(len) ‖ UTF-8(userId) ‖ u16be(n) ‖ sorted keys )
 * ```
 *
 * Equal on both sides exactly when both see the same users with the same
 * key sets. Throws like {@link safetyNumber}.
 */
export function safetyNumberBinding(a: SafetyNumberParty, b: SafetyNumberParty): Uint8Array {
  const [first, second] = ordered(canonical(a, 'a'), canonical(b, 'b'));
  const part = (p: Canonical): Uint8Array => concatBytes(Uint8Array.of(p.userId.length), p.userId, p.keys);
  return backend.sha512(concatBytes(BINDING_LABEL, part(first), part(second)));
}

function fingerprintHalf(p: Canonical): string {
  const h0 = concatBytes(Uint8Array.of(SAFETY_NUMBER_VERSION >>> 8, SAFETY_NUMBER_VERSION & 0xff), p.keys, p.userId);
  let h = backend.sha512(concatBytes(h0, p.keys));
  // Every further iteration hashes a 64-byte hᵢ ‖ keys: one buffer, refilled.
  const buf = new Uint8Array(h.length + p.keys.length);
  buf.set(p.keys, h.length);
  for (let i = 1; i < SAFETY_NUMBER_ITERATIONS; i++) {
    buf.set(h, 0);
    h = backend.sha512(buf);
  }
  let out = '';
  for (let j = 0; j < CHUNKS_PER_USER; j++) {
    let v = 0;
    // 5 bytes big-endian: at most 2^40 − 1, exact in a double.
    for (let k = 0; k < CHUNK_BYTES; k++) v = v * 256 + (h[j * CHUNK_BYTES + k] as number);
    out += String(v % 100_000).padStart(SAFETY_NUMBER_GROUP_DIGITS, '0');
  }
  return out;
}

function canonical(party: SafetyNumberParty, name: string): Canonical {
  if (typeof party !== 'object' || party === null) throw new SdkError('INVALID_ARGUMENT', `${name} must be { userId, identityKeys }`);
  const { userId, identityKeys } = party;
  if (typeof userId !== 'string' || !USER_ID.test(userId)) throw new SdkError('INVALID_ARGUMENT', `${name}.userId is not a valid user id`);
  if (!Array.isArray(identityKeys) || identityKeys.length === 0 || identityKeys.length > SAFETY_NUMBER_KEYS_MAX) {
    throw new SdkError('INVALID_ARGUMENT', `${name}.identityKeys must hold 1 … ${SAFETY_NUMBER_KEYS_MAX} keys`);
  }
  const keys: Uint8Array[] = [];
  for (const key of identityKeys as readonly unknown[]) {
    if (!(key instanceof Uint8Array) || key.length !== IDENTITY_KEY_BYTES) {
      throw new SdkError('INVALID_ARGUMENT', `${name}.identityKeys must be ${IDENTITY_KEY_BYTES}-byte Uint8Arrays`);
    }
    keys.push(key.slice());
  }
  keys.sort(compareBytes);
  for (let i = 1; i < keys.length; i++) {
    if (compareBytes(keys[i - 1] as Uint8Array, keys[i] as Uint8Array) === 0) throw new SdkError('INVALID_ARGUMENT', `${name}.identityKeys holds a key twice`);
  }
  const n = keys.length;
  return { userId: utf8(userId), keys: concatBytes(Uint8Array.of(n >>> 8, n & 0xff), ...keys) };
}

function ordered(a: Canonical, b: Canonical): [Canonical, Canonical] {
  const c = compareBytes(a.userId, b.userId);
  if (c === 0) throw new SdkError('INVALID_ARGUMENT', 'a safety number is between two different users');
  return c < 0 ? [a, b] : [b, a];
}

/** Bytewise lexicographic order (a shorter prefix first). Public data: no need for constant time. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
