/**
 * Parsed-key cache keyed by the caller's key object.
 *
 * Applications reuse one key object for many operations (a server's static
 * key for every Secure Session, a contact's public key for every message).
 * Parsing, validating and — in the Node backend — importing a key into
 * OpenSSL costs far more than using it, so the parsed form is remembered per
 * key *object* in a WeakMap: it lives exactly as long as the caller's key,
 * needs no global table of secrets, and a byte-for-byte check catches a key
 * mutated in place.
 *
 * Parsed keys returned from here are shared: callers must never wipe them.
 *
 * @module
 */
import { equalBytes } from '../_bytes.ts';
import type { Subsystem } from '../errors.ts';
import { parsePrivateKey, parsePublicKey, type ParsedPrivateKey, type ParsedPublicKey } from './asym-key.ts';

interface Entry<T> {
  snapshot: Uint8Array;
  parsed: T;
}

const privateKeys = new WeakMap<Uint8Array, Entry<ParsedPrivateKey>>();
const publicKeys = new WeakMap<Uint8Array, Entry<ParsedPublicKey>>();

function lookup<T>(cache: WeakMap<Uint8Array, Entry<T>>, bytes: Uint8Array, parse: () => T): T {
  const hit = cache.get(bytes);
  if (hit !== undefined) {
    if (equalBytes(hit.snapshot, bytes)) return hit.parsed;
    // Changed in place (wiped, say): forget the old key before parsing the
    // new bytes, which may well be refused.
    cache.delete(bytes);
    hit.snapshot.fill(0);
  }
  const parsed = parse();
  cache.set(bytes, { snapshot: Uint8Array.from(bytes), parsed });
  return parsed;
}

export function sharedPrivateKey(subsystem: Subsystem, bytes: Uint8Array): ParsedPrivateKey {
  return lookup(privateKeys, bytes, () => parsePrivateKey(subsystem, bytes));
}

export function sharedPublicKey(subsystem: Subsystem, bytes: Uint8Array): ParsedPublicKey {
  return lookup(publicKeys, bytes, () => parsePublicKey(subsystem, bytes));
}
