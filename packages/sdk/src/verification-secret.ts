/**
 * The secret two devices compare when they verify each other
 * (verification.ts), bound to the conversation: the comparator's secret is
 *
 * ```
 * SHA-512( UTF-8("parley-verification-v1\n") ‖ safetyNumberBinding(local, remote) ‖ secret )
 * ```
 *
 * where the binding (safety-number.ts) covers both users' ids and all their
 * devices' identity keys as *this* device sees them. A man in the middle
 * who substituted any identity key gives the two sides different bindings:
 * if he relays their comparison, they get NO_MATCH even with the same
 * secret. To pass, he must know (or guess) the secret and run a comparison
 * with each side himself. A secret typed as text is NFKC-normalised and
 * trimmed first.
 *
 * @module
 */
import { backend, concatBytes, wipe } from '@parley/themis/hazmat';
import { utf8 } from './_bytes.ts';
import { SdkError } from './errors.ts';
import { safetyNumberBinding, type SafetyNumberParty } from './safety-number.ts';

/** Longest shared secret, in UTF-8 bytes after normalisation. */
export const VERIFICATION_SECRET_BYTES_MAX = 1024;

const SECRET_LABEL = utf8('parley-verification-v1\n');

/** The two sides of the conversation, as this device sees them. */
export interface VerificationParties {
  readonly local: SafetyNumberParty;
  readonly remote: SafetyNumberParty;
}

/**
 * The bytes fed to Secure Comparator for `secret` between these parties
 * (formula in the module comment). Exported for cross-implementation tests;
 * a session derives it itself.
 */
export function verificationComparatorSecret(secret: string | Uint8Array, parties: VerificationParties): Uint8Array {
  return deriveSecret(secret, safetyNumberBinding(parties.local, parties.remote));
}

/** The secret's bytes as compared (a copy: wipe it); INVALID_ARGUMENT or LIMIT for one that cannot be used. */
function secretBytes(secret: string | Uint8Array): Uint8Array {
  let bytes: Uint8Array;
  if (typeof secret === 'string') bytes = utf8(secret.normalize('NFKC').trim());
  else if (secret instanceof Uint8Array) bytes = secret.slice();
  else throw new SdkError('INVALID_ARGUMENT', 'the secret must be a string or a Uint8Array');
  if (bytes.length === 0) throw new SdkError('INVALID_ARGUMENT', 'the secret is empty');
  if (bytes.length > VERIFICATION_SECRET_BYTES_MAX) {
    wipe(bytes);
    throw new SdkError('LIMIT', `the secret is longer than ${VERIFICATION_SECRET_BYTES_MAX} bytes`);
  }
  return bytes;
}

/** Refuse a secret that cannot be used before an attempt starts (nothing is sent, nothing reported). */
export function checkSecret(secret: string | Uint8Array): void {
  wipe(secretBytes(secret));
}

/** The comparator secret for `secret` under a binding of the two parties (a new array: wipe it). */
export function deriveSecret(secret: string | Uint8Array, binding: Uint8Array): Uint8Array {
  const bytes = secretBytes(secret);
  const joined = concatBytes(SECRET_LABEL, binding, bytes);
  const out = backend.sha512(joined);
  wipe(bytes, joined);
  return out;
}
