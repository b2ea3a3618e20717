/**
 * Two users with two devices each chat end to end through a real server:
 * every device decrypts every message of the others, a user's other device
 * sees what the user sent, and history reads back the whole conversation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { SdkError } from '../src/errors.ts';
import type { ChatMessage } from '../src/events.ts';
import { provisionDevice, type Recorder, recorder, serverForSuite, texts, until } from './_harness.ts';

describe('a direct conversation between alice and bob, two devices each', () => {
  const server = serverForSuite();
  const { clients } = server;

  async function secondDevice(first: ParleyClient, deviceId: string, rec: Recorder): Promise<ParleyClient> {
    const userId = first.userId;
    const store = MemoryClientStore.create();
    await provisionDevice(first, store, deviceId);
    const c = await ParleyClient.login(server.url, userId, deviceId, { store, on: rec.on });
    clients.push(c);
    return c;
  }

  it('exchanges messages both ways; every other device decrypts them; history reads them back', async () => {
    const [ra1, ra2, rb1, rb2] = [recorder(), recorder(), recorder(), recorder()];
    const alice1 = await ParleyClient.register(server.url, 'alice', 'laptop', { on: ra1.on });
    clients.push(alice1);
    const alice2 = await secondDevice(alice1, 'phone', ra2);
    const bob1 = await ParleyClient.register(server.url, 'bob', 'phone', { on: rb1.on });
    clients.push(bob1);
    const bob2 = await secondDevice(bob1, 'tablet', rb2);
    await Promise.all(clients.map((c) => c.synced()));

    const room = await alice1.startDirect('bob');
    assert.equal(await alice1.startDirect('bob'), room, 'the existing direct room is reused');
    assert.equal(await bob1.startDirect('alice'), room, 'the other side finds the same room');
    assert.equal(await alice2.startDirect('bob'), room);

    const sent: { from: ParleyClient; text: string | Uint8Array; id?: string }[] = [];
    const say = async (from: ParleyClient, content: string | Uint8Array): Promise<void> => {
      const r = await from.send(room, content);
      assert.equal(r.skipped.length, 0, `nothing skipped: ${JSON.stringify(r.skipped)}`);
      sent.push({ from, text: content, id: r.id });
    };

    await say(alice1, 'hello bob');
    const first = sent[0];
    assert.ok(first !== undefined);
    // Each of the three other devices receives it, from alice/laptop.
    await until(() => rb1.messages.length === 1 && rb2.messages.length === 1 && ra2.messages.length === 1, 'the first message on three devices');
    for (const [rec, outgoing] of [
      [rb1, false],
      [rb2, false],
      [ra2, true],
    ] as const) {
      const m = rec.messages[0] as ChatMessage;
      assert.equal(m.kind === 'text' && m.text, 'hello bob');
      assert.deepEqual(m.sender, { userId: 'alice', deviceId: 'laptop' });
      assert.equal(m.id, first.id);
      assert.equal(m.roomId, room);
      assert.equal(m.outgoing, outgoing);
    }
    assert.equal(ra1.messages.length, 0, 'the sender does not receive its own message');

    await say(bob1, 'hi alice');
    await say(alice2, 'from my phone');
    await say(bob2, 'tablet here');
    await say(alice1, 'second from laptop');
    await say(bob1, new Uint8Array([0, 1, 2, 250, 255]));
    await say(bob1, 'bob again, before alice answers');
    await say(alice2, 'phone again');

    // Every device gets every message sent by another device, in order.
    const devices: [ParleyClient, Recorder][] = [
      [alice1, ra1],
      [alice2, ra2],
      [bob1, rb1],
      [bob2, rb2],
    ];
    const label = (c: string | Uint8Array): string => (typeof c === 'string' ? c : `<${c.length} bytes>`);
    for (const [client, rec] of devices) {
      const expected = sent.filter((s) => s.from !== client).map((s) => label(s.text));
      await until(() => rec.messages.length === expected.length, `${client.userId}/${client.deviceId} to receive ${expected.length} messages`);
      assert.deepEqual(texts(rec.messages), expected, `${client.userId}/${client.deviceId}`);
      assert.deepEqual(rec.failures, [], `${client.userId}/${client.deviceId} decrypted everything`);
      assert.deepEqual(rec.errors, [], `${client.userId}/${client.deviceId} reported no errors`);
      const seqs = rec.messages.map((m) => m.seq);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in room order');
    }
    const binary = rb2.messages.find((m) => m.kind === 'binary');
    assert.ok(binary !== undefined && binary.kind === 'binary');
    assert.deepEqual([...binary.bytes], [0, 1, 2, 250, 255]);

    // History: the whole conversation, own messages (kept copies) included.
    for (const [client] of devices) {
      const page = await client.history(room, { limit: 50 });
      assert.deepEqual(
        page.filter((e) => e.type === 'membership').map((e) => e.type === 'membership' && e.userId),
        ['alice', 'bob'],
      );
      const messages = page.filter((e) => e.type === 'message');
      assert.deepEqual(
        messages.map((e) => (e.kind === 'text' ? e.text : e.kind === 'binary' ? `<${e.bytes.length} bytes>` : '<file>')),
        sent.map((s) => label(s.text)),
        `history of ${client.userId}/${client.deviceId}`,
      );
      assert.deepEqual(page.filter((e) => e.type === 'undecryptable'), []);
      // Paging backwards: the last two entries, then the ones before them.
      const last = await client.history(room, { limit: 2 });
      assert.deepEqual(last.map((e) => e.seq), page.slice(-2).map((e) => e.seq));
      const earlier = await client.history(room, { before: (last[0] as { seq: number }).seq, limit: 3 });
      assert.deepEqual(earlier.map((e) => e.seq), page.slice(-5, -2).map((e) => e.seq));
    }
  });

  it('refuses a taken user id, an unknown device, and a store of another device', async () => {
    const taken = await ParleyClient.register(server.url, 'carol', 'dev1');
    clients.push(taken);
    await assert.rejects(ParleyClient.register(server.url, 'carol', 'dev2'), (e) => SdkError.is(e, 'AUTH_FAILED') && e.serverCode === 'conflict');
    await assert.rejects(ParleyClient.login(server.url, 'carol', 'nope', { store: MemoryClientStore.create() }), (e) => SdkError.is(e, 'AUTH_FAILED') && e.serverCode === 'invalid_credentials');
    await assert.rejects(ParleyClient.login(server.url, 'carol', 'dev2', { store: taken.store }), (e) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await assert.rejects(ParleyClient.register(server.url, 'Not Valid', 'dev1'), (e) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await assert.rejects(taken.startDirect('carol'), (e) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await taken.close();
    await assert.rejects(taken.send('room', 'x'), (e) => SdkError.is(e, 'CLOSED'));
  });
});
