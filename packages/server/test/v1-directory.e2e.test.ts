/**
 * Key directory, mailbox, ephemeral signals and token expiry over a real
 * server process, and the core flow once more on PostgreSQL.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import pg from 'pg';
import { startServerProcess, type ServerProcess } from './_server-process.ts';
import { b64, deviceKey, loggedIn, registered, authed, type Frame, type MsgFrame, type SessionFrame, type V1Client } from './_v1-client.ts';
import { KEY_PACKAGES_PER_UPLOAD_MAX, MAILBOX_FROM_SENDER_MAX, MAILBOX_MAX, MAILBOX_PAGE, ONE_TIME_PREKEYS_MAX, ONE_TIME_PREKEYS_PER_UPLOAD_MAX } from '../src/limits.ts';

function prekeyMessage(purpose: string, keyId: number, pub: Uint8Array): Buffer {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(keyId);
  return Buffer.concat([Buffer.from(purpose + '\n'), id, pub]);
}

function signWith(key: KeyObject, message: Uint8Array): string {
  return sign(null, message, key).toString('base64');
}

describe('v1 key directory, mailbox, signals, token expiry (SQLite)', () => {
  let server: ServerProcess;
  let url: string;
  const clients: V1Client[] = [];
  before(async () => {
    server = await startServerProcess();
    url = `ws://127.0.0.1:${server.port}/v1`;
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.stop();
    server.cleanup();
  });
  async function user(id: string, device = 'dev1'): Promise<{ client: V1Client; session: SessionFrame }> {
    const r = await registered(url, id, device);
    clients.push(r.client);
    return r;
  }

  test('uploads are verified against the identity key; one-time prekeys and KeyPackages are handed out exactly once', async () => {
    const { client: bob } = await user('kd-bob');
    const { client: alice } = await user('kd-alice');
    const key = deviceKey('kd-bob', 'dev1').privateKey;
    const spk = new Uint8Array(randomBytes(32));
    const pq = new Uint8Array(randomBytes(1184));
    const otks = Array.from({ length: 3 }, (_, i) => ({ keyId: 100 + i, publicKey: b64(randomBytes(32)) }));
    const kpData = new Uint8Array(randomBytes(300));
    const kpSignature = signWith(key, Buffer.concat([Buffer.from('parley-key-package-v1\n'), kpData]));
    const bad = await bob.request({ t: 'keys.upload', signedPrekey: { keyId: 1, publicKey: b64(spk), signature: signWith(generateKeyPairSync('ed25519').privateKey, prekeyMessage('parley-signed-prekey-v1', 1, spk)) } });
    assert.equal((bad as Frame & { code?: string }).code, 'invalid_credentials', 'a prekey signed by another key is refused');
    const up = await bob.request({
      t: 'keys.upload',
      signedPrekey: { keyId: 1, publicKey: b64(spk), signature: signWith(key, prekeyMessage('parley-signed-prekey-v1', 1, spk)) },
      pqPrekey: { keyId: 7, publicKey: b64(pq), signature: signWith(key, prekeyMessage('parley-pq-prekey-v1', 7, pq)) },
      oneTimePrekeys: otks,
      keyPackages: [{ ref: 'kp-1', data: b64(kpData), signature: kpSignature }],
    });
    assert.deepEqual({ t: up.t, oneTimePrekeys: up['oneTimePrekeys'], keyPackages: up['keyPackages'] }, { t: 'keys.uploaded', oneTimePrekeys: 3, keyPackages: 1 });
    const seen = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const r = (await alice.request({ t: 'keys.fetch', userId: 'kd-bob' })) as Frame & { devices: { identityKey: string; signedPrekey: { publicKey: string }; oneTimePrekey: { keyId: number } | null; pqPrekey: { keyId: number } }[] };
      assert.equal(r.t, 'keys');
      const d = r.devices[0];
      assert.ok(d);
      assert.equal(d.signedPrekey.publicKey, b64(spk));
      assert.equal(d.pqPrekey.keyId, 7);
      if (i < 3) {
        assert.ok(d.oneTimePrekey !== null && !seen.has(d.oneTimePrekey.keyId), 'a fresh one-time prekey each time');
        seen.add(d.oneTimePrekey.keyId);
      } else assert.equal(d.oneTimePrekey, null, 'none left after three fetches');
    }
    const kp1 = await alice.request({ t: 'keys.claimKeyPackage', userId: 'kd-bob', deviceId: 'dev1' });
    // With the device's signature, so the claimer can check it too.
    assert.deepEqual(kp1['keyPackage'], { ref: 'kp-1', data: b64(kpData), signature: kpSignature });
    const kp2 = await alice.request({ t: 'keys.claimKeyPackage', userId: 'kd-bob', deviceId: 'dev1' });
    assert.equal(kp2['keyPackage'], null);
    const tooMany = await bob.request({ t: 'keys.upload', oneTimePrekeys: Array.from({ length: ONE_TIME_PREKEYS_PER_UPLOAD_MAX + 1 }, (_, i) => ({ keyId: i, publicKey: b64(randomBytes(32)) })) });
    assert.equal(tooMany['code'], 'bad_frame');
    const kpsTooMany = await bob.request({ t: 'keys.upload', keyPackages: Array.from({ length: KEY_PACKAGES_PER_UPLOAD_MAX + 1 }, (_, i) => ({ ref: `r${i}`, data: b64(kpData), signature: b64(new Uint8Array(64)) })) });
    assert.equal(kpsTooMany['code'], 'bad_frame');
    // A repeated keyId or ref in one upload is refused whole: nothing of it is stored.
    const before = await bob.request({ t: 'keys.upload' });
    const twiceId = await bob.request({ t: 'keys.upload', oneTimePrekeys: [200, 201, 200].map((keyId) => ({ keyId, publicKey: b64(randomBytes(32)) })) });
    assert.equal(twiceId['code'], 'bad_frame');
    const kp = (ref: string) => ({ ref, data: b64(kpData), signature: signWith(key, Buffer.concat([Buffer.from('parley-key-package-v1\n'), kpData])) });
    const twiceRef = await bob.request({ t: 'keys.upload', keyPackages: [kp('kp-a'), kp('kp-b'), kp('kp-a')] });
    assert.equal(twiceRef['code'], 'bad_frame');
    const after = await bob.request({ t: 'keys.upload' });
    assert.deepEqual([after['oneTimePrekeys'], after['keyPackages']], [before['oneTimePrekeys'], before['keyPackages']]);
    const distinct = await bob.request({ t: 'keys.upload', oneTimePrekeys: [200, 201].map((keyId) => ({ keyId, publicKey: b64(randomBytes(32)) })), keyPackages: [kp('kp-a'), kp('kp-b')] });
    assert.deepEqual([distinct['oneTimePrekeys'], distinct['keyPackages']], [Number(before['oneTimePrekeys']) + 2, Number(before['keyPackages']) + 2]);
  });

  test('one-time prekeys and KeyPackages: concurrent uploads from two connections of a device stop at the per-device limit', async () => {
    const r = await registered(url, 'kd-race', 'dev1');
    clients.push(r.client);
    const second = (await authed(url, r.session.accessToken as string, 'kd-race#2')).client;
    clients.push(second);
    // Fill to within one upload of the limit, then both connections upload a batch that fits alone.
    const batch = ONE_TIME_PREKEYS_PER_UPLOAD_MAX;
    let keyId = 0;
    const otks = (n: number) => Array.from({ length: n }, () => ({ keyId: keyId++, publicKey: b64(randomBytes(32)) }));
    while (keyId + 2 * batch <= ONE_TIME_PREKEYS_MAX) assert.equal((await r.client.request({ t: 'keys.upload', oneTimePrekeys: otks(batch) })).t, 'keys.uploaded');
    const fill = ONE_TIME_PREKEYS_MAX - batch - keyId;
    if (fill > 0) assert.equal((await r.client.request({ t: 'keys.upload', oneTimePrekeys: otks(fill) })).t, 'keys.uploaded');
    const both = await Promise.all([r.client, second].map((c) => c.request({ t: 'keys.upload', oneTimePrekeys: otks(batch) })));
    assert.deepEqual(both.map((f) => f.t).sort(), ['error', 'keys.uploaded'], 'exactly one of the two fits');
    assert.equal(both.find((f) => f.t === 'error')?.['code'], 'limit_exceeded');
    assert.equal(both.find((f) => f.t === 'keys.uploaded')?.['oneTimePrekeys'], ONE_TIME_PREKEYS_MAX);
  });

  test(`a retried upload near ONE_TIME_PREKEYS_MAX (${ONE_TIME_PREKEYS_MAX}) is not refused for keys already stored: only new ones count`, async () => {
    const r = await registered(url, 'kd-retry', 'dev1');
    clients.push(r.client);
    const key = (keyId: number) => ({ keyId, publicKey: b64(randomBytes(32)) });
    let last: { keyId: number; publicKey: string }[] = [];
    for (let from = 0; from < ONE_TIME_PREKEYS_MAX - 1; from += ONE_TIME_PREKEYS_PER_UPLOAD_MAX) {
      last = Array.from({ length: Math.min(ONE_TIME_PREKEYS_PER_UPLOAD_MAX, ONE_TIME_PREKEYS_MAX - 1 - from) }, (_, i) => key(from + i));
      assert.equal((await r.client.request({ t: 'keys.upload', oneTimePrekeys: last })).t, 'keys.uploaded');
    }
    // One below the limit: the last upload again with one new key makes exactly the limit.
    const frame = { t: 'keys.upload', oneTimePrekeys: [...last, key(ONE_TIME_PREKEYS_MAX + 1000)] };
    const once = await r.client.request(frame);
    assert.deepEqual([once.t, once['oneTimePrekeys']], ['keys.uploaded', ONE_TIME_PREKEYS_MAX]);
    const retried = await r.client.request(frame);
    assert.deepEqual([retried.t, retried['oneTimePrekeys']], ['keys.uploaded', ONE_TIME_PREKEYS_MAX], 'the same upload again is harmless');
    const over = await r.client.request({ t: 'keys.upload', oneTimePrekeys: [key(ONE_TIME_PREKEYS_MAX + 2000)] });
    assert.equal(over['code'], 'limit_exceeded');
  });

  test(`MAILBOX_FROM_SENDER_MAX (${MAILBOX_FROM_SENDER_MAX}): one user cannot fill a device's mailbox (MAILBOX_MAX ${MAILBOX_MAX}) for everyone; another user still gets in`, async () => {
    const { client: mallory } = await user('mb-mallory');
    const { client: erin } = await user('mb-erin');
    const { client: frank } = await user('mb-frank', 'phone');
    frank.close();
    const send = (c: typeof mallory, clientId: string) => c.request({ t: 'mailbox.send', userId: 'mb-frank', deviceId: 'phone', clientId, payload: b64(randomBytes(16)) });
    for (let i = 0; i < MAILBOX_FROM_SENDER_MAX; i++) assert.equal((await send(mallory, `f-${i}`)).t, 'ack', `entry ${i}`);
    const over = await send(mallory, 'f-over');
    assert.deepEqual([over.t, over['code']], ['error', 'limit_exceeded']);
    assert.match(String(over['message']), new RegExp(`holds ${MAILBOX_FROM_SENDER_MAX} entries from you already`));
    assert.equal((await send(mallory, 'f-0'))['duplicate'], true, 'a retry of a stored one still answers');
    assert.equal((await send(erin, 'e-0')).t, 'ack');
  });

  test('mailbox: stored while offline, pushed at login and live, deleted on ack, idempotent by clientId', async () => {
    const { client: carol, session: cs } = await user('mb-carol');
    const { client: dave } = await user('mb-dave', 'phone');
    dave.close();
    const payload = new Uint8Array(randomBytes(200));
    const a1 = await carol.request({ t: 'mailbox.send', userId: 'mb-dave', deviceId: 'phone', clientId: 'w-1', payload: b64(payload) });
    assert.equal(a1.t, 'ack');
    const again = await carol.request({ t: 'mailbox.send', userId: 'mb-dave', deviceId: 'phone', clientId: 'w-1', payload: b64(payload) });
    assert.equal(again['mailboxId'], a1['mailboxId'], 'same clientId, same entry');
    const missing = await carol.request({ t: 'mailbox.send', userId: 'mb-dave', deviceId: 'nope', clientId: 'w-2', payload: b64(payload) });
    assert.equal(missing['code'], 'not_found');
    const { client: dave2 } = await (async () => {
      const r = await registered(url, 'mb-dave-other', 'x'); // an unrelated user, to prove mail is per device
      clients.push(r.client);
      return r;
    })();
    assert.equal(dave2.inbox.filter((f) => f.t === 'mail').length, 0);
    const back = await (await import('./_v1-client.ts')).loggedIn(url, 'mb-dave', 'phone');
    clients.push(back.client);
    const mail = await back.client.waitFor((f) => f.t === 'mail');
    assert.equal(mail['payload'], b64(payload));
    assert.deepEqual(mail['from'], { userId: cs.userId, deviceId: cs.deviceId });
    const live = await carol.request({ t: 'mailbox.send', userId: 'mb-dave', deviceId: 'phone', clientId: 'w-3', payload: b64(payload) });
    assert.equal(live.t, 'ack');
    const liveMail = await back.client.waitFor((f) => f.t === 'mail' && f['clientId'] === 'w-3');
    // A retry of a stored entry answers with the same id and is not pushed again.
    const retry = await carol.request({ t: 'mailbox.send', userId: 'mb-dave', deviceId: 'phone', clientId: 'w-3', payload: b64(payload) });
    assert.equal(retry['mailboxId'], liveMail['id']);
    assert.equal(retry['duplicate'], true);
    const probe = await back.client.request({ t: 'room.list' }); // a round trip after the retry: a push would be in by now
    assert.equal(probe.t, 'rooms');
    assert.equal(back.client.inbox.filter((f) => f.t === 'mail' && f['clientId'] === 'w-3').length, 0, 'pushed once (the first push was taken above)');
    const acked = await back.client.request({ t: 'mailbox.ack', upTo: liveMail['id'] as number });
    assert.equal(acked['deleted'], 2);
    assert.ok(MAILBOX_PAGE >= 2);
  });

  test('mailbox pages: each entry is pushed once per connection, a partial ack does not bring the rest of a page again', async () => {
    const { client: first } = await user('mbp-box', 'phone');
    first.close();
    const total = 2 * MAILBOX_PAGE + 10;
    for (let i = 0; i < total; i += 100) {
      // A sender per hundred: one user may hold at most MAILBOX_FROM_SENDER_MAX entries in the mailbox.
      const { client: sender } = await user(`mbp-sender-${i}`);
      await Promise.all(Array.from({ length: Math.min(100, total - i) }, (_, k) => sender.request({ t: 'mailbox.send', userId: 'mbp-box', deviceId: 'phone', clientId: `p-${i + k}`, payload: b64(new Uint8Array([1])) })));
      await new Promise((r) => setTimeout(r, 600));
    }
    const box = (await loggedIn(url, 'mbp-box', 'phone')).client;
    clients.push(box);
    const ids = async (n: number): Promise<number[]> => {
      const deadline = Date.now() + 15_000;
      while (box.inbox.filter((f) => f.t === 'mail').length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return box.inbox.filter((f) => f.t === 'mail').map((f) => f['id'] as number);
    };
    const page1 = await ids(MAILBOX_PAGE);
    assert.equal(page1.length, MAILBOX_PAGE);
    // Half of the page acknowledged: the next page follows the first, nothing of it comes again.
    await box.request({ t: 'mailbox.ack', upTo: page1[MAILBOX_PAGE / 2 - 1] as number });
    const two = await ids(2 * MAILBOX_PAGE);
    await box.request({ t: 'mailbox.ack', upTo: two[2 * MAILBOX_PAGE - 1] as number });
    const all = await ids(total);
    await new Promise((r) => setTimeout(r, 200));
    const seen = box.inbox.filter((f) => f.t === 'mail').map((f) => f['id'] as number);
    assert.equal(seen.length, total, 'every entry once');
    assert.equal(new Set(seen).size, total);
    assert.deepEqual(seen, [...all].sort((a, b) => a - b), 'in id order');
  });

  test('typing and receipts reach the other members only; presence follows connections', async () => {
    const { client: e } = await user('sig-erin');
    const { client: f } = await user('sig-frank');
    const room = (await e.createRoom('group', ['sig-frank'])) as Frame & { room: { roomId: string } };
    const roomId = room.room.roomId;
    const ack = await e.publish(roomId, 'c1', new Uint8Array([1, 2, 3]));
    e.send({ t: 'typing', roomId });
    const typing = await f.waitFor((x) => x.t === 'typing');
    assert.deepEqual(typing['from'], { userId: 'sig-erin', deviceId: 'dev1' });
    f.send({ t: 'receipt', roomId, seq: ack['seq'] as number, kind: 'read' });
    const receipt = await e.waitFor((x) => x.t === 'receipt');
    assert.equal(receipt['kind'], 'read');
    assert.equal(receipt['seq'], ack['seq']);
    f.close();
    const offline = await e.waitFor((x) => x.t === 'presence' && x['userId'] === 'sig-frank');
    assert.equal(offline['online'], false);
  });

  test('presence.get: members see who of a room is online now, across a user\'s devices; others get not_found', async () => {
    const { client: e } = await user('pg-erin');
    const { client: f1 } = await user('pg-frank');
    const { client: g } = await user('pg-outsider');
    const roomId = ((await e.createRoom('group', ['pg-frank'])) as Frame & { room: { roomId: string } }).room.roomId;
    const get = async (c: V1Client): Promise<Frame> => c.request({ t: 'presence.get', roomId });
    const members = async (): Promise<{ userId: string; online: boolean; version: number }[]> => (await get(e))['members'] as { userId: string; online: boolean; version: number }[];
    const state = async (): Promise<unknown> => (await members()).map(({ userId, online }) => ({ userId, online }));
    assert.deepEqual(await state(), [{ userId: 'pg-erin', online: true }, { userId: 'pg-frank', online: true }]);
    const answer = await get(f1);
    assert.deepEqual({ t: answer.t, roomId: answer['roomId'] }, { t: 'presence.state', roomId });
    // A second connection of frank; the first leaving is no change.
    const f2 = (await loggedIn(url, 'pg-frank', 'dev1', 'frank again')).client;
    clients.push(f2);
    f1.close();
    await f1.closed;
    assert.deepEqual(await state(), [{ userId: 'pg-erin', online: true }, { userId: 'pg-frank', online: true }]);
    assert.equal((await e.quiet(300)).filter((x) => x.t === 'presence').length, 0, 'no presence change while another device is on');
    f2.close();
    const offline = await e.waitFor((x) => x.t === 'presence' && x['userId'] === 'pg-frank');
    assert.equal(offline['online'], false);
    assert.deepEqual(await state(), [{ userId: 'pg-erin', online: true }, { userId: 'pg-frank', online: false }]);
    // The answer names the version of frank's last change: the event's.
    assert.equal((await members()).find((m) => m.userId === 'pg-frank')?.version, offline['version']);
    // Not a member, no such room, no room id.
    assert.equal((await get(g))['code'], 'not_found');
    assert.equal((await g.request({ t: 'presence.get', roomId: 'r_nosuchroom0000000000' }))['code'], 'not_found');
    assert.equal((await g.request({ t: 'presence.get' }))['code'], 'bad_frame');
  });

  test('device.add: an existing device adds another, which then logs in; bad proofs, duplicates and the device limit refused', async () => {
    const { client: first } = await user('dv-jo');
    const { newDeviceKey, loggedIn } = await import('./_v1-client.ts');
    const { sign } = await import('node:crypto');
    const { deviceLinkMessage } = await import('../src/v1/auth.ts');
    const { DEVICES_PER_USER_MAX } = await import('../src/limits.ts');
    const phone = newDeviceKey('dv-jo', 'phone');
    const { deviceApprovalMessage } = await import('../src/v1/auth.ts');
    const { deviceKey } = await import('./_v1-client.ts');
    const proof = (key: typeof phone, userId: string, deviceId: string) => b64(sign(null, deviceLinkMessage(userId, deviceId), key.privateKey));
    const approve = (deviceId: string, key: typeof phone, by = deviceKey('dv-jo', 'dev1')) => b64(sign(null, deviceApprovalMessage('dv-jo', 'dev1', deviceId, key.identityKey), by.privateKey));
    const add = (deviceId: string, key: typeof phone, signature: string, approval = approve(deviceId, key)) =>
      first.request({ t: 'device.add', deviceId, identityKey: b64(key.identityKey), signature, approval });
    // The new key must have signed this very user and device id.
    const wrongUser = await add('phone', phone, proof(phone, 'dv-someone', 'phone'));
    assert.equal(wrongUser['code'], 'invalid_credentials');
    const wrongDevice = await add('phone', phone, proof(phone, 'dv-jo', 'tablet'));
    assert.equal(wrongDevice['code'], 'invalid_credentials');
    const other = newDeviceKey('dv-jo', 'other');
    assert.equal((await add('phone', phone, proof(other, 'dv-jo', 'phone')))['code'], 'invalid_credentials');
    // The session's own device key must approve this very device and key: a token alone adds nothing.
    assert.equal((await add('phone', phone, proof(phone, 'dv-jo', 'phone'), approve('phone', phone, other)))['code'], 'invalid_credentials', 'approved by another key');
    assert.equal((await add('phone', phone, proof(phone, 'dv-jo', 'phone'), approve('phone', other)))['code'], 'invalid_credentials', 'approval of another key');
    assert.equal((await add('phone', phone, proof(phone, 'dv-jo', 'phone'), approve('tablet', phone)))['code'], 'invalid_credentials', 'approval of another device id');
    const added = await add('phone', phone, proof(phone, 'dv-jo', 'phone'));
    assert.deepEqual({ t: added.t, userId: added['userId'], deviceId: added['deviceId'] }, { t: 'device.added', userId: 'dv-jo', deviceId: 'phone' });
    assert.equal((await add('phone', phone, proof(phone, 'dv-jo', 'phone')))['code'], 'conflict');
    const { client: onPhone } = await loggedIn(url, 'dv-jo', 'phone');
    clients.push(onPhone);
    const keys = await onPhone.request({ t: 'keys.fetch', userId: 'dv-jo' });
    assert.deepEqual((keys['devices'] as { deviceId: string }[]).map((d) => d.deviceId), ['dev1', 'phone']);
    // Up to the limit, then refused.
    for (let i = 3; i <= DEVICES_PER_USER_MAX; i++) {
      const k = newDeviceKey('dv-jo', `d${i}`);
      assert.equal((await add(`d${i}`, k, proof(k, 'dv-jo', `d${i}`))).t, 'device.added', `device ${i}`);
    }
    const over = newDeviceKey('dv-jo', 'over');
    assert.equal((await add('over', over, proof(over, 'dv-jo', 'over')))['code'], 'limit_exceeded');
  });

  test('key backup: put and get by the user; fetched before login only with the secret; limits at the edge', async () => {
    const { client: k } = await user('kb-kim');
    const { KEY_BACKUP_BYTES_MAX } = await import('../src/limits.ts');
    const { V1Client: Client } = await import('./_v1-client.ts');
    const { randomBytes } = await import('node:crypto');
    const secret = randomBytes(32);
    const sealed = randomBytes(KEY_BACKUP_BYTES_MAX);
    assert.equal((await k.request({ t: 'backup.get' }))['backup'], null);
    const stored = await k.request({ t: 'backup.put', backup: b64(sealed), fetchSecret: b64(secret) });
    assert.equal(stored.t, 'backup.stored');
    const got = await k.request({ t: 'backup.get' });
    assert.equal(got['backup'], b64(sealed));
    assert.equal(got['updatedAt'], stored['updatedAt']);
    const over = await k.request({ t: 'backup.put', backup: b64(randomBytes(KEY_BACKUP_BYTES_MAX + 1)) });
    assert.equal(over['code'], 'bad_frame');
    // A new machine, not logged in: the secret fetches it, anything else does not.
    const anon = await Client.connect(url, 'kb-anon');
    clients.push(anon);
    await anon.hello();
    const fetched = await anon.request({ t: 'backup.fetch', userId: 'kb-kim', fetchSecret: b64(secret) });
    assert.equal(fetched.t, 'backup');
    assert.equal(fetched['backup'], b64(sealed));
    for (const [userId, s] of [['kb-kim', randomBytes(32)], ['kb-nobody', secret]] as const) {
      const r = await anon.request({ t: 'backup.fetch', userId, fetchSecret: b64(s) });
      assert.equal(r['code'], 'invalid_credentials', userId);
    }
    // Replaced without a secret: no longer fetchable before login.
    await k.request({ t: 'backup.put', backup: b64(sealed.subarray(0, 10)) });
    const anon2 = await Client.connect(url, 'kb-anon2');
    clients.push(anon2);
    await anon2.hello();
    assert.equal((await anon2.request({ t: 'backup.fetch', userId: 'kb-kim', fetchSecret: b64(secret) }))['code'], 'invalid_credentials');
  });

  test('keys.fetch claimFor: one-time prekeys are claimed only for the named devices', async () => {
    const { client: owner } = await user('cf-lee');
    const { newDeviceKey, loggedIn } = await import('./_v1-client.ts');
    const { sign } = await import('node:crypto');
    const { deviceLinkMessage } = await import('../src/v1/auth.ts');
    const tab = newDeviceKey('cf-lee', 'tab');
    const { deviceApprovalMessage } = await import('../src/v1/auth.ts');
    const { deviceKey } = await import('./_v1-client.ts');
    const approval = b64(sign(null, deviceApprovalMessage('cf-lee', 'dev1', 'tab', tab.identityKey), deviceKey('cf-lee', 'dev1').privateKey));
    await owner.request({ t: 'device.add', deviceId: 'tab', identityKey: b64(tab.identityKey), signature: b64(sign(null, deviceLinkMessage('cf-lee', 'tab'), tab.privateKey)), approval });
    const { client: onTab } = await loggedIn(url, 'cf-lee', 'tab');
    clients.push(onTab);
    const otks = (base: number) => Array.from({ length: 3 }, (_, i) => ({ keyId: base + i, publicKey: b64(new Uint8Array(32).fill(base + i)) }));
    assert.equal((await owner.request({ t: 'keys.upload', oneTimePrekeys: otks(10) })).t, 'keys.uploaded');
    assert.equal((await onTab.request({ t: 'keys.upload', oneTimePrekeys: otks(20) })).t, 'keys.uploaded');
    const { client: asker } = await user('cf-max');
    const only = await asker.request({ t: 'keys.fetch', userId: 'cf-lee', claimFor: ['tab'] });
    const byDevice = Object.fromEntries((only['devices'] as { deviceId: string; oneTimePrekey: { keyId: number } | null }[]).map((d) => [d.deviceId, d.oneTimePrekey?.keyId ?? null]));
    assert.deepEqual(byDevice, { dev1: null, tab: 20 });
    const none = await asker.request({ t: 'keys.fetch', userId: 'cf-lee', claimFor: [] });
    assert.ok((none['devices'] as { oneTimePrekey: unknown }[]).every((d) => d.oneTimePrekey === null));
    const all = await asker.request({ t: 'keys.fetch', userId: 'cf-lee' });
    assert.deepEqual((all['devices'] as { oneTimePrekey: { keyId: number } }[]).map((d) => d.oneTimePrekey.keyId), [10, 21]);
  });

  test('device.add needs an authenticated device', async () => {
    const { V1Client: Client, newDeviceKey } = await import('./_v1-client.ts');
    const c = await Client.connect(url, 'anon-add');
    clients.push(c);
    await c.hello();
    const k = newDeviceKey('nobody', 'x');
    const r = await c.request({ t: 'device.add', deviceId: 'x', identityKey: b64(k.identityKey), signature: b64(new Uint8Array(64)), approval: b64(new Uint8Array(64)) });
    assert.equal(r['code'], 'unauthenticated');
  });

  test('read markers: kept while the sender is offline, only rising, members only', async () => {
    const { client: g } = await user('rm-gina');
    const { client: h } = await user('rm-hugo');
    const roomId = ((await g.createRoom('group', ['rm-hugo'])) as Frame & { room: { roomId: string } }).room.roomId;
    const seqs: number[] = [];
    for (const c of ['m1', 'm2', 'm3']) seqs.push((await g.publish(roomId, c, new Uint8Array([9]))).seq as number);
    g.close();
    // gina is offline: hugo's receipts are kept, not lost.
    const ok = await h.request({ t: 'receipt', roomId, seq: seqs[2] as number, kind: 'delivered' });
    assert.equal(ok.t, 'receipted');
    assert.equal((await h.request({ t: 'receipt', roomId, seq: seqs[1] as number, kind: 'read' })).t, 'receipted');
    // Lower than what is kept: changes nothing.
    assert.equal((await h.request({ t: 'receipt', roomId, seq: seqs[0] as number, kind: 'read' })).t, 'receipted');
    const { client: g2 } = await (await import('./_v1-client.ts')).loggedIn(url, 'rm-gina', 'dev1').then((r) => {
      clients.push(r.client);
      return r;
    });
    const markers = await g2.request({ t: 'receipts', roomId });
    assert.equal(markers.t, 'receipts');
    assert.deepEqual(markers['members'], [{ userId: 'rm-hugo', delivered: seqs[2], read: seqs[1] }]);
    // A receipt that moves nothing is not relayed; one that does is.
    h.send({ t: 'receipt', roomId, seq: seqs[0] as number, kind: 'read' });
    h.send({ t: 'receipt', roomId, seq: seqs[2] as number, kind: 'read' });
    const relayed = await g2.waitFor((x) => x.t === 'receipt');
    assert.equal(relayed['seq'], seqs[2]);
    assert.equal(relayed['kind'], 'read');
    // Not a member: not_found, nothing leaks.
    const { client: outsider } = await user('rm-ivan');
    const refused = await outsider.request({ t: 'receipts', roomId });
    assert.equal(refused.t, 'error');
    assert.equal(refused['code'], 'not_found');
  });

});

describe('v1 access-token expiry', () => {
  let server: ServerProcess;
  let url: string;
  const clients: V1Client[] = [];
  before(async () => {
    server = await startServerProcess([], { env: { PARLEY_ACCESS_TOKEN_TTL_S: '2' } });
    url = `ws://127.0.0.1:${server.port}/v1`;
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.stop();
    server.cleanup();
  });
  async function user(id: string, device = 'dev1'): Promise<{ client: V1Client; session: SessionFrame }> {
    const r = await registered(url, id, device);
    clients.push(r.client);
    return r;
  }

  test('a connection closes with 4001 when its access token expires; the refresh token still works, once its successor is used no more', async () => {
    const { client, session } = await user('exp-gina');
    assert.equal(session.expiresIn, 2);
    const closed = await client.closed;
    assert.equal(closed.code, 4001);
    const again = await authed(url, session.accessToken as string).catch((e: Error) => e);
    assert.ok(again instanceof Error, 'an expired access token is refused');
    const { V1Client } = await import('./_v1-client.ts');
    const c = await V1Client.connect(url, 'refresher');
    clients.push(c);
    await c.hello();
    const r = await c.refresh(session.refreshToken as string);
    assert.equal(r.t, 'session');
    const c2 = await V1Client.connect(url, 'refresher-2');
    clients.push(c2);
    await c2.hello();
    assert.equal((await c2.refresh(r['refreshToken'] as string)).t, 'session', 'the successor renews');
    const c3 = await V1Client.connect(url, 'refresher-3');
    clients.push(c3);
    await c3.hello();
    assert.equal((await c3.refresh(session.refreshToken as string))['code'], 'invalid_credentials', 'a spent token whose successor was used is refused');
  });
});

describe('v1 on PostgreSQL (DATABASE_URL)', () => {
  const adminUrl = process.env['PARLEY_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
  const dbName = `parley_e2e_${process.pid}_${randomBytes(4).toString('hex')}`;
  let available = true;
  before(async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    try {
      await c.connect();
      await c.query(`CREATE DATABASE ${dbName}`);
    } catch (e) {
      available = false;
      if (process.env['CI'] === 'true') throw e;
    } finally {
      await c.end().catch(() => undefined);
    }
  });
  after(async () => {
    if (!available) return;
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await c.end();
  });

  test('register, room, publish, deliver, restart, resume — all stored in PostgreSQL', async (t) => {
    if (!available) return t.skip('PostgreSQL unreachable (set PARLEY_TEST_DATABASE_URL)');
    const dbUrl = adminUrl.replace(/\/[^/]*$/, `/${dbName}`);
    const server = await startServerProcess([], { env: { DATABASE_URL: dbUrl } });
    try {
      assert.equal(server.logs.find((l) => l.msg === 'parley server listening')?.['storage'], 'postgres');
      const url = `ws://127.0.0.1:${server.port}/v1`;
      const { client: a, session } = await registered(url, 'pg-alice');
      const { client: b } = await registered(url, 'pg-bob');
      const room = (await a.createRoom('direct', ['pg-bob'])) as Frame & { room: { roomId: string } };
      const roomId = room.room.roomId;
      const acks = [];
      for (let i = 0; i < 20; i++) acks.push(a.publish(roomId, `m${i}`, new TextEncoder().encode(`body-${i}`)));
      const seqs = (await Promise.all(acks)).map((x) => x['seq'] as number);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
      // Bob joined at seq 2 (his own member-added event); he gets everything from there, live, in order.
      const got = await b.takeMsgs(roomId, 21);
      assert.deepEqual(got.map((m) => m.seq), Array.from({ length: 21 }, (_, i) => i + 2));
      a.close();
      b.close();
      await server.stop();
      const again = await startServerProcess([], { env: { DATABASE_URL: dbUrl }, dataDir: server.dataDir });
      try {
        const { client } = await authed(`ws://127.0.0.1:${again.port}/v1`, session.accessToken as string);
        const synced = await client.sync({});
        assert.equal(synced.entries.filter((m) => m.roomId === roomId).length, 22);
        client.close();
      } finally {
        await again.stop();
        again.cleanup();
      }
    } finally {
      server.cleanup();
    }
  });

  // Processes on one database share rooms only through Redis: without it, each would deliver to its own
  // clients only and cache members of its own (a member removed on one could still publish on the other).
  test('a second process on the database is refused unless every process sets PARLEY_REDIS_URL', async (t) => {
    if (!available) return t.skip('PostgreSQL unreachable (set PARLEY_TEST_DATABASE_URL)');
    const dbUrl = adminUrl.replace(/\/[^/]*$/, `/${dbName}`);
    const redis = process.env['PARLEY_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
    const alone = await startServerProcess([], { env: { DATABASE_URL: dbUrl } });
    try {
      for (const env of [{ DATABASE_URL: dbUrl }, { DATABASE_URL: dbUrl, PARLEY_REDIS_URL: redis }]) {
        await assert.rejects(startServerProcess([], { env }), /exited \(1\) before listening: .*(another parley process uses this database|without PARLEY_REDIS_URL uses this database)/);
      }
    } finally {
      await alone.stop();
      alone.cleanup();
    }
    // Once it has stopped, processes with Redis start side by side.
    const env = { DATABASE_URL: dbUrl, PARLEY_REDIS_URL: redis };
    const one = await startServerProcess([], { env });
    const two = await startServerProcess([], { env });
    try {
      await assert.rejects(startServerProcess([], { env: { DATABASE_URL: dbUrl } }), /another parley process uses this database: processes sharing one database must all set PARLEY_REDIS_URL/);
    } finally {
      await Promise.all([one.stop(), two.stop()]);
      one.cleanup();
      two.cleanup();
    }
  });

  /** Two `parley serve` processes on this database and Redis; after `fn`, the clients it put in `open` are closed and both stopped. */
  async function twoProcesses(fn: (one: ServerProcess, two: ServerProcess, open: V1Client[]) => Promise<void>): Promise<void> {
    const dbUrl = adminUrl.replace(/\/[^/]*$/, `/${dbName}`);
    const env = { DATABASE_URL: dbUrl, PARLEY_REDIS_URL: process.env['PARLEY_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379' };
    const one = await startServerProcess([], { env });
    const two = await startServerProcess([], { env });
    const open: V1Client[] = [];
    try {
      await fn(one, two, open);
    } finally {
      for (const c of open) c.close();
      await one.stop();
      await two.stop();
      one.cleanup();
      two.cleanup();
    }
  }

  test('two server processes: membership changes racing publishes and each other stay consistent with the room log', async (t) => {
    if (!available) return t.skip('PostgreSQL unreachable (set PARLEY_TEST_DATABASE_URL)');
    await twoProcesses(async (one, two, clients) => {
      const onA = `ws://127.0.0.1:${one.port}/v1`;
      const onB = `ws://127.0.0.1:${two.port}/v1`;
      const owner = (await registered(onA, 'mr-owner')).client;
      const leaver = (await registered(onB, 'mr-leaver')).client;
      const publisher = (await registered(onB, 'mr-pub')).client;
      const joiner = (await registered(onB, 'mr-joiner')).client;
      const twice = (await registered(onB, 'mr-admin2')).client;
      clients.push(owner, leaver, publisher, joiner, twice);
      const decode = (m: MsgFrame): { userId: string; role?: string } => JSON.parse(Buffer.from(m.body as string, 'base64').toString('utf8')) as { userId: string; role?: string };
      for (let round = 0; round < 4; round++) {
        const roomId = ((await owner.createRoom('group', ['mr-leaver', 'mr-pub'])) as Frame & { room: { roomId: string } }).room.roomId;
        await owner.roomAdd(roomId, 'mr-admin2', 'admin');
        await new Promise((r) => setTimeout(r, 100));
        for (const c of clients) c.drainMsgs(roomId);
        // On B: a burst of publishes and the leaver leaving; on A, at once: a promotion of the
        // leaver, a removal of it, and an addition (twice, from A and from B's admin).
        const burst = Array.from({ length: 30 }, (_, i) => publisher.publish(roomId, `r${round}-${i}`, new Uint8Array([i])));
        const changes = await Promise.all([
          owner.roomAdd(roomId, 'mr-leaver', 'admin'),
          leaver.roomLeave(roomId),
          owner.roomRemove(roomId, 'mr-leaver'),
          owner.roomAdd(roomId, 'mr-joiner'),
          twice.roomAdd(roomId, 'mr-joiner'),
        ]);
        await Promise.all(burst);
        await new Promise((r) => setTimeout(r, 300));
        const log = (await owner.sync({ [roomId]: 0 })).entries.filter((e) => e['roomId'] === roomId);
        assert.deepEqual(log.map((e) => e.seq), log.map((_, i) => i + 1), 'gapless log');
        // Replaying the log's membership events gives the member table, and never changes someone who is not in.
        const state = new Map<string, string>();
        for (const e of log) {
          if (e.kind === 'message') continue;
          const { userId, role } = decode(e);
          if (e.kind === 'member-added') {
            assert.ok(!state.has(userId), `round ${round}: ${userId} added twice`);
            state.set(userId, role ?? 'member');
          } else if (e.kind === 'member-removed') {
            assert.ok(state.delete(userId), `round ${round}: ${userId} removed while not a member`);
          } else {
            assert.ok(state.has(userId), `round ${round}: role change of ${userId}, not a member (resurrected)`);
            state.set(userId, role ?? '');
          }
        }
        const table = (await owner.roomMembers(roomId))['members'] as { userId: string; role: string }[];
        assert.deepEqual(Object.fromEntries(table.map((m) => [m.userId, m.role])), Object.fromEntries(state), `round ${round}: the member table is the log replayed`);
        assert.ok(!state.has('mr-leaver'), `round ${round}: the leaver is out (leave or removal won last)`);
        assert.equal(changes.filter((c) => c.t === 'ok').length >= 3, true, JSON.stringify(changes));
        // Live deliveries: the leaver got nothing after its removal; the joiner everything from its addition on.
        const removedAt = Math.max(...log.filter((e) => e.kind === 'member-removed' && decode(e).userId === 'mr-leaver').map((e) => e.seq));
        const addedAt = log.find((e) => e.kind === 'member-added' && decode(e).userId === 'mr-joiner')?.seq ?? Infinity;
        const atLeaver = leaver.drainMsgs(roomId).map((m) => m.seq);
        assert.ok(atLeaver.every((seq) => seq <= removedAt), `round ${round}: the leaver (removed at ${removedAt}) got ${atLeaver.filter((x) => x > removedAt).join(',')}`);
        // Deliveries cross processes through Redis: wait (bounded) for the joiner's last one before comparing.
        const expected = log.filter((e) => e.seq >= addedAt).length;
        const arrived = (): number => joiner.inbox.filter((f) => f.t === 'msg' && f['roomId'] === roomId && (f['seq'] as number) >= addedAt).length;
        for (const deadline = Date.now() + 10_000; arrived() < expected && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
        const atJoiner = joiner.drainMsgs(roomId).map((m) => m.seq).sort((x, y) => x - y);
        assert.deepEqual(atJoiner, log.filter((e) => e.seq >= addedAt).map((e) => e.seq), `round ${round}: the joiner (added at ${addedAt}) got exactly the rest`);
      }
      // The owner makes an admin on one process while leaving on the other; an admin is removed while adding
      // someone. A change made by someone who already left never applies, and the room always keeps an owner.
      for (let round = 0; round < 6; round++) {
        const { client: onB, session } = await registered(`ws://127.0.0.1:${two.port}/v1`, `mr-owner-b${round}`);
        const onA = (await authed(`ws://127.0.0.1:${one.port}/v1`, session.accessToken as string, `owner-b${round}@one`)).client;
        clients.push(onB, onA);
        const roomId = ((await onB.createRoom('group', ['mr-pub', 'mr-admin2'])) as Frame & { room: { roomId: string } }).room.roomId;
        await onB.roomAdd(roomId, 'mr-admin2', 'admin');
        const results = await Promise.all([onA.roomAdd(roomId, 'mr-joiner', 'admin'), onB.roomLeave(roomId), twice.roomAdd(roomId, 'mr-leaver'), publisher.publish(roomId, `x${round}`, new Uint8Array([1]))]);
        for (const f of results) assert.notEqual(f['code'], 'internal', JSON.stringify(f));
        const table = (await twice.roomMembers(roomId))['members'] as { userId: string; role: string }[];
        assert.ok(table.some((m) => m.role === 'owner'), `round ${round}: an owner is left: ${JSON.stringify(table)}`);
      }
      // A publish racing its sender's removal on the other process is refused as forbidden, never internal.
      const roomId = ((await owner.createRoom('group', ['mr-pub'])) as Frame & { room: { roomId: string } }).room.roomId;
      const outcomes = await Promise.all([owner.roomRemove(roomId, 'mr-pub'), ...Array.from({ length: 20 }, (_, i) => publisher.publish(roomId, `late${i}`, new Uint8Array([i])))]);
      for (const f of outcomes.slice(1)) assert.ok(f.t === 'ack' || f['code'] === 'forbidden', JSON.stringify(f));
      const errors = [...one.logs, ...two.logs].filter((l) => l.level >= 50);
      assert.deepEqual(errors, [], 'no error logged');
    });
  });

  test('two server processes share rooms through PostgreSQL and Redis fan-out', async (t) => {
    if (!available) return t.skip('PostgreSQL unreachable (set PARLEY_TEST_DATABASE_URL)');
    await twoProcesses(async (one, two) => {
      const { client: a, session: aliceSession } = await registered(`ws://127.0.0.1:${one.port}/v1`, 'rx-alice');
      const { client: b } = await registered(`ws://127.0.0.1:${two.port}/v1`, 'rx-bob');
      // The access-token secret is in the shared store: a token one process issued, the other accepts
      // (each process has its own data directory here, as separate machines would).
      const elsewhere = await authed(`ws://127.0.0.1:${two.port}/v1`, aliceSession.accessToken as string, 'rx-alice@two');
      assert.equal(elsewhere.session.userId, 'rx-alice');
      elsewhere.client.close();
      const roomId = ((await a.createRoom('group', ['rx-bob'])) as Frame & { room: { roomId: string } }).room.roomId;
      // Live across processes, in order: bob's own member-added event (seq 2), then alice's messages.
      for (let i = 0; i < 10; i++) await a.publish(roomId, `a${i}`, new Uint8Array([i]));
      const atBob = await b.takeMsgs(roomId, 11);
      assert.deepEqual(atBob.map((m) => m.seq), Array.from({ length: 11 }, (_, i) => i + 2));
      const fromBob = await b.publish(roomId, 'b0', new Uint8Array([42]));
      // Alice (on the other process) had the two membership events, then bob's message.
      const atAlice = await a.takeMsgs(roomId, 3);
      assert.deepEqual(atAlice.map((m) => m.seq), [1, 2, fromBob['seq']]);
      // A removal made on one process is enforced by the other at once.
      const removed = await a.request({ t: 'room.remove', roomId, userId: 'rx-bob' });
      assert.notEqual(removed.t, 'error', JSON.stringify(removed));
      const refused = await b.request({ t: 'publish', roomId, clientId: 'b1', body: b64(new Uint8Array([1])) });
      assert.equal(refused['code'], 'forbidden');
      a.close();
      b.close();
    });
  });

  test('two server processes: presence is one view — a user online on either is online on both, announced once; a killed process\'s users go offline', async (t) => {
    if (!available) return t.skip('PostgreSQL unreachable (set PARLEY_TEST_DATABASE_URL)');
    await twoProcesses(async (one, two, open) => {
      const onOne = `ws://127.0.0.1:${one.port}/v1`;
      const onTwo = `ws://127.0.0.1:${two.port}/v1`;
      const { client: a1, session } = await registered(onOne, 'px-alice');
      const { client: b } = await registered(onTwo, 'px-bob');
      open.push(a1, b);
      const roomId = ((await a1.createRoom('group', ['px-bob'])) as Frame & { room: { roomId: string } }).room.roomId;
      const aliceOnline = async (): Promise<boolean | undefined> =>
        ((await b.request({ t: 'presence.get', roomId }))['members'] as { userId: string; online: boolean }[]).find((m) => m.userId === 'px-alice')?.online;
      assert.equal(await aliceOnline(), true, 'alice is on the other process');
      // Alice on both processes; leaving one is no change for bob.
      const a2 = (await authed(onTwo, session.accessToken as string, 'px-alice@two')).client;
      open.push(a2);
      a1.close();
      await a1.closed;
      assert.equal(await aliceOnline(), true);
      assert.deepEqual((await b.quiet(500)).filter((x) => x.t === 'presence'), [], 'no presence change while alice is on the other process');
      a2.close();
      const offline = await b.waitFor((x) => x.t === 'presence' && x['userId'] === 'px-alice');
      assert.equal(offline['online'], false);
      assert.equal(await aliceOnline(), false);
      // Back on process one (announced once), which is then killed: bob, on two, hears she went offline
      // once one's entry lapses (PRESENCE_NODE_TTL_MS, renewed every third of it).
      const a3 = (await authed(onOne, session.accessToken as string, 'px-alice@one')).client;
      open.push(a3);
      const online = await b.waitFor((x) => x.t === 'presence' && x['userId'] === 'px-alice');
      assert.equal(online['online'], true);
      assert.equal(await aliceOnline(), true);
      one.child.kill('SIGKILL');
      await one.exited;
      const { PRESENCE_NODE_TTL_MS } = await import('../src/presence/redis.ts');
      const lost = await b.waitFor((x) => x.t === 'presence' && x['userId'] === 'px-alice', PRESENCE_NODE_TTL_MS * 2);
      assert.equal(lost['online'], false);
      // Each announcement carries a version that grows with alice's changes, whichever process made it.
      const versions = [offline, online, lost].map((x) => x['version'] as number);
      assert.ok(versions.every((v, i) => Number.isSafeInteger(v) && (i === 0 || v > (versions[i - 1] as number))), JSON.stringify(versions));
      assert.equal(await aliceOnline(), false);
      assert.deepEqual((await b.quiet(300)).filter((x) => x.t === 'presence'), [], 'announced once');
    });
  });

  test('two server processes: failed logins of a user count together (LOGIN_FAILURES_PER_USER_PER_MINUTE across processes, not per process)', async (t) => {
    if (!available) return t.skip('PostgreSQL unreachable (set PARLEY_TEST_DATABASE_URL)');
    const { V1Client: Client, newDeviceKey } = await import('./_v1-client.ts');
    const { LOGIN_ATTEMPTS_MAX, LOGIN_FAILURES_PER_USER_PER_MINUTE } = await import('../src/limits.ts');
    await twoProcesses(async (one, two, open) => {
      const urls = [`ws://127.0.0.1:${one.port}/v1`, `ws://127.0.0.1:${two.port}/v1`];
      const u = `lf-${randomBytes(4).toString('hex')}`;
      open.push((await registered(urls[0] as string, u)).client);
      const wrong = newDeviceKey(u, 'wrong');
      const connect = async (i: number): Promise<V1Client> => {
        const c = await Client.connect(urls[i % 2] as string, `lf#${i}`);
        open.push(c);
        await c.hello();
        return c;
      };
      // The failures alternate between the processes, a connection at a time (each closes after LOGIN_ATTEMPTS_MAX).
      let failures = 0;
      for (let i = 0; failures < LOGIN_FAILURES_PER_USER_PER_MINUTE; i++) {
        const c = await connect(i);
        for (let k = 0; k < LOGIN_ATTEMPTS_MAX && failures < LOGIN_FAILURES_PER_USER_PER_MINUTE; k++, failures++) {
          assert.equal((await c.login(u, 'dev1', wrong))['code'], 'invalid_credentials');
        }
      }
      // Each process saw half of them; together they reach the limit: the right key is refused on both.
      for (let i = 0; i < 2; i++) assert.equal((await (await connect(i)).login(u, 'dev1'))['code'], 'rate_limited', `process ${i + 1}`);
      // Guesses of a backup's fetch secret made all at once, on both processes: no more than the limit are tried.
      const v = `lf-${randomBytes(4).toString('hex')}`;
      open.push((await registered(urls[1] as string, v)).client);
      // Fewer guesses per connection than LOGIN_ATTEMPTS_MAX: which guesses fail
      // is up to the race, and a connection given that many failures is closed.
      const perConnection = LOGIN_ATTEMPTS_MAX - 1;
      const guessers = await Promise.all(Array.from({ length: 10 }, (_, i) => connect(i)));
      const answers = await Promise.all(guessers.flatMap((c) => Array.from({ length: perConnection }, () => c.request({ t: 'backup.fetch', userId: v, fetchSecret: b64(randomBytes(32)) }))));
      const codes = answers.map((f) => f['code']);
      assert.ok(answers.length > 3 * LOGIN_FAILURES_PER_USER_PER_MINUTE);
      assert.equal(codes.filter((c) => c === 'invalid_credentials').length, LOGIN_FAILURES_PER_USER_PER_MINUTE, JSON.stringify(codes));
      assert.equal(codes.filter((c) => c === 'rate_limited').length, answers.length - LOGIN_FAILURES_PER_USER_PER_MINUTE);
    });
  });

  test('two server processes: removing a device or signing out on one ends the sessions on the other, and tells a peer there', async (t) => {
    if (!available) return t.skip('PostgreSQL unreachable (set PARLEY_TEST_DATABASE_URL)');
    const { newDeviceKey, deviceKey: keyOf } = await import('./_v1-client.ts');
    const { deviceApprovalMessage, deviceLinkMessage, deviceRemovalMessage } = await import('../src/v1/auth.ts');
    const { CLOSE_V1 } = await import('../src/v1/settings.ts');
    await twoProcesses(async (one, two, open) => {
      const onA = `ws://127.0.0.1:${one.port}/v1`;
      const onB = `ws://127.0.0.1:${two.port}/v1`;
      const u = `cd-${randomBytes(4).toString('hex')}`;
      const peer = `${u}-peer`;
      const laptop = (await registered(onA, u, 'laptop')).client;
      const onPeer = (await registered(onB, peer)).client;
      open.push(laptop, onPeer);
      await laptop.createRoom('direct', [peer]);
      const add = async (deviceId: string) => {
        const key = newDeviceKey(u, deviceId);
        const approval = b64(sign(null, deviceApprovalMessage(u, 'laptop', deviceId, key.identityKey), keyOf(u, 'laptop').privateKey));
        const r = await laptop.request({ t: 'device.add', deviceId, identityKey: b64(key.identityKey), signature: b64(sign(null, deviceLinkMessage(u, deviceId), key.privateKey)), approval });
        assert.equal(r.t, 'device.added');
        return key;
      };
      const phoneKey = await add('phone');
      await add('tab');
      const phone = (await loggedIn(onB, u, 'phone')).client;
      const tab = (await loggedIn(onB, u, 'tab')).client;
      open.push(phone, tab);
      onPeer.inbox.length = 0;
      const approval = b64(sign(null, deviceRemovalMessage(u, 'laptop', 'phone', phoneKey.identityKey), keyOf(u, 'laptop').privateKey));
      assert.equal((await laptop.request({ t: 'device.remove', deviceId: 'phone', approval })).t, 'device.removed');
      assert.equal((await phone.closed).code, CLOSE_V1.DEVICE_REMOVED, 'closed on the other process');
      assert.equal((await onPeer.waitFor((f) => f.t === 'devices.changed'))['userId'], u);
      assert.equal(tab.isOpen, true, 'only the removed device');
      assert.equal((await laptop.request({ t: 'sessions.revoke' })).t, 'sessions.revoked');
      assert.equal((await tab.closed).code, CLOSE_V1.SIGNED_OUT, 'signed out on the other process');
      assert.equal(laptop.isOpen, true);
      assert.equal(onPeer.isOpen, true);
    });
  });
});
