/**
 * Bodies the SDK did not make — garbage, a tampered envelope, a container
 * for someone else, a replayed envelope — each become one `decryptionError`
 * event with its reason; the stream goes on and later genuine messages
 * arrive. They are published by a raw connection authenticated as alice's
 * device (a member of the room), exactly as a malicious client would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fromBase64, toBase64 } from '../src/_bytes.ts';
import { hello, loginDevice } from '../src/auth.ts';
import { decodeContainer, encodeContainer } from '../src/body-container.ts';
import { ParleyClient } from '../src/client.ts';
import { Connection } from '../src/connection.ts';
import { readEntry } from '../src/frames.ts';
import { closeAll, recorder, sleep, startServer, texts, until, type ServerProcess } from './_harness.ts';

describe('undecryptable messages', () => {
  let server: ServerProcess & { url: string };
  const clients: ParleyClient[] = [];
  let raw: Connection | null = null;

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    raw?.close();
    await closeAll(clients);
    server.cleanup();
  });

  it('become decryptionError events with a reason, and never stop the stream', async () => {
    const ra = recorder();
    const rb = recorder();
    const alice = await ParleyClient.register(server.url, 'alice', 'laptop', { on: ra.on });
    const bob = await ParleyClient.register(server.url, 'bob', 'phone', { on: rb.on });
    clients.push(alice, bob);
    const room = await alice.startDirect('bob');
    const genuine = await alice.send(room, 'genuine 1');
    await until(() => rb.messages.length === 1, 'the first genuine message');

    // A second connection as alice/laptop, sending whatever it likes.
    raw = await Connection.open(server.url, { onFrame: () => undefined, onClose: () => undefined });
    await hello(raw);
    await loginDevice(raw, alice.store.identity.identityKeyPair(), { userId: 'alice', deviceId: 'laptop' });
    const historyFrame = await raw.request({ t: 'history', roomId: room, before: Number.MAX_SAFE_INTEGER, limit: 50 }, ['history']);
    const entries = (historyFrame['entries'] as unknown[]).map(readEntry);
    const original = entries.find((e) => e.clientId === genuine.id);
    assert.ok(original !== undefined);
    const body = fromBase64(original.body);
    assert.ok(body !== null);
    const container = decodeContainer(body);
    const forBob = container.find((e) => e.userId === 'bob' && e.deviceId === 'phone');
    assert.ok(forBob !== undefined);

    // Flip a bit of the header tag (packages/protocol/README.md, "Wire format": the header starts at
    // 1,647 in a prekey message, else at 2). A flip in the ciphertext of this already-read message
    // would be reported as DUPLICATE instead: its header still authenticates and its key is spent.
    const flipped = forBob.envelope.slice();
    const tagAt = (flipped[1] === 0x02 ? 1647 : 2) + 40;
    flipped[tagAt] = (flipped[tagAt] as number) ^ 0x01;
    const bodies: [string, Uint8Array][] = [
      ['garbage', globalThis.crypto.getRandomValues(new Uint8Array(64))],
      ['flipped', encodeContainer([{ userId: 'bob', deviceId: 'phone', envelope: flipped }])],
      ['elsewhere', encodeContainer([{ userId: 'carol', deviceId: 'phone', envelope: forBob.envelope }])],
      ['replayed', body],
      ['truncated', body.subarray(0, body.length - 1)],
    ];
    for (const [label, b] of bodies) {
      const ack = await raw.request({ t: 'publish', roomId: room, clientId: `raw-${label}`, body: toBase64(b) }, ['ack']);
      assert.equal(ack['roomId'], room);
    }
    await alice.send(room, 'genuine 2');

    await until(() => rb.messages.length === 2, 'the second genuine message');
    await sleep(200);
    assert.deepEqual(texts(rb.messages), ['genuine 1', 'genuine 2']);
    assert.deepEqual(
      rb.failures.map((f) => [f.clientId, f.reason]),
      [
        ['raw-garbage', 'MALFORMED_BODY'],
        ['raw-flipped', 'DECRYPT_FAILED'],
        ['raw-elsewhere', 'NOT_ADDRESSED'],
        ['raw-replayed', 'DUPLICATE'],
        ['raw-truncated', 'MALFORMED_BODY'],
      ],
    );
    for (const f of rb.failures) {
      assert.equal(f.roomId, room);
      assert.deepEqual(f.from, { userId: 'alice', deviceId: 'laptop' });
    }
    assert.deepEqual(rb.errors, []);
    // Alice's own client has no copy of what "its" device published elsewhere: each reported once, never passed over unseen.
    await until(() => ra.failures.length === bodies.length, "alice's client reports them");
    assert.deepEqual(
      ra.failures.map((f) => [f.clientId, f.reason]),
      bodies.map(([label]) => [`raw-${label}`, 'NO_LOCAL_COPY']),
    );

    // The session survived: bob answers, alice reads it.
    await bob.send(room, 'still here');
    await until(() => ra.messages.length === 1, 'alice to read the reply');
    assert.deepEqual(texts(ra.messages), ['still here']);

    // History shows the same picture.
    const page = await bob.history(room, { limit: 50 });
    assert.deepEqual(
      page.filter((e) => e.type !== 'membership').map((e) => (e.type === 'message' ? (e.kind === 'text' ? e.text : '?') : e.type === 'undecryptable' ? e.reason : e.type)),
      ['genuine 1', 'MALFORMED_BODY', 'DECRYPT_FAILED', 'NOT_ADDRESSED', 'DUPLICATE', 'MALFORMED_BODY', 'genuine 2', 'still here'],
    );
  });
});
