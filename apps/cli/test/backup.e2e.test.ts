/**
 * `parley backup` and `parley restore` end to end: alice's key backup goes
 * to the server under a backup passphrase; on a new machine (a fresh
 * profile) a wrong passphrase or the backed-up device's own id restores
 * nothing; the right passphrase makes the new machine a new device that
 * replaces the backed-up one — the old machine can no longer log in, the
 * safety number changes, what came before stays unreadable (no sessions in
 * a backup), and what is sent afterwards is read without writing first,
 * from a new contact and from an old one. The renewed backup restores the
 * next machine, which replaces the first restore in turn. The server never
 * sees the plaintexts nor the backup passphrase.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertFails } from './_cli.ts';
import { assertServerHoldsNone, marker, ok, Profile, startServer, type ServerProcess } from './_chat.ts';

const BACKUP_VAR = 'PARLEY_TEST_BACKUP_PASSPHRASE';

describe('parley backup / restore', () => {
  let server: ServerProcess & { url: string };
  let root: string;
  let alice: Profile;
  let newMachine: Profile;
  let bob: Profile;
  let carol: Profile;
  const backupPassphrase = `correct horse battery staple ${marker('bk')}`;
  let numberBefore = '';
  const safetyNumber = (out: string): string => (out.match(/\b\d{5}\b/g) ?? []).join('');
  const m = { before: marker('before-restore'), toNew: marker('carol-to-restored'), again: marker('alice-again'), reply: marker('bob-reply') };

  before(async () => {
    server = await startServer();
    root = mkdtempSync(join(tmpdir(), 'parley-backup-test-'));
    alice = new Profile(join(root, 'old-machine'), 'alice', server.url);
    newMachine = new Profile(join(root, 'new-machine'), 'alice', server.url);
    bob = new Profile(join(root, 'bob'), 'bob', server.url);
    carol = new Profile(join(root, 'carol'), 'carol', server.url);
    ok(await alice.run(['register', 'alice', '--device', 'laptop']), 'register alice');
    ok(await bob.run(['register', 'bob', '--device', 'phone']), 'register bob');
    ok(await alice.run(['chat', 'bob'], { input: `${m.before}\n` }), 'alice writes');
    assert.ok(ok(await bob.run(['history', 'alice']), 'history').includes(m.before));
    numberBefore = safetyNumber(ok(await bob.run(['verify', 'alice']), 'verify'));
  });
  after(() => {
    server.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it('backup stores the key backup on the server', async () => {
    const r = await alice.run(['backup', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } });
    assert.match(ok(r, 'backup'), /^Key backup of alice \(device laptop\) stored on ws:/);
    assert.match(r.stderr, /parley restore alice --server ws:\S+ --replaces laptop\. The restored machine becomes a new device and laptop is removed/);
    assertFails(await alice.run(['backup']), 2, /no backup passphrase: give --backup-passphrase-env/);
  });

  it("restore refuses a wrong passphrase, the backed-up device's own id and an existing account, leaving nothing behind", async () => {
    const wrong = await newMachine.run(['restore', 'alice', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: 'not the backup passphrase' } });
    assertFails(wrong, 1, /has no key backup of alice for this passphrase/);
    const same = await newMachine.run(['restore', 'alice', '--device', 'laptop', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } });
    assertFails(same, 2, /the backup is of device laptop; the restored device gets a new id \(--device names it; leave it out for laptop-r2\)/);
    assert.ok(!existsSync(join(newMachine.dir, 'accounts', 'alice.parley')), 'no store left behind');
    const existing = await alice.run(['restore', 'alice', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } });
    assertFails(existing, 2, /already has an account alice/);
    // The backed-up device may be in use: the restore removes it only when told which (or --yes).
    const unconfirmed = await newMachine.run(['restore', 'alice', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } });
    assertFails(unconfirmed, 2, /The key backup of alice is of device laptop \(stored \d{4}-\d\d-\d\dT[^)]+\)\. Restoring makes this machine a new device and removes laptop: every copy of it is logged out for good\. Run again with --replaces laptop to confirm \(or --yes\)\./);
    const other = await newMachine.run(['restore', 'alice', '--replaces', 'desktop', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } });
    assertFails(other, 1, /the key backup of alice is of device laptop, not desktop: nothing was changed/);
    assert.ok(!existsSync(join(newMachine.dir, 'accounts', 'alice.parley')), 'no store left behind');
    // Nothing changed on the server: the old machine still logs in.
    assert.match(ok(await alice.run(['login', 'alice']), 'login'), /^Logged in as alice \(device laptop\)/);
  });

  it('restore on a new machine: a new device replaces the backed-up one; what came before stays unreadable', async () => {
    const r = await newMachine.run(['restore', 'alice', '--replaces', 'laptop', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } });
    assert.match(ok(r, 'restore'), /^Restored alice from the key backup of device laptop on ws:\S+: this machine is the new device laptop-r2\.$/m);
    assert.match(r.stderr, /The backed-up device laptop was removed: no copy of it \(the old machine, or an earlier restore\) can log in again\./);
    assert.match(r.stderr, /The key backup on the server is now this device's, under the same passphrase/);
    assert.doesNotMatch(r.stderr, /other devices/);
    const config = JSON.parse(readFileSync(join(newMachine.dir, 'config.json'), 'utf8')) as { user: string; accounts: Record<string, { device: string }> };
    assert.equal(config.user, 'alice');
    assert.equal(config.accounts['alice']?.device, 'laptop-r2');
    assert.match(ok(await newMachine.run(['login', 'alice']), 'login'), /^Logged in as alice \(device laptop-r2\)/);
    const h = ok(await newMachine.run(['history', 'bob']), 'history');
    assert.ok(!h.includes(m.before), 'a message from before the restore is readable?');
    assert.match(h, /alice: \(message not encrypted for this device/);
  });

  it('the old machine is shut out: its device was removed', async () => {
    assertFails(await alice.run(['login', 'alice']), 1, /was removed from its account/);
    const devices = ok(await newMachine.run(['devices']), 'devices');
    assert.match(devices, /laptop-r2/);
    assert.doesNotMatch(devices, /^\s*laptop\b(?!-)/m);
  });

  it('the safety number changes (a new device key), as verify says', async () => {
    const v = await bob.run(['verify', 'alice']);
    assert.match(numberBefore, /^\d{60}$/);
    const after = safetyNumber(ok(v, 'verify'));
    assert.match(after, /^\d{60}$/);
    assert.notEqual(after, numberBefore);
    assert.match(v.stderr, /a device gets a new identity key — a restore from a key backup too/);
  });

  it('the restored device reads new messages without writing first: from a new contact, and from an old one', async () => {
    ok(await carol.run(['register', 'carol']), 'register carol');
    ok(await carol.run(['chat', 'alice'], { input: `${m.toNew}\n` }), 'carol writes');
    assert.match(ok(await newMachine.run(['history', 'carol']), 'history'), new RegExp(`carol: ${m.toNew}$`, 'm'));

    // bob writes first: his client encrypts to the devices alice has now.
    ok(await bob.run(['chat', 'alice', '--limit', '0'], { input: `${m.reply}\n` }), 'bob writes');
    const h = ok(await newMachine.run(['history', 'bob', '--search', m.reply]), 'search');
    assert.match(h, new RegExp(`bob: ${m.reply}$`, 'm'));
    ok(await newMachine.run(['chat', 'bob', '--limit', '0'], { input: `${m.again}\n` }), 'restored alice writes');
    assert.ok(ok(await bob.run(['history', 'alice']), 'history').includes(`alice: ${m.again}`));
  });

  it('the renewed backup restores the next machine, which replaces the first restore and lists the account\'s other devices', async () => {
    const tablet = new Profile(join(root, 'tablet'), 'alice', server.url);
    const request = ok(await tablet.run(['link-device', 'alice', '--device', 'tablet']), 'link-device').trim();
    ok(await newMachine.run(['add-device', request]), 'add-device');
    const third = new Profile(join(root, 'third-machine'), 'alice', server.url);
    const r = await third.run(['restore', 'alice', '--yes', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } });
    assert.match(ok(r, 'restore'), /from the key backup of device laptop-r2 on ws:\S+: this machine is the new device laptop-r3\.$/m);
    assert.match(r.stderr, /alice has other devices: tablet \([0-9a-f ]+\)\.\nEach of them receives your conversations\. If one is not yours .* remove it: parley remove-device <id>\./);
    // The tablet keeps the backup now; removing it says the backup restores nothing any more.
    ok(await tablet.run(['login', 'alice']), 'tablet logs in');
    ok(await tablet.run(['backup', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } }), 'tablet backup');
    const removed = await third.run(['remove-device', 'tablet']);
    ok(removed, 'remove-device');
    assert.match(removed.stderr, /warning: the key backup on the server was of tablet, and restores nothing now: run 'parley backup' here\./);
    assertFails(await newMachine.run(['login', 'alice']), 1, /was removed from its account/);
    assert.match(ok(await third.run(['login', 'alice']), 'login'), /^Logged in as alice \(device laptop-r3\)/);
  });

  it("the server's database and logs hold none of the plaintexts, nor the backup passphrase", async () => {
    const secrets = [...Object.values(m), backupPassphrase, alice.passphrase, newMachine.passphrase];
    assertServerHoldsNone(server, secrets, ['alice', 'laptop']);
    await server.stop();
    assertServerHoldsNone(server, secrets, ['alice', 'laptop']);
  });
});
