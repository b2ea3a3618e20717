/**
 * Every constant in src/limits.ts that bounds attacker-controlled input,
 * tested at its edge: the last accepted value and the first refused one.
 * Where Themis itself has no bound (it trusts the header), the real peer is
 * shown to accept the value we refuse, so the divergence is deliberate and
 * visible; where the constant describes what Themis writes, the expected
 * value is read from a cell the real peer wrote.
 *
 * Costly edges are reached without paying for them: PBKDF2 is intercepted
 * (see `withPbkdf2Intercepted`) to show which count the parser let through.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  KeyPair,
  PrivateKey,
  PublicKey,
  SecureCellContextImprint,
  SecureCellSeal,
  SecureCellTokenProtect,
  SecureMessage,
  SecureMessageSign,
  SecureMessageVerify,
} from '../src/index.ts';
import { backend, encryptWithPassphraseIterations, limits, soterKdf, writeContainer } from '../src/hazmat.ts';
import { loadPeer, type Peer } from './_peer.ts';
import {
  concat,
  expectThemisError,
  expectThemisErrorAsync,
  Pbkdf2Intercepted,
  peerBytes,
  peerOutcome,
  peerRejects,
  readU32LE,
  utf8,
  widenIvAndTag,
  withPbkdf2Intercepted,
  withU32LE,
} from './_hostile.ts';

const KEY = utf8('limits test master key');
const MSG = utf8('limits');
const PASS = 'limits passphrase';

let peer: Peer;
before(async () => {
  peer = await loadPeer();
});

const passphrase = () => SecureCellSeal.withPassphrase(PASS);
const peerPassphrase = () => peer.SecureCellSeal.withPassphrase(PASS);
const cellWith = (iterations: number) => encryptWithPassphraseIterations(utf8(PASS), MSG, new Uint8Array(0), iterations);
/** Offset of the iteration count in a canonical passphrase cell (spec §3.5). */
const ITERATIONS_AT = 48;

/** What PBKDF2 count the parser lets through for this cell, without running PBKDF2. */
async function countReachingPbkdf2(cell: Uint8Array, useAsync = false): Promise<number> {
  return withPbkdf2Intercepted(async () => {
    try {
      if (useAsync) await passphrase().decryptAsync(cell);
      else passphrase().decrypt(cell);
    } catch (e) {
      if (e instanceof Pbkdf2Intercepted) return e.iterations;
      throw e;
    }
    assert.fail('decryption finished without calling PBKDF2');
  });
}

/**
 * A passphrase Seal with any salt length, built from the primitives as spec
 * §3.5 describes (not through our cell code), so salt lengths our encryptor
 * never writes can be tested. The peer decrypting it shows it is well formed.
 */
function passphraseCellWithSalt(salt: Uint8Array, iterations: number): Uint8Array {
  const prekey = backend.pbkdf2Sha256(utf8(PASS), salt, iterations, 32);
  const m = new Uint8Array(4);
  new DataView(m.buffer).setUint32(0, MSG.length, true);
  const dk = soterKdf(prekey, 'Themis secure cell message key', [m], 32);
  const nonce = backend.randomBytes(12);
  const { ciphertext, tag } = backend.aesGcmEncrypt(dk, nonce, MSG, new Uint8Array(0));
  const header = new Uint8Array(20);
  const dv = new DataView(header.buffer);
  dv.setUint32(0, 0x41010100, true);
  dv.setUint32(4, 12, true);
  dv.setUint32(8, 16, true);
  dv.setUint32(12, MSG.length, true);
  dv.setUint32(16, 6 + salt.length, true);
  const kdf = new Uint8Array(6);
  new DataView(kdf.buffer).setUint32(0, iterations, true);
  new DataView(kdf.buffer).setUint16(4, salt.length, true);
  return concat(header, nonce, tag, kdf, salt, ciphertext);
}

describe('PBKDF2 iteration count from a passphrase header', () => {
  test(`PBKDF2_ITERATIONS_MAX + 1 (${limits.PBKDF2_ITERATIONS_MAX + 1}) is LIMIT_EXCEEDED before PBKDF2 runs`, async () => {
    const cell = withU32LE(cellWith(10), ITERATIONS_AT, limits.PBKDF2_ITERATIONS_MAX + 1);
    await withPbkdf2Intercepted(async () => {
      expectThemisError(() => passphrase().decrypt(cell), 'LIMIT_EXCEEDED', 'sync');
      await expectThemisErrorAsync(() => passphrase().decryptAsync(cell), 'LIMIT_EXCEEDED', 'async');
    });
  });

  test(`PBKDF2_ITERATIONS_MAX (${limits.PBKDF2_ITERATIONS_MAX}) passes the parser and reaches PBKDF2 with exactly that count`, async () => {
    // Running 10 million iterations for real would take seconds natively and minutes in pure JS,
    // so PBKDF2 is intercepted: the count it receives is the one the header carried.
    const cell = withU32LE(cellWith(10), ITERATIONS_AT, limits.PBKDF2_ITERATIONS_MAX);
    assert.equal(await countReachingPbkdf2(cell), limits.PBKDF2_ITERATIONS_MAX);
    assert.equal(await countReachingPbkdf2(cell, true), limits.PBKDF2_ITERATIONS_MAX);
  });

  test(`PBKDF2_ITERATIONS_MIN (${limits.PBKDF2_ITERATIONS_MIN}) is accepted and decrypts, here and in the peer`, () => {
    const cell = cellWith(limits.PBKDF2_ITERATIONS_MIN);
    assert.equal(readU32LE(cell, ITERATIONS_AT), limits.PBKDF2_ITERATIONS_MIN);
    assert.deepEqual(passphrase().decrypt(cell), MSG);
    assert.deepEqual(peerBytes(() => peerPassphrase().decrypt(cell), 'peer decrypts a 1-iteration cell'), MSG);
  });

  test('PBKDF2_ITERATIONS_MIN − 1 (0) is rejected before PBKDF2, as the peer rejects it', async () => {
    const cell = withU32LE(cellWith(limits.PBKDF2_ITERATIONS_MIN), ITERATIONS_AT, limits.PBKDF2_ITERATIONS_MIN - 1);
    await withPbkdf2Intercepted(() => {
      expectThemisError(() => passphrase().decrypt(cell), 'DECRYPT_FAILED', '0 iterations');
    });
    assert.ok(peerRejects(() => peerPassphrase().decrypt(cell)), 'peer rejects 0 iterations');
  });

  test('a small count in the header is honoured: 1000 decrypts, the same cell relabelled 1001 does not', () => {
    const cell = cellWith(1000);
    assert.deepEqual(passphrase().decrypt(cell), MSG);
    assert.deepEqual(peerBytes(() => peerPassphrase().decrypt(cell), 'peer decrypts a 1000-iteration cell'), MSG);
    // The parse passes (DECRYPT_FAILED, not LIMIT_EXCEEDED): the key derived with 1001 iterations is wrong.
    const relabelled = withU32LE(cell, ITERATIONS_AT, 1001);
    expectThemisError(() => passphrase().decrypt(relabelled), 'DECRYPT_FAILED', '1001');
    assert.ok(peerRejects(() => peerPassphrase().decrypt(relabelled)), 'peer rejects the relabelled cell');
  });

  test('PBKDF2_ITERATIONS_DEFAULT is what Themis 0.15 writes (read from a cell the peer made)', () => {
    const peerCell = peerBytes(() => peerPassphrase().encrypt(MSG), 'peer encrypts');
    assert.equal(readU32LE(peerCell, ITERATIONS_AT), limits.PBKDF2_ITERATIONS_DEFAULT);
    const ours = passphrase().encrypt(MSG);
    assert.equal(readU32LE(ours, ITERATIONS_AT), readU32LE(peerCell, ITERATIONS_AT));
  });
});

describe('PBKDF2 salt length from a passphrase header', () => {
  test('PBKDF2_SALT_LENGTH is the salt length Themis writes (read from a cell the peer made)', () => {
    const peerCell = peerBytes(() => peerPassphrase().encrypt(MSG), 'peer encrypts');
    const saltLen = new DataView(peerCell.buffer).getUint16(52, true);
    assert.equal(saltLen, limits.PBKDF2_SALT_LENGTH);
    assert.equal(readU32LE(peerCell, 16), 6 + limits.PBKDF2_SALT_LENGTH, 'kdf_len');
    const ours = passphrase().encrypt(MSG);
    assert.deepEqual(ours.subarray(52, 54), peerCell.subarray(52, 54));
    assert.deepEqual(ours.subarray(16, 20), peerCell.subarray(16, 20));
  });

  test(`PBKDF2_SALT_LENGTH_MAX (${limits.PBKDF2_SALT_LENGTH_MAX}) is accepted and decrypts, here and in the peer`, () => {
    const salt = backend.randomBytes(limits.PBKDF2_SALT_LENGTH_MAX);
    const cell = passphraseCellWithSalt(salt, 10);
    assert.deepEqual(peerBytes(() => peerPassphrase().decrypt(cell), 'peer decrypts the constructed cell'), MSG);
    assert.deepEqual(passphrase().decrypt(cell), MSG);
  });

  test('PBKDF2_SALT_LENGTH_MAX + 1 is refused before PBKDF2 (Themis has no bound: the peer accepts it)', async () => {
    const salt = backend.randomBytes(limits.PBKDF2_SALT_LENGTH_MAX + 1);
    const cell = passphraseCellWithSalt(salt, 10);
    assert.deepEqual(peerBytes(() => peerPassphrase().decrypt(cell), 'peer decrypts the constructed cell'), MSG);
    await withPbkdf2Intercepted(() => {
      expectThemisError(() => passphrase().decrypt(cell), 'DECRYPT_FAILED', `salt ${salt.length}`);
    });
  });
});

describe('Secure Cell IV and tag field lengths', () => {
  const cases = () => {
    const sealed = SecureCellSeal.withKey(KEY).encrypt(MSG);
    const tp = SecureCellTokenProtect.withKey(KEY).encrypt(MSG);
    const pc = cellWith(10);
    return [
      {
        mode: 'Seal',
        widen: (iv: number, tag: number) => widenIvAndTag(sealed, 16, iv, tag),
        ours: (c: Uint8Array) => SecureCellSeal.withKey(KEY).decrypt(c),
        theirs: (c: Uint8Array) => peer.SecureCellSeal.withKey(KEY).decrypt(c),
      },
      {
        mode: 'Token Protect',
        widen: (iv: number, tag: number) => widenIvAndTag(tp.token, 16, iv, tag),
        ours: (c: Uint8Array) => SecureCellTokenProtect.withKey(KEY).decrypt(tp.data, c),
        theirs: (c: Uint8Array) => peer.SecureCellTokenProtect.withKey(KEY).decrypt(tp.data, c),
      },
      {
        mode: 'Seal with passphrase',
        widen: (iv: number, tag: number) => widenIvAndTag(pc, 20, iv, tag),
        ours: (c: Uint8Array) => passphrase().decrypt(c),
        theirs: (c: Uint8Array) => peerPassphrase().decrypt(c),
      },
    ];
  };

  test(`iv_len = CELL_IV_LENGTH_MAX (${limits.CELL_IV_LENGTH_MAX}) and tag_len = CELL_TAG_LENGTH_MAX (${limits.CELL_TAG_LENGTH_MAX}) decrypt, here and in the peer`, () => {
    // The first 12 IV bytes are the real nonce and the first 16 tag bytes the real tag; Themis
    // uses exactly those, so the widened cell is the same cell to both implementations.
    for (const c of cases()) {
      for (const [iv, tag] of [
        [limits.CELL_IV_LENGTH_MAX, 16],
        [12, limits.CELL_TAG_LENGTH_MAX],
        [limits.CELL_IV_LENGTH_MAX, limits.CELL_TAG_LENGTH_MAX],
      ] as [number, number][]) {
        const wide = c.widen(iv, tag);
        assert.deepEqual(peerBytes(() => c.theirs(wide), `peer, ${c.mode} iv ${iv} tag ${tag}`), MSG);
        assert.deepEqual(c.ours(wide), MSG, `${c.mode} iv ${iv} tag ${tag}`);
      }
    }
  });

  test('one past either maximum is refused (Themis has no bound: the peer accepts it)', () => {
    for (const c of cases()) {
      for (const [iv, tag] of [
        [limits.CELL_IV_LENGTH_MAX + 1, 16],
        [12, limits.CELL_TAG_LENGTH_MAX + 1],
      ] as [number, number][]) {
        const wide = c.widen(iv, tag);
        assert.deepEqual(peerBytes(() => c.theirs(wide), `peer, ${c.mode} iv ${iv} tag ${tag}`), MSG);
        expectThemisError(() => c.ours(wide), 'DECRYPT_FAILED', `${c.mode} iv ${iv} tag ${tag}`);
      }
    }
  });
});

describe('message length', () => {
  test('MESSAGE_LENGTH_MAX + 1 bytes are LIMIT_EXCEEDED on every encrypting call, before any work', async (t) => {
    // A typed array of 4 GiB is reserved lazily (zero pages, no resident memory) and every
    // call below checks the length before reading a byte. Exactly MESSAGE_LENGTH_MAX would
    // have to be encrypted for real to show it is accepted, so that edge is not tested.
    let big: Uint8Array;
    try {
      big = new Uint8Array(limits.MESSAGE_LENGTH_MAX + 1);
    } catch {
      t.skip('this platform cannot reserve a 4 GiB typed array');
      return;
    }
    const ec = new KeyPair();
    const peerKey = new KeyPair();
    const cases: [string, () => unknown][] = [
      ['SecureCellSeal#encrypt', () => SecureCellSeal.withKey(KEY).encrypt(big)],
      ['SecureCellTokenProtect#encrypt', () => SecureCellTokenProtect.withKey(KEY).encrypt(big)],
      ['SecureCellContextImprint#encrypt', () => SecureCellContextImprint.withKey(KEY).encrypt(big, MSG)],
      ['passphrase #encrypt', () => passphrase().encrypt(big)],
      ['SecureMessage#encrypt', () => new SecureMessage(ec.privateKey, peerKey.publicKey).encrypt(big)],
      ['SecureMessageSign#sign', () => new SecureMessageSign(ec.privateKey).sign(big)],
    ];
    await withPbkdf2Intercepted(async () => {
      for (const [name, call] of cases) expectThemisError(call, 'LIMIT_EXCEEDED', name);
      await expectThemisErrorAsync(() => passphrase().encryptAsync(big), 'LIMIT_EXCEEDED', 'passphrase #encryptAsync');
    });
  });
});

describe('RSA key sizes', () => {
  test('KeyPair.generateRSA refuses sizes outside RSA_BITS_ALLOWED with INVALID_ARGUMENT', () => {
    assert.deepEqual([...limits.RSA_BITS_ALLOWED], [1024, 2048, 4096]);
    for (const bits of [512, 1023, 1025, 3072, 8192, 0, -1024, Number.NaN, 2048.5]) {
      expectThemisError(() => KeyPair.generateRSA(bits), 'INVALID_ARGUMENT', `${bits} bits`);
    }
    expectThemisError(() => KeyPair.generateRSA('2048' as never), 'INVALID_ARGUMENT', "'2048'");
  });

  test('KeyPair.generateRSA(1024) works and the peer accepts the keys', () => {
    const pair = KeyPair.generateRSA(1024);
    assert.equal(pair.privateKey.kind, 'rsa-private');
    assert.equal(String.fromCharCode(...pair.publicKey.subarray(0, 4)), 'URA1');
    // Sizes of 1024-bit containers per the Themis layout: 12 + 4.5k + 4 and 12 + k + 4, k = 128.
    assert.equal(pair.privateKey.length, 12 + 576 + 4);
    assert.equal(pair.publicKey.length, 12 + 128 + 4);
    assert.ok(peerOutcome(() => new peer.PrivateKey(pair.privateKey)).ok, 'peer PrivateKey');
    assert.ok(peerOutcome(() => new peer.PublicKey(pair.publicKey)).ok, 'peer PublicKey');
    const signed = new SecureMessageSign(pair.privateKey).sign(MSG);
    const verified = peerBytes(() => new peer.SecureMessageVerify(new peer.PublicKey(pair.publicKey)).verify(signed), 'peer verifies');
    assert.deepEqual(verified, MSG);
  });

  test(`RSA_BITS_MAX (${limits.RSA_BITS_MAX}): an 8192-bit public key container parses, here and in the peer`, () => {
    assert.equal(limits.RSA_BITS_MAX, 8192);
    // Structure only: an odd 8192-bit modulus with its top byte set and e = 65537. Not a real key,
    // which is all parsing can check for a public key; generating a real one would take minutes.
    const n = backend.randomBytes(limits.RSA_BITS_MAX / 8);
    n[0] = (n[0] as number) | 0x80;
    n[n.length - 1] = (n[n.length - 1] as number) | 1;
    const key = writeContainer('URA8', concat(n, new Uint8Array([0, 1, 0, 1])));
    assert.ok(peerOutcome(() => new peer.PublicKey(key)).ok, 'peer accepts URA8');
    assert.equal(new PublicKey(key).kind, 'rsa-public');
    new SecureMessageVerify(new PublicKey(key));
  });

  test('no RSA container size beyond RSA_BITS_MAX is recognised', () => {
    // The size character is the only place a size is declared; 8 (8192) is the largest Themis defines.
    const n = backend.randomBytes(2 * (limits.RSA_BITS_MAX / 8));
    n[0] = (n[0] as number) | 0x80;
    n[n.length - 1] = (n[n.length - 1] as number) | 1;
    for (const tag of ['URA9', 'URA6', 'URA3', 'URA0']) {
      expectThemisError(() => new PublicKey(writeContainer(tag, concat(n, new Uint8Array([0, 1, 0, 1])))), 'INVALID_KEY', tag);
    }
    // A 16384-bit modulus under the largest tag is a length mismatch.
    expectThemisError(() => new PublicKey(writeContainer('URA8', concat(n, new Uint8Array([0, 1, 0, 1])))), 'INVALID_KEY', 'URA8 with 16384 bits');
    expectThemisError(() => new PrivateKey(writeContainer('RRA9', new Uint8Array(64))), 'INVALID_KEY', 'RRA9');
  });
});
