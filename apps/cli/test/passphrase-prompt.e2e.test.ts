/**
 * The chat commands' passphrase prompts on a real pseudo-terminal (util-linux
 * `script`; skipped where it is missing), against a real server: a
 * mistyped repeat of a new passphrase and a wrong store passphrase are asked
 * again (up to three times), a short new passphrase and a backup passphrase
 * equal to the store's are warned about, never refused; a restore asks
 * before it removes the backed-up device.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasScript, onTerminal, tempDir } from './_cli.ts';
import { startServer, type ServerProcess } from './_chat.ts';

describe('passphrase prompts of the chat commands', { skip: hasScript ? false : 'util-linux script is not installed' }, () => {
  let server: ServerProcess & { url: string };
  const tmp = tempDir();
  // Short on purpose: it is accepted, with a warning.
  const storePass = 'short1';
  const where = (profile: string): string[] => ['--profile', tmp.path(profile), '--server', server.url];

  before(async () => (server = await startServer()));
  after(() => {
    server.cleanup();
    tmp.cleanup();
  });

  it('register: a mistyped repeat is asked again; a short passphrase gets a warning, not a refusal', async () => {
    const r = await onTerminal(['register', 'alice', '--device', 'laptop', ...where('alice')], [`${storePass}\r`, 'short2\r', `${storePass}\r`, `${storePass}\r`]);
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, /Passphrase for alice: [\s\S]*Repeat passphrase for alice: [\s\S]*The passphrases do not match; try again \(2 tries left\)\./);
    assert.match(r.screen, /warning: a passphrase of fewer than 8 characters is quick to guess/);
    assert.match(r.screen, /Registered alice \(device laptop\)/);
  });

  it('register: after three mistyped repeats it stops (exit 2), leaving no store', async () => {
    const r = await onTerminal(['register', 'bob', ...where('bob')], ['one\r', 'two\r', 'one\r', 'two\r', 'one\r', 'two\r']);
    assert.equal(r.code, 2, r.screen);
    assert.match(r.screen, /parley: the passphrases do not match \(3 tries\)/);
    assert.ok(!existsSync(join(tmp.path('bob'), 'accounts', 'bob.parley')));
  });

  it('a wrong store passphrase is asked again, up to three times; then the error says how a forgotten one is recovered', async () => {
    const r = await onTerminal(['login', 'alice', ...where('alice')], ['wrong one\r', `${storePass}\r`]);
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, /That passphrase does not open alice's store; try again \(2 tries left\)\.[\s\S]*Logged in as alice/);
    const three = await onTerminal(['login', 'alice', ...where('alice')], ['wrong one\r', 'wrong two\r', 'wrong three\r']);
    assert.equal(three.code, 1, three.screen);
    assert.match(three.screen, /try again \(1 try left\)/);
    assert.match(three.screen, /parley: the passphrase does not open alice's store; a forgotten one cannot be recovered: only 'parley restore alice' from a key backup/);
  });

  it('backup asks for a new backup passphrase, and warns when it is the store passphrase', async () => {
    const same = await onTerminal(['backup', ...where('alice')], [`${storePass}\r`, `${storePass}\r`, `${storePass}\r`]);
    assert.equal(same.code, 0, same.screen);
    assert.match(same.screen, /Choose a new passphrase for the key backup, not your store's[\s\S]*New backup passphrase: [\s\S]*Repeat new backup passphrase: /);
    assert.match(same.screen, /warning: the backup passphrase is the store's/);
    const other = await onTerminal(['backup', ...where('alice')], [`${storePass}\r`, 'a different and much longer one\r', 'a different and much longer one\r']);
    assert.equal(other.code, 0, other.screen);
    assert.doesNotMatch(other.screen, /warning/);
    assert.match(other.screen, /Key backup of alice \(device laptop\) stored/);
  });

  it('restore at a terminal asks before it removes the backed-up device: "n" and Ctrl-D change nothing, "y" restores', async () => {
    const backupPass = 'a different and much longer one';
    const no = await onTerminal(['restore', 'alice', ...where('alice-new')], [`${backupPass}\r`, 'n\r']);
    assert.equal(no.code, 1, no.screen);
    assert.match(no.screen, /The key backup of alice is of device laptop \(stored [^)]+\)\. Restoring makes this machine a new device and removes laptop[\s\S]*Replace laptop\? \[y\/N\] /);
    assert.match(no.screen, /parley: laptop was not replaced: nothing was changed/);
    assert.ok(!existsSync(join(tmp.path('alice-new'), 'accounts', 'alice.parley')));
    // End of input (Ctrl-D) at the question is "no", said so.
    const eof = await onTerminal(['restore', 'alice', ...where('alice-new')], [`${backupPass}\r`, '\u0004']);
    assert.equal(eof.code, 1, eof.screen);
    assert.match(eof.screen, /parley: laptop was not replaced: nothing was changed/);
    const yes = await onTerminal(['restore', 'alice', ...where('alice-new')], [`${backupPass}\r`, 'y\r', `${storePass}\r`, `${storePass}\r`]);
    assert.equal(yes.code, 0, yes.screen);
    assert.match(yes.screen, /Restored alice from the key backup of device laptop on ws:\S+: this machine is the new device laptop-r2\./);
  });
});
