/**
 * The envelope layout is exactly the diagram in envelope.ts, encodings are
 * canonical, and the parser bounds every read (MALFORMED for anything else).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../src/errors.ts';
import {
  ENVELOPE_VERSION,
  HEADER_LENGTH,
  HEADER_TAG_LENGTH,
  isPrekeyMessage,
  PREKEY_FIELDS_LENGTH,
  readEnvelope,
  TYPE_MESSAGE,
  TYPE_PREKEY_MESSAGE,
  writeEnvelope,
  writeEnvelopeHead,
} from '../src/envelope.ts';
import type { PrekeyMessageFields } from '../src/pqxdh.ts';
import { Session } from '../src/session.ts';
import { hex, makeDevice, text } from './_helpers.ts';

const fields: PrekeyMessageFields = {
  identityKey: new Uint8Array(32).fill(0x11),
  baseKey: new Uint8Array(32).fill(0x22),
  signedPrekeyId: 0x01020304,
  oneTimePrekeyId: 0x0a0b0c0d,
  pqPrekeyId: 0xfffffffe,
  kemCiphertext: new Uint8Array(1568).fill(0x33),
};
const header = { ratchetKey: new Uint8Array(32).fill(0x44), previousChainLength: 7, messageNumber: 0x10000 };

function malformed(bytes: Uint8Array, what: string): void {
  assert.throws(() => readEnvelope(bytes), (e) => ProtocolError.is(e, 'MALFORMED'), what);
}

describe('envelope layout', () => {
  test('a prekey message, field by field at the documented offsets', () => {
    const head = writeEnvelopeHead(fields, header);
    assert.equal(PREKEY_FIELDS_LENGTH, 1645);
    assert.equal(head.length, 2 + 1645 + 40);
    assert.equal(head[0], 0x01);
    assert.equal(head[1], 0x02);
    assert.equal(hex(head.subarray(2, 34)), '11'.repeat(32));
    assert.equal(hex(head.subarray(34, 66)), '22'.repeat(32));
    assert.equal(hex(head.subarray(66, 70)), '01020304');
    assert.equal(head[70], 1);
    assert.equal(hex(head.subarray(71, 75)), '0a0b0c0d');
    assert.equal(hex(head.subarray(75, 79)), 'fffffffe');
    assert.equal(hex(head.subarray(79, 79 + 1568)), '33'.repeat(1568));
    assert.equal(hex(head.subarray(1647, 1679)), '44'.repeat(32));
    assert.equal(hex(head.subarray(1679, 1683)), '00000007');
    assert.equal(hex(head.subarray(1683, 1687)), '00010000');
    const env = writeEnvelope(head, new Uint8Array(16).fill(0x55), new Uint8Array(32).fill(0x66));
    const back = readEnvelope(env);
    assert.deepEqual(back.prekey, fields);
    assert.deepEqual(back.header, header);
    assert.equal(hex(back.headerTag), '55'.repeat(16));
    assert.equal(hex(back.ciphertext), '66'.repeat(32));
    assert.equal(back.head.length, head.length);
    assert.equal(back.authenticated.length, head.length + HEADER_TAG_LENGTH);
    assert.ok(isPrekeyMessage(env));
  });

  test('a normal message, and a prekey message without a one-time prekey', () => {
    const head = writeEnvelopeHead(null, header);
    assert.equal(head.length, 2 + HEADER_LENGTH);
    assert.deepEqual([head[0], head[1]], [ENVELOPE_VERSION, TYPE_MESSAGE]);
    assert.ok(!isPrekeyMessage(writeEnvelope(head, new Uint8Array(16), new Uint8Array(32))));
    const noOtk = writeEnvelopeHead({ ...fields, oneTimePrekeyId: null }, header);
    assert.equal(noOtk[1], TYPE_PREKEY_MESSAGE);
    assert.equal(hex(noOtk.subarray(70, 75)), '0000000000');
    assert.equal(readEnvelope(writeEnvelope(noOtk, new Uint8Array(16), new Uint8Array(32))).prekey?.oneTimePrekeyId, null);
  });

  test('real envelopes: prekey messages, then plain messages after the reply', () => {
    const alice = makeDevice('alice', 'laptop');
    const bob = makeDevice('bob', 'phone');
    const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
    const b = Session.create(bob.address, alice.address);
    const first = a.encrypt(text('0123456789abcdef'));
    // 2 + 1645 + 40 + 16 + (2 blocks of CBC, for 16 bytes of plaintext with padding) + 16.
    assert.equal(first.length, 2 + 1645 + 40 + 16 + 32 + 16);
    b.decrypt(first, { identity: bob.identity, prekeys: bob.prekeys });
    a.decrypt(b.encrypt(text('')));
    assert.equal(a.encrypt(text('')).length, 2 + 40 + 16 + 16 + 16);
  });
});

describe('the parser', () => {
  const good = writeEnvelope(writeEnvelopeHead(fields, header), new Uint8Array(16), new Uint8Array(48));

  test('refuses non-canonical and unknown encodings', () => {
    const set = (offset: number, value: number): Uint8Array => {
      const b = Uint8Array.from(good);
      b[offset] = value;
      return b;
    };
    malformed(set(0, 0x02), 'version 2');
    malformed(set(0, 0x00), 'version 0');
    malformed(set(1, 0x00), 'type 0');
    malformed(set(1, 0x03), 'type 3');
    malformed(set(70, 0x02), 'one-time flag 2');
    // Flag 0 with a non-zero id.
    malformed(set(70, 0x00), 'id without a one-time prekey');
    const canonical = Uint8Array.from(good);
    canonical.fill(0, 70, 75);
    assert.equal(readEnvelope(canonical).prekey?.oneTimePrekeyId, null);
  });

  test('refuses every truncation and bad ciphertext lengths', () => {
    const headLength = good.length - 48;
    // Everything shorter than head + tag + the shortest ciphertext (one block and a tag).
    for (let n = 0; n < headLength + 32; n++) malformed(good.subarray(0, n), `${n} bytes`);
    for (let ct = 33; ct < 48; ct++) malformed(good.subarray(0, headLength + ct), `ciphertext of ${ct} bytes`);
    assert.doesNotThrow(() => readEnvelope(good.subarray(0, headLength + 32)));
    assert.doesNotThrow(() => readEnvelope(new Uint8Array([...good, ...new Uint8Array(16)])));
  });

  test('copies what it keeps: later changes to the input do not reach the parsed key fields', () => {
    const input = Uint8Array.from(good);
    const parsed = readEnvelope(input);
    input.fill(0);
    assert.equal(hex(parsed.prekey?.identityKey ?? new Uint8Array()), '11'.repeat(32));
    assert.equal(hex(parsed.header.ratchetKey), '44'.repeat(32));
  });
});
