/**
 * The server's Themis EC identity key pair, used by the tutorial protocol's
 * Secure Session. Generated on first start and kept in the data directory
 * (private key file mode 0600); its public key is printed at start so
 * clients can pin it.
 *
 * @module
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { KeyPair, PrivateKey, PublicKey, SecureMessageSign, SecureMessageVerify } from '@parley/themis';
import { equalBytes } from '@parley/themis/hazmat';

const PRIVATE_FILE = 'server-key.private';
const PUBLIC_FILE = 'server-key.public';
/** The public key of a pair being created, until its private key is safely written. */
const PENDING_PUBLIC_FILE = 'server-key.public.pending';

/**
 * The key pair published with the Themis "mobile websocket example" tutorial
 * (cossacklabs/mobile-websocket-example `server/server.rb`; the same pair is in
 * the Themis repository's `tests/objcthemis/objthemis/SecureSessionTests.m`).
 * Anyone can read it: use it only to test the unmodified demo apps.
 */
export const TUTORIAL_DEMO_PRIVATE_KEY_B64 = 'UkVDMgAAAC1JhwRrAPIGB33HHFmhjzn8lIE/nsW6cG+TCI3jhYJb+D/Gnwvf';
export const TUTORIAL_DEMO_PUBLIC_KEY_B64 = 'VUVDMgAAAC11WDPUAhLfH+nqSBHh+XGOJBHL/cCjbtasiLZEwpokhO5QTD6g';

export function demoKeyPair(): KeyPair {
  return new KeyPair(
    new PrivateKey(Buffer.from(TUTORIAL_DEMO_PRIVATE_KEY_B64, 'base64')),
    new PublicKey(Buffer.from(TUTORIAL_DEMO_PUBLIC_KEY_B64, 'base64')),
  );
}

/**
 * Load the key pair from `dataDir`, creating it on first start.
 *
 * The key pair is the server's identity: clients pin the public key, so a
 * start never replaces or invents one once either file exists. A public key
 * file that is missing or does not belong to the private key stops the start
 * with a clear error, and so does a public key without its private key (a
 * lost or uncopied private file: making a new pair would quietly break every
 * pinned client). Creating is crash-safe: the public key is written under a
 * pending name, then the private key, then the pending file is renamed into
 * place. A crash before the private key exists leaves nothing anyone saw (the
 * next start makes a new pair); a crash after it leaves the pending public
 * key, which the next start checks against the private key and puts in place.
 */
export function loadOrCreateServerKey(dataDir: string): { keyPair: KeyPair; created: boolean } {
  mkdirSync(dataDir, { recursive: true });
  const privPath = join(dataDir, PRIVATE_FILE);
  const pubPath = join(dataDir, PUBLIC_FILE);
  const pendingPath = join(dataDir, PENDING_PUBLIC_FILE);
  if (existsSync(privPath)) {
    if (!existsSync(pubPath) && existsSync(pendingPath)) {
      // The last step of a creation that a crash interrupted (checked below like any pair).
      const pending = loadPair(privPath, pendingPath);
      renameSync(pendingPath, pubPath);
      return { keyPair: pending, created: true };
    }
    if (!existsSync(pubPath)) {
      throw new Error(`${pubPath} is missing next to ${privPath}: restore it (or remove both files to make the server a new identity, which every pinned client will refuse)`);
    }
    return { keyPair: loadPair(privPath, pubPath), created: false };
  }
  if (existsSync(pubPath)) {
    throw new Error(`${privPath} is missing next to ${pubPath}: restore it — clients pin this public key, and a new key pair would break every one of them (remove ${pubPath} too only to make the server a new identity)`);
  }
  const keyPair = new KeyPair();
  writeAtomically(pendingPath, keyPair.publicKey, 0o644);
  writeAtomically(privPath, keyPair.privateKey, 0o600);
  renameSync(pendingPath, pubPath);
  return { keyPair, created: true };
}

/** The pair in two files, checked to be one Themis EC key pair. */
function loadPair(privPath: string, pubPath: string): KeyPair {
  let keyPair: KeyPair;
  try {
    keyPair = new KeyPair(new PrivateKey(readFileSync(privPath)), new PublicKey(readFileSync(pubPath)));
  } catch (e) {
    throw new Error(`${privPath} / ${pubPath}: not a Themis EC key pair (${e instanceof Error ? e.message : String(e)}); restore the files (clients pin the public key)`);
  }
  if (!belongTogether(keyPair)) {
    throw new Error(`${pubPath} is not the public key of ${privPath}: restore the right file (clients pin the public key)`);
  }
  return keyPair;
}

/** Whether the public key verifies what the private key signs. */
function belongTogether(keyPair: KeyPair): boolean {
  const probe = randomBytes(32);
  try {
    const signed = new SecureMessageSign(keyPair.privateKey).sign(probe);
    return equalBytes(new SecureMessageVerify(keyPair.publicKey).verify(signed), probe);
  } catch {
    return false;
  }
}

function writeAtomically(path: string, data: Uint8Array, mode: number): void {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

const TOKEN_SECRET_FILE = 'token-secret';

/** The HMAC secret for the server's own access tokens, created on first start (mode 0600). */
/**
 * The first value for the access-token signing secret, which lives in the
 * store (shared by every process on one database). A secret that an earlier
 * version kept in the data directory is taken over, so tokens it issued stay
 * valid; otherwise a new random one.
 */
export function tokenSecretSeed(dataDir: string): Uint8Array {
  const path = join(dataDir, TOKEN_SECRET_FILE);
  if (existsSync(path)) {
    const s = readFileSync(path);
    if (s.length >= 32) return new Uint8Array(s);
  }
  return new Uint8Array(randomBytes(32));
}
