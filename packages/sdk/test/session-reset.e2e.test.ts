/**
 * A device restored from its key backup has no sessions; its peers still
 * have theirs. Against a real server: before `resetSessions` a peer's
 * message is undecryptable on the restored device; after it, the peer's
 * device has replaced its session (by decrypting the reset) and the
 * conversation goes on both ways.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { exportKeyBackup, importKeyBackup } from '../src/key-backup.ts';
import { recorder, serverForSuite, texts, until } from './_harness.ts';

describe('session reset after a restore', () => {
  const server = serverForSuite();
  const { clients } = server;

  it('peers start over with the restored device', async () => {
    const alice = await ParleyClient.register(server.url, 'sr-alice', 'laptop');
    const rb = recorder();
    const bob = await ParleyClient.register(server.url, 'sr-bob', 'phone', { on: rb.on });
    clients.push(alice, bob);
    const room = await alice.startDirect('sr-bob');
    await alice.send(room, 'before');
    await until(() => rb.messages.length === 1, 'bob reads alice');
    await bob.send(room, 'bob on the old session');

    const passphrase = 'a long passphrase for the backup';
    const restored = await importKeyBackup(await exportKeyBackup(alice.store, passphrase), passphrase, { userId: 'sr-alice', deviceId: 'laptop' });
    await alice.close();
    const ra = recorder();
    const again = await ParleyClient.login(server.url, 'sr-alice', 'laptop', { store: restored, on: ra.on });
    clients.push(again);
    await again.discardStaleOneTimePrekeys();
    await again.synced();
    assert.deepEqual(ra.messages, [], 'nothing readable from before');

    await bob.send(room, 'still on the old session');
    await until(() => ra.failures.length === 3, "the three undecryptable ones: bob's two, and its own earlier message (no copy in the restored store)");
    assert.deepEqual(
      ra.failures.map((f) => [f.from.userId, f.reason]),
      [
        ['sr-alice', 'NO_LOCAL_COPY'],
        ['sr-bob', 'DECRYPT_FAILED'],
        ['sr-bob', 'DECRYPT_FAILED'],
      ],
    );
    assert.equal(await again.resetSessions(), 1);
    // resetSessions resolves once the reset is stored; a message after it, in room order, shows bob processed it.
    await again.send(room, 'after my reset');
    await until(() => rb.messages.length === 2 && rb.failures.length === 0, 'bob took the reset quietly');
    await bob.send(room, 'after the reset');
    await until(() => ra.messages.length === 1, 'alice reads bob again');
    assert.deepEqual(texts(ra.messages), ['after the reset']);
    await again.send(room, 'and back');
    await until(() => rb.messages.length === 3, 'bob reads the restored alice');
    assert.deepEqual(texts(rb.messages), ['before', 'after my reset', 'and back']);
    assert.deepEqual(rb.failures, []);
    // The reset is the clients' business: no history entry for it on either side (not a "verification").
    for (const c of [again, bob]) {
      const h = await c.history(room);
      assert.deepEqual(h.filter((e) => e.type === 'verification'), [], 'no verification step in history');
    }
  });
});
