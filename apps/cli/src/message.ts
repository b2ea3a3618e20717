/**
 * `parley themis sign` / `verify` and `encrypt` / `decrypt`: Secure Message
 * with Themis EC or RSA key pairs.
 *
 * - sign: the output is the signed message (the data in clear plus the
 *   signature); verify prints the original data only when the signature is
 *   valid for the given public key.
 * - encrypt: with my private key and the peer's public key; decrypt: with my
 *   private key and the sender's public key.
 *
 * @module
 */
import { SecureMessage, SecureMessageSign, SecureMessageVerify } from '@parley/themis';
import { usageError } from './cli-error.ts';
import { loadPrivateKey, loadPublicKey } from './key-source.ts';
import { prepareOutput, runTransform, type IoOptions, type Transform } from './transform.ts';

export interface SignOptions extends IoOptions {
  key: string;
}

export interface PairOptions extends IoOptions {
  key: string;
  peer: string;
}

const SIGN: Transform = { direction: 'protect', verb: 'sign' };
const VERIFY: Transform = {
  direction: 'unprotect',
  verb: 'verify',
  opaqueFailure: 'verification failed: not a valid signed message for this public key',
};
const ENCRYPT: Transform = { direction: 'protect', verb: 'encrypt' };
const DECRYPT: Transform = {
  direction: 'unprotect',
  verb: 'decrypt',
  opaqueFailure: 'cannot decrypt: wrong keys, or the data is corrupted',
};

export async function sign(options: SignOptions): Promise<void> {
  await prepareOutput(options, SIGN);
  const key = await loadPrivateKey(options.key, '--key');
  try {
    const signer = new SecureMessageSign(key);
    await runTransform(options, SIGN, (input) => signer.sign(input));
  } finally {
    key.fill(0);
  }
}

export async function verify(options: SignOptions): Promise<void> {
  await prepareOutput(options, VERIFY);
  const verifier = new SecureMessageVerify(await loadPublicKey(options.key, '--key'));
  await runTransform(options, VERIFY, (input) => verifier.verify(input));
}

async function pairCommand(options: PairOptions, t: Transform, operation: (m: SecureMessage, input: Uint8Array) => Uint8Array): Promise<void> {
  await prepareOutput(options, t);
  const privateKey = await loadPrivateKey(options.key, '--key');
  try {
    const publicKey = await loadPublicKey(options.peer, '--peer');
    if (privateKey.kind.split('-')[0] !== publicKey.kind.split('-')[0]) {
      throw usageError('--key and --peer must be keys of the same family (both EC or both RSA)');
    }
    const message = new SecureMessage(privateKey, publicKey);
    await runTransform(options, t, (input) => operation(message, input));
  } finally {
    privateKey.fill(0);
  }
}

export function encrypt(options: PairOptions): Promise<void> {
  return pairCommand(options, ENCRYPT, (m, input) => m.encrypt(input));
}

export function decrypt(options: PairOptions): Promise<void> {
  return pairCommand(options, DECRYPT, (m, input) => m.decrypt(input));
}
