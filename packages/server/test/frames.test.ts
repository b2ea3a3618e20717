// The hand-written `publish` check must accept and produce exactly what the
// `Publish` schema does, for any input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Publish, parsePublish, parseFrame } from '../src/v1/frames.ts';
import { BODY_BYTES_MAX, PQ_PREKEY_BYTES_MAX, PREKEY_BYTES } from '../src/limits.ts';
import { entryFrame, msgFrame } from '../src/v1/hub.ts';
import type { RoomEntry } from '../src/storage/types.ts';

const idChars = fc.constantFrom(...'abcXYZ019_-.+/= é'.split(''));
const validId = fc.string({ unit: fc.constantFrom(...'aZ09_-'.split('')), minLength: 1, maxLength: 64 });
const idLike = fc.oneof({ arbitrary: validId, weight: 12 }, fc.string({ unit: idChars, minLength: 0, maxLength: 70 }), fc.integer(), fc.constant(null), fc.constant(undefined));
const b64Like = fc.oneof(
  // Near-misses the decoder might take: base64url, inner padding, whitespace, non-ASCII.
  fc.constantFrom('QQ==', 'QR==', 'QUI=', 'QUJ=', 'QUJD', 'Q-I=', 'Q_I=', 'QQ==QQ==', 'A===', '====', 'QUJ', 'QU JD', 'QUJD\n', 'QUJé', '', '=QUJ'),
  // Characters whose low byte is in the alphabet (Node's decoder reads only that byte): Ł is U+0141 ("A").
  fc.constantFrom('ŁŁŁŁ', 'AB乁=', '\ud841AAA', 'QUJĄ', 'QUJDŁŁŁŁ'),
  fc.string({ unit: fc.constantFrom(...'AQz+/=ŁĄ乁'.split('')), maxLength: 12 }),
  { arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')), weight: 12 },
  fc.uint8Array({ minLength: 0, maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')),
  fc.string({ unit: fc.constantFrom(...'AQz+/=\n '.split('')), maxLength: 12 }),
  fc.integer(),
);

let accepted = 0;
function agree(input: unknown): void {
  const fast = parsePublish(input);
  const slow = Publish.safeParse(input);
  if (slow.success) accepted++;
  // (An explicit `id: undefined` is kept by the schema and dropped by hand: the same frame.)
  // The fast path also keeps the body's text, which must be what was sent.
  const defined = (o: object | null) => (o === null ? null : Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'bodyB64')));
  if (slow.success) assert.deepEqual(defined(fast), defined(slow.data));
  if (fast !== null) assert.equal(fast.bodyB64, (input as { body: unknown }).body);
  else assert.equal(fast, null);
}

test('parsePublish agrees with the Publish schema on arbitrary objects', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.record({ t: fc.constantFrom('publish', 'publish', 'sync'), id: idLike, roomId: idLike, clientId: idLike, body: b64Like, extra: fc.anything() }, { requiredKeys: ['t', 'roomId', 'clientId', 'body'] }),
        fc.record({ t: fc.constantFrom('publish', 'sync', 1), id: idLike, roomId: idLike, clientId: idLike, body: b64Like, extra: fc.anything() }, { requiredKeys: [] }),
      ),
      agree,
    ),
    { numRuns: 3000 },
  );
  // The generators must reach both outcomes often enough to mean something.
  assert.ok(accepted > 300, `only ${accepted} valid publishes generated`);
});

test('parsePublish agrees with the schema on non-objects and at the body limit', () => {
  for (const v of [null, 1, 'publish', [], [{ t: 'publish' }], true]) agree(v);
  const base = { t: 'publish', roomId: 'r1', clientId: 'c1' };
  for (const n of [0, 1, BODY_BYTES_MAX - 1, BODY_BYTES_MAX, BODY_BYTES_MAX + 1]) {
    const input = { ...base, body: Buffer.alloc(n, 7).toString('base64') };
    agree(input);
    assert.equal(parsePublish(input) !== null, n >= 1 && n <= BODY_BYTES_MAX);
  }
  agree({ ...base, id: 'x'.repeat(64), body: 'AA==' });
  agree({ ...base, id: 'x'.repeat(65), body: 'AA==' });
});

test('a publish body is accepted only as the one canonical encoding of its bytes', () => {
  const base = { t: 'publish', roomId: 'r1', clientId: 'c1' };
  // Each of these decodes (leniently) to bytes whose encoding is different text:
  // relayed as sent, live recipients and history would disagree.
  for (const body of ['ŁŁŁŁ', 'AB乁=', '\ud841AAA', 'QUJ=', 'QR==', 'QUJDQR==']) {
    assert.equal(parsePublish({ ...base, body }), null, body);
    assert.equal(parseFrame(JSON.stringify({ ...base, body })).ok, false, body);
  }
  for (const bytes of [[0], [0, 1], [0, 1, 2], [255, 254, 253, 252]]) {
    const body = Buffer.from(bytes).toString('base64');
    const r = parsePublish({ ...base, body });
    assert.ok(r !== null);
    assert.equal(Buffer.from(r.body).toString('base64'), body);
  }
});

test('parseFrame reports an invalid publish through the schema', () => {
  const r = parseFrame(JSON.stringify({ t: 'publish', id: 'q', roomId: 'r1', clientId: 'c1', body: 'not base64!' }));
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.id, 'q');
    assert.match(r.message, /body/);
  }
});

test('hello: any positive 31-bit versions may be offered (the server picks from the ones it knows)', () => {
  for (const versions of [[1], [1, 5000], [2 ** 31 - 1, 1]]) assert.equal(parseFrame(JSON.stringify({ t: 'hello', versions })).ok, true, JSON.stringify(versions));
  for (const versions of [[], [0], [1.5], [2 ** 31], [-1]]) assert.equal(parseFrame(JSON.stringify({ t: 'hello', versions })).ok, false, JSON.stringify(versions));
});

test('X25519 prekeys are exactly PREKEY_BYTES; PQ prekeys at most PQ_PREKEY_BYTES_MAX', () => {
  const sig = Buffer.alloc(64).toString('base64');
  const up = (n: number, pq = 1568) => parseFrame(JSON.stringify({ t: 'keys.upload', signedPrekey: { keyId: 1, publicKey: Buffer.alloc(n, 1).toString('base64'), signature: sig }, oneTimePrekeys: [{ keyId: 2, publicKey: Buffer.alloc(n, 2).toString('base64') }], pqPrekey: { keyId: 3, publicKey: Buffer.alloc(pq, 3).toString('base64'), signature: sig } })).ok;
  assert.equal(up(PREKEY_BYTES), true);
  assert.equal(up(PREKEY_BYTES - 1), false);
  assert.equal(up(PREKEY_BYTES + 1), false);
  assert.equal(up(1), false);
  assert.equal(up(PREKEY_BYTES, PQ_PREKEY_BYTES_MAX), true);
  assert.equal(up(PREKEY_BYTES, PQ_PREKEY_BYTES_MAX + 1), false);
  const otk = (n: number) => parseFrame(JSON.stringify({ t: 'keys.upload', oneTimePrekeys: [{ keyId: 2, publicKey: Buffer.alloc(n, 2).toString('base64') }] })).ok;
  assert.deepEqual([otk(31), otk(32), otk(33)], [false, true, false]);
});

test('an invalid frame is answered with its id only when the id itself is valid (≤ 64 characters)', () => {
  const bad = (id: string) => parseFrame(JSON.stringify({ t: 'publish', id, roomId: 'r1', clientId: 'c1', body: '!' }));
  const ok64 = bad('x'.repeat(64));
  const long = bad('x'.repeat(65));
  assert.equal(!ok64.ok && ok64.id, 'x'.repeat(64));
  assert.equal(!long.ok && long.id, undefined);
});

test('msgFrame writes exactly what JSON.stringify of the entry frame would', () => {
  fc.assert(
    fc.property(
      fc.record({
        roomId: fc.string(),
        seq: fc.nat(),
        kind: fc.constantFrom('message', 'member-added', 'member-removed', 'role-changed'),
        senderUserId: fc.string(),
        senderDeviceId: fc.string(),
        clientId: fc.string({ unit: 'binary' }),
        body: fc.uint8Array({ maxLength: 64 }),
        createdAt: fc.nat(),
      }),
      (e) => {
        const expected = JSON.stringify({ t: 'msg', ...entryFrame(e as RoomEntry) });
        assert.equal(msgFrame(e as RoomEntry), expected);
        assert.equal(msgFrame(e as RoomEntry, Buffer.from(e.body).toString('base64')), expected);
      },
    ),
  );
});

test('an invalid frame’s error names where, never what the client wrote: keys of its own choosing are not echoed', () => {
  const long = 'k'.repeat(200_000);
  for (const key of ['<script>alert(1)</script>', long, 'a\nb\u202e', 'rooms']) {
    const r = parseFrame(JSON.stringify({ t: 'sync', rooms: { [key]: 'not a seq' } }));
    assert.equal(r.ok, false);
    if (r.ok) continue;
    assert.ok(r.message.length < 100, r.message.slice(0, 100));
    if (key !== 'rooms') assert.ok(!r.message.includes(key.slice(0, 8)), r.message);
  }
});

test('a record’s own "__proto__" key is validated too (refused), not dropped unseen', () => {
  for (const rooms of ['{"__proto__":"not a number"}', '{"__proto__":{"a":1}}', '{"__proto__":3}']) {
    assert.equal(parseFrame(`{"t":"sync","rooms":${rooms}}`).ok, false, rooms);
  }
  assert.equal(parseFrame('{"t":"sync","rooms":{"room1":3}}').ok, true);
});
