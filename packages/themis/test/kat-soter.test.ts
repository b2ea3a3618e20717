/**
 * Known answers for the Soter building blocks: Soter KDF, PBKDF2-HMAC-SHA-256,
 * CRC-32C and the Soter container (vectors/kdf.json, vectors/crc32c.json).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PublicKey } from '../src/index.ts';
import { backend, crc32c, readContainer, soterKdf } from '../src/hazmat.ts';
import { loadPeer } from './_peer.ts';
import { assertBytes, hex, loadVectors, peerCall, toHex } from './_vectors.ts';

interface KdfVector {
  id: string;
  key: string | null;
  label: string;
  contexts: string[];
  length: number;
  expect: 'ok' | 'sameAsExplicitKey';
  output?: string;
  equivalentKey?: string;
}
interface Pbkdf2Vector {
  id: string;
  password: string;
  salt: string;
  iterations: number;
  length: number;
  expect: 'ok';
  output: string;
  skip?: string;
}
interface CrcVector {
  id: string;
  input: string;
  expect: 'ok';
  crc: string;
}
interface ContainerVector {
  id: string;
  container: string;
  expect: 'ok';
  tag: string;
  size: number;
  payloadLength: number;
  crc: string;
}

const kdf = loadVectors<{ soterKdf: KdfVector[]; pbkdf2Sha256: Pbkdf2Vector[] }>('kdf.json');
const crc = loadVectors<{ crc32c: CrcVector[]; containers: ContainerVector[] }>('crc32c.json');

describe('KAT: Soter KDF (vectors/kdf.json)', () => {
  for (const v of kdf.soterKdf) {
    it(v.id, () => {
      const contexts = v.contexts.map(hex);
      const out = soterKdf(v.key === null ? null : hex(v.key), v.label, contexts, v.length);
      if (v.expect === 'ok') assertBytes(out, v.output ?? '', 'Soter KDF output');
      else {
        assert.equal(v.key, null);
        assertBytes(out, toHex(soterKdf(hex(v.equivalentKey ?? ''), v.label, contexts, v.length)), 'implicit key = label XOR contexts');
      }
    });
  }

  it('the vector files cover explicit, implicit, split-context and every output length', () => {
    assert.ok(kdf.soterKdf.some((v) => v.key === null && v.expect === 'ok'));
    assert.ok(kdf.soterKdf.some((v) => v.expect === 'sameAsExplicitKey'));
    assert.deepEqual([...new Set(kdf.soterKdf.map((v) => v.length))].sort((a, b) => a - b), [1, 2, 4, 8, 16, 32]);
  });
});

describe('KAT: PBKDF2-HMAC-SHA-256 (vectors/kdf.json)', () => {
  for (const v of kdf.pbkdf2Sha256) {
    it(v.id, { skip: v.skip ?? false }, async () => {
      const pw = hex(v.password);
      const salt = hex(v.salt);
      assertBytes(backend.pbkdf2Sha256(pw, salt, v.iterations, v.length), v.output, 'sync');
      assertBytes(await backend.pbkdf2Sha256Async(pw, salt, v.iterations, v.length), v.output, 'async');
      // Without WebCrypto (an insecure page, an old runtime) the async path falls back to noble's (pure backend) or stays node:crypto's.
      const crypto = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
      Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true, writable: true });
      try {
        assertBytes(await backend.pbkdf2Sha256Async(pw, salt, v.iterations, v.length), v.output, 'async without WebCrypto');
      } finally {
        if (crypto !== undefined) Object.defineProperty(globalThis, 'crypto', crypto);
      }
    });
  }
});

describe('KAT: CRC-32C (vectors/crc32c.json)', () => {
  for (const v of crc.crc32c) {
    it(v.id, () => {
      assert.equal(crc32c(hex(v.input)), parseInt(v.crc, 16));
    });
  }
});

describe('KAT: Soter container (vectors/crc32c.json)', () => {
  for (const v of crc.containers) {
    it(v.id, async () => {
      const bytes = hex(v.container);
      const c = readContainer(bytes, true);
      assert.ok(c !== null, 'container must parse');
      assert.equal(c.tag, v.tag);
      assert.equal(c.size, v.size);
      assert.equal(c.payload.length, v.payloadLength);
      // The CRC is stored least-significant byte first and covers the container with a zeroed crc field.
      const stored = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
      assert.equal(stored, parseInt(v.crc, 16));
      const zeroed = bytes.slice();
      zeroed.fill(0, 8, 12);
      assert.equal(crc32c(zeroed), parseInt(v.crc, 16));
      // One flipped payload bit must break it.
      const flipped = bytes.slice();
      flipped[20] = (flipped[20] as number) ^ 0x01;
      assert.equal(readContainer(flipped, true), null);
      // It is an EC public key: both we and the peer accept it as one.
      if (v.tag === 'UEC2') {
        assert.equal(new PublicKey(bytes).kind, 'ec-public');
        const peer = await loadPeer();
        const r = peerCall(peer, () => new Uint8Array(new peer.PublicKey(bytes)));
        assert.ok(r.ok, 'wasm-themis accepts the container as a public key');
      }
    });
  }
});
