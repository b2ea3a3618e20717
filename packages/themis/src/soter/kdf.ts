/**
 * Soter KDF: ZRTP-style (RFC 6189 §4.5.1) without the trailing length.
 *
 * ```
 * T = HMAC-SHA-256(K, 00 00 00 01 ‖ label ‖ 00 ‖ c1 ‖ c2 ‖ …);  output = T[0..n), n ≤ 32
 * ```
 *
 * With no key, an implicit key is used: 32 zero bytes, the label copied in,
 * then each context XORed in from offset 0 (each truncated to 32 bytes).
 *
 * @module
 */
import { backend } from '#backend';
import { utf8 } from '../_bytes.ts';

const COUNTER = new Uint8Array([0, 0, 0, 1]);
const NUL = new Uint8Array([0]);
const labelCache = new Map<string, Uint8Array>();

function labelBytes(label: string): Uint8Array {
  let b = labelCache.get(label);
  if (b === undefined) {
    b = utf8(label);
    labelCache.set(label, b);
  }
  return b;
}

/**
 * Derive `length` (1..32) bytes. `key` null selects the implicit key.
 * The key must be non-empty (Soter's HMAC rejects empty keys); callers validate.
 */
export function soterKdf(key: Uint8Array | null, label: string, contexts: readonly Uint8Array[], length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > 32) throw new RangeError('Soter KDF output must be 1..32 bytes');
  const lb = labelBytes(label);
  let k = key;
  if (k === null) {
    k = new Uint8Array(32);
    k.set(lb.subarray(0, 32));
    for (const c of contexts) {
      const m = Math.min(32, c.length);
      for (let i = 0; i < m; i++) k[i] = (k[i] as number) ^ (c[i] as number);
    }
  }
  const t = backend.hmacSha256(k, [COUNTER, lb, NUL, ...contexts]);
  if (key === null) k.fill(0);
  if (length === 32) return t;
  const out = t.slice(0, length);
  t.fill(0);
  return out;
}
