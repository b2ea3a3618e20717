/**
 * How a new account store is made (account.ts `withNewStore`): under a
 * temporary name, moved to the account's name only when it is complete —
 * or, after a failure, only if the server had already accepted the device
 * (the store then records its account) — and otherwise removed. Temporary
 * stores of runs that died are cleaned up by the next one; the profile's
 * server URL is that of the Parley protocol.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { SqliteClientStore } from '@parley/sdk/node';
import { withNewStore } from '../src/account.ts';
import { CliError } from '../src/cli-error.ts';
import { removeStaleTempStores, resolveServer, storePath, tempStorePath } from '../src/profile.ts';
import { tempDir } from './_cli.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

const passphrase = (): Uint8Array => new TextEncoder().encode('the store passphrase');

function accountsDir(name: string): { dir: string; path: string; files: () => string[] } {
  const dir = tmp.path(name);
  mkdirSync(`${dir}/accounts`, { recursive: true });
  const path = storePath(dir, 'alice');
  return { dir, path, files: () => readdirSync(`${dir}/accounts`).sort() };
}

describe('withNewStore', () => {
  const ctx = { user: 'alice', action: 'registration' };

  test('a store made to the end appears under its name (nothing else left), and kept() runs once', async () => {
    const p = accountsDir('ok');
    let kept = 0;
    const out = await withNewStore(p.path, passphrase(), { ctx, kept: () => kept++ }, (store) => {
      assert.ok(!existsSync(p.path), 'the store must not have its name before it is complete');
      store.setAccount({ userId: 'alice', deviceId: 'd1' });
      return Promise.resolve(42);
    });
    assert.equal(out, 42);
    assert.equal(kept, 1);
    assert.deepEqual(p.files(), ['alice.parley']);
    const store = await SqliteClientStore.open(p.path, passphrase(), { mustExist: true });
    assert.deepEqual(store.account(), { userId: 'alice', deviceId: 'd1' });
    store.close();
  });

  test('a failure before the server accepted the device leaves nothing', async () => {
    const p = accountsDir('failed');
    let kept = 0;
    await assert.rejects(
      withNewStore(p.path, passphrase(), { ctx, kept: () => kept++ }, () => Promise.reject(new CliError('the server refused', 1))),
      /the server refused/,
    );
    assert.equal(kept, 0);
    assert.deepEqual(p.files(), []);
  });

  test('a failure after the server accepted the device keeps the store (a registered user keeps its keys)', async () => {
    const p = accountsDir('accepted');
    let kept = 0;
    await assert.rejects(
      withNewStore(p.path, passphrase(), { ctx, kept: () => kept++ }, (store) => {
        store.setAccount({ userId: 'alice', deviceId: 'd1' });
        return Promise.reject(new CliError('lost the connection', 1));
      }),
      /lost the connection/,
    );
    assert.equal(kept, 1);
    assert.deepEqual(p.files(), ['alice.parley']);
  });

  test("temporary stores of processes that are gone are removed, a running one's kept, other files untouched", () => {
    const p = accountsDir('stale');
    // A process id that is surely not running: a child that has exited.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    assert.ok(gone !== undefined);
    const running = process.ppid;
    const names = [
      `alice.parley.${gone}.tmp`,
      `alice.parley.${gone}.tmp-wal`,
      `alice.parley.${process.pid}.tmp`,
      `alice.parley.${running}.tmp`,
      'alice.parley.notes',
      'bob.parley.1.tmp',
    ];
    for (const name of names) writeFileSync(`${p.dir}/accounts/${name}`, '');
    assert.equal(tempStorePath(p.path), `${p.path}.${process.pid}.tmp`);
    removeStaleTempStores(p.path);
    assert.deepEqual(p.files(), [`alice.parley.${running}.tmp`, 'alice.parley.notes', 'bob.parley.1.tmp'].sort());
  });
});

describe('resolveServer', () => {
  const server = (url: string): string => resolveServer({ server: url }, undefined);

  test('a URL with no path or one ending in /v1 is used as given; …/v1/ becomes …/v1 (only exactly /v1 is the Parley protocol)', () => {
    assert.equal(server('ws://localhost:8080'), 'ws://localhost:8080');
    assert.equal(server('wss://chat.example.org/'), 'wss://chat.example.org/');
    assert.equal(server('ws://127.0.0.1:9/v1'), 'ws://127.0.0.1:9/v1');
    assert.equal(server('ws://127.0.0.1:9/v1/'), 'ws://127.0.0.1:9/v1');
    assert.equal(server('https://example.org/chat/v1/'), 'https://example.org/chat/v1');
    // The account's recorded URL goes through the same check.
    assert.equal(resolveServer({}, { device: 'd', server: 'ws://h:1/v1/' }), 'ws://h:1/v1');
  });

  test('a URL without its scheme is refused with what was typed and what was meant', () => {
    assert.throws(() => server('localhost:18080'), (e: unknown) => e instanceof CliError && e.exitCode === 2 && e.message.includes('(got "localhost:18080"; for example ws://localhost:18080)'));
    assert.throws(() => server('ftp://h:21'), (e: unknown) => e instanceof CliError && e.message.includes('for example ws://h:21'));
  });

  test('a query or fragment (even empty) is refused with one clear line', () => {
    for (const url of ['ws://h:1/v1#frag', 'ws://h:1#', 'ws://h:1/v1?token=x', 'ws://h:1?', 'ws://h:1/?a#b']) {
      assert.throws(() => server(url), (e: unknown) => e instanceof CliError && e.exitCode === 2 && /cannot have a query \(\?…\) or a fragment \(#…\)/.test(e.message), url);
    }
  });

  test('other paths are still refused', () => {
    for (const url of ['ws://h:1/chat', 'ws://h:1/v1//', 'ws://h:1/v2']) assert.throws(() => server(url), /path must be empty or end in \/v1/, url);
  });
});
