/**
 * A server that lies, below the SDK (a real server; the frames that reach
 * the client are forged by `hostileTransport`): an acknowledgement naming
 * the seq of a message already kept, a seq far past the room's end, and a
 * catch-up the server keeps answering wrongly. What is kept stays kept, the
 * room keeps working once the server is honest again, and reconnecting backs
 * off instead of hammering.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { SdkError } from '../src/errors.ts';
import { maintainPrekeys } from '../src/prekey-upkeep.ts';
import type { KeysChange } from '../src/peer-keys.ts';
import { toBase64 } from '../src/_bytes.ts';
import { hostileTransport, recorder, serverForSuite, sleep, texts, until } from './_harness.ts';

describe('a lying server', () => {
  const server = serverForSuite();
  const { clients } = server;

  it('an ack naming the seq of a message already kept overwrites nothing, and is reported', async () => {
    const ra = recorder();
    const rb = recorder();
    const lie = { seq: 0 };
    const alice = await ParleyClient.register(server.url, 'ack-a', 'dev1', {
      on: ra.on,
      transport: hostileTransport((f, text) => (f.t === 'ack' && lie.seq > 0 ? [JSON.stringify({ ...f, seq: lie.seq })] : [text])),
    });
    const bob = await ParleyClient.register(server.url, 'ack-b', 'dev1', { on: rb.on });
    clients.push(alice, bob);
    const room = await alice.startDirect('ack-b');
    await alice.send(room, 'first');
    await until(() => rb.messages.length === 1, 'bob has the room');
    await bob.send(room, 'bob 4711');
    await until(() => ra.messages.length === 1, "alice has bob's message");
    const bobsSeq = ra.messages[0]?.seq ?? 0;
    lie.seq = bobsSeq;
    await alice.send(room, 'acknowledged with the wrong seq');
    await until(() => ra.errors.some((e) => SdkError.is(e, 'BAD_RESPONSE')), 'the false ack is reported');
    const kept = (await alice.history(room, { limit: 10 })).find((e) => e.type === 'message' && e.seq === bobsSeq);
    assert.ok(kept !== undefined && kept.type === 'message' && kept.kind === 'text');
    assert.equal(kept.text, 'bob 4711', "bob's message is still the one kept at its seq");
    assert.equal((await alice.search('4711')).length, 1);
  });

  it('a seq far past the room’s end does not silence the room: against an honest server it moves back and later messages arrive', async () => {
    const store = MemoryClientStore.create();
    const ra = recorder();
    const rb = recorder();
    const inject = { room: '' };
    const first = await ParleyClient.register(server.url, 'far-a', 'dev1', {
      store,
      on: ra.on,
      transport: hostileTransport((f, text) => {
        if (inject.room === '' || f.t !== 'msg') return [text];
        const forged = { ...f, seq: 2 ** 53 - 1, clientId: 'forged', body: 'AAAA' };
        inject.room = '';
        return [text, JSON.stringify(forged)];
      }),
    });
    const bob = await ParleyClient.register(server.url, 'far-b', 'dev1', { on: rb.on });
    clients.push(first, bob);
    const room = await first.startDirect('far-b');
    await first.send(room, 'hello');
    await until(() => rb.messages.length === 1, 'bob has the room');
    inject.room = room;
    await bob.send(room, 'before the lie');
    await until(() => ra.messages.length === 1, 'the message before the lie');
    await sleep(300);
    await first.close();
    // The same store against the honest server.
    const rc = recorder();
    const again = await ParleyClient.login(server.url, 'far-a', 'dev1', { store, on: rc.on });
    clients.push(again);
    await again.synced();
    await bob.send(room, 'after the lie');
    await until(() => rc.messages.some((m) => m.kind === 'text' && m.text === 'after the lie'), 'a message after the lie');
    assert.ok(rc.errors.some((e) => SdkError.is(e, 'BAD_RESPONSE')), 'the moved-back cursor is reported');
    assert.deepEqual(texts(rc.messages).filter((t) => t === 'after the lie'), ['after the lie'], 'once');
  });

  it('a catch-up the server keeps answering wrongly backs off instead of reconnecting at once', async () => {
    const ra = recorder();
    // When each connection was made, from just before the first.
    const connectedAt: number[] = [];
    const t0 = Date.now();
    const alice = await ParleyClient.register(server.url, 'storm-a', 'dev1', {
      on: {
        ...ra.on,
        connection: (c) => {
          ra.on.connection(c);
          if (c.state === 'connected') connectedAt.push(Date.now() - t0);
        },
      },
      transport: hostileTransport((f, text) => (f.t === 'synced' ? [JSON.stringify({ ...f, rooms: 'not an object' })] : [text])),
    });
    clients.push(alice);
    const delays = (): number[] => ra.connection.flatMap((c) => (c.state === 'reconnecting' ? [c.delayMs] : []));
    await until(() => delays().length >= 3, 'three reconnects', 20_000);
    // The connections made in the first 4 s, counted once those 4 s are over (a slow machine only makes fewer).
    await sleep(Math.max(0, t0 + 4000 - Date.now()));
    const connects = connectedAt.filter((t) => t <= 4000).length;
    // With the backoff growing from 250 ms (125–250, 250–500, 500–1000, 1000–2000 …) at most ~6 fit in 4 s;
    // without it (the old behaviour) it was one every 125–250 ms.
    assert.ok(connects <= 7, `${connects} connections in 4 s`);
    const d = delays();
    assert.ok(d.length >= 3 && (d.at(-1) ?? 0) > (d[0] ?? 0) * 2, `growing delays: ${JSON.stringify(d)}`);
    await alice.close();
  });
  it('a message relabelled as a membership event is surfaced as undecryptable, not dropped unseen', async () => {
    const ra = recorder();
    const rb = recorder();
    const relabel = { on: false };
    const alice = await ParleyClient.register(server.url, 'kind-a', 'dev1', { on: ra.on });
    const bob = await ParleyClient.register(server.url, 'kind-b', 'dev1', {
      on: rb.on,
      transport: hostileTransport((f, text) => (relabel.on && f.t === 'msg' && f['kind'] === 'message' ? [JSON.stringify({ ...f, kind: 'member-added' })] : [text])),
    });
    clients.push(alice, bob);
    const room = await alice.startDirect('kind-b');
    await alice.send(room, 'seen');
    await until(() => rb.messages.length === 1, 'the first message');
    relabel.on = true;
    const sent = await alice.send(room, 'relabelled');
    await until(() => rb.failures.length === 1, 'surfaced');
    assert.deepEqual([rb.failures[0]?.seq, rb.failures[0]?.reason], [sent.seq, 'MALFORMED_BODY']);
  });

  it('a device the directory lists beside a new user’s only device is reported to the device that registered the user', async () => {
    // The attacker's device: a real identity with validly signed prekeys, never registered.
    const ghost = MemoryClientStore.create();
    let upload: Record<string, unknown> | undefined;
    await maintainPrekeys(ghost, (frame) => {
      upload ??= frame as unknown as Record<string, unknown>;
      return Promise.resolve({ t: 'keys.uploaded', oneTimePrekeys: 100 });
    });
    const otks = [...((upload?.['oneTimePrekeys'] as unknown[] | undefined) ?? [])];
    const ghostEntry = () => ({ deviceId: 'ghost', identityKey: toBase64(ghost.identity.identityKeyPair().publicKey), signedPrekey: upload?.['signedPrekey'], oneTimePrekey: otks.shift() ?? null, pqPrekey: upload?.['pqPrekey'] });
    const changes: KeysChange[] = [];
    const ra = recorder();
    const alice = await ParleyClient.register(server.url, 'ghost-a', 'laptop', {
      on: { ...ra.on, keysChanged: (c: KeysChange) => changes.push(c) },
      transport: hostileTransport((f, text) => (f.t === 'keys' && f['userId'] === 'ghost-a' ? [JSON.stringify({ ...f, devices: [...(f['devices'] as unknown[]), ghostEntry()] })] : [text])),
    });
    const bob = await ParleyClient.register(server.url, 'ghost-b', 'phone');
    clients.push(alice, bob);
    const room = await alice.startDirect('ghost-b');
    await alice.send(room, 'hello');
    const own = changes.filter((c) => c.userId === 'ghost-a');
    assert.deepEqual(
      own.map((c) => c.added.map((d) => d.deviceId)),
      [['ghost']],
      'the extra device of this very user is reported, not trusted on first sight',
    );
    assert.deepEqual(
      alice.verificationStatus('ghost-a').devices.map((d) => d.deviceId),
      ['laptop', 'ghost'],
    );
  });

  it('a direct room the peer opened is pinned by the peer’s message (payload.ts, direct): a member the server adds gets nothing', async () => {
    const addEve = { on: false };
    const rb = recorder();
    const alice = await ParleyClient.register(server.url, 'pin-a', 'dev1');
    const eve = await ParleyClient.register(server.url, 'pin-e', 'dev1');
    const bob = await ParleyClient.register(server.url, 'pin-b', 'dev1', {
      on: rb.on,
      transport: hostileTransport((f, text) =>
        addEve.on && f.t === 'members' ? [JSON.stringify({ ...f, members: [...(f['members'] as unknown[]), { userId: 'pin-e', role: 'member' }] })] : [text],
      ),
    });
    clients.push(alice, eve, bob);
    const room = await alice.startDirect('pin-b');
    await alice.send(room, 'hi bob');
    await until(() => rb.messages.length === 1, 'bob has the message');
    // Listed with a third member before bob ever sent there: alice's message said the room is hers and bob's.
    addEve.on = true;
    const first = await bob.send(room, 'for alice only');
    addEve.on = false;
    const second = await bob.send(room, 'still for alice only');
    for (const sent of [first, second]) assert.deepEqual([...new Set(sent.recipients.map((d) => d.userId))], ['pin-a']);
  });

  it('a direct room the peer opened, listed to this user as a group with a third member: the peer’s message pins it, and replies go to the peer alone', async () => {
    const lie = { room: '' };
    const ra = recorder();
    const alice = await ParleyClient.register(server.url, 'grp-a', 'dev1', {
      on: ra.on,
      transport: hostileTransport((f, text) => {
        if (lie.room === '') return [text];
        if (f.t === 'rooms') return [JSON.stringify({ ...f, rooms: (f['rooms'] as { roomId: string }[]).map((r) => (r.roomId === lie.room ? { ...r, kind: 'group' } : r)) })];
        if (f.t === 'members' && f['roomId'] === lie.room) return [JSON.stringify({ ...f, members: [...(f['members'] as unknown[]), { userId: 'grp-e', role: 'member' }] })];
        return [text];
      }),
    });
    const eve = await ParleyClient.register(server.url, 'grp-e', 'dev1');
    const bob = await ParleyClient.register(server.url, 'grp-b', 'dev1');
    clients.push(alice, eve, bob);
    const room = await bob.startDirect('grp-a');
    lie.room = room;
    await bob.send(room, 'only for alice');
    await until(() => ra.messages.length === 1, 'alice has bob’s message');
    const reply = await alice.send(room, 'only for bob');
    assert.deepEqual([...new Set(reply.recipients.map((d) => d.userId))], ['grp-b'], 'eve, listed by the server, gets nothing');
    assert.equal(await alice.findDirect('grp-b'), room, 'and it is alice’s direct room with bob from now on');
  });

  it('an entry with a false seq a few past the room’s end costs no real message: those below it, and the one at its seq, still arrive', async () => {
    const forge = { roomId: '', seq: 0 };
    const rb = recorder();
    const alice = await ParleyClient.register(server.url, 'fseq-a', 'dev1');
    const bob = await ParleyClient.register(server.url, 'fseq-b', 'dev1', {
      on: rb.on,
      transport: hostileTransport((f, text) => {
        if (forge.seq === 0 || f.t !== 'msg') return [text];
        const forged = { t: 'msg', roomId: forge.roomId, seq: forge.seq, kind: 'message', from: { userId: 'fseq-a', deviceId: 'dev1' }, clientId: 'forged', body: 'AQAA', ts: Date.now() };
        forge.seq = 0;
        return [text, JSON.stringify(forged)];
      }),
    });
    clients.push(alice, bob);
    const room = await alice.startDirect('fseq-b');
    await alice.send(room, 'm0');
    await until(() => rb.messages.length === 1, 'm0');
    const last = rb.messages[0]?.seq ?? 0;
    forge.roomId = room;
    forge.seq = last + 6; // sent right after the next real entry, last + 1
    await alice.send(room, 'm1');
    await until(() => rb.failures.some((x) => x.clientId === 'forged'), 'the forged entry, passed over after its syncs', 15_000);
    for (const t of ['m2', 'm3', 'm4', 'm5', 'm6']) await alice.send(room, t);
    await until(() => rb.messages.length === 7, 'every real message', 10_000);
    assert.deepEqual(texts(rb.messages).sort(), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  });

  it('a history page with more entries than asked for is BAD_RESPONSE (not a RangeError, not kept)', async () => {
    const inflate = { on: false };
    const alice = await ParleyClient.register(server.url, 'page-a', 'dev1', {
      transport: hostileTransport((f, text) => {
        if (!inflate.on || f.t !== 'history') return [text];
        const entries = f['entries'] as unknown[];
        return [JSON.stringify({ ...f, entries: Array.from({ length: 200_000 }, (_, i) => entries[i % entries.length]) })];
      }),
    });
    const bob = await ParleyClient.register(server.url, 'page-b', 'dev1');
    clients.push(alice, bob);
    const room = await alice.startDirect('page-b');
    await alice.send(room, 'one');
    await alice.send(room, 'two');
    assert.equal((await alice.history(room, { limit: 5 })).filter((e) => e.type === 'message').length, 2, 'honest');
    inflate.on = true;
    await assert.rejects(alice.history(room, { limit: 5 }), (e: unknown) => SdkError.is(e, 'BAD_RESPONSE') && /200000 entries, 5 asked for/.test((e as Error).message));
  });

  it('a key directory answer listing one device twice is BAD_RESPONSE; sending works again once the server is honest', async () => {
    const twice = { on: false };
    const alice = await ParleyClient.register(server.url, 'dup-a', 'dev1', {
      transport: hostileTransport((f, text) => {
        if (!twice.on || f.t !== 'keys' || f['userId'] !== 'dup-b') return [text];
        const devices = f['devices'] as unknown[];
        return [JSON.stringify({ ...f, devices: [...devices, ...devices] })];
      }),
    });
    const bob = await ParleyClient.register(server.url, 'dup-b', 'dev1');
    clients.push(alice, bob);
    const room = await alice.startDirect('dup-b');
    twice.on = true;
    alice.refreshDevices('dup-b');
    await assert.rejects(alice.send(room, 'refused'), (e: unknown) => SdkError.is(e, 'BAD_RESPONSE') && /twice/.test((e as Error).message));
    twice.on = false;
    alice.refreshDevices('dup-b');
    assert.deepEqual((await alice.send(room, 'sent')).recipients.map((d) => d.userId), ['dup-b']);
  });

  it('an upload chunk size below BLOB_CHUNK_BYTES_MIN is refused before the first chunk', async () => {
    const alice = await ParleyClient.register(server.url, 'tiny-a', 'dev1', {
      transport: hostileTransport((f, text) => (f.t === 'blob.created' ? [JSON.stringify({ ...f, chunkBytes: 1 })] : [text])),
    });
    const bob = await ParleyClient.register(server.url, 'tiny-b', 'dev1');
    clients.push(alice, bob);
    const room = await alice.startDirect('tiny-b');
    await assert.rejects(alice.sendFile(room, new Uint8Array(70_000).fill(1), { name: 'f.bin' }), (e: unknown) => SdkError.is(e, 'BAD_RESPONSE') && /chunk size/.test((e as Error).message));
  });

  it('a sync the server keeps cutting short without moving on is refused, not asked again for ever', async () => {
    const stall = { on: false, synced: 0, dropped: false };
    const ra = recorder();
    const alice = await ParleyClient.register(server.url, 'stall-a', 'dev1', {
      on: ra.on,
      transport: hostileTransport((f, text) => {
        if (!stall.on) return [text];
        // One live message lost: the next shows a hole, which makes a sync.
        if (f.t === 'msg' && !stall.dropped) {
          stall.dropped = true;
          return [];
        }
        if (f.t !== 'synced') return [text];
        stall.synced++;
        const rooms = f['rooms'] as Record<string, number>;
        return [JSON.stringify({ ...f, more: Object.keys(rooms) })];
      }),
    });
    const bob = await ParleyClient.register(server.url, 'stall-b', 'dev1');
    clients.push(alice, bob);
    const room = await alice.startDirect('stall-b');
    await alice.send(room, 'hi');
    await alice.synced();
    stall.on = true; // from now on every sync is "cut short" where it stands
    await bob.send(room, 'lost on the way');
    await bob.send(room, 'after the hole');
    await until(() => ra.errors.some((e) => SdkError.is(e, 'BAD_RESPONSE') && /without moving on/.test(e.message)), 'the stalled sync is refused');
    const seen = stall.synced;
    await sleep(1_000);
    assert.ok(stall.synced - seen < 10, `${stall.synced - seen} more syncs in 1 s: backing off, not looping`);
  });

  it('a blob served in chunks shorter than the chunk size is refused at once (not one request per byte)', async () => {
    const shrink = { on: false };
    const rb = recorder();
    const alice = await ParleyClient.register(server.url, 'chunk-a', 'dev1');
    const bob = await ParleyClient.register(server.url, 'chunk-b', 'dev1', {
      on: rb.on,
      transport: hostileTransport((f, text) => (shrink.on && f.t === 'blob' && typeof f['data'] === 'string' ? [JSON.stringify({ ...f, data: (f['data'] as string).slice(0, 4) })] : [text])),
    });
    clients.push(alice, bob);
    const room = await alice.startDirect('chunk-b');
    await alice.sendFile(room, new Uint8Array(300_000).fill(7), { name: 'big.bin' });
    await until(() => rb.messages.some((m) => m.kind === 'file'), 'bob has the file message');
    const message = rb.messages.find((m) => m.kind === 'file');
    assert.ok(message?.kind === 'file');
    assert.equal((await bob.downloadFile(message.file)).length, 300_000, 'honest chunks: the file');
    shrink.on = true;
    await assert.rejects(bob.downloadFile(message.file), (e: unknown) => SdkError.is(e, 'BAD_RESPONSE') && /blob chunk of 3 bytes/.test((e as Error).message));
  });
});
