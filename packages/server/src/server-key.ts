/**
 * The server's Themis EC identity key pair, used by the tutorial protocol's
 * Secure Session. Generated on first start and kept in the data directory
 * (private key file mode 0600); its public key is printed at start so
 * clients can pin it.
 *
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { KeyPair, PrivateKey, PublicKey } from '@parley/themis';

const PRIVATE_FILE = 'server-key.private';
const PUBLIC_FILE = 'server-key.public';

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

/** Load the key pair from `dataDir`, creating it on first start. */
export function loadOrCreateServerKey(dataDir: string): { keyPair: KeyPair; created: boolean } {
  mkdirSync(dataDir, { recursive: true });
  const privPath = join(dataDir, PRIVATE_FILE);
  const pubPath = join(dataDir, PUBLIC_FILE);
  if (existsSync(privPath) && existsSync(pubPath)) {
    return { keyPair: new KeyPair(new PrivateKey(readFileSync(privPath)), new PublicKey(readFileSync(pubPath))), created: false };
  }
  const keyPair = new KeyPair();
  writeFileSync(privPath, keyPair.privateKey, { mode: 0o600 });
  chmodSync(privPath, 0o600);
  writeFileSync(pubPath, keyPair.publicKey);
  return { keyPair, created: true };
}

const TOKEN_SECRET_FILE = 'token-secret';

/** The HMAC secret for the server's own access tokens, created on first start (mode 0600). */
export function loadOrCreateTokenSecret(dataDir: string): Uint8Array {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, TOKEN_SECRET_FILE);
  if (existsSync(path)) {
    const s = readFileSync(path);
    if (s.length >= 32) return new Uint8Array(s);
  }
  const secret = new Uint8Array(randomBytes(32));
  writeFileSync(path, secret, { mode: 0o600 });
  chmodSync(path, 0o600);
  return secret;
}
