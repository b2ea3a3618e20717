/**
 * A second device from the terminal: `link-device` on a new machine prints
 * a request, `add-device` on the first machine adds it (both show the same
 * key fingerprint), `login` on the new one; then a peer's messages reach
 * both devices and what one device sends shows on the other. Damaged,
 * foreign and repeated requests are refused with one clear line. `devices`,
 * `remove-device` and `sign-out-everywhere` manage the account's devices.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertFails } from './_cli.ts';
import { marker, ok, PASS_VAR, Profile, Running, startServer, type ServerProcess } from './_chat.ts';
import { decodeLinkRequest, encodeLinkRequest } from '../src/devices.ts';

describe('parley link-device / add-device', () => {
  let server: ServerProcess & { url: string };
  let root: string;
  let laptop: Profile;
  let phone: Profile;
  let bob: Profile;

  before(async () => {
    server = await startServer();
    root = mkdtempSync(join(tmpdir(), 'parley-devices-test-'));
    laptop = new Profile(join(root, 'laptop'), 'alice', server.url);
    phone = new Profile(join(root, 'phone'), 'alice', server.url);
    bob = new Profile(join(root, 'bob'), 'bob', server.url);
    ok(await laptop.run(['register', 'alice', '--device', 'laptop']), 'register alice');
    ok(await bob.run(['register', 'bob', '--device', 'pc']), 'register bob');
  });
  after(() => {
    server.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it('a linked device receives the conversation from then on, and what it sends shows on the first device', async () => {
    const link = await phone.run(['link-device', 'alice', '--device', 'phone']);
    const request = ok(link, 'link-device').trim();
    assert.match(request, /^parley-link-v1:[A-Za-z0-9_-]+$/);
    const fingerprint = /fingerprint ([0-9a-f ]+)\)/.exec(link.stderr)?.[1];
    assert.ok(fingerprint !== undefined, link.stderr);

    const added = ok(await laptop.run(['add-device', request]), 'add-device');
    assert.ok(added.includes(`fingerprint ${fingerprint}`), 'the same fingerprint on both machines');
    assertFails(await laptop.run(['add-device', request]), 1, /alice already has a device phone/);
    ok(await phone.run(['login', 'alice']), 'login on the new device');

    const m = { toBoth: marker('to-both'), fromPhone: marker('from-phone') };
    ok(await bob.run(['chat', 'alice'], { input: `${m.toBoth}\n` }), 'bob writes');
    for (const device of [laptop, phone]) assert.ok(ok(await device.run(['history', 'bob']), 'history').includes(m.toBoth));
    ok(await phone.run(['chat', 'bob'], { input: `${m.fromPhone}\n` }), 'the phone writes');
    assert.ok(ok(await bob.run(['history', 'alice']), 'bob reads').includes(m.fromPhone));
    assert.ok(ok(await laptop.run(['history', 'bob']), 'the laptop sees it').includes(m.fromPhone));
  });

  it('a device’s first login announces it: a chat already running on the peer’s side encrypts to it from its next line, and any command shows the key change', async () => {
    const dana = new Profile(join(root, 'dana'), 'dana', server.url);
    const tablet = new Profile(join(root, 'tablet'), 'dana', server.url);
    ok(await dana.run(['register', 'dana', '--device', 'desk']), 'register dana');
    ok(await dana.run(['chat', 'bob'], { input: `${marker('hello')}\n` }), 'dana writes');
    ok(await bob.run(['history', 'dana']), 'bob has met dana’s device list');
    const running = new Running(['chat', 'dana', ...bob.flags], bob.env);
    try {
      running.write(marker('before'));
      await running.waitFor(/before/);
      const request = ok(await tablet.run(['link-device', 'dana', '--device', 'tablet']), 'link-device').trim();
      ok(await dana.run(['add-device', request]), 'add-device');
      const login = await tablet.run(['login', 'dana']);
      ok(login, 'first login of the tablet');
      assert.match(login.stderr, /Announced this device in 1 conversation/);
      await running.waitFor(/dana's keys changed: new device tablet/, 'stderr');
      const after = marker('after-the-tablet');
      running.write(after);
      await running.waitFor(new RegExp(after));
      running.end();
      assert.equal(await running.exited, 0);
      assert.ok(ok(await tablet.run(['history', 'bob']), 'the tablet reads it').includes(after), 'the running chat encrypted to the announced device');
    } finally {
      running.kill();
    }
    // Bob's laptop… here, a command other than chat is the first to see a change: it shows it too.
    const carl = new Profile(join(root, 'carl'), 'carl', server.url);
    const carlPhone = new Profile(join(root, 'carl-phone'), 'carl', server.url);
    ok(await carl.run(['register', 'carl', '--device', 'pc']), 'register carl');
    ok(await carl.run(['chat', 'bob'], { input: `${marker('carl')}\n` }), 'carl writes');
    ok(await bob.run(['history', 'carl']), 'bob has met carl');
    ok(await carl.run(['add-device', ok(await carlPhone.run(['link-device', 'carl', '--device', 'phone']), 'link').trim()]), 'add');
    ok(await carlPhone.run(['login', 'carl']), 'login');
    const seen = await bob.run(['history', 'carl']);
    ok(seen, 'history');
    assert.match(seen.stderr, /carl's keys changed: new device phone/);
  });

  it('a lost request: the login says to add the device first, link-device prints the same request again (from the store), and once the device logged in it is an account like any other', async () => {
    const erin = new Profile(join(root, 'erin'), 'erin', server.url);
    const erinPhone = new Profile(join(root, 'erin-phone'), 'erin', server.url);
    ok(await erin.run(['register', 'erin', '--device', 'desk']), 'register erin');
    const first = ok(await erinPhone.run(['link-device', 'erin', '--device', 'phone']), 'link-device').trim();
    assertFails(await erinPhone.run(['login', 'erin']), 1, /does not know erin \(device phone\).*'parley link-device erin' here prints its request again; run 'parley add-device <request>'/);
    const again = await erinPhone.run(['link-device', 'erin']);
    assert.equal(ok(again, 'link-device again').trim(), first, 'the same request');
    assert.match(again.stderr, /has not logged in yet .*its link request again/);
    assertFails(await erinPhone.run(['link-device', 'erin', '--device', 'tablet']), 2, /holds device phone of erin, not yet added/);
    assertFails(await erinPhone.run(['link-device', 'erin'], { env: { [PASS_VAR]: 'not the passphrase' } }), 1, /passphrase does not open erin's store/);
    ok(await erin.run(['add-device', first]), 'add-device');
    ok(await erinPhone.run(['login', 'erin']), 'login');
    assertFails(await erinPhone.run(['link-device', 'erin']), 2, /already has an account erin: use 'parley login erin'/);
  });

  it('devices lists the account with fingerprints; remove-device ends the running chat of a removed device for good; sign-out-everywhere leaves the devices working', async () => {
    const desk = new Profile(join(root, 'gil-desk'), 'gil', server.url);
    const pad = new Profile(join(root, 'gil-pad'), 'gil', server.url);
    ok(await desk.run(['register', 'gil', '--device', 'desk']), 'register gil');
    const link = await pad.run(['link-device', 'gil', '--device', 'pad']);
    const padPrint = /fingerprint ([0-9a-f ]+)\)/.exec(link.stderr)?.[1];
    ok(await desk.run(['add-device', ok(link, 'link-device').trim()]), 'add-device');
    ok(await pad.run(['login', 'gil']), 'login on the pad');
    const listed = ok(await desk.run(['devices']), 'devices').trim().split('\n');
    assert.equal(listed.length, 2, listed.join('\n'));
    assert.match(listed[0] ?? '', /^desk\t[0-9a-f ]+\t\(this device\)$/);
    assert.equal(listed[1], `pad\t${padPrint}`, 'the fingerprint the pad showed');

    const running = new Running(['chat', 'bob', ...pad.flags], pad.env);
    try {
      running.write(marker('from-the-pad'));
      await running.waitFor(/from-the-pad/);
      assert.ok(ok(await bob.run(['history', 'gil']), 'bob reads the pad').includes('from-the-pad'), 'bob knows both of gil\'s devices now');
      const removed = ok(await desk.run(['remove-device', 'pad']), 'remove-device');
      assert.match(removed, new RegExp(`Removed device pad \\(fingerprint ${padPrint}\\) from gil`));
      await running.waitFor(/this device was removed from the account/, 'stderr');
      assert.equal(await running.exited, 1, 'the chat ends by itself, as a failure');
    } finally {
      running.kill();
    }
    // Its own store is still its own to read; anything that needs the server says why not.
    const kept = ok(await pad.run(['history', 'bob']), 'history on the removed device');
    assert.ok(kept.includes('from-the-pad'), kept);
    assertFails(await pad.run(['devices']), 1, /gil \(device pad\) was removed from its account: it cannot log in again/);
    // bob, who wrote with the pad before, hears of the removal from any command.
    const seen = await bob.run(['history', 'gil']);
    ok(seen, 'bob reads gil');
    assert.match(seen.stderr, /gil's keys changed: device pad removed/);
    assertFails(await desk.run(['remove-device', 'pad']), 1, /gil has no device pad/);
    assertFails(await desk.run(['remove-device', 'desk']), 2, /desk is the device you are on: .*Add --yes/);
    assertFails(await desk.run(['remove-device', 'desk', '--yes']), 1, /desk is gil's last device/);
    assertFails(await desk.run(['remove-device', 'Not Valid!']), 2, /device id/);
    assert.deepEqual(ok(await desk.run(['devices']), 'devices').trim().split('\n').map((l) => l.split('\t')[0]), ['desk']);

    const signedOut = ok(await desk.run(['sign-out-everywhere']), 'sign-out-everywhere');
    assert.match(signedOut, /Signed gil out everywhere/);
    ok(await desk.run(['chat', 'bob'], { input: `${marker('after-sign-out')}\n` }), 'the device logs in again with its key');
    assert.ok(ok(await bob.run(['history', 'gil']), 'bob reads').includes('after-sign-out'));
  });

  it('a device linked under an id the account has already is made again under another with --replace; a device that logged in is never discarded so', async () => {
    const fay = new Profile(join(root, 'fay'), 'fay', server.url);
    const fayPhone = new Profile(join(root, 'fay-phone'), 'fay', server.url);
    ok(await fay.run(['register', 'fay', '--device', 'desk']), 'register fay');
    const wrong = ok(await fayPhone.run(['link-device', 'fay', '--device', 'desk']), 'link-device under the taken id').trim();
    assertFails(await fay.run(['add-device', wrong]), 2, /this device is desk already: on the new machine, make the request again under another id \(parley link-device fay --device <id> --replace\)/);
    assertFails(await fayPhone.run(['link-device', 'fay', '--device', 'phone']), 2, /--device phone --replace' to discard it/);
    const again = await fayPhone.run(['link-device', 'fay', '--device', 'phone', '--replace']);
    const request = ok(again, 'link-device --replace').trim();
    assert.match(again.stderr, /Discarded the device of fay in this profile that had not logged in/);
    assert.notEqual(request, wrong);
    ok(await fay.run(['add-device', request]), 'add-device');
    ok(await fayPhone.run(['login', 'fay']), 'the phone logs in');
    assertFails(await fayPhone.run(['link-device', 'fay', '--device', 'tablet', '--replace']), 2, /logged in: --replace only discards a device not yet added/);
    assert.match(ok(await fayPhone.run(['devices']), 'the phone still works'), /phone\t[0-9a-f ]+\t\(this device\)/);
  });

  it('damaged, foreign and same-device requests are refused with one line', async () => {
    assertFails(await laptop.run(['add-device', 'parley-link-v1:garbage']), 2, /not a device link request/);
    assertFails(await laptop.run(['add-device', 'hello']), 2, /no parley-link-v1: prefix/);
    assertFails(await laptop.run(['add-device', `parley-link-v1:${'A'.repeat(2000)}`]), 2, /too long/);
    const carol = new Profile(join(root, 'carol'), 'carol', server.url);
    const foreign = ok(await carol.run(['link-device', 'carol', '--device', 'tablet']), 'carol link-device').trim();
    assertFails(await laptop.run(['add-device', foreign]), 2, /the request is for carol/);
    const again = new Profile(join(root, 'again'), 'alice', server.url);
    const same = ok(await again.run(['link-device', 'alice', '--device', 'laptop']), 'same id').trim();
    assertFails(await laptop.run(['add-device', same]), 2, /this device is laptop already/);
  });

  it('a request survives the round trip, and a signature or key of the wrong size is refused', () => {
    const r = { userId: 'alice', deviceId: 'phone', identityKey: new Uint8Array(32).fill(7), signature: new Uint8Array(64).fill(9) };
    assert.deepEqual(decodeLinkRequest(`  ${encodeLinkRequest(r)}\n`), r);
    assert.throws(() => decodeLinkRequest(encodeLinkRequest({ ...r, signature: new Uint8Array(63) })), /damaged key or signature/);
    assert.throws(() => decodeLinkRequest(encodeLinkRequest({ ...r, identityKey: new Uint8Array(33) })), /damaged key or signature/);
    assert.throws(() => decodeLinkRequest(encodeLinkRequest({ ...r, userId: 'Not Valid' })));
  });
});
