/**
 * Hostile input to every decoder and entry point: each must fail with a
 * `ThemisError` carrying a specific code — never another exception, never a
 * hang, never work or allocation sized by an attacker's length field.
 *
 * "Never allocates hugely" is asserted by behaviour, not by measuring memory
 * (which is not reliable): the lying-length cases below would need gigabytes
 * or billions of PBKDF2 iterations if a length were trusted, so their simply
 * completing with the right code is the evidence; for the PBKDF2 count, the
 * backend's PBKDF2 is intercepted to show it is never even called.
 *
 * Where Themis has a defined behaviour, the real peer (wasm-themis) is asked
 * the same question, so "rejected" here means "rejected by Themis too".
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
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
  SecureSession,
  SymmetricKey,
  type ThemisErrorCodeName,
} from '../src/index.ts';
import { encryptWithPassphraseIterations, limits, readContainer, writeContainer } from '../src/hazmat.ts';
import { loadPeer, type Peer } from './_peer.ts';
import {
  assertThemisError,
  concat,
  expectThemisError,
  expectThemisErrorAsync,
  flipBit,
  peerBytes,
  peerOutcome,
  peerRejects,
  readU32LE,
  TYPE_EC_SIGNED,
  TYPE_RSA_SIGNED,
  utf8,
  verifyRejectionCodes,
  widenIvAndTag,
  withPbkdf2Intercepted,
  withU16LE,
  withU32BE,
  withU32LE,
} from './_hostile.ts';

const KEY = utf8('malformed-input test master key');
const MSG = utf8('a message that the hostile inputs are made from');
const CTX = utf8('context');
const PASS = 'correct horse battery staple';
/** Cheap passphrase cells: the count is honoured from the header, so tests need not pay for 314,110. */
const FEW_ITERATIONS = 16;

let peer: Peer;
let ec: KeyPair;
let ec2: KeyPair;
let rsa: KeyPair;

before(async () => {
  peer = await loadPeer();
  ec = new KeyPair();
  ec2 = new KeyPair();
  // One small RSA pair for the key-kind cases (1024 bits keeps the pure backend fast).
  rsa = KeyPair.generateRSA(1024);
});

const seal = () => SecureCellSeal.withKey(KEY);
const token = () => SecureCellTokenProtect.withKey(KEY);
const imprint = () => SecureCellContextImprint.withKey(KEY);
const passphrase = () => SecureCellSeal.withPassphrase(PASS);
const passphraseCell = (iterations = FEW_ITERATIONS) => encryptWithPassphraseIterations(utf8(PASS), MSG, new Uint8Array(0), iterations);
const peerSeal = () => peer.SecureCellSeal.withKey(KEY);
const peerSecureMessage = (priv: Uint8Array, pub: Uint8Array) =>
  new peer.SecureMessage(new peer.KeyPair(new peer.PrivateKey(priv), new peer.PublicKey(pub)));

describe('wrong argument types are INVALID_ARGUMENT', () => {
  // Values that are not bytes. `undefined` is left out where it means "absent" (optional context, new SymmetricKey()).
  const notBytes: [string, unknown][] = [
    ['number', 42],
    ['string', 'bytes?'],
    ['null', null],
    ['plain array', [1, 2, 3]],
    ['plain object', { length: 3 }],
    ['Uint16Array', new Uint16Array([1, 2, 3])],
  ];
  // Contexts: null/undefined mean "no context" for Seal and Token Protect, so only the rest are wrong.
  const notContext = notBytes.filter(([name]) => name !== 'null');

  // Each entry: a name and a call taking the bad value; `as never` because wrong types are the point.
  const entryPoints = (): [string, (bad: unknown) => unknown][] => {
    const s = seal();
    const t = token();
    const tp = t.encrypt(MSG);
    const sm = new SecureMessage(ec.privateKey, ec2.publicKey);
    return [
      ['SecureCellSeal.withKey', (x) => SecureCellSeal.withKey(x as never)],
      ['SecureCellSeal#encrypt message', (x) => s.encrypt(x as never)],
      ['SecureCellSeal#decrypt message', (x) => s.decrypt(x as never)],
      ['SecureCellSeal.withPassphrase#decrypt message', (x) => passphrase().decrypt(x as never)],
      ['SecureCellSeal.withPassphrase#encrypt message', (x) => passphrase().encrypt(x as never)],
      ['SecureCellTokenProtect.withKey', (x) => SecureCellTokenProtect.withKey(x as never)],
      ['SecureCellTokenProtect#encrypt message', (x) => t.encrypt(x as never)],
      ['SecureCellTokenProtect#decrypt data', (x) => t.decrypt(x as never, tp.token)],
      ['SecureCellTokenProtect#decrypt token', (x) => t.decrypt(tp.data, x as never)],
      ['SecureCellContextImprint.withKey', (x) => SecureCellContextImprint.withKey(x as never)],
      ['SecureCellContextImprint#encrypt message', (x) => imprint().encrypt(x as never, CTX)],
      ['SecureCellContextImprint#decrypt message', (x) => imprint().decrypt(x as never, CTX)],
      ['SymmetricKey', (x) => new SymmetricKey(x as never)],
      ['PrivateKey', (x) => new PrivateKey(x as never)],
      ['PublicKey', (x) => new PublicKey(x as never)],
      ['KeyPair private key', (x) => new KeyPair(x as never, ec.publicKey)],
      ['KeyPair public key', (x) => new KeyPair(ec.privateKey, x as never)],
      ['SecureMessage first key', (x) => new SecureMessage(x as never, ec.publicKey)],
      ['SecureMessage second key', (x) => new SecureMessage(ec.privateKey, x as never)],
      ['SecureMessage#encrypt', (x) => sm.encrypt(x as never)],
      ['SecureMessage#decrypt', (x) => sm.decrypt(x as never)],
      ['SecureMessageSign', (x) => new SecureMessageSign(x as never)],
      ['SecureMessageSign#sign', (x) => new SecureMessageSign(ec.privateKey).sign(x as never)],
      ['SecureMessageVerify', (x) => new SecureMessageVerify(x as never)],
      ['SecureMessageVerify#verify', (x) => new SecureMessageVerify(ec.publicKey).verify(x as never)],
    ];
  };

  test('every entry point rejects number, string, null, plain array, plain object and Uint16Array', () => {
    for (const [name, call] of entryPoints()) {
      for (const [what, bad] of notBytes) expectThemisError(() => call(bad), 'INVALID_ARGUMENT', `${name}(${what})`);
    }
  });

  test('missing required arguments are INVALID_ARGUMENT', () => {
    expectThemisError(() => SecureCellSeal.withKey(undefined as never), 'INVALID_ARGUMENT', 'Seal.withKey()');
    expectThemisError(() => seal().decrypt(undefined as never), 'INVALID_ARGUMENT', 'Seal#decrypt()');
    expectThemisError(() => token().decrypt(MSG, undefined as never), 'INVALID_ARGUMENT', 'TokenProtect#decrypt(data)');
    expectThemisError(() => new PrivateKey(undefined as never), 'INVALID_ARGUMENT', 'PrivateKey()');
    expectThemisError(() => new KeyPair(...([ec.privateKey] as unknown as [])), 'INVALID_ARGUMENT', 'KeyPair(private only)');
    expectThemisError(() => new SecureMessage(ec.privateKey as never), 'INVALID_ARGUMENT', 'SecureMessage(one key)');
    expectThemisError(() => new SecureMessage(...([] as unknown as [KeyPair])), 'INVALID_ARGUMENT', 'SecureMessage()');
    expectThemisError(() => new KeyPair(...([undefined, undefined] as unknown as [])), 'INVALID_ARGUMENT', 'KeyPair(undefined, undefined)');
    expectThemisError(() => new KeyPair(...([ec.privateKey, ec.publicKey, ec.publicKey] as unknown as [])), 'INVALID_ARGUMENT', 'KeyPair(three keys)');
    expectThemisError(() => new SecureMessage(...([ec.privateKey, ec2.publicKey, 1] as unknown as [KeyPair])), 'INVALID_ARGUMENT', 'SecureMessage(three arguments)');
    expectThemisError(() => new SecureMessage(...([ec, undefined] as unknown as [KeyPair])), 'INVALID_ARGUMENT', 'SecureMessage(keyPair, undefined)');
  });

  test('contexts of a wrong type are INVALID_ARGUMENT on every mode', () => {
    const sealed = seal().encrypt(MSG);
    const tp = token().encrypt(MSG);
    for (const [what, bad] of notContext) {
      expectThemisError(() => seal().encrypt(MSG, bad as never), 'INVALID_ARGUMENT', `Seal#encrypt context ${what}`);
      expectThemisError(() => seal().decrypt(sealed, bad as never), 'INVALID_ARGUMENT', `Seal#decrypt context ${what}`);
      expectThemisError(() => token().decrypt(tp.data, tp.token, bad as never), 'INVALID_ARGUMENT', `TokenProtect#decrypt context ${what}`);
      expectThemisError(() => passphrase().decrypt(passphraseCell(), bad as never), 'INVALID_ARGUMENT', `passphrase#decrypt context ${what}`);
      expectThemisError(() => token().encrypt(MSG, bad as never), 'INVALID_ARGUMENT', `TokenProtect#encrypt context ${what}`);
    }
    // Context Imprint requires a context: null and undefined are wrong types there too.
    for (const [what, bad] of [...notBytes, ['undefined', undefined] as [string, unknown]]) {
      expectThemisError(() => imprint().encrypt(MSG, bad as never), 'INVALID_ARGUMENT', `Imprint#encrypt context ${what}`);
    }
  });

  test('a passphrase that is neither a string nor bytes is INVALID_ARGUMENT', () => {
    for (const [what, bad] of notBytes.filter(([name]) => name !== 'string')) {
      expectThemisError(() => SecureCellSeal.withPassphrase(bad as never), 'INVALID_ARGUMENT', `withPassphrase(${what})`);
    }
  });

  test('async passphrase calls reject their promise (they do not throw synchronously)', async () => {
    for (const [what, bad] of notBytes) {
      let decrypting: Promise<unknown> | undefined;
      let encrypting: Promise<unknown> | undefined;
      assert.doesNotThrow(() => {
        decrypting = passphrase().decryptAsync(bad as never);
        encrypting = passphrase().encryptAsync(bad as never);
      }, `decryptAsync/encryptAsync(${what}) threw synchronously`);
      await expectThemisErrorAsync(() => decrypting as Promise<unknown>, 'INVALID_ARGUMENT', `decryptAsync(${what})`);
      await expectThemisErrorAsync(() => encrypting as Promise<unknown>, 'INVALID_ARGUMENT', `encryptAsync(${what})`);
    }
  });
});

describe('empty inputs are EMPTY_INPUT', () => {
  const empty = new Uint8Array(0);

  test('keys, passphrases, messages, tokens and required contexts', () => {
    const tp = token().encrypt(MSG);
    const cases: [string, () => unknown][] = [
      ['Seal.withKey(empty)', () => SecureCellSeal.withKey(empty)],
      ['Seal.withKey(empty ArrayBuffer)', () => SecureCellSeal.withKey(new ArrayBuffer(0) as never)],
      ['Seal#encrypt(empty)', () => seal().encrypt(empty)],
      ['Seal#decrypt(empty)', () => seal().decrypt(empty)],
      ["withPassphrase('')", () => SecureCellSeal.withPassphrase('')],
      ['withPassphrase(empty bytes)', () => SecureCellSeal.withPassphrase(empty)],
      ['passphrase#encrypt(empty)', () => passphrase().encrypt(empty)],
      ['passphrase#decrypt(empty)', () => passphrase().decrypt(empty)],
      ['TokenProtect.withKey(empty)', () => SecureCellTokenProtect.withKey(empty)],
      ['TokenProtect#encrypt(empty)', () => token().encrypt(empty)],
      ['TokenProtect#decrypt(empty data)', () => token().decrypt(empty, tp.token)],
      ['TokenProtect#decrypt(empty token)', () => token().decrypt(tp.data, empty)],
      ['Imprint.withKey(empty)', () => SecureCellContextImprint.withKey(empty)],
      ['Imprint#encrypt(empty message)', () => imprint().encrypt(empty, CTX)],
      ['Imprint#encrypt(empty context)', () => imprint().encrypt(MSG, empty)],
      ['Imprint#decrypt(empty context)', () => imprint().decrypt(MSG, empty)],
      ['SymmetricKey(empty)', () => new SymmetricKey(empty)],
      ['PrivateKey(empty)', () => new PrivateKey(empty)],
      ['PublicKey(empty)', () => new PublicKey(empty)],
      ['SecureMessage#encrypt(empty)', () => new SecureMessage(ec.privateKey, ec2.publicKey).encrypt(empty)],
      ['SecureMessage#decrypt(empty)', () => new SecureMessage(ec.privateKey, ec2.publicKey).decrypt(empty)],
      ['SecureMessageSign#sign(empty)', () => new SecureMessageSign(ec.privateKey).sign(empty)],
      ['SecureMessageVerify#verify(empty)', () => new SecureMessageVerify(ec.publicKey).verify(empty)],
    ];
    for (const [name, call] of cases) expectThemisError(call, 'EMPTY_INPUT', name);
  });

  test('async passphrase calls reject empty input', async () => {
    await expectThemisErrorAsync(() => passphrase().encryptAsync(empty), 'EMPTY_INPUT', 'encryptAsync(empty)');
    await expectThemisErrorAsync(() => passphrase().decryptAsync(empty), 'EMPTY_INPUT', 'decryptAsync(empty)');
  });

  test('the peer rejects the same empty inputs', () => {
    const p = peerSeal();
    assert.ok(peerRejects(() => peer.SecureCellSeal.withKey(empty)), 'peer: empty key');
    assert.ok(peerRejects(() => p.encrypt(empty)), 'peer: empty message');
    assert.ok(peerRejects(() => p.decrypt(empty)), 'peer: empty cell');
    assert.ok(peerRejects(() => peer.SecureCellSeal.withPassphrase('')), 'peer: empty passphrase');
    assert.ok(peerRejects(() => peer.SecureCellContextImprint.withKey(KEY).encrypt(MSG, empty)), 'peer: empty imprint context');
    assert.ok(peerRejects(() => new peer.SecureMessageVerify(new peer.PublicKey(ec.publicKey)).verify(empty)), 'peer: empty signed message');
  });
});

describe('random bytes', () => {
  const junk = fc.uint8Array({ minLength: 1, maxLength: 600 });

  test('every decoder rejects arbitrary bytes with its own code', () => {
    const s = seal();
    const t = token();
    const sm = new SecureMessage(ec.privateKey, ec2.publicKey);
    const verifier = new SecureMessageVerify(ec.publicKey);
    fc.assert(
      fc.property(junk, junk, (a, b) => {
        expectThemisError(() => s.decrypt(a), 'DECRYPT_FAILED', 'Seal#decrypt');
        expectThemisError(() => t.decrypt(a, b), 'DECRYPT_FAILED', 'TokenProtect#decrypt');
        expectThemisError(() => sm.decrypt(a), 'DECRYPT_FAILED', 'SecureMessage#decrypt');
        expectThemisError(() => verifier.verify(a), verifyRejectionCodes(a, TYPE_EC_SIGNED), 'SecureMessageVerify#verify');
        expectThemisError(() => new PrivateKey(a), 'INVALID_KEY', 'PrivateKey');
        expectThemisError(() => new PublicKey(a), 'INVALID_KEY', 'PublicKey');
      }),
      { numRuns: 300 },
    );
  });

  test('passphrase decryption rejects arbitrary bytes (PBKDF2 never runs for them)', async () => {
    await withPbkdf2Intercepted(() => {
      const p = passphrase();
      fc.assert(
        fc.property(junk, (a) => {
          expectThemisError(() => p.decrypt(a), 'DECRYPT_FAILED', 'passphrase#decrypt');
        }),
        { numRuns: 300 },
      );
    });
  });

  test('arbitrary bytes behind a real header prefix are rejected', () => {
    const s = seal();
    const sealed = s.encrypt(MSG);
    const t = token();
    const tp = t.encrypt(MSG);
    const sm = new SecureMessage(ec2.privateKey, ec.publicKey);
    const wire = new SecureMessage(ec.privateKey, ec2.publicKey).encrypt(MSG);
    const signed = new SecureMessageSign(ec.privateKey).sign(MSG);
    const verifier = new SecureMessageVerify(ec.publicKey);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.nat(), (tail, cutSeed) => {
        // A proper prefix of `b` of at least `min` bytes (and fewer than `max`), then junk whose
        // first byte differs from the byte it replaces, so the result is never the original.
        const keep = (b: Uint8Array, min: number, max: number): Uint8Array => {
          const n = min + (cutSeed % (max - min));
          const junk = Uint8Array.from(tail);
          if (junk.length > 0) junk[0] = (b[n] as number) ^ 0xff;
          return concat(b.subarray(0, n), junk);
        };
        expectThemisError(() => s.decrypt(keep(sealed, 1, 44)), 'DECRYPT_FAILED', 'Seal prefix + junk');
        expectThemisError(() => t.decrypt(tp.data, keep(tp.token, 1, 44)), 'DECRYPT_FAILED', 'token prefix + junk');
        // Keep the EC message header honest about the length, so the inner Seal parser is reached.
        const body = keep(wire, 8, 52);
        expectThemisError(() => sm.decrypt(withU32LE(body, 4, body.length)), 'DECRYPT_FAILED', 'EC message prefix + junk');
        const forged = keep(signed, 1, 12);
        expectThemisError(() => verifier.verify(forged), verifyRejectionCodes(forged, TYPE_EC_SIGNED), 'signed prefix + junk');
      }),
      { numRuns: 300 },
    );
  });

  test('structured Seal headers with arbitrary field values are rejected', () => {
    const s = seal();
    const u32 = fc.oneof(
      fc.constantFrom(0, 1, 11, 12, 13, 15, 16, 17, 20, 255, 256, 257, 0x7fffffff, 0x80000000, 0xffffffff),
      fc.integer({ min: 0, max: 0xffffffff }),
    );
    const alg = fc.oneof(fc.constantFrom(0x40010100, 0x400100c0, 0x40010080, 0x41010100, 0x40000100, 0x20010100), u32);
    fc.assert(
      fc.property(alg, u32, u32, u32, fc.uint8Array({ maxLength: 400 }), fc.boolean(), (a, ivLen, tagLen, m, body, consistent) => {
        // With `consistent`, m matches the bytes after the header and the declared IV and tag, so parsing goes deep.
        const header = new Uint8Array(16);
        const dv = new DataView(header.buffer);
        dv.setUint32(0, a, true);
        dv.setUint32(4, ivLen, true);
        dv.setUint32(8, tagLen, true);
        const rest = body.length - (ivLen + tagLen);
        dv.setUint32(12, consistent && rest > 0 ? rest : m, true);
        expectThemisError(() => s.decrypt(concat(header, body)), 'DECRYPT_FAILED', `alg ${a.toString(16)} iv ${ivLen} tag ${tagLen}`);
      }),
      { numRuns: 500 },
    );
  });

  test('structured passphrase headers with arbitrary field values are rejected', async () => {
    // The iteration count is always one we control (never a costly random one): it sits exactly
    // where the declared iv_len and tag_len put it. PBKDF2 is intercepted anyway.
    const p = passphrase();
    const len = fc.oneof(fc.constantFrom(0, 11, 12, 13, 16, 17, 32, 256, 257, 0xffffffff), fc.integer({ min: 0, max: 300 }));
    const iterations = fc.oneof(fc.constantFrom(0, 1, limits.PBKDF2_ITERATIONS_MAX, limits.PBKDF2_ITERATIONS_MAX + 1, 0xffffffff), fc.nat());
    const alg = fc.constantFrom(0x41010100, 0x410100c0, 0x41010080, 0x40010100, 0x41000100);
    await withPbkdf2Intercepted(() => {
      fc.assert(
        fc.property(alg, len, len, fc.integer({ min: 0, max: 0xffffffff }), iterations, fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 100 }), (a, ivLen, tagLen, kdfLen, iters, saltLen, tail) => {
          const iv = new Uint8Array(ivLen <= 300 ? ivLen : 0);
          const tag = new Uint8Array(tagLen <= 300 ? tagLen : 0);
          const kdf = new Uint8Array(6);
          new DataView(kdf.buffer).setUint32(0, iters, true);
          new DataView(kdf.buffer).setUint16(4, saltLen, true);
          const header = new Uint8Array(20);
          const dv = new DataView(header.buffer);
          dv.setUint32(0, a, true);
          dv.setUint32(4, ivLen, true);
          dv.setUint32(8, tagLen, true);
          dv.setUint32(12, Math.max(1, tail.length), true);
          dv.setUint32(16, kdfLen, true);
          const cell = concat(header, iv, tag, kdf, tail.length > 0 ? tail : new Uint8Array(1));
          try {
            p.decrypt(cell);
            assert.fail('a forged passphrase cell decrypted');
          } catch (e) {
            // Reaching PBKDF2 is fine (the header was plausible); its count must then be within limits.
            if (e instanceof Error && e.name === 'Pbkdf2Intercepted') {
              const used = (e as Error & { iterations: number }).iterations;
              assert.ok(used >= limits.PBKDF2_ITERATIONS_MIN && used <= limits.PBKDF2_ITERATIONS_MAX, `PBKDF2 reached with ${used} iterations`);
              return;
            }
            assertThemisError(e, iters > limits.PBKDF2_ITERATIONS_MAX ? ['LIMIT_EXCEEDED', 'DECRYPT_FAILED'] : 'DECRYPT_FAILED', 'forged passphrase cell');
          }
        }),
        { numRuns: 500 },
      );
    });
  });

  test('structured key containers: valid CRC, arbitrary tag, size and payload', () => {
    const tag = fc.constantFrom('REC2', 'UEC2', 'RRA1', 'URA1', 'RRA2', 'URA8', 'RRA9', 'REC3', 'UEC5', 'XYZ1', 'rec2');
    const sizeFix = fc.constantFrom('exact', 'plus1', 'minus1', 'zero', 'eleven', 'huge', 'badcrc');
    fc.assert(
      fc.property(tag, fc.uint8Array({ maxLength: 200 }), sizeFix, (t, payload, fix) => {
        let c = writeContainer(t, payload);
        if (fix === 'plus1') c = withU32BE(c, 4, c.length + 1);
        if (fix === 'minus1') c = withU32BE(c, 4, c.length - 1);
        if (fix === 'zero') c = withU32BE(c, 4, 0);
        if (fix === 'eleven') c = withU32BE(c, 4, 11);
        if (fix === 'huge') c = withU32BE(c, 4, 0xffffffff);
        if (fix === 'badcrc') c = flipBit(c, 8 * 8);
        const allowed: ThemisErrorCodeName[] = ['INVALID_KEY', 'WRONG_KEY_KIND', 'NOT_SUPPORTED'];
        // Random payloads can occasionally be valid keys (a random X on the curve, a random scalar < n).
        for (const [name, parse] of [
          ['PrivateKey', () => new PrivateKey(c)],
          ['PublicKey', () => new PublicKey(c)],
        ] as [string, () => unknown][]) {
          try {
            parse();
            assert.equal(fix, 'exact', `${name} accepted a container with size fix ${fix}`);
          } catch (e) {
            assertThemisError(e, allowed, `${name}(${t}, ${payload.length} bytes, ${fix})`);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('truncation at every length', () => {
  test('every proper prefix of every wire format is rejected with its code', async () => {
    const sealed = seal().encrypt(MSG, CTX);
    const tp = token().encrypt(MSG, CTX);
    const wire = new SecureMessage(ec.privateKey, ec2.publicKey).encrypt(MSG);
    const rsaWire = new SecureMessage(rsa.privateKey, rsa.publicKey).encrypt(MSG);
    const signed = new SecureMessageSign(ec.privateKey).sign(MSG);
    const rsaSigned = new SecureMessageSign(rsa.privateKey).sign(MSG);
    const pc = passphraseCell();
    const ecReader = new SecureMessage(ec2.privateKey, ec.publicKey);
    const rsaReader = new SecureMessage(rsa.privateKey, rsa.publicKey);
    const ecVerifier = new SecureMessageVerify(ec.publicKey);
    const rsaVerifier = new SecureMessageVerify(rsa.publicKey);
    const code = (n: number, c: ThemisErrorCodeName): ThemisErrorCodeName => (n === 0 ? 'EMPTY_INPUT' : c);
    for (let n = 0; n < sealed.length; n++) expectThemisError(() => seal().decrypt(sealed.subarray(0, n), CTX), code(n, 'DECRYPT_FAILED'), `seal[0,${n})`);
    for (let n = 0; n < tp.token.length; n++) {
      expectThemisError(() => token().decrypt(tp.data, tp.token.subarray(0, n), CTX), code(n, 'DECRYPT_FAILED'), `token[0,${n})`);
    }
    for (let n = 0; n < tp.data.length; n++) {
      expectThemisError(() => token().decrypt(tp.data.subarray(0, n), tp.token, CTX), code(n, 'DECRYPT_FAILED'), `data[0,${n})`);
    }
    for (let n = 0; n < wire.length; n++) expectThemisError(() => ecReader.decrypt(wire.subarray(0, n)), code(n, 'DECRYPT_FAILED'), `EC message[0,${n})`);
    for (let n = 0; n < rsaWire.length; n++) expectThemisError(() => rsaReader.decrypt(rsaWire.subarray(0, n)), code(n, 'DECRYPT_FAILED'), `RSA message[0,${n})`);
    // A truncated signed message no longer holds the lengths its header declares: MALFORMED.
    const prefixCode = (n: number): ThemisErrorCodeName => code(n, 'MALFORMED');
    for (let n = 0; n < signed.length; n++) expectThemisError(() => ecVerifier.verify(signed.subarray(0, n)), prefixCode(n), `EC signed[0,${n})`);
    for (let n = 0; n < rsaSigned.length; n++) {
      expectThemisError(() => rsaVerifier.verify(rsaSigned.subarray(0, n)), prefixCode(n), `RSA signed[0,${n})`);
    }
    for (const k of [ec.privateKey, rsa.privateKey]) {
      for (let n = 0; n < k.length; n++) expectThemisError(() => new PrivateKey(k.subarray(0, n)), code(n, 'INVALID_KEY'), `private key[0,${n})`);
    }
    for (const k of [ec.publicKey, rsa.publicKey]) {
      for (let n = 0; n < k.length; n++) expectThemisError(() => new PublicKey(k.subarray(0, n)), code(n, 'INVALID_KEY'), `public key[0,${n})`);
    }
    // Truncated passphrase cells fail while parsing, before any PBKDF2.
    await withPbkdf2Intercepted(() => {
      for (let n = 0; n < pc.length; n++) expectThemisError(() => passphrase().decrypt(pc.subarray(0, n)), code(n, 'DECRYPT_FAILED'), `passphrase cell[0,${n})`);
    });
  });
});

describe('length fields that lie', () => {
  test('Seal: message length, iv_len and tag_len far beyond the buffer', () => {
    const sealed = seal().encrypt(MSG);
    const cases: [string, Uint8Array][] = [
      ['m = 0xFFFFFFFF', withU32LE(sealed, 12, 0xffffffff)],
      ['m = 0x80000000', withU32LE(sealed, 12, 0x80000000)],
      ['m = 0', withU32LE(sealed, 12, 0)],
      ['m = real + 1', withU32LE(sealed, 12, MSG.length + 1)],
      ['iv_len = 0xFFFFFFFF', withU32LE(sealed, 4, 0xffffffff)],
      ['iv_len = 0x7FFFFFFF', withU32LE(sealed, 4, 0x7fffffff)],
      ['tag_len = 0xFFFFFFFF', withU32LE(sealed, 8, 0xffffffff)],
      ['iv_len + tag_len wrap to 28 in u32', withU32LE(withU32LE(sealed, 4, 0xfffffff0), 8, 44)],
    ];
    for (const [name, cell] of cases) {
      expectThemisError(() => seal().decrypt(cell), 'DECRYPT_FAILED', name);
      assert.ok(peerRejects(() => peerSeal().decrypt(cell)), `peer rejects too: ${name}`);
    }
  });

  test('Token Protect: token message length and field lengths that lie', () => {
    const tp = token().encrypt(MSG);
    for (const [name, tok] of [
      ['m = 0xFFFFFFFF', withU32LE(tp.token, 12, 0xffffffff)],
      ['iv_len = 0xFFFFFFFF', withU32LE(tp.token, 4, 0xffffffff)],
      ['tag_len = 0xFFFFFFFF', withU32LE(tp.token, 8, 0xffffffff)],
    ] as [string, Uint8Array][]) {
      expectThemisError(() => token().decrypt(tp.data, tok), 'DECRYPT_FAILED', name);
    }
  });

  test('passphrase: 0xFFFFFFFF PBKDF2 iterations is LIMIT_EXCEEDED, and PBKDF2 is never called', async () => {
    const cell = withU32LE(passphraseCell(), 48, 0xffffffff);
    await withPbkdf2Intercepted(async () => {
      // If the count were trusted, the intercepted PBKDF2 would throw Pbkdf2Intercepted instead.
      expectThemisError(() => passphrase().decrypt(cell), 'LIMIT_EXCEEDED', 'sync');
      await expectThemisErrorAsync(() => passphrase().decryptAsync(cell), 'LIMIT_EXCEEDED', 'async');
    });
  });

  test('passphrase: salt, KDF-context and message lengths that lie', async () => {
    const pc = passphraseCell();
    const cases: [string, Uint8Array][] = [
      ['salt_len = 0xFFFF', withU16LE(pc, 52, 0xffff)],
      ['salt_len = 17 (one past the salt)', withU16LE(pc, 52, 17)],
      ['salt_len = 1024 and kdf_len = 1030, beyond the buffer', withU32LE(withU16LE(pc, 52, 1024), 16, 1030)],
      ['kdf_len = 0xFFFFFFFF', withU32LE(pc, 16, 0xffffffff)],
      ['kdf_len = 0', withU32LE(pc, 16, 0)],
      ['kdf_len = 5', withU32LE(pc, 16, 5)],
      ['m = 0xFFFFFFFF', withU32LE(pc, 12, 0xffffffff)],
      ['iv_len = 0xFFFFFFFF', withU32LE(pc, 4, 0xffffffff)],
      ['tag_len = 0xFFFFFFFF', withU32LE(pc, 8, 0xffffffff)],
      ['iterations = 0', withU32LE(pc, 48, 0)],
    ];
    await withPbkdf2Intercepted(() => {
      for (const [name, cell] of cases) expectThemisError(() => passphrase().decrypt(cell), 'DECRYPT_FAILED', name);
    });
    for (const [name, cell] of cases) assert.ok(peerRejects(() => peer.SecureCellSeal.withPassphrase(PASS).decrypt(cell)), `peer rejects too: ${name}`);
  });

  test('Secure Message (EC encrypted): total length that does not match the buffer', () => {
    const wire = new SecureMessage(ec.privateKey, ec2.publicKey).encrypt(MSG);
    const reader = new SecureMessage(ec2.privateKey, ec.publicKey);
    const peerReader = peerSecureMessage(ec2.privateKey, ec.publicKey);
    assert.deepEqual(peerBytes(() => peerReader.decrypt(wire), 'peer decrypts the untouched message'), MSG);
    for (const total of [wire.length + 1, wire.length - 1, 8, 0, 0xffffffff]) {
      const bad = withU32LE(wire, 4, total);
      expectThemisError(() => reader.decrypt(bad), 'DECRYPT_FAILED', `total ${total}`);
      assert.ok(peerRejects(() => peerReader.decrypt(bad)), `peer rejects total ${total}`);
    }
    // Appending a byte and fixing the total still leaves the inner Seal inconsistent.
    const longer = concat(wire, new Uint8Array(1));
    expectThemisError(() => reader.decrypt(withU32LE(longer, 4, longer.length)), 'DECRYPT_FAILED', 'appended byte, total fixed');
  });

  test('Secure Message (RSA encrypted): total and key-block lengths that lie', () => {
    const wire = new SecureMessage(rsa.privateKey, rsa.publicKey).encrypt(MSG);
    const reader = new SecureMessage(rsa.privateKey, rsa.publicKey);
    for (const [name, bad] of [
      ['total + 1', withU32LE(wire, 4, wire.length + 1)],
      ['total 0xFFFFFFFF', withU32LE(wire, 4, 0xffffffff)],
      ['L = 0xFFFFFFFF', withU32LE(wire, 8, 0xffffffff)],
      ['L = 0', withU32LE(wire, 8, 0)],
      ['L = whole remainder', withU32LE(wire, 8, wire.length - 12)],
    ] as [string, Uint8Array][]) {
      expectThemisError(() => reader.decrypt(bad), 'DECRYPT_FAILED', name);
    }
  });

  test('signed messages: message and signature lengths that lie', () => {
    const signed = new SecureMessageSign(ec.privateKey).sign(MSG);
    const verifier = new SecureMessageVerify(ec.publicKey);
    const peerVerifier = new peer.SecureMessageVerify(new peer.PublicKey(ec.publicKey));
    for (const [name, bad] of [
      ['ml = 0xFFFFFFFF', withU32LE(signed, 4, 0xffffffff)],
      ['sl = 0xFFFFFFFF', withU32LE(signed, 8, 0xffffffff)],
      ['ml = sl = 0x80000000 (sum wraps in u32)', withU32LE(withU32LE(signed, 4, 0x80000000), 8, 0x80000000)],
      ['ml = 0', withU32LE(signed, 4, 0)],
      ['sl = 0', withU32LE(signed, 8, 0)],
      ['ml one short', withU32LE(signed, 4, MSG.length - 1)],
    ] as [string, Uint8Array][]) {
      expectThemisError(() => verifier.verify(bad), verifyRejectionCodes(bad, TYPE_EC_SIGNED), name);
      assert.ok(peerRejects(() => peerVerifier.verify(bad)), `peer rejects too: ${name}`);
    }
  });

  test('key containers: size field that lies', () => {
    for (const k of [ec.privateKey, ec.publicKey, rsa.privateKey, rsa.publicKey]) {
      for (const size of [0, 11, 12, k.length - 1, k.length + 1, 0x7fffffff, 0xffffffff]) {
        const bad = withU32BE(k, 4, size);
        const parse = k === ec.privateKey || k === rsa.privateKey ? () => new PrivateKey(bad) : () => new PublicKey(bad);
        expectThemisError(parse, 'INVALID_KEY', `${k.length}-byte key with size ${size}`);
      }
    }
  });
});

describe('signed messages compared with the peer', () => {
  test('a signed type other than EC or RSA: we refuse it, Themis only refuses the other family', () => {
    // Themis' verifier rejects a header type equal to the OTHER family's signed type and
    // otherwise verifies with the key it has (any 0x260426xx). The header is not signed,
    // so an attacker can set it; refusing unknown types is stricter and loses no honest message.
    const signed = new SecureMessageSign(ec.privateKey).sign(MSG);
    const peerVerifier = new peer.SecureMessageVerify(new peer.PublicKey(ec.publicKey));
    for (const type of [0x26042600, 0x26042621, 0x26042630, 0x260426ff]) {
      const odd = withU32LE(signed, 0, type);
      expectThemisError(() => new SecureMessageVerify(ec.publicKey).verify(odd), 'WRONG_KEY_KIND', `type 0x${type.toString(16)}`);
      assert.deepEqual(peerBytes(() => peerVerifier.verify(odd), `peer, type 0x${type.toString(16)}`), MSG, 'the peer accepts it');
    }
    const rsaTyped = withU32LE(signed, 0, TYPE_RSA_SIGNED);
    expectThemisError(() => new SecureMessageVerify(ec.publicKey).verify(rsaTyped), 'WRONG_KEY_KIND', 'RSA type, EC key');
    assert.ok(peerRejects(() => peerVerifier.verify(rsaTyped)), 'the peer refuses the other family');
  });

  test('legacy errorCode of every verification failure matches the peer', () => {
    // The numeric code is what wasm-themis users branch on; Themis returns INVALID_PARAMETER (12)
    // for some framing errors and FAIL (11) for others and for bad signatures.
    const signed = new SecureMessageSign(ec.privateKey).sign(MSG);
    const ours = new SecureMessageVerify(ec.publicKey);
    const theirs = new peer.SecureMessageVerify(new peer.PublicKey(ec.publicKey));
    const inputs: [string, Uint8Array][] = [];
    for (let n = 1; n < signed.length; n++) inputs.push([`truncated to ${n}`, signed.subarray(0, n)]);
    // Every length-field bit, then every 5th bit of the message and signature.
    for (let b = 32; b < signed.length * 8; b += b < 96 ? 1 : 5) inputs.push([`bit ${b} flipped`, flipBit(signed, b)]);
    for (const [off, v] of [[4, 0], [8, 0], [4, 0xffffffff], [8, 0xffffffff]] as [number, number][]) {
      inputs.push([`u32 at ${off} = ${v}`, withU32LE(signed, off, v)]);
    }
    const mismatches = new Map<string, string[]>();
    for (const [name, input] of inputs) {
      let mine: number | string = 'accepted';
      try {
        ours.verify(input);
      } catch (e) {
        mine = (e as { errorCode?: number }).errorCode ?? 'no errorCode';
      }
      const r = peerOutcome(() => theirs.verify(input));
      const peerCode = r.ok ? 'accepted' : (r.errorCode ?? 'no errorCode');
      if (mine !== peerCode) {
        const key = `ours ${String(mine)}, peer ${String(peerCode)}`;
        mismatches.set(key, [...(mismatches.get(key) ?? []), name]);
      }
    }
    const summary = [...mismatches].map(([k, names]) => `${k}: ${names.length} inputs, e.g. ${names.slice(0, 6).join('; ')}`);
    assert.deepEqual(summary, []);
  });
});

describe('key objects, not bytes', () => {
  // wasm-themis's Secure Message and Secure Session take its key classes only
  // (its own test "requires valid keys" passes raw bytes and expects a refusal).
  test('Secure Message and Secure Session refuse raw key bytes with INVALID_ARGUMENT, as the peer refuses them (12)', () => {
    const sk = Uint8Array.from(ec.privateKey);
    const pk = Uint8Array.from(ec2.publicKey);
    const cases: [string, () => unknown, () => unknown][] = [
      ['SecureMessage(bytes, bytes)', () => new SecureMessage(sk as never, pk as never), () => new peer.SecureMessage(sk, pk)],
      ['SecureMessage(private, bytes)', () => new SecureMessage(ec.privateKey, pk as never), () => new peer.SecureMessage(new peer.PrivateKey(sk), pk)],
      ['SecureMessageSign(bytes)', () => new SecureMessageSign(sk as never), () => new peer.SecureMessageSign(sk)],
      ['SecureMessageVerify(bytes)', () => new SecureMessageVerify(pk as never), () => new peer.SecureMessageVerify(pk)],
      ['SecureMessageVerify(ArrayBuffer)', () => new SecureMessageVerify(pk.slice().buffer as never), () => new peer.SecureMessageVerify(pk.slice().buffer)],
      ['SecureSession(id, bytes, callback)', () => new SecureSession(MSG, sk as never, () => null), () => new peer.SecureSession(MSG, sk, () => null)],
    ];
    for (const [name, ours, theirs] of cases) {
      expectThemisError(ours, 'INVALID_ARGUMENT', name);
      assert.deepEqual(peerOutcome(theirs), { ok: false, errorCode: 12 }, `peer: ${name}`);
    }
    // The same bytes as key objects work.
    const signed = new SecureMessageSign(new PrivateKey(sk)).sign(MSG);
    assert.deepEqual(new SecureMessageVerify(new PublicKey(Uint8Array.from(ec.publicKey))).verify(signed), MSG);
  });
});

describe('wrong key kind', () => {
  test('public key where a private key is expected, and vice versa', () => {
    const cases: [string, () => unknown][] = [
      ['PrivateKey(EC public)', () => new PrivateKey(ec.publicKey)],
      ['PrivateKey(RSA public)', () => new PrivateKey(rsa.publicKey)],
      ['PublicKey(EC private)', () => new PublicKey(ec.privateKey)],
      ['PublicKey(RSA private)', () => new PublicKey(rsa.privateKey)],
      ['SecureMessageSign(EC public)', () => new SecureMessageSign(ec.publicKey as never)],
      ['SecureMessageVerify(EC private)', () => new SecureMessageVerify(ec.privateKey as never)],
      ['SecureMessage(public, public)', () => new SecureMessage(ec.publicKey, ec2.publicKey as never)],
      ['SecureMessage(private, private)', () => new SecureMessage(ec.privateKey, ec2.privateKey as never)],
      ['KeyPair(public, public)', () => new KeyPair(ec.publicKey, ec.publicKey)],
    ];
    for (const [name, call] of cases) expectThemisError(call, 'WRONG_KEY_KIND', name);
    assert.ok(peerRejects(() => new peer.PrivateKey(ec.publicKey)), 'peer: PrivateKey(public)');
    assert.ok(peerRejects(() => new peer.PublicKey(ec.privateKey)), 'peer: PublicKey(private)');
  });

  test('an EC key with an RSA key', () => {
    expectThemisError(() => new SecureMessage(ec.privateKey, rsa.publicKey), 'WRONG_KEY_KIND', 'SecureMessage(EC private, RSA public)');
    expectThemisError(() => new SecureMessage(rsa.privateKey, ec.publicKey), 'WRONG_KEY_KIND', 'SecureMessage(RSA private, EC public)');
    expectThemisError(() => new KeyPair(ec.privateKey, rsa.publicKey), 'WRONG_KEY_KIND', 'KeyPair(EC private, RSA public)');
    expectThemisError(() => new KeyPair(rsa.privateKey, ec.publicKey), 'WRONG_KEY_KIND', 'KeyPair(RSA private, EC public)');
  });

  test('messages of the other key family are rejected', () => {
    const ecSigned = new SecureMessageSign(ec.privateKey).sign(MSG);
    const rsaSigned = new SecureMessageSign(rsa.privateKey).sign(MSG);
    expectThemisError(() => new SecureMessageVerify(rsa.publicKey).verify(ecSigned), 'WRONG_KEY_KIND', 'EC-signed to RSA verifier');
    expectThemisError(() => new SecureMessageVerify(ec.publicKey).verify(rsaSigned), 'WRONG_KEY_KIND', 'RSA-signed to EC verifier');
    assert.ok(peerRejects(() => new peer.SecureMessageVerify(new peer.PublicKey(ec.publicKey)).verify(rsaSigned)), 'peer: RSA-signed to EC verifier');
    const ecWire = new SecureMessage(ec.privateKey, ec2.publicKey).encrypt(MSG);
    const rsaWire = new SecureMessage(rsa.privateKey, rsa.publicKey).encrypt(MSG);
    expectThemisError(() => new SecureMessage(rsa.privateKey, rsa.publicKey).decrypt(ecWire), 'DECRYPT_FAILED', 'EC message to RSA reader');
    expectThemisError(() => new SecureMessage(ec2.privateKey, ec.publicKey).decrypt(rsaWire), 'DECRYPT_FAILED', 'RSA message to EC reader');
    // Signed given to decrypt, encrypted given to verify.
    expectThemisError(() => new SecureMessage(ec2.privateKey, ec.publicKey).decrypt(ecSigned), 'DECRYPT_FAILED', 'signed to decrypt');
    expectThemisError(() => new SecureMessageVerify(ec.publicKey).verify(ecWire), verifyRejectionCodes(ecWire, TYPE_EC_SIGNED), 'encrypted to verify');
  });

  test('a symmetric key is not an asymmetric key', () => {
    // Bytes that do not start with a key tag; a random SymmetricKey could, once in 2^22 runs.
    const sym = new SymmetricKey(new Uint8Array(32).fill(0x5a));
    expectThemisError(() => new PrivateKey(sym), 'INVALID_KEY', 'PrivateKey(symmetric)');
    expectThemisError(() => new PublicKey(sym), 'INVALID_KEY', 'PublicKey(symmetric)');
    // Secure Message takes key objects only, so a SymmetricKey is the wrong type of argument.
    expectThemisError(() => new SecureMessageSign(sym as never), 'INVALID_ARGUMENT', 'SecureMessageSign(symmetric)');
    expectThemisError(() => new SecureMessage(sym as never, ec.publicKey), 'INVALID_ARGUMENT', 'SecureMessage(symmetric, public)');
    expectThemisError(() => new SecureMessage(ec.publicKey, sym as never), 'INVALID_ARGUMENT', 'SecureMessage(public, symmetric)');
    expectThemisError(() => new SecureMessage(ec.privateKey, sym as never), 'INVALID_ARGUMENT', 'SecureMessage(private, symmetric)');
    assert.ok(peerRejects(() => new peer.PrivateKey(sym)), 'peer: PrivateKey(symmetric)');
  });

  test('P-384 and P-521 containers are NOT_SUPPORTED', () => {
    expectThemisError(() => new PrivateKey(writeContainer('REC3', new Uint8Array(49))), 'NOT_SUPPORTED', 'REC3');
    expectThemisError(() => new PublicKey(writeContainer('UEC5', concat(new Uint8Array([2]), new Uint8Array(66)))), 'NOT_SUPPORTED', 'UEC5');
  });
});

describe('Secure Cell header semantics', () => {
  test('a master-key cell given to passphrase decryption, and vice versa, is DECRYPT_FAILED', async () => {
    const keyCell = SecureCellSeal.withKey(utf8(PASS)).encrypt(MSG);
    const passCell = passphraseCell();
    await withPbkdf2Intercepted(() => {
      expectThemisError(() => passphrase().decrypt(keyCell), 'DECRYPT_FAILED', 'key cell to passphrase');
    });
    // Same secret bytes as the passphrase, so only the mode differs.
    expectThemisError(() => SecureCellSeal.withKey(utf8(PASS)).decrypt(passCell), 'DECRYPT_FAILED', 'passphrase cell to key');
    assert.ok(peerRejects(() => peer.SecureCellSeal.withPassphrase(PASS).decrypt(keyCell)), 'peer: key cell to passphrase');
    assert.ok(peerRejects(() => peer.SecureCellSeal.withKey(utf8(PASS)).decrypt(passCell)), 'peer: passphrase cell to key');
  });

  test('reserved alg bits set are rejected (each of the eight)', () => {
    const sealed = seal().encrypt(MSG);
    for (let bit = 0; bit < 32; bit++) {
      if (((1 << bit) & 0x00f0f000) === 0) continue;
      const bad = withU32LE(sealed, 0, (readU32LE(sealed, 0) | (1 << bit)) >>> 0);
      expectThemisError(() => seal().decrypt(bad), 'DECRYPT_FAILED', `reserved bit ${bit}`);
      assert.ok(peerRejects(() => peerSeal().decrypt(bad)), `peer rejects reserved bit ${bit}`);
    }
  });

  test('an alg padding nibble other than 1 is rejected, as by Themis', () => {
    // Themis picks the cipher by switching on alg & (cipher | padding | key-length masks)
    // (algid_to_evp_aead in src/soter/*/soter_sym.c); GCM is 0x40010000, padding nibble 1.
    // So 0x40000100, 0x40020100, ... match no cipher and decryption fails.
    const sealed = seal().encrypt(MSG);
    const tp = token().encrypt(MSG);
    const pc = passphraseCell();
    const offenders: string[] = [];
    for (const nibble of [0x0, 0x2, 0x3, 0x5, 0x9, 0xf]) {
      const alg = (0x40000100 | (nibble << 16)) >>> 0;
      const bad = withU32LE(sealed, 0, alg);
      assert.ok(peerRejects(() => peerSeal().decrypt(bad)), `peer rejects alg 0x${alg.toString(16)}`);
      const passAlg = (alg | 0x01000000) >>> 0;
      const badPass = withU32LE(pc, 0, passAlg);
      assert.ok(peerRejects(() => peer.SecureCellSeal.withPassphrase(PASS).decrypt(badPass)), `peer rejects alg 0x${passAlg.toString(16)}`);
      for (const [mode, used, call] of [
        ['Seal', alg, () => seal().decrypt(bad)],
        ['Token Protect', alg, () => token().decrypt(tp.data, withU32LE(tp.token, 0, alg))],
        ['Seal with passphrase', passAlg, () => passphrase().decrypt(badPass)],
      ] as [string, number, () => unknown][]) {
        try {
          call();
          offenders.push(`${mode} accepts alg 0x${used.toString(16)}`);
        } catch (e) {
          assertThemisError(e, 'DECRYPT_FAILED', `${mode} alg 0x${used.toString(16)}`);
        }
      }
    }
    assert.deepEqual(offenders, []);
  });

  test('iv_len 11 and tag_len 15 are rejected', () => {
    const sealed = seal().encrypt(MSG);
    for (const [name, bad] of [
      ['iv_len 11', withU32LE(sealed, 4, 11)],
      ['tag_len 15', withU32LE(sealed, 8, 15)],
    ] as [string, Uint8Array][]) {
      expectThemisError(() => seal().decrypt(bad), 'DECRYPT_FAILED', name);
      assert.ok(peerRejects(() => peerSeal().decrypt(bad)), `peer rejects ${name}`);
    }
  });

  test('iv_len 16 with tag_len 20 is accepted (first 12 / 16 bytes used), by us and by the peer', () => {
    // The length fields are not authenticated, and GCM only sees the 12-byte nonce and the
    // 16-byte tag; so 4 filler bytes after each, with the lengths adjusted, is still a valid cell.
    const sealed = seal().encrypt(MSG, CTX);
    const wide = widenIvAndTag(sealed, 16, 16, 20);
    assert.equal(wide.length, sealed.length + 8);
    assert.deepEqual(seal().decrypt(wide, CTX), MSG);
    assert.deepEqual(peerBytes(() => peerSeal().decrypt(wide, CTX), 'peer decrypts iv16/tag20 Seal'), MSG);

    const tp = token().encrypt(MSG, CTX);
    const wideToken = widenIvAndTag(tp.token, 16, 16, 20);
    assert.deepEqual(token().decrypt(tp.data, wideToken, CTX), MSG);
    assert.deepEqual(peerBytes(() => peer.SecureCellTokenProtect.withKey(KEY).decrypt(tp.data, wideToken, CTX), 'peer token'), MSG);

    const pc = passphraseCell();
    const widePass = widenIvAndTag(pc, 20, 16, 20);
    assert.deepEqual(passphrase().decrypt(widePass), MSG);
    assert.deepEqual(peerBytes(() => peer.SecureCellSeal.withPassphrase(PASS).decrypt(widePass), 'peer passphrase'), MSG);

    // Inside a Secure Message: widen the inner Seal and fix the total length.
    const wire = new SecureMessage(ec.privateKey, ec2.publicKey).encrypt(MSG);
    const inner = widenIvAndTag(wire.subarray(8), 16, 16, 20);
    const wideWire = withU32LE(concat(wire.subarray(0, 8), inner), 4, 8 + inner.length);
    assert.deepEqual(new SecureMessage(ec2.privateKey, ec.publicKey).decrypt(wideWire), MSG);
    assert.deepEqual(peerBytes(() => peerSecureMessage(ec2.privateKey, ec.publicKey).decrypt(wideWire), 'peer message'), MSG);
  });

  test('widening without fixing the lengths, or changing the used IV bytes, still fails', () => {
    const sealed = seal().encrypt(MSG);
    const wide = widenIvAndTag(sealed, 16, 16, 20);
    expectThemisError(() => seal().decrypt(withU32LE(wide, 4, 12)), 'DECRYPT_FAILED', 'iv_len left at 12');
    expectThemisError(() => seal().decrypt(flipBit(wide, (16 + 11) * 8)), 'DECRYPT_FAILED', 'last nonce byte flipped');
    // The filler bytes are not used: changing them keeps the cell valid (as in Themis).
    const filler = flipBit(wide, (16 + 12) * 8);
    assert.deepEqual(seal().decrypt(filler), MSG);
    assert.deepEqual(peerBytes(() => peerSeal().decrypt(filler), 'peer ignores IV filler'), MSG);
  });

  test('Context Imprint is unauthenticated: a wrong context gives garbage, not an error, as in the peer', () => {
    const out = imprint().encrypt(MSG, CTX);
    const garbage = imprint().decrypt(out, utf8('another context'));
    assert.equal(garbage.length, MSG.length);
    assert.notDeepEqual(garbage, MSG);
    assert.deepEqual(garbage, peerBytes(() => peer.SecureCellContextImprint.withKey(KEY).decrypt(out, utf8('another context')), 'peer imprint'));
  });
});

describe('regressions from the independent review', () => {
  test('an RSA private key whose parts disagree is refused (both backends would otherwise use different parts)', () => {
    const pair = KeyPair.generateRSA(1024);
    const key = Uint8Array.from(pair.privateKey);
    const c = readContainer(key, true);
    assert.ok(c);
    const k = 128;
    const h = 64;
    // Payload: d (k) ‖ p ‖ q ‖ dP ‖ dQ ‖ qInv (h each) ‖ n (k) ‖ e (4). Corrupt one part at a time.
    const parts: [string, number][] = [
      ['d', 0],
      ['dP', k + 2 * h],
      ['dQ', k + 3 * h],
      ['qInv', k + 4 * h],
    ];
    for (const [name, off] of parts) {
      const payload = Uint8Array.from(c.payload);
      payload[off + 5] = (payload[off + 5] as number) ^ 0x01;
      const bad = writeContainer('RRA1', payload);
      expectThemisError(() => new PrivateKey(bad), 'INVALID_KEY', `RSA private key with a corrupted ${name}`);
    }
    // e = 3 with parts computed for 65537 is inconsistent too.
    const payload = Uint8Array.from(c.payload);
    payload.set([0, 0, 0, 3], payload.length - 4);
    expectThemisError(() => new PrivateKey(writeContainer('RRA1', payload)), 'INVALID_KEY', 'RSA private key with e = 3 and parts for 65537');
  });

  test('options that are not an object (null, a number, a string) mean defaults, as wasm-themis ignores extra arguments', () => {
    const key = new SymmetricKey();
    for (const options of [null, 5, 'x', true] as unknown[]) {
      const cell = SecureCellSeal.withKey(key, options as null);
      assert.deepEqual(cell.decrypt(cell.encrypt(MSG)), MSG);
      const tp = SecureCellTokenProtect.withKey(key, options as null);
      const { data, token } = tp.encrypt(MSG);
      assert.deepEqual(tp.decrypt(data, token), MSG);
    }
  });

  test('a Proxy around a Uint8Array is refused with INVALID_ARGUMENT, not a TypeError', () => {
    const proxy = new Proxy(new Uint8Array(16), {});
    expectThemisError(() => SecureCellSeal.withKey(new SymmetricKey()).encrypt(proxy as Uint8Array), 'INVALID_ARGUMENT', 'proxied message');
  });
});
