/**
 * Removing a device and signing out everywhere, over a real server process
 * (docs/protocol.md, "Devices"): who is told, which connections end with
 * which close code, and which tokens and keys stop working.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { serverForSuite, startServerProcess } from './_server-process.ts';
import { b64, deviceKey, loggedIn, newDeviceKey, registered, V1Client, type DeviceKey, type Frame, type SessionFrame } from './_v1-client.ts';
import { deviceApprovalMessage, deviceLinkMessage, deviceRemovalMessage } from '../src/v1/auth.ts';
import { CLOSE_V1 } from '../src/v1/settings.ts';

/** `by` (a device of `userId`) asks, over `client`, to add `deviceId` with `key` (properly signed); the answer. */
function addRequest(client: V1Client, userId: string, by: string, deviceId: string, key: DeviceKey): Promise<Frame> {
  return client.request({
    t: 'device.add',
    deviceId,
    identityKey: b64(key.identityKey),
    signature: b64(sign(null, deviceLinkMessage(userId, deviceId), key.privateKey)),
    approval: b64(sign(null, deviceApprovalMessage(userId, by, deviceId, key.identityKey), deviceKey(userId, by).privateKey)),
  });
}

/** `by` adds `deviceId` with a fresh key, over `client`; returns the new key. */
async function addDevice(client: V1Client, userId: string, by: string, deviceId: string): Promise<DeviceKey> {
  const key = newDeviceKey(userId, deviceId);
  const r = await addRequest(client, userId, by, deviceId, key);
  assert.equal(r.t, 'device.added', JSON.stringify(r));
  return key;
}

/** `by`'s signature approving the removal of `deviceId` whose key is `removed`. */
function removal(userId: string, by: string, deviceId: string, removed: Uint8Array, signer: DeviceKey = deviceKey(userId, by)): string {
  return b64(sign(null, deviceRemovalMessage(userId, by, deviceId, removed), signer.privateKey));
}

async function fresh(url: string, label: string): Promise<V1Client> {
  const c = await V1Client.connect(url, label);
  await c.hello();
  return c;
}

describe('v1 devices: removal and signing out everywhere (SQLite)', () => {
  const suite = serverForSuite<V1Client>();
  const clients = suite.open;
  const keep = <T extends { client: V1Client }>(r: T): T => {
    clients.push(r.client);
    return r;
  };

  test('device.remove: the device, its keys, mailbox and tokens go; it is told and closed (4003); the user and room peers hear devices.changed', async () => {
    const { client: laptop } = keep(await registered(suite.url, 'rm-jo', 'laptop'));
    const { client: pat } = keep(await registered(suite.url, 'rm-pat'));
    const { client: stranger } = keep(await registered(suite.url, 'rm-stranger'));
    await laptop.createRoom('direct', ['rm-pat']);
    const phoneKey = await addDevice(laptop, 'rm-jo', 'laptop', 'phone');
    const { client: phone, session: phoneSession } = keep(await loggedIn(suite.url, 'rm-jo', 'phone'));
    const otk = { keyId: 1, publicKey: b64(new Uint8Array(32).fill(1)) };
    assert.equal((await phone.request({ t: 'keys.upload', oneTimePrekeys: [otk] })).t, 'keys.uploaded');
    assert.equal((await pat.request({ t: 'mailbox.send', userId: 'rm-jo', deviceId: 'phone', clientId: 'k1', payload: b64('hi') })).t, 'ack');
    await laptop.quiet(100);
    laptop.inbox.length = 0;
    pat.inbox.length = 0;

    // The acting device's own key must approve this very device and key.
    const remove = (approval: string, deviceId = 'phone') => laptop.request({ t: 'device.remove', deviceId, approval });
    assert.equal((await remove(removal('rm-jo', 'laptop', 'phone', phoneKey.identityKey, phoneKey)))['code'], 'invalid_credentials', 'signed by another key');
    assert.equal((await remove(removal('rm-jo', 'laptop', 'phone', new Uint8Array(32).fill(7))))['code'], 'invalid_credentials', 'over another key');
    assert.equal((await remove(removal('rm-jo', 'laptop', 'tablet', phoneKey.identityKey)))['code'], 'invalid_credentials', 'for another device id');
    assert.equal((await remove(removal('rm-jo', 'laptop', 'nope', phoneKey.identityKey), 'nope'))['code'], 'not_found');
    assert.equal((await remove('AAAA'))['code'], 'bad_frame', 'an approval that is no signature');
    assert.equal(phone.isOpen, true, 'nothing happened to it');

    const removed = await remove(removal('rm-jo', 'laptop', 'phone', phoneKey.identityKey));
    assert.deepEqual({ t: removed.t, userId: removed['userId'], deviceId: removed['deviceId'] }, { t: 'device.removed', userId: 'rm-jo', deviceId: 'phone' });
    const ended = await phone.waitFor((f) => f.t === 'session.ended');
    assert.equal(ended['reason'], 'device-removed');
    assert.equal((await phone.closed).code, CLOSE_V1.DEVICE_REMOVED);
    for (const c of [laptop, pat]) assert.equal((await c.waitFor((f) => f.t === 'devices.changed'))['userId'], 'rm-jo', c.label);
    assert.equal(laptop.isOpen, true);
    assert.ok(!(await stranger.quiet(200)).some((f) => f.t === 'devices.changed'), 'someone sharing no room with the user is not told');

    const keys = await pat.request({ t: 'keys.fetch', userId: 'rm-jo' });
    assert.deepEqual((keys['devices'] as { deviceId: string }[]).map((d) => d.deviceId), ['laptop']);
    // Nothing of it opens a session again: its access token, its refresh token, its key.
    // Its own key and its own token learn that it was removed (so a client away meanwhile stops trying); its refresh token is simply gone.
    assert.equal((await (await fresh(suite.url, 'old-token')).auth(phoneSession.accessToken as string))['code'], 'device_removed');
    assert.equal((await (await fresh(suite.url, 'old-refresh')).refresh(phoneSession.refreshToken as string))['code'], 'invalid_credentials');
    assert.equal((await (await fresh(suite.url, 'old-key')).login('rm-jo', 'phone', phoneKey))['code'], 'device_removed');
    // Anyone else's key for that device learns nothing.
    assert.equal((await (await fresh(suite.url, 'other-key')).login('rm-jo', 'phone', newDeviceKey('rm-jo', 'phone-impostor')))['code'], 'invalid_credentials');
    assert.equal((await pat.request({ t: 'mailbox.send', userId: 'rm-jo', deviceId: 'phone', clientId: 'k2', payload: b64('hi') }))['code'], 'not_found');

    // The id is never given to another key (peers that knew the old one would refuse it for good).
    assert.equal((await addRequest(laptop, 'rm-jo', 'laptop', 'phone', newDeviceKey('rm-jo', 'phone')))['code'], 'conflict');
    await addDevice(laptop, 'rm-jo', 'laptop', 'phone2');
    const { client: newPhone } = keep(await loggedIn(suite.url, 'rm-jo', 'phone2'));

    // A device may remove itself; the last one may not.
    const tabKey = await addDevice(laptop, 'rm-jo', 'laptop', 'tab');
    const { client: tab } = keep(await loggedIn(suite.url, 'rm-jo', 'tab'));
    const self = await tab.request({ t: 'device.remove', deviceId: 'tab', approval: removal('rm-jo', 'tab', 'tab', tabKey.identityKey) });
    assert.equal(self.t, 'device.removed');
    assert.equal((await tab.closed).code, CLOSE_V1.DEVICE_REMOVED);
    assert.equal((await newPhone.request({ t: 'device.remove', deviceId: 'phone2', approval: removal('rm-jo', 'phone2', 'phone2', deviceKey('rm-jo', 'phone2').identityKey) })).t, 'device.removed');
    const last = await laptop.request({ t: 'device.remove', deviceId: 'laptop', approval: removal('rm-jo', 'laptop', 'laptop', deviceKey('rm-jo', 'laptop').identityKey) });
    assert.equal(last['code'], 'conflict', "a user's last device stays");
    assert.ok(suite.server.logs.some((l) => l.msg === 'device removed' && l['deviceId'] === 'phone' && l['by'] === 'laptop'));
  });

  test('sessions.revoke: every other connection of the user is closed (4002); no earlier token works; the asking one stays, with no new tokens', async () => {
    const { client: laptop, session: first } = keep(await registered(suite.url, 'so-kim', 'laptop'));
    await addDevice(laptop, 'so-kim', 'laptop', 'phone');
    const { client: phone, session: phoneSession } = keep(await loggedIn(suite.url, 'so-kim', 'phone'));
    // A second login of the laptop (another family), and a connection on the first login's access token.
    const { client: asker, session: askerSession } = keep(await loggedIn(suite.url, 'so-kim', 'laptop', 'asker'));
    const onToken = await fresh(suite.url, 'on-token');
    clients.push(onToken);
    assert.equal((await onToken.auth(first.accessToken as string)).t, 'session');
    const { client: other, session: otherSession } = keep(await registered(suite.url, 'so-other'));

    const revoked = await asker.request({ t: 'sessions.revoke' });
    assert.equal(revoked.t, 'sessions.revoked', JSON.stringify(revoked));
    assert.equal(revoked['accessToken'], undefined, 'a copied token gets nothing lasting from it');
    assert.equal(revoked['refreshToken'], undefined);
    for (const c of [laptop, phone, onToken]) {
      assert.equal((await c.waitFor((f) => f.t === 'session.ended'))['reason'], 'signed-out', c.label);
      assert.equal((await c.closed).code, CLOSE_V1.SIGNED_OUT, c.label);
    }
    assert.equal(asker.isOpen, true);
    assert.equal((await asker.roomList()).t, 'rooms', 'the asking connection carries on');

    for (const s of [first, phoneSession, askerSession] as SessionFrame[]) {
      assert.equal((await (await fresh(suite.url, 'old-access')).auth(s.accessToken as string))['code'], 'invalid_credentials');
      assert.equal((await (await fresh(suite.url, 'old-refresh')).refresh(s.refreshToken as string))['code'], 'invalid_credentials');
    }
    // Each device logs in again with its key, and the new login's tokens work.
    const again = await (await fresh(suite.url, 'phone-again')).login('so-kim', 'phone');
    assert.equal(again.t, 'session');
    assert.equal((await (await fresh(suite.url, 'new-access')).auth(again['accessToken'] as string)).t, 'session');
    assert.equal((await (await fresh(suite.url, 'new-refresh')).refresh(again['refreshToken'] as string)).t, 'session');
    // Another user is untouched.
    assert.equal(other.isOpen, true);
    assert.equal((await (await fresh(suite.url, 'other-access')).auth(otherSession.accessToken as string)).t, 'session');
    assert.ok(suite.server.logs.some((l) => l.msg === 'user signed out everywhere' && l['userId'] === 'so-kim' && l['devices'] === 2));
  });

  test('both need a session; neither touches another user', async () => {
    const anon = await fresh(suite.url, 'anon');
    clients.push(anon);
    assert.equal((await anon.request({ t: 'sessions.revoke' }))['code'], 'unauthenticated');
    assert.equal((await anon.request({ t: 'device.remove', deviceId: 'dev1', approval: b64(new Uint8Array(64)) }))['code'], 'unauthenticated');
    const { client: mallory } = keep(await registered(suite.url, 'nt-mallory'));
    const { client: victim } = keep(await registered(suite.url, 'nt-victim'));
    // Only devices of one's own user: another user's device id is simply not one of them.
    const r = await mallory.request({ t: 'device.remove', deviceId: 'dev1', approval: removal('nt-mallory', 'dev1', 'dev1', deviceKey('nt-victim', 'dev1').identityKey, deviceKey('nt-mallory', 'dev1')) });
    assert.equal(r['code'], 'invalid_credentials', 'its own dev1 is not the victim key');
    assert.equal(victim.isOpen, true);
    const frames: Frame[] = await victim.quiet(100);
    assert.ok(!frames.some((f) => f.t === 'session.ended'));
  });
});

describe('v1 devices: the device-id limit', () => {
  test('adding and removing in turn stops at DEVICE_IDS_PER_USER_MAX ids (removed ones included)', async () => {
    const { DEVICE_IDS_PER_USER_MAX } = await import('../src/limits.ts');
    const server = await startServerProcess();
    const url = `ws://127.0.0.1:${server.port}/v1`;
    const { client } = await registered(url, 'churn');
    try {
      // All but the last rounds' removed ids written straight into the store (FRAMES_PER_SECOND would make 1000 rounds slow).
      const early = DEVICE_IDS_PER_USER_MAX - 3;
      const db = new Database(join(server.dataDir, 'parley.db'));
      db.pragma('busy_timeout = 5000');
      const put = db.prepare('INSERT INTO removed_devices (user_id, device_id, identity_key, removed_at) VALUES (?, ?, ?, ?)');
      db.transaction(() => {
        for (let i = 0; i < early; i++) put.run('churn', `early${i}`, Buffer.alloc(32), i);
      })();
      db.close();
      // dev1 plus `early` removed ids: two more rounds fit, the third add is one id too many.
      for (let i = 1; i <= 2; i++) {
        const key = await addDevice(client, 'churn', 'dev1', `d${i}`);
        const r = await client.request({ t: 'device.remove', deviceId: `d${i}`, approval: removal('churn', 'dev1', `d${i}`, key.identityKey) });
        assert.equal(r.t, 'device.removed', `round ${i}`);
      }
      assert.equal((await addRequest(client, 'churn', 'dev1', 'over', newDeviceKey('churn', 'over')))['code'], 'limit_exceeded');
    } finally {
      client.close();
      await server.stop();
      server.cleanup();
    }
  });
});
