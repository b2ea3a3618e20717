/**
 * Where the `parley themis` tools take keys from. A key source is one of
 *
 * - `<file>`: a file holding the raw Themis key bytes (as `keygen` writes them);
 * - `env:VAR`: an environment variable holding the key in base64;
 * - `base64:…`: the key in base64 on the command line — **public keys only**,
 *   because the command line of a process is visible to other users (`ps`).
 *
 * Keys are checked for their kind before use: a public key where a private
 * one is needed (or the reverse) and an asymmetric key used as a symmetric
 * one are refused with a message that names the option, never the bytes.
 *
 * @module
 */
import { PrivateKey, PublicKey, SymmetricKey } from '@parley/themis';
import { usageError } from './cli-error.ts';
import { decodeBase64, readFileBounded } from './io.ts';
import { formatSize, MAX_KEY_BYTES } from './limits.ts';

const ENV_PREFIX = 'env:';
const BASE64_PREFIX = 'base64:';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Role = 'symmetric' | 'private' | 'public';

/** Reads the bytes a key source names. `option` (e.g. `--key`) is used in messages. */
async function readKeyBytes(source: string, option: string, role: Role): Promise<Uint8Array> {
  let bytes: Uint8Array;
  if (source.startsWith(ENV_PREFIX)) {
    const name = source.slice(ENV_PREFIX.length);
    if (!ENV_NAME.test(name)) throw usageError(`${option}: ${JSON.stringify(name)} is not an environment variable name`);
    const value = process.env[name];
    if (value === undefined) throw usageError(`${option}: environment variable ${name} is not set`);
    if (value.length > MAX_KEY_BYTES * 2) throw usageError(`${option}: environment variable ${name} is larger than the ${formatSize(MAX_KEY_BYTES)} key limit`);
    const decoded = decodeBase64(value);
    if (decoded === null) throw usageError(`${option}: environment variable ${name} does not hold a base64 key`);
    bytes = decoded;
  } else if (source.startsWith(BASE64_PREFIX)) {
    if (role !== 'public') {
      throw usageError(`${option}: secret keys are not accepted on the command line (other users can see it, e.g. with ps); use a key file or env:VAR`);
    }
    const text = source.slice(BASE64_PREFIX.length);
    const decoded = text.length > MAX_KEY_BYTES * 2 ? null : decodeBase64(text);
    if (decoded === null) throw usageError(`${option}: the ${BASE64_PREFIX} value is not valid base64`);
    bytes = decoded;
  } else {
    bytes = await readFileBounded(source, MAX_KEY_BYTES, `${option} key file`);
    // A key file holds raw bytes (as keygen writes them); base64 text in one is surely keygen's
    // printed output saved to a file, and would be taken byte for byte as a different key.
    if (looksLikeBase64Text(bytes)) {
      throw usageError(`${option}: ${source} holds base64 text, not raw key bytes; decode it into the file (base64 -d) or pass it as env:VAR`);
    }
  }
  if (bytes.length === 0) throw usageError(`${option}: the key is empty`);
  if (bytes.length > MAX_KEY_BYTES) throw usageError(`${option}: the key is larger than the ${formatSize(MAX_KEY_BYTES)} limit`);
  return bytes;
}

/** Whether `bytes` is base64 text of at least 16 bytes, with at most a line break after it. */
function looksLikeBase64Text(bytes: Uint8Array): boolean {
  let text = new TextDecoder('latin1').decode(bytes);
  text = text.replace(/\r?\n$/, '');
  if (text.length < 24 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return false;
  const decoded = decodeBase64(text);
  return decoded !== null && decoded.length >= 16;
}

function parses(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch {
    return false;
  }
}

/** A symmetric key for Secure Cell: any bytes, except a Themis asymmetric key (surely a mix-up). */
export async function loadSymmetricKey(source: string, option: string): Promise<SymmetricKey> {
  const bytes = await readKeyBytes(source, option, 'symmetric');
  try {
    if (parses(() => new PublicKey(bytes))) {
      throw usageError(`${option} holds a Themis public key, not a symmetric key (make one with: parley themis keygen --type symmetric)`);
    }
    if (parses(() => new PrivateKey(bytes))) {
      throw usageError(`${option} holds a Themis private key, not a symmetric key (make one with: parley themis keygen --type symmetric)`);
    }
    return new SymmetricKey(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** A Themis private key (EC or RSA). */
export async function loadPrivateKey(source: string, option: string): Promise<PrivateKey> {
  const bytes = await readKeyBytes(source, option, 'private');
  try {
    return new PrivateKey(bytes);
  } catch {
    if (parses(() => new PublicKey(bytes))) throw usageError(`${option} holds a public key; a private key (the .priv file) is needed here`);
    throw usageError(`${option} is not a valid Themis private key`);
  } finally {
    bytes.fill(0);
  }
}

/** A Themis public key (EC or RSA). */
export async function loadPublicKey(source: string, option: string): Promise<PublicKey> {
  const bytes = await readKeyBytes(source, option, 'public');
  try {
    return new PublicKey(bytes);
  } catch {
    if (parses(() => new PrivateKey(bytes))) {
      throw usageError(`${option} holds a PRIVATE key; give the public key (the .pub file) and keep the private key secret`);
    }
    throw usageError(`${option} is not a valid Themis public key`);
  } finally {
    bytes.fill(0);
  }
}
