/**
 * The Curve25519, HKDF and AES-CBC primitives of both backends: published
 * known-answer vectors (RFC 7748, RFC 8032, RFC 5869, NIST SP 800-38A,
 * libsodium's Ed25519→X25519 conversion test), the edges of strict Ed25519
 * verification (where OpenSSL and noble's own verify differ), and fast-check
 * properties that the node:crypto and @noble backends give identical results.
 *
 * Both backend modules are imported directly, so this file proves both in
 * either test run.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hkdfSync } from 'node:crypto';
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { backend as nodeBackend } from '../src/backend/node.ts';
import { backend as nobleBackend } from '../src/backend/noble.ts';
import { ed25519PublicKeyRejected, HKDF_INFO_LENGTH_MAX, HKDF_SHA256_LENGTH_MAX, type Backend } from '../src/backend/types.ts';

const backends: readonly Backend[] = [nodeBackend, nobleBackend];

function h(hex: string): Uint8Array {
  const s = hex.replace(/\s+/g, '');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
function hex(b: Uint8Array | null): string {
  return b === null ? 'null' : Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
function range(from: number, count: number): Uint8Array {
  return Uint8Array.from({ length: count }, (_, i) => (from + i) & 0xff);
}
const L = ed25519.Point.Fn.ORDER;
function numberLE(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number);
  return v;
}
function bytesLE(v: bigint, length = 32): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

describe('X25519 (RFC 7748)', () => {
  for (const b of backends) {
    test(`${b.name}: §5.2 test vectors`, () => {
      assert.equal(
        hex(b.x25519(h('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'), h('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'))),
        'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
      );
      assert.equal(
        hex(b.x25519(h('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'), h('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'))),
        '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957',
      );
    });

    test(`${b.name}: §5.2 iterated 1 and 1,000 times`, () => {
      let k: Uint8Array = h('0900000000000000000000000000000000000000000000000000000000000000');
      let u: Uint8Array = Uint8Array.from(k);
      for (let i = 1; i <= 1000; i++) {
        const r = b.x25519(k, u);
        assert.ok(r !== null);
        u = k;
        k = r;
        if (i === 1) assert.equal(hex(k), '422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
      }
      assert.equal(hex(k), '684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
    });

    test(`${b.name}: §6.1 Diffie-Hellman`, () => {
      const a = h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
      const bb = h('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
      const aPub = b.x25519PublicFromPrivate(a);
      const bPub = b.x25519PublicFromPrivate(bb);
      assert.equal(hex(aPub), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
      assert.equal(hex(bPub), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
      const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
      assert.equal(hex(b.x25519(a, bPub)), shared);
      assert.equal(hex(b.x25519(bb, aPub)), shared);
    });

    test(`${b.name}: low-order peer keys give null, not an all-zero secret`, () => {
      const priv = b.x25519GeneratePrivate();
      // u = 0, u = 1, the two points of order 8, and u = p − 1 (order 2), plus u = p (≡ 0).
      const lowOrder = [
        '0000000000000000000000000000000000000000000000000000000000000000',
        '0100000000000000000000000000000000000000000000000000000000000000',
        'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
        '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
        'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
        'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      ];
      for (const u of lowOrder) assert.equal(b.x25519(priv, h(u)), null, u);
      assert.equal(b.x25519(priv, new Uint8Array(31)), null);
      assert.equal(b.x25519(new Uint8Array(33), b.x25519PublicFromPrivate(priv)), null);
    });

    test(`${b.name}: the top bit of the peer's u is ignored (§5)`, () => {
      const priv = b.x25519GeneratePrivate();
      const pub = b.x25519PublicFromPrivate(b.x25519GeneratePrivate());
      const high = Uint8Array.from(pub);
      high[31] = (high[31] as number) | 0x80;
      assert.equal(hex(b.x25519(priv, high)), hex(b.x25519(priv, pub)));
    });

    test(`${b.name}: a copied private key is its own buffer and agrees with the original, before and after the original is wiped or changed`, () => {
      const priv = b.x25519GeneratePrivate();
      const peer = b.x25519PublicFromPrivate(b.x25519GeneratePrivate());
      const expected = hex(b.x25519(priv, peer));
      const copy = b.x25519CopyPrivate(priv);
      assert.notEqual(copy, priv);
      assert.equal(hex(copy), hex(priv));
      assert.equal(hex(b.x25519(copy, peer)), expected);
      assert.equal(hex(b.x25519PublicFromPrivate(copy)), hex(b.x25519PublicFromPrivate(priv)));
      priv.fill(0);
      assert.equal(hex(b.x25519(copy, peer)), expected, 'wiping the original leaves the copy usable');
      // A copy changed afterwards is a different key (the shared parse must not outlive the bytes).
      copy[0] = (copy[0] as number) ^ 0x40;
      const other = Uint8Array.from(copy);
      assert.equal(hex(b.x25519(copy, peer)), hex(b.x25519(other, peer)));
      assert.notEqual(hex(b.x25519(copy, peer)), expected);
      assert.throws(() => b.x25519CopyPrivate(new Uint8Array(31)), RangeError);
    });
  }
});

/** RFC 8032 §7.1: TEST 1, 2, 3 and SHA(abc). */
const ED25519_VECTORS = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pub: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    msg: 'af82',
    sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    seed: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    pub: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    msg: 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    sig: 'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
];

/** A signature by scalar `a` under the (possibly doctored) public key bytes `pub`, with nonce point `R`. */
function forge(a: bigint, pub: Uint8Array, msg: Uint8Array, rScalar: bigint, rPoint: InstanceType<typeof ed25519.Point>): { sig: Uint8Array; k: bigint } {
  const rBytes = rPoint.toBytes();
  const k = numberLE(sha512(new Uint8Array([...rBytes, ...pub, ...msg]))) % L;
  const s = (rScalar + k * a) % L;
  return { sig: new Uint8Array([...rBytes, ...bytesLE(s)]), k };
}

describe('Ed25519 (RFC 8032)', () => {
  for (const b of backends) {
    test(`${b.name}: §7.1 test vectors sign and verify`, () => {
      for (const v of ED25519_VECTORS) {
        assert.equal(hex(b.ed25519PublicFromSeed(h(v.seed))), v.pub);
        assert.equal(hex(b.ed25519Sign(h(v.seed), h(v.msg))), v.sig);
        assert.equal(b.ed25519Verify(h(v.pub), h(v.msg), h(v.sig)), true);
        assert.equal(b.ed25519Verify(h(v.pub), new Uint8Array([...h(v.msg), 0]), h(v.sig)), false);
      }
    });

    test(`${b.name}: S ≥ L is refused (the same signature with S + L)`, () => {
      const v = ED25519_VECTORS[0];
      assert.ok(v !== undefined);
      const sig = h(v.sig);
      const s = numberLE(sig.subarray(32)) + L;
      const malleated = new Uint8Array([...sig.subarray(0, 32), ...bytesLE(s)]);
      assert.equal(b.ed25519Verify(h(v.pub), h(v.msg), malleated), false);
    });

    test(`${b.name}: small-order and non-canonical public keys are refused whatever the signature`, () => {
      // For a small-order A, (R, S = 0) with R = −[k]A satisfies the cofactorless
      // equation; find such signatures, so the refusal is the key rule at work.
      let wouldVerify = 0;
      for (const t of ED25519_TORSION_SUBGROUP) {
        const canonical = h(t);
        const signFlipped = Uint8Array.from(canonical);
        signFlipped[31] = (signFlipped[31] as number) ^ 0x80;
        for (const key of [canonical, signFlipped]) {
          assert.equal(ed25519PublicKeyRejected(key), true, hex(key));
          let point;
          try {
            point = ed25519.Point.fromBytes(key, true);
          } catch {
            continue; // a sign bit on a point that has none to flip
          }
          for (let i = 0; i < 8; i++) {
            const m = new Uint8Array([i]);
            for (const r of ED25519_TORSION_SUBGROUP) {
              const rBytes = h(r);
              const k = numberLE(sha512(new Uint8Array([...rBytes, ...key, ...m]))) % L;
              if (hex(point.multiplyUnsafe(k).negate().toBytes()) !== r) continue;
              wouldVerify++;
              assert.equal(b.ed25519Verify(key, m, new Uint8Array([...rBytes, ...new Uint8Array(32)])), false, hex(key));
            }
          }
        }
      }
      assert.ok(wouldVerify > 0);
      // y = p + i for i in 0…18: unreduced encodings (y ≥ p), both sign bits.
      const v = ED25519_VECTORS[0];
      assert.ok(v !== undefined);
      for (let i = 0; i <= 18; i++) {
        const k = h('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
        k[0] = 0xed + i;
        for (const key of [k, Uint8Array.from([...k.subarray(0, 31), 0xff])]) {
          assert.equal(ed25519PublicKeyRejected(key), true, hex(key));
          assert.equal(b.ed25519Verify(key, h(v.msg), h(v.sig)), false);
        }
      }
    });

    test(`${b.name}: wrong lengths are false, not exceptions`, () => {
      const v = ED25519_VECTORS[1];
      assert.ok(v !== undefined);
      assert.equal(b.ed25519Verify(h(v.pub).subarray(1), h(v.msg), h(v.sig)), false);
      assert.equal(b.ed25519Verify(h(v.pub), h(v.msg), h(v.sig).subarray(1)), false);
      assert.equal(b.ed25519Verify(h(v.pub), h(v.msg), new Uint8Array([...h(v.sig), 0])), false);
    });
  }

  test('the small-order rule lists exactly the 8-torsion points', () => {
    // Every canonical encoding of the torsion subgroup is refused, and random valid keys are not.
    for (const t of ED25519_TORSION_SUBGROUP) assert.equal(ed25519PublicKeyRejected(h(t)), true, t);
    for (let i = 0; i < 50; i++) assert.equal(ed25519PublicKeyRejected(nodeBackend.ed25519PublicFromSeed(nodeBackend.randomBytes(32))), false);
  });

  test('a torsion component on R: noble’s cofactored verify accepts, both backends refuse', () => {
    const seed = nodeBackend.randomBytes(32);
    const { scalar: a, pointBytes: pub } = ed25519.utils.getExtendedPublicKey(seed);
    const t8 = ed25519.Point.fromBytes(h(ED25519_TORSION_SUBGROUP[1] ?? ''), false);
    const msg = new TextEncoder().encode('torsion on R');
    const r = 12345n;
    const { sig } = forge(a, pub, msg, r, ed25519.Point.BASE.multiply(r).add(t8));
    assert.equal(ed25519.verify(sig, msg, pub, { zip215: false }), true, 'the forged signature is cofactored-valid');
    for (const b of backends) assert.equal(b.ed25519Verify(pub, msg, sig), false, b.name);
  });

  test('a mixed-order public key: both backends accept exactly when [k]T = 0 (1 in 8)', () => {
    const seed = nodeBackend.randomBytes(32);
    const { scalar: a, point } = ed25519.utils.getExtendedPublicKey(seed);
    // ED25519_TORSION_SUBGROUP[1] has order 8.
    const t8 = ed25519.Point.fromBytes(h(ED25519_TORSION_SUBGROUP[1] ?? ''), false);
    const pub = point.add(t8).toBytes();
    const seen = { accepted: 0, refused: 0 };
    for (let i = 0; i < 64; i++) {
      const msg = new Uint8Array([i]);
      const r = BigInt(i + 1) * 7919n;
      const { sig, k } = forge(a, pub, msg, r, ed25519.Point.BASE.multiply(r));
      const expected = k % 8n === 0n;
      for (const b of backends) assert.equal(b.ed25519Verify(pub, msg, sig), expected, `${b.name}, message ${i}`);
      seen[expected ? 'accepted' : 'refused']++;
    }
    assert.ok(seen.accepted > 0 && seen.refused > 0, JSON.stringify(seen));
  });
});

describe('Ed25519 → X25519 (libsodium crypto_sign_ed25519_{pk,sk}_to_curve25519)', () => {
  for (const b of backends) {
    test(`${b.name}: libsodium's ed25519_convert vector`, () => {
      const seed = h('421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee');
      assert.equal(hex(b.ed25519PublicToX25519(b.ed25519PublicFromSeed(seed))), 'f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50');
      assert.equal(hex(b.ed25519SeedToX25519(seed)), '8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166');
    });

    test(`${b.name}: small-order, non-canonical, off-curve and mixed-order keys have no X25519 form`, () => {
      for (const t of ED25519_TORSION_SUBGROUP) assert.equal(b.ed25519PublicToX25519(h(t)), null, t);
      const unreduced = h('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
      assert.equal(b.ed25519PublicToX25519(unreduced), null);
      // y = 2 is not on the curve.
      assert.equal(b.ed25519PublicToX25519(h('0200000000000000000000000000000000000000000000000000000000000000')), null);
      const { point } = ed25519.utils.getExtendedPublicKey(b.randomBytes(32));
      const mixed = point.add(ed25519.Point.fromBytes(h(ED25519_TORSION_SUBGROUP[2] ?? ''), false)).toBytes();
      assert.equal(b.ed25519PublicToX25519(mixed), null);
      assert.notEqual(b.ed25519PublicToX25519(point.toBytes()), null);
      assert.equal(b.ed25519PublicToX25519(new Uint8Array(31)), null);
    });
  }
});

describe('HKDF-SHA-256 (RFC 5869 appendix A)', () => {
  for (const b of backends) {
    test(`${b.name}: test cases 1, 2 and 3`, () => {
      assert.equal(
        hex(b.hkdfSha256(new Uint8Array(22).fill(0x0b), range(0x00, 13), range(0xf0, 10), 42)),
        '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
      );
      assert.equal(
        hex(b.hkdfSha256(range(0x00, 80), range(0x60, 80), range(0xb0, 80), 82)),
        'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
      );
      assert.equal(
        hex(b.hkdfSha256(new Uint8Array(22).fill(0x0b), new Uint8Array(0), new Uint8Array(0), 42)),
        '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
      );
    });

    test(`${b.name}: info and length bounds are the same in both backends`, () => {
      const ikm = new Uint8Array(32);
      assert.equal(b.hkdfSha256(ikm, ikm, new Uint8Array(HKDF_INFO_LENGTH_MAX), 32).length, 32);
      assert.throws(() => b.hkdfSha256(ikm, ikm, new Uint8Array(HKDF_INFO_LENGTH_MAX + 1), 32), RangeError);
      assert.equal(b.hkdfSha256(ikm, ikm, ikm, HKDF_SHA256_LENGTH_MAX).length, HKDF_SHA256_LENGTH_MAX);
      assert.throws(() => b.hkdfSha256(ikm, ikm, ikm, HKDF_SHA256_LENGTH_MAX + 1), RangeError);
      assert.throws(() => b.hkdfSha256(ikm, ikm, ikm, 0), RangeError);
      assert.equal(b.hkdfSha256(new Uint8Array(0), ikm, ikm, 1).length, 1);
    });
  }
});

describe('HKDF-SHA-256 against node:crypto hkdfSync (review: edges of the createHmac version)', () => {
  /** A view with a non-zero offset into a larger buffer, filled around it with other bytes. */
  function offsetView(bytes: Uint8Array, pad = 7): Uint8Array {
    const big = new Uint8Array(bytes.length + 2 * pad).fill(0xa5);
    big.set(bytes, pad);
    return big.subarray(pad, pad + bytes.length);
  }
  const lengths = [1, 31, 32, 33, 63, 64, 65, 255, 256, HKDF_SHA256_LENGTH_MAX - 1, HKDF_SHA256_LENGTH_MAX];
  const saltLengths = [0, 1, 32, 64, 65, 200];
  for (const b of backends) {
    test(`${b.name}: every length edge, empty and long salts, empty info — equal to hkdfSync`, () => {
      const ikm = range(0x10, 40);
      for (const length of lengths) {
        for (const saltLength of saltLengths) {
          for (const info of [new Uint8Array(0), range(0x80, 17)]) {
            const salt = range(0x30, saltLength);
            const want = new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
            assert.equal(hex(b.hkdfSha256(ikm, salt, info, length)), hex(want), `length ${length}, salt ${saltLength}, info ${info.length}`);
          }
        }
      }
    });

    test(`${b.name}: Buffers, views with offsets and aliased inputs give the bytes of the view, and no input is changed`, () => {
      const ikm = range(0x01, 33);
      const salt = range(0x40, 21);
      const info = range(0x90, 9);
      const want = hex(new Uint8Array(hkdfSync('sha256', ikm, salt, info, 77)));
      // Buffer.from(string) of a small string is a slice of the shared pool: a non-zero byteOffset.
      const pooled = (x: Uint8Array): Buffer => Buffer.from(Buffer.from(hex(x), 'hex'));
      const cases: [Uint8Array, Uint8Array, Uint8Array][] = [
        [offsetView(ikm), offsetView(salt, 3), offsetView(info, 11)],
        [pooled(ikm), pooled(salt), pooled(info)],
        [Buffer.from(ikm), salt, Buffer.from(info)],
      ];
      for (const [i, s, n] of cases) {
        const before = [hex(i), hex(s), hex(n)];
        const out = b.hkdfSha256(i, s, n, 77);
        assert.equal(hex(out), want);
        assert.deepEqual([hex(i), hex(s), hex(n)], before, 'inputs unchanged');
        assert.equal(out.byteOffset, 0);
        assert.equal(out.buffer.byteLength, 77, 'the output owns its bytes');
      }
      // One buffer as ikm, salt and info at once.
      const same = range(0x22, 32);
      assert.equal(hex(b.hkdfSha256(same, same, same, 32)), hex(new Uint8Array(hkdfSync('sha256', same, same, same, 32))));
      assert.equal(hex(same), hex(range(0x22, 32)));
    });

    test(`${b.name}: the first bytes of a longer output are the shorter output (one PRK, one T chain)`, () => {
      const ikm = range(0x05, 32);
      const long = b.hkdfSha256(ikm, range(0, 32), range(0, 4), HKDF_SHA256_LENGTH_MAX);
      for (const length of lengths) assert.equal(hex(b.hkdfSha256(ikm, range(0, 32), range(0, 4), length)), hex(long.subarray(0, length)));
    });
  }
});

describe('AES-256-CBC with PKCS#7 padding', () => {
  const key = h('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
  const iv = h('000102030405060708090a0b0c0d0e0f');
  const plaintext = h('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710');
  const nist = 'f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b';
  for (const b of backends) {
    test(`${b.name}: NIST SP 800-38A F.2.5, then one block of padding`, () => {
      const ct = b.aesCbcEncrypt(key, iv, plaintext);
      assert.equal(ct.length, 80);
      assert.equal(hex(ct.subarray(0, 64)), nist);
      assert.equal(hex(b.aesCbcDecrypt(key, iv, ct)), hex(plaintext));
    });

    test(`${b.name}: bad padding and bad lengths are null`, () => {
      const ct = b.aesCbcEncrypt(key, iv, new Uint8Array(5));
      assert.equal(b.aesCbcDecrypt(key, iv, ct.subarray(0, 15)), null);
      assert.equal(b.aesCbcDecrypt(key, iv, new Uint8Array(0)), null);
      // The NIST ciphertext alone ends in a plaintext block that is not valid padding.
      assert.equal(b.aesCbcDecrypt(key, iv, h(nist)), null);
      assert.equal(hex(b.aesCbcDecrypt(key, iv, b.aesCbcEncrypt(key, iv, new Uint8Array(0)))), '');
      assert.throws(() => b.aesCbcEncrypt(key.subarray(1), iv, plaintext), RangeError);
      assert.throws(() => b.aesCbcEncrypt(key, iv.subarray(1), plaintext), RangeError);
    });
  }
});

describe('node:crypto and @noble agree (fast-check)', () => {
  const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const message = fc.uint8Array({ maxLength: 300 });

  test('X25519 on arbitrary 32-byte inputs (including non-canonical and twist points)', () => {
    fc.assert(
      fc.property(bytes32, bytes32, (priv, pub) => {
        assert.equal(hex(nodeBackend.x25519(priv, pub)), hex(nobleBackend.x25519(priv, pub)));
        assert.equal(hex(nodeBackend.x25519PublicFromPrivate(priv)), hex(nobleBackend.x25519PublicFromPrivate(priv)));
      }),
      { numRuns: 200 },
    );
  });

  test('Ed25519 keys, signatures and verification of tampered inputs', () => {
    fc.assert(
      fc.property(bytes32, message, fc.nat(), fc.constantFrom('none', 'message', 'signature', 'key'), (seed, msg, at, what) => {
        const pub = nodeBackend.ed25519PublicFromSeed(seed);
        assert.equal(hex(nobleBackend.ed25519PublicFromSeed(seed)), hex(pub));
        const sig = nodeBackend.ed25519Sign(seed, msg);
        assert.equal(hex(nobleBackend.ed25519Sign(seed, msg)), hex(sig));
        const m = Uint8Array.from(msg);
        const s = Uint8Array.from(sig);
        const k = Uint8Array.from(pub);
        const target = what === 'message' ? m : what === 'signature' ? s : what === 'key' ? k : null;
        if (target !== null && target.length > 0) target[at % target.length] = (target[at % target.length] as number) ^ (1 << at % 8);
        const changed = target !== null && target.length > 0;
        const fromNode = nodeBackend.ed25519Verify(k, m, s);
        assert.equal(nobleBackend.ed25519Verify(k, m, s), fromNode);
        assert.equal(fromNode, !changed);
      }),
      { numRuns: 200 },
    );
  });

  test('Ed25519 verification of arbitrary bytes', () => {
    fc.assert(
      fc.property(bytes32, message, fc.uint8Array({ minLength: 64, maxLength: 64 }), (pub, msg, sig) => {
        assert.equal(nodeBackend.ed25519Verify(pub, msg, sig), nobleBackend.ed25519Verify(pub, msg, sig));
      }),
      { numRuns: 200 },
    );
  });

  test('Ed25519 → X25519: both maps agree, and the converted seed matches the converted key', () => {
    fc.assert(
      fc.property(bytes32, (seed) => {
        const pub = nodeBackend.ed25519PublicFromSeed(seed);
        const u = nodeBackend.ed25519PublicToX25519(pub);
        assert.equal(hex(nobleBackend.ed25519PublicToX25519(pub)), hex(u));
        const x = nodeBackend.ed25519SeedToX25519(seed);
        assert.equal(hex(nobleBackend.ed25519SeedToX25519(seed)), hex(x));
        // OpenSSL's X25519 base-point multiplication is an independent check of the map.
        assert.equal(hex(nodeBackend.x25519PublicFromPrivate(x)), hex(u));
      }),
      { numRuns: 50 },
    );
  });

  test('Ed25519 → X25519 of arbitrary bytes', () => {
    fc.assert(
      fc.property(bytes32, (pub) => {
        assert.equal(hex(nodeBackend.ed25519PublicToX25519(pub)), hex(nobleBackend.ed25519PublicToX25519(pub)));
      }),
      { numRuns: 100 },
    );
  });

  test('HKDF on arbitrary inputs', () => {
    fc.assert(
      fc.property(message, message, message, fc.integer({ min: 1, max: 600 }), (ikm, salt, info, length) => {
        assert.equal(hex(nodeBackend.hkdfSha256(ikm, salt, info, length)), hex(nobleBackend.hkdfSha256(ikm, salt, info, length)));
      }),
      { numRuns: 200 },
    );
  });

  test('AES-256-CBC round trips across backends, and agrees on arbitrary ciphertexts', () => {
    fc.assert(
      fc.property(bytes32, fc.uint8Array({ minLength: 16, maxLength: 16 }), message, (key, iv, msg) => {
        const ct = nodeBackend.aesCbcEncrypt(key, iv, msg);
        assert.equal(hex(nobleBackend.aesCbcEncrypt(key, iv, msg)), hex(ct));
        assert.equal(hex(nobleBackend.aesCbcDecrypt(key, iv, ct)), hex(msg));
        // Decrypting arbitrary bytes: both succeed or fail together, with the same output.
        const junk = msg.subarray(0, msg.length - (msg.length % 16));
        assert.equal(hex(nodeBackend.aesCbcDecrypt(key, iv, junk)), hex(nobleBackend.aesCbcDecrypt(key, iv, junk)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('node backend key caching', () => {
  test('a key buffer mutated in place between calls is re-imported', () => {
    const priv = nodeBackend.x25519GeneratePrivate();
    const peer = nodeBackend.x25519PublicFromPrivate(nodeBackend.x25519GeneratePrivate());
    const first = hex(nodeBackend.x25519(priv, peer));
    assert.equal(hex(nodeBackend.x25519(priv, peer)), first);
    priv[0] = (priv[0] as number) ^ 0x40;
    assert.equal(hex(nodeBackend.x25519(priv, peer)), hex(nobleBackend.x25519(priv, peer)));
    assert.notEqual(hex(nodeBackend.x25519(priv, peer)), first);

    const seed = nodeBackend.randomBytes(32);
    const msg = new Uint8Array([1, 2, 3]);
    nodeBackend.ed25519Sign(seed, msg);
    seed[5] = (seed[5] as number) ^ 1;
    assert.equal(hex(nodeBackend.ed25519Sign(seed, msg)), hex(nobleBackend.ed25519Sign(seed, msg)));
  });
});
