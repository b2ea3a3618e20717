/**
 * The birational map from an Ed25519 public key to its X25519 form (as
 * libsodium's crypto_sign_ed25519_pk_to_curve25519), shared by both backends:
 * node:crypto has no such function. Null for a rejected, undecodable or
 * torsioned key.
 *
 * @module
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519PublicKeyRejected } from './types.ts';

export function ed25519PublicToX25519(publicKey: Uint8Array): Uint8Array | null {
  if (publicKey.length !== 32 || ed25519PublicKeyRejected(publicKey)) return null;
  try {
    const a = ed25519.Point.fromBytes(publicKey, false);
    if (!a.isTorsionFree()) return null;
    // u = (1 + y) / (1 − y), from the point already decoded (utils.toMontgomery
    // would decode it again, square root included). y ≠ 1: the identity is
    // among the rejected small-order keys.
    const Fp = ed25519.Point.Fp;
    return Fp.toBytes(Fp.div(Fp.add(Fp.ONE, a.y), Fp.sub(Fp.ONE, a.y)));
  } catch {
    return null;
  }
}
