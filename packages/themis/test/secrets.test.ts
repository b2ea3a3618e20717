/**
 * Secrets hygiene: no ordinary way of turning a key-holding object into text
 * (string conversion, JSON, `util.inspect` with and without hidden
 * properties, `console.log`-style formatting) shows its secret bytes in any
 * common rendering — decimal lists, hex, base64 — not even in part.
 *
 * The detector is checked first against renderings that do leak, so a pass
 * here means "not found", not "not looked for".
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import util from 'node:util';
import {
  KeyPair,
  PrivateKey,
  SecureCellContextImprint,
  SecureCellSeal,
  SecureCellTokenProtect,
  SecureMessage,
  SecureMessageSign,
  SymmetricKey,
} from '../src/index.ts';
import { backend, parsePrivateKey, parsePublicKey } from '../src/hazmat.ts';
import { flipBit, utf8 } from './_hostile.ts';

/** Leaks shorter than this many bytes are not looked for (8 random bytes never match by chance). */
const WINDOW = 8;

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
function base64(b: Uint8Array): string {
  return btoa(String.fromCharCode(...b));
}

/**
 * Every string that would show at least WINDOW consecutive secret bytes, in the
 * forms a rendering may use. Renderings are compared with whitespace removed and
 * lower-cased, so column-aligned decimal lists and spaced hex are caught too.
 */
function needlesFor(secret: Uint8Array): string[] {
  const needles = new Set<string>();
  for (let i = 0; i + WINDOW <= secret.length; i++) {
    const w = secret.subarray(i, i + WINDOW);
    needles.add(hex(w));
    needles.add(Array.from(w).join(','));
    // 6 bytes = 8 base64 characters with no padding; starting at every offset covers
    // every alignment the secret may have inside a larger encoded buffer.
    if (i + 6 <= secret.length) {
      const b = base64(secret.subarray(i, i + 6));
      needles.add(b.toLowerCase());
      needles.add(b.replace(/\+/g, '-').replace(/\//g, '_').toLowerCase());
    }
  }
  return [...needles];
}

function normalise(s: string): string {
  return s.replace(/\s+/g, '').toLowerCase();
}

/** The ways application code commonly turns a value into text. */
function renderings(x: unknown): [string, string][] {
  const tryString = (f: () => unknown): string => {
    try {
      return String(f());
    } catch (e) {
      return `<threw ${(e as Error).name}>`;
    }
  };
  const out: [string, string][] = [
    ['String(x)', tryString(() => String(x))],
    ['`${x}`', tryString(() => `${x as string}`)],
    ["'' + x", tryString(() => '' + (x as string))],
    ['String([x])', tryString(() => String([x]))],
    ['JSON.stringify(x)', tryString(() => JSON.stringify(x))],
    ['JSON.stringify({x})', tryString(() => JSON.stringify({ x }))],
    ['JSON.stringify([x])', tryString(() => JSON.stringify([x]))],
    ['util.inspect(x)', util.inspect(x)],
    ['util.inspect(x, {showHidden, depth: 5})', util.inspect(x, { showHidden: true, depth: 5 })],
    ['util.inspect({x}, {showHidden, depth: 5})', util.inspect({ x }, { showHidden: true, depth: 5 })],
    ['util.inspect(x, {depth: Infinity, maxArrayLength: Infinity})', util.inspect(x, { depth: Infinity, maxArrayLength: Infinity })],
    ["util.format('%o', x)", util.format('%o', x)],
    ["util.format('%O', x)", util.format('%O', x)],
    ["util.format('%s', x)", util.format('%s', x)],
    ["util.format('%j', x)", util.format('%j', x)],
    ['util.format(x)', util.format(x)],
    ["util.format('%o', {x})", util.format('%o', { x })],
    ['[x].toLocaleString()', tryString(() => [x].toLocaleString())],
  ];
  return out;
}

/** Names of the renderings of `x` that show any of `secrets` (or a `texts` string). */
function leaks(x: unknown, secrets: Uint8Array[], texts: string[] = []): string[] {
  const needles = secrets.flatMap(needlesFor);
  const textNeedles = texts.map((t) => normalise(t));
  const found: string[] = [];
  for (const [how, text] of renderings(x)) {
    const n = normalise(text);
    const hit = needles.find((needle) => n.includes(needle)) ?? textNeedles.find((t) => n.includes(t));
    if (hit !== undefined) found.push(`${how} shows "${hit}" in: ${text.slice(0, 160).replace(/\n/g, ' ')}`);
  }
  return found;
}

describe('the leak detector', () => {
  test('finds secrets in renderings that do show them', () => {
    const secret = backend.randomBytes(32);
    // Plain bytes: util.inspect prints column-aligned decimals, JSON an index object.
    assert.ok(leaks(Uint8Array.from(secret), [secret]).length >= 5);
    // A secret embedded at an odd offset of a larger buffer, shown as base64 and as spaced hex.
    const embedded = new Uint8Array(45);
    embedded.set(secret, 13);
    assert.ok(leaks({ toString: () => base64(embedded) }, [secret]).some((l) => l.startsWith('String(x)')));
    assert.ok(leaks({ toString: () => hex(embedded).replace(/(..)/g, '$1 ').toUpperCase() }, [secret]).length > 0);
    // A partial leak (one window) is caught; a text secret is caught.
    assert.ok(leaks(Array.from(secret.subarray(3, 3 + WINDOW)), [secret]).length > 0);
    assert.ok(leaks({ p: 'my passphrase' }, [], ['my passphrase']).length > 0);
    // And it stays quiet on unrelated data.
    assert.deepEqual(leaks(backend.randomBytes(64), [secret]), []);
  });
});

describe('no rendering shows secret bytes', () => {
  let ec: KeyPair;
  let other: KeyPair;
  let ecD: Uint8Array;
  let rsa: KeyPair;
  let rsaParts: Uint8Array[];
  before(() => {
    ec = new KeyPair();
    other = new KeyPair();
    const parsed = parsePrivateKey('PrivateKey', ec.privateKey);
    assert.ok(parsed.kind === 'ec-private');
    ecD = Uint8Array.from(parsed.d);
    rsa = KeyPair.generateRSA(1024);
    const r = parsePrivateKey('PrivateKey', rsa.privateKey);
    assert.ok(r.kind === 'rsa-private');
    rsaParts = [r.c.d, r.c.p, r.c.q, r.c.dp, r.c.dq, r.c.qi].map((v) => Uint8Array.from(v));
  });

  /** The private key's container bytes and its raw scalar(s), copied out as plain arrays. */
  const ecSecrets = () => [Uint8Array.from(ec.privateKey), ecD];
  const rsaSecrets = () => [Uint8Array.from(rsa.privateKey).subarray(12, 12 + 128 + 64 * 5), ...rsaParts];

  test('SymmetricKey', () => {
    const key = new SymmetricKey();
    assert.deepEqual(leaks(key, [Uint8Array.from(key)]), []);
    const given = new SymmetricKey(backend.randomBytes(48));
    assert.deepEqual(leaks(given, [Uint8Array.from(given)]), []);
  });

  test('PrivateKey (EC and RSA)', () => {
    assert.deepEqual(leaks(ec.privateKey, ecSecrets()), []);
    assert.deepEqual(leaks(new PrivateKey(Uint8Array.from(ec.privateKey)), ecSecrets()), []);
    assert.deepEqual(leaks(rsa.privateKey, rsaSecrets()), []);
  });

  test('KeyPair (EC and RSA)', () => {
    assert.deepEqual(leaks(ec, ecSecrets()), []);
    assert.deepEqual(leaks(rsa, rsaSecrets()), []);
  });

  test('SecureCellSeal with a key', () => {
    const key = backend.randomBytes(32);
    const cell = SecureCellSeal.withKey(key);
    cell.decrypt(cell.encrypt(utf8('warm up')));
    assert.deepEqual(leaks(cell, [key]), []);
  });

  test('SecureCellSeal with a passphrase (string and bytes)', () => {
    const phrase = 'a passphrase nobody should ever print 4c1d';
    const cell = SecureCellSeal.withPassphrase(phrase);
    assert.deepEqual(leaks(cell, [utf8(phrase)], [phrase, phrase.slice(0, 12), phrase.slice(-12)]), []);
    const bytes = backend.randomBytes(24);
    assert.deepEqual(leaks(SecureCellSeal.withPassphrase(bytes), [bytes]), []);
  });

  test('SecureCellTokenProtect', () => {
    const key = backend.randomBytes(32);
    const cell = SecureCellTokenProtect.withKey(key);
    const { data, token } = cell.encrypt(utf8('warm up'));
    cell.decrypt(data, token);
    assert.deepEqual(leaks(cell, [key]), []);
  });

  test('SecureCellContextImprint', () => {
    const key = backend.randomBytes(32);
    const cell = SecureCellContextImprint.withKey(key);
    cell.encrypt(utf8('warm up'), utf8('ctx'));
    assert.deepEqual(leaks(cell, [key]), []);
  });

  test('SecureMessage (EC, after use: it caches the ECDH shared secret; and RSA)', () => {
    const sm = new SecureMessage(ec.privateKey, other.publicKey);
    sm.encrypt(utf8('warm up'));
    const pub = parsePublicKey('PublicKey', other.publicKey);
    assert.ok(pub.kind === 'ec-public');
    const shared = backend.p256Ecdh(ecD, pub.point);
    assert.ok(shared !== null);
    assert.deepEqual(leaks(sm, [...ecSecrets(), shared]), []);
    const viaPair = new SecureMessage(ec);
    assert.deepEqual(leaks(viaPair, ecSecrets()), []);
    const rsaSm = new SecureMessage(rsa.privateKey, rsa.publicKey);
    rsaSm.encrypt(utf8('warm up'));
    assert.deepEqual(leaks(rsaSm, rsaSecrets()), []);
  });

  test('SecureMessageSign (EC and RSA)', () => {
    const signer = new SecureMessageSign(ec.privateKey);
    signer.sign(utf8('warm up'));
    assert.deepEqual(leaks(signer, ecSecrets()), []);
    assert.deepEqual(leaks(new SecureMessageSign(rsa.privateKey), rsaSecrets()), []);
  });

  test('errors about a damaged private key do not quote it', () => {
    // A bit flipped in the scalar: the CRC no longer matches. The error must not echo the bytes.
    const damaged = flipBit(ec.privateKey, 20 * 8);
    let caught: unknown;
    try {
      new PrivateKey(damaged);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof Error);
    assert.deepEqual(leaks(caught, [...ecSecrets(), Uint8Array.from(damaged).subarray(13)]), []);
    assert.deepEqual(leaks(String((caught as Error).stack), [...ecSecrets(), Uint8Array.from(damaged).subarray(13)]), []);
  });

  test('errors from a failed decryption do not quote the key or the ciphertext', () => {
    const key = backend.randomBytes(32);
    const sealed = SecureCellSeal.withKey(backend.randomBytes(32)).encrypt(backend.randomBytes(40));
    let caught: unknown;
    try {
      SecureCellSeal.withKey(key).decrypt(sealed);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof Error);
    assert.deepEqual(leaks(caught, [key, sealed]), []);
  });
});
