/**
 * Multi-device fan-out: Alice (laptop, phone) and Bob (phone, tablet). Every
 * message reaches every device of the recipient and the sender's other
 * devices; sessions start from bundles on first contact and are reused
 * afterwards; identity keys are pinned on first use; a relay that lies about
 * the sender or swaps keys is caught; failures change no store.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceAddress } from '../src/address.ts';
import { isPrekeyMessage } from '../src/envelope.ts';
import { IdentityKeyPair } from '../src/identity.ts';
import { decryptFromDevice, encryptForDevices, type DeviceEnvelope, type DeviceTarget } from '../src/multi-device.ts';
import { makePrekeyBundle } from '../src/prekeys.ts';
import { InMemorySessionStore } from '../src/stores.ts';
import { expectCode, hex, makeDevice, str, text, type Device } from './_helpers.ts';

function world() {
  const devices = {
    aliceLaptop: makeDevice('alice', 'laptop'),
    alicePhone: makeDevice('alice', 'phone'),
    bobPhone: makeDevice('bob', 'phone'),
    bobTablet: makeDevice('bob', 'tablet'),
  };
  const all = Object.values(devices);
  /** What `keys.fetch` for both users returns, minus the sender itself (bundles with or without a one-time prekey, or none). */
  const targetsFor = (sender: Device, bundles: 'one-time' | 'signed only' | 'none' = 'one-time'): DeviceTarget[] =>
    all.filter((d) => d !== sender).map((d) => ({ ...d.address, bundle: bundles === 'none' ? null : d.bundle(bundles === 'one-time') }));
  const byAddress = (a: DeviceAddress): Device => {
    const d = all.find((x) => x.address.userId === a.userId && x.address.deviceId === a.deviceId);
    assert.ok(d !== undefined);
    return d;
  };
  /** Deliver a fan-out: every addressed device decrypts its envelope. */
  const deliver = (sender: Device, envelopes: DeviceEnvelope[]): Map<string, string> => {
    const got = new Map<string, string>();
    for (const e of envelopes) {
      const to = byAddress(e);
      got.set(`${e.userId}/${e.deviceId}`, str(decryptFromDevice(to.stores, to.address, sender.address, e.envelope)));
    }
    return got;
  };
  return { ...devices, all, targetsFor, deliver };
}

describe('multi-device fan-out', () => {
  test('every device of the recipient and the sender’s other device decrypt each message', () => {
    const w = world();
    const first = encryptForDevices(w.aliceLaptop.stores, w.aliceLaptop.address, w.targetsFor(w.aliceLaptop), text('hello bob'));
    assert.deepEqual(
      first.map((e) => `${e.userId}/${e.deviceId}`),
      ['alice/phone', 'bob/phone', 'bob/tablet'],
    );
    assert.ok(first.every((e) => isPrekeyMessage(e.envelope)));
    assert.deepEqual([...w.deliver(w.aliceLaptop, first).values()], ['hello bob', 'hello bob', 'hello bob']);

    // Bob's phone answers everyone (its own tablet included); it has sessions with nobody yet.
    const reply = encryptForDevices(w.bobPhone.stores, w.bobPhone.address, w.targetsFor(w.bobPhone), text('hi alice'));
    assert.equal(reply.length, 3);
    const got = w.deliver(w.bobPhone, reply);
    assert.deepEqual([...got.keys()].sort(), ['alice/laptop', 'alice/phone', 'bob/tablet']);
    assert.ok([...got.values()].every((v) => v === 'hi alice'));
    // To alice/laptop Bob's phone answered on the session Alice started: an ordinary message.
    assert.ok(!isPrekeyMessage(reply.find((e) => e.deviceId === 'laptop')?.envelope ?? new Uint8Array([1, 2])));

    // Later messages reuse the sessions: no bundles needed, and the laptop's sessions have had replies
    // from bob/phone only — so only that one is now an ordinary message.
    const again = encryptForDevices(w.aliceLaptop.stores, w.aliceLaptop.address, w.targetsFor(w.aliceLaptop, 'none'), text('again'));
    const kinds = Object.fromEntries(again.map((e) => [`${e.userId}/${e.deviceId}`, isPrekeyMessage(e.envelope)]));
    assert.deepEqual(kinds, { 'alice/phone': true, 'bob/phone': false, 'bob/tablet': true });
    assert.ok([...w.deliver(w.aliceLaptop, again).values()].every((v) => v === 'again'));
    assert.equal(w.aliceLaptop.stores.sessions.loadSession(w.bobTablet.address)?.stateCount, 1);
  });

  test('a long conversation across all four devices', () => {
    const w = world();
    const senders = [w.aliceLaptop, w.bobPhone, w.alicePhone, w.bobTablet];
    for (let round = 0; round < 12; round++) {
      const sender = senders[round % senders.length] as Device;
      // Bundles are offered every time; only devices without a session use theirs.
      const out = encryptForDevices(sender.stores, sender.address, w.targetsFor(sender, 'signed only'), text(`round ${round}`));
      assert.equal(out.length, 3);
      assert.ok([...w.deliver(sender, out).values()].every((v) => v === `round ${round}`));
      // From the second round on, nobody starts a session with a device it already has one with.
      for (const d of w.all) if (d !== sender) assert.equal(sender.stores.sessions.loadSession(d.address)?.stateCount, 1);
    }
  });

  test('self and duplicates in the target list are skipped', () => {
    const w = world();
    const targets = [...w.targetsFor(w.aliceLaptop), { ...w.aliceLaptop.address, bundle: w.aliceLaptop.bundle() }, { ...w.bobPhone.address, bundle: w.bobPhone.bundle() }];
    const out = encryptForDevices(w.aliceLaptop.stores, w.aliceLaptop.address, targets, text('x'));
    assert.equal(out.length, 3);
  });
});

describe('trust and failures', () => {
  test('a device with neither a session nor a bundle is NO_SESSION, and nothing is stored', () => {
    const w = world();
    const targets: DeviceTarget[] = [{ ...w.bobPhone.address, bundle: w.bobPhone.bundle() }, { ...w.bobTablet.address }];
    expectCode(() => encryptForDevices(w.aliceLaptop.stores, w.aliceLaptop.address, targets, text('x')), 'NO_SESSION');
    assert.equal(w.aliceLaptop.stores.sessions.loadSession(w.bobPhone.address), undefined);
    assert.equal(w.aliceLaptop.stores.identity.isTrustedIdentity(w.bobPhone.address, IdentityKeyPair.generate().publicKey), true);
  });

  test('a bad bundle for one device fails the whole call, and nothing is stored for the others', () => {
    const w = world();
    const good = { ...w.bobPhone.address, bundle: w.bobPhone.bundle() };
    const tabletBundle = w.bobTablet.bundle();
    const forged = { ...w.bobTablet.address, bundle: { ...tabletBundle, signedPrekey: { ...tabletBundle.signedPrekey, keyId: 99 } } };
    expectCode(() => encryptForDevices(w.aliceLaptop.stores, w.aliceLaptop.address, [good, forged], text('x')), 'BAD_SIGNATURE');
    expectCode(() => encryptForDevices(w.aliceLaptop.stores, w.aliceLaptop.address, [good, { ...w.bobTablet.address, bundle: { identityKey: 'x' } as never }], text('x')), 'MALFORMED');
    assert.equal(w.aliceLaptop.stores.sessions.loadSession(w.bobPhone.address), undefined);
    // Nothing was pinned either: another identity for bob/phone would still be accepted.
    assert.equal(w.aliceLaptop.stores.identity.isTrustedIdentity(w.bobPhone.address, IdentityKeyPair.generate().publicKey), true);
  });

  test('identity keys are pinned: a substituted key (e.g. by the server) is UNTRUSTED_IDENTITY, in both directions', () => {
    const w = world();
    const out = encryptForDevices(w.aliceLaptop.stores, w.aliceLaptop.address, [{ ...w.bobPhone.address, bundle: w.bobPhone.bundle() }], text('hi'));
    w.deliver(w.aliceLaptop, out);
    // Alice loses her session with bob/phone (say, storage reset) but keeps her pins; the server hands out a bundle of an impostor.
    const alice2 = { ...w.aliceLaptop.stores, sessions: new InMemorySessionStore() };
    const impostor = makeDevice('bob', 'phone');
    expectCode(() => encryptForDevices(alice2, w.aliceLaptop.address, [{ ...w.bobPhone.address, bundle: impostor.bundle() }], text('secret')), 'UNTRUSTED_IDENTITY');
    // The genuine bundle is still fine.
    assert.equal(encryptForDevices(alice2, w.aliceLaptop.address, [{ ...w.bobPhone.address, bundle: w.bobPhone.bundle() }], text('ok')).length, 1);

    // Receiving side: bob/phone has pinned alice/laptop; a new session from another key claiming that address is refused.
    const fake = makeDevice('alice', 'laptop');
    const forged = encryptForDevices(fake.stores, fake.address, [{ ...w.bobPhone.address, bundle: w.bobPhone.bundle() }], text('trust me'));
    const count = w.bobPhone.prekeys.oneTimePrekeyCount;
    const sessionBefore = w.bobPhone.stores.sessions.loadSession(w.aliceLaptop.address)?.serialize();
    expectCode(() => decryptFromDevice(w.bobPhone.stores, w.bobPhone.address, w.aliceLaptop.address, (forged[0] as DeviceEnvelope).envelope), 'UNTRUSTED_IDENTITY');
    assert.equal(w.bobPhone.prekeys.oneTimePrekeyCount, count);
    assert.equal(hex(w.bobPhone.stores.sessions.loadSession(w.aliceLaptop.address)?.serialize() ?? new Uint8Array()), hex(sessionBefore ?? new Uint8Array(1)));
  });

  test('a relay that lies about the sender or the recipient is caught (addresses are in the AD)', () => {
    const w = world();
    const out = encryptForDevices(w.aliceLaptop.stores, w.aliceLaptop.address, w.targetsFor(w.aliceLaptop), text('for bob/phone'));
    const toPhone = out.find((e) => e.userId === 'bob' && e.deviceId === 'phone') as DeviceEnvelope;
    // Claimed to come from alice/phone instead of alice/laptop.
    expectCode(() => decryptFromDevice(w.bobPhone.stores, w.bobPhone.address, w.alicePhone.address, toPhone.envelope), 'DECRYPT_FAILED');
    // Delivered to bob/tablet instead (same identity keys could not help: the address differs).
    expectCode(() => decryptFromDevice(w.bobTablet.stores, w.bobTablet.address, w.aliceLaptop.address, toPhone.envelope), 'DECRYPT_FAILED');
    assert.equal(w.bobPhone.stores.sessions.loadSession(w.alicePhone.address), undefined);
    // The honest delivery still works.
    assert.equal(str(decryptFromDevice(w.bobPhone.stores, w.bobPhone.address, w.aliceLaptop.address, toPhone.envelope)), 'for bob/phone');
  });

  test('the same identity under two addresses gives sessions that do not cross', () => {
    // A device registered twice with one identity key (a misconfigured client): the AD still tells them apart.
    const bob = makeDevice('bob', 'phone');
    const alice = makeDevice('alice', 'laptop');
    const twin = { userId: 'bob', deviceId: 'twin' };
    const bundle = makePrekeyBundle(bob.identity, bob.signedPrekey, null, bob.pqPrekey);
    const out = encryptForDevices(alice.stores, alice.address, [{ ...twin, bundle }], text('to twin'));
    expectCode(() => decryptFromDevice(bob.stores, bob.address, alice.address, (out[0] as DeviceEnvelope).envelope), 'DECRYPT_FAILED');
    assert.equal(str(decryptFromDevice(bob.stores, twin, alice.address, (out[0] as DeviceEnvelope).envelope)), 'to twin');
  });

  test('decrypting from oneself is an argument error', () => {
    const w = world();
    expectCode(() => decryptFromDevice(w.bobPhone.stores, w.bobPhone.address, w.bobPhone.address, new Uint8Array(100)), 'INVALID_ARGUMENT');
  });
});
