/**
 * `parley backup` and `parley restore` end to end: alice's key backup goes
 * to the server under a backup passphrase; on a new machine (a fresh
 * profile) a wrong passphrase or device restores nothing, the right one
 * restores the device, which logs in, cannot read what came before (no
 * sessions in a backup), and reads what is sent to it afterwards without
 * writing first — from a new contact, and from an old one, whom the restore
 * told to start a new session. The server never sees the plaintexts nor
 * the backup passphrase.
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
    assert.match(r.stderr, /parley restore alice --device laptop/);
    assertFails(await alice.run(['backup']), 2, /no backup passphrase: give --backup-passphrase-env/);
  });

  it('restore refuses a wrong passphrase, another device and an existing account, leaving nothing behind', async () => {
    const wrong = await newMachine.run(['restore', 'alice', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: 'not the backup passphrase' } });
    assertFails(wrong, 1, /has no key backup of alice for this passphrase/);
    const other = await newMachine.run(['restore', 'alice', '--device', 'desktop', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } });
    assertFails(other, 1, /the key backup of alice is of device laptop, not desktop/);
    assert.ok(!existsSync(join(newMachine.dir, 'accounts', 'alice.parley')), 'no store left behind');
    const existing = await alice.run(['restore', 'alice', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } });
    assertFails(existing, 2, /already has an account alice/);
  });

  it('restore on a new machine: the same device logs in; what came before stays unreadable', async () => {
    const r = await newMachine.run(['restore', 'alice', '--device', 'laptop', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPassphrase } });
    assert.match(ok(r, 'restore'), /^Restored alice \(device laptop\) from its key backup on ws:/);
    assert.match(r.stderr, /Told the members of 1 conversation to start new sessions with this device\./);
    assert.match(r.stderr, /in existing ones, what your contacts send once their parley has received the request to start new sessions .* you need not write first\./);
    const config = JSON.parse(readFileSync(join(newMachine.dir, 'config.json'), 'utf8')) as { user: string; accounts: Record<string, { device: string }> };
    assert.equal(config.user, 'alice');
    assert.equal(config.accounts['alice']?.device, 'laptop');
    assert.match(ok(await newMachine.run(['login', 'alice']), 'login'), /^Logged in as alice \(device laptop\)/);
    const h = ok(await newMachine.run(['history', 'bob']), 'history');
    assert.ok(!h.includes(m.before), 'a message from before the restore is readable?');
    assert.match(h, /alice: \(message sent from this device, which keeps no copy of it/);
  });

  it('the safety number is the same after the restore (the backup keeps the identity key), as verify says', async () => {
    const v = await bob.run(['verify', 'alice']);
    assert.match(numberBefore, /^\d{60}$/);
    assert.equal(safetyNumber(ok(v, 'verify')), numberBefore);
    assert.match(v.stderr, /adds or removes a device, or a device gets a new identity key .*a restore from a key backup keeps the key, and the number/);
    assert.doesNotMatch(v.stderr, /restores a device/);
  });

  it('the restored device reads new messages without writing first: from a new contact, and from an old one told to start over', async () => {
    ok(await carol.run(['register', 'carol']), 'register carol');
    ok(await carol.run(['chat', 'alice'], { input: `${m.toNew}\n` }), 'carol writes');
    assert.match(ok(await newMachine.run(['history', 'carol']), 'history'), new RegExp(`carol: ${m.toNew}$`, 'm'));

    // bob writes first: his client took the restore's request to start a new session when it connected.
    ok(await bob.run(['chat', 'alice', '--limit', '0'], { input: `${m.reply}\n` }), 'bob writes');
    const h = ok(await newMachine.run(['history', 'bob', '--search', m.reply]), 'search');
    assert.match(h, new RegExp(`bob: ${m.reply}$`, 'm'));
    ok(await newMachine.run(['chat', 'bob', '--limit', '0'], { input: `${m.again}\n` }), 'restored alice writes');
    assert.ok(ok(await bob.run(['history', 'alice']), 'history').includes(`alice: ${m.again}`));
  });

  it("the server's database and logs hold none of the plaintexts, nor the backup passphrase", async () => {
    const secrets = [...Object.values(m), backupPassphrase, alice.passphrase, newMachine.passphrase];
    assertServerHoldsNone(server, secrets, ['alice', 'laptop']);
    await server.stop();
    assertServerHoldsNone(server, secrets, ['alice', 'laptop']);
  });
});
