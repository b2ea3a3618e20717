/**
 * PQXDH (Signal, "The PQXDH Key Agreement Protocol", revision 3): the
 * initial key agreement of a 1:1 session, hybrid X25519 + ML-KEM-1024.
 *
 * Parameters (§2.1): curve X25519, hash SHA-256, pqkem ML-KEM-1024,
 * info "Parley_PQXDH_X25519_SHA-256_ML-KEM-1024"; identity keys are Ed25519
 * and enter the DHs in their X25519 form (see `identity.ts`).
 *
 * ```
 * DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   DH4 = DH(EK_A, OPK_B)
 * (CT, SS) = ML-KEM-1024.Encaps(PQPK_B)
 * SK = HKDF-SHA-256(salt = 0^32, ikm = 0xFF^32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS, info, 32)
 * AD = IK_A ‖ IK_B ‖ address_A ‖ address_B
 * ```
 *
 * The spec's AD is `IK_A ‖ IK_B`, to which it invites appending identifying
 * information (§3.3): we append both device addresses, so a message meant for
 * one device or from one sender does not decrypt as another's even when the
 * relay misdirects it.
 *
 * SK becomes the Double Ratchet's first root key and SPK_B the responder's
 * first ratchet key (Double Ratchet §7.1). The ephemeral key is wiped as soon
 * as SK exists; the responder deletes the one-time prekey only once the first
 * message has decrypted (the session layer does that), so a forged message
 * cannot burn it.
 *
 * @module
 */
import { backend, wipe } from '@parley/themis/hazmat';
import { concatBytes, copyBytes, utf8 } from './_bytes.ts';
import { encodeAddress, type DeviceAddress } from './address.ts';
import { ProtocolError } from './errors.ts';
import { identityDhKey, type IdentityKeyPair } from './identity.ts';
import { kemEncapsulate } from './kem.ts';
import { verifyPrekeyBundle, type PrekeyBundle, type SignedPrekey } from './prekeys.ts';
import type { PrekeyStore } from './stores.ts';

export const PQXDH_INFO: Uint8Array = utf8('Parley_PQXDH_X25519_SHA-256_ML-KEM-1024');
/** F (§2.3): 32 0xFF bytes, so the KDF input never begins like an X25519 output alone. */
const F = new Uint8Array(32).fill(0xff);
const ZERO_SALT = new Uint8Array(32);
export const SHARED_SECRET_LENGTH = 32;

/** What the initial message carries so the responder can repeat the agreement (§3.3). */
export interface PrekeyMessageFields {
  /** IK_A: the initiator's Ed25519 identity key. */
  readonly identityKey: Uint8Array;
  /** EK_A: the initiator's ephemeral X25519 key; also names the session ("base key"). */
  readonly baseKey: Uint8Array;
  readonly signedPrekeyId: number;
  /** Null when the bundle had no one-time prekey. */
  readonly oneTimePrekeyId: number | null;
  readonly pqPrekeyId: number;
  /** CT: the ML-KEM-1024 ciphertext. */
  readonly kemCiphertext: Uint8Array;
}

export interface PqxdhInitiation {
  readonly sharedSecret: Uint8Array;
  readonly fields: PrekeyMessageFields;
  /** The verified copy of the bundle that was used. */
  readonly bundle: PrekeyBundle;
}

export interface PqxdhResponse {
  readonly sharedSecret: Uint8Array;
  /** The responder's signed prekey, which becomes its first ratchet key pair. */
  readonly signedPrekey: SignedPrekey;
}

function kdf(dhs: readonly Uint8Array[], ss: Uint8Array): Uint8Array {
  const ikm = concatBytes(F, ...dhs, ss);
  try {
    return backend.hkdfSha256(ikm, ZERO_SALT, PQXDH_INFO, SHARED_SECRET_LENGTH);
  } finally {
    wipe(ikm);
  }
}

/**
 * The initiator's side (§3.3): verify the bundle's signatures, then derive SK.
 * Throws `MALFORMED` / `BAD_SIGNATURE` for a bad bundle (including a key of
 * low order or an ML-KEM key that fails the FIPS 203 input check).
 */
export function pqxdhInitiate(identity: IdentityKeyPair, bundle: unknown): PqxdhInitiation {
  const b = verifyPrekeyBundle(bundle);
  const remoteIdentity = identityDhKey(b.identityKey);
  if (remoteIdentity === null) throw new ProtocolError('MALFORMED', 'prekey bundle: identity key is not a valid Ed25519 key');
  const kem = kemEncapsulate(b.pqPrekey.publicKey);
  if (kem === null) throw new ProtocolError('MALFORMED', 'prekey bundle: PQ prekey is not a valid ML-KEM-1024 key');
  const ephemeral = backend.x25519GeneratePrivate();
  const baseKey = backend.x25519PublicFromPrivate(ephemeral);
  const dhs = [
    identity.dh(b.signedPrekey.publicKey),
    backend.x25519(ephemeral, remoteIdentity),
    backend.x25519(ephemeral, b.signedPrekey.publicKey),
    ...(b.oneTimePrekey === null ? [] : [backend.x25519(ephemeral, b.oneTimePrekey.publicKey)]),
  ];
  wipe(ephemeral);
  try {
    const present = dhs.filter((d): d is Uint8Array => d !== null);
    if (present.length !== dhs.length) throw new ProtocolError('MALFORMED', 'prekey bundle: a prekey has low order');
    return {
      sharedSecret: kdf(present, kem.sharedSecret),
      fields: {
        identityKey: copyBytes(identity.publicKey),
        baseKey,
        signedPrekeyId: b.signedPrekey.keyId,
        oneTimePrekeyId: b.oneTimePrekey === null ? null : b.oneTimePrekey.keyId,
        pqPrekeyId: b.pqPrekey.keyId,
        kemCiphertext: kem.ciphertext,
      },
      bundle: b,
    };
  } finally {
    wipe(kem.sharedSecret, ...dhs.filter((d): d is Uint8Array => d !== null));
  }
}

/**
 * The responder's side (§3.4): look up the named prekeys and derive SK.
 * Null when any of them is unknown (already used, rotated out, or a tampered
 * id) or when a key in the message has low order — the caller reports every
 * such case as the one opaque `DECRYPT_FAILED`. Deletes nothing.
 */
export function pqxdhRespond(identity: IdentityKeyPair, prekeys: PrekeyStore, fields: PrekeyMessageFields): PqxdhResponse | null {
  const signedPrekey = prekeys.loadSignedPrekey(fields.signedPrekeyId);
  const pqPrekey = prekeys.loadPqPrekey(fields.pqPrekeyId);
  const oneTimePrekey = fields.oneTimePrekeyId === null ? null : prekeys.loadOneTimePrekey(fields.oneTimePrekeyId);
  if (signedPrekey === undefined || pqPrekey === undefined || oneTimePrekey === undefined) return null;
  const remoteIdentity = identityDhKey(fields.identityKey);
  if (remoteIdentity === null) return null;
  const dhs = [
    signedPrekey.dh(remoteIdentity),
    identity.dh(fields.baseKey),
    signedPrekey.dh(fields.baseKey),
    ...(oneTimePrekey === null ? [] : [oneTimePrekey.dh(fields.baseKey)]),
  ];
  const ss = pqPrekey.decapsulate(fields.kemCiphertext);
  try {
    const present = dhs.filter((d): d is Uint8Array => d !== null);
    if (present.length !== dhs.length || ss === null) return null;
    return { sharedSecret: kdf(present, ss), signedPrekey };
  } finally {
    wipe(ss ?? undefined, ...dhs.filter((d): d is Uint8Array => d !== null));
  }
}

/** AD = IK_A ‖ IK_B ‖ address_A ‖ address_B (initiator first). */
export function associatedData(initiatorIdentity: Uint8Array, responderIdentity: Uint8Array, initiator: DeviceAddress, responder: DeviceAddress): Uint8Array {
  return concatBytes(initiatorIdentity, responderIdentity, encodeAddress(initiator), encodeAddress(responder));
}
