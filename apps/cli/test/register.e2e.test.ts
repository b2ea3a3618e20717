/**
 * Making an account's store (`register`, `restore`) is all or nothing: the
 * store appears under its name only once the account is complete, so a run
 * interrupted (Ctrl-C, SIGTERM) or killed outright half-way — here while a
 * server that never answers keeps it waiting — never leaves a store that
 * blocks running the command again. Also: `login` does not guess a device
 * id, and a server URL is used (and recorded) as the Parley protocol's.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { backupFetchSecret, ParleyClient } from '@parley/sdk';
import type { Transport, TransportFactory } from '@parley/sdk';
import { SqliteClientStore, webSocketTransport } from '@parley/sdk/node';
import { ensureProfileDir, rememberAccount, storePath } from '../src/profile.ts';
import { assertFails } from './_cli.ts';
import { ok, PASS_VAR, Profile, Running, startServer, until, type ServerProcess } from './_chat.ts';

/**
 * A TCP server on a free port that accepts connections: the first `forward`
 * are relayed to `target`'s port, the others held open and never answered
 * (a hung server). `connections` counts them.
 */
async function tcpStub(target?: number, forward = 0, after: 'hang' | 'refuse' = 'hang'): Promise<{ url: string; connections: () => number; close: () => void }> {
  let count = 0;
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    count++;
    sockets.push(socket);
    socket.on('error', () => undefined);
    if (count > forward && after === 'refuse') socket.destroy();
    else if (target !== undefined && count <= forward) {
      const upstream = connect(target, '127.0.0.1');
      sockets.push(upstream);
      upstream.on('error', () => socket.destroy());
      socket.pipe(upstream).pipe(socket);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return {
    url: `ws://127.0.0.1:${address.port}`,
    connections: () => count,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** The files in a profile's accounts directory. */
function accountFiles(profile: Profile): string[] {
  try {
    return readdirSync(join(profile.dir, 'accounts')).sort();
  } catch {
    return [];
  }
}

/** Starts `parley <args>` for `profile` (its flags, `server` instead of its own), waits until it has connected to `stub`, then sends `signal`. */
async function interrupt(profile: Profile, args: string[], server: string, stub: { connections: () => number }, connectionsBefore: number, signal: NodeJS.Signals): Promise<Running & { code: number | null }> {
  const run = new Running([...args, '--profile', profile.dir, '--server', server, '--passphrase-env', PASS_VAR], profile.env);
  try {
    await until(() => stub.connections() > connectionsBefore, `${args[0] ?? ''} connecting`);
    // The store is made before connecting; the connection is now waiting on the server.
    run.child.kill(signal);
    const code = await run.exited;
    return Object.assign(run, { code });
  } finally {
    run.kill();
  }
}

describe('register / restore / login: the store, the device id, the server URL', () => {
  let server: ServerProcess & { url: string };
  let root: string;
  let hung: Awaited<ReturnType<typeof tcpStub>>;

  before(async () => {
    server = await startServer();
    root = mkdtempSync(join(tmpdir(), 'parley-register-test-'));
    hung = await tcpStub();
  });
  after(() => {
    hung.close();
    server.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it('register interrupted by Ctrl-C or SIGTERM while the server is slow: no store left, register then works with the same device id', async () => {
    const carol = new Profile(join(root, 'carol'), 'carol', server.url);
    const int = await interrupt(carol, ['register', 'carol', '--device', 'd1'], hung.url, hung, hung.connections(), 'SIGINT');
    assert.equal(int.code, 130, int.stderr);
    assert.match(int.stderr, /interrupted \(SIGINT\)/);
    assert.match(int.stderr, /Nothing was kept/);
    assert.deepEqual(accountFiles(carol), []);
    const term = await interrupt(carol, ['register', 'carol', '--device', 'd1'], hung.url, hung, hung.connections(), 'SIGTERM');
    assert.equal(term.code, 143, term.stderr);
    assert.deepEqual(accountFiles(carol), []);

    assert.match(ok(await carol.run(['register', 'carol', '--device', 'd1']), 'register again'), /^Registered carol \(device d1\)/);
    assert.deepEqual(accountFiles(carol), ['carol.parley']);
    assert.match(ok(await carol.run(['login', 'carol']), 'login'), /^Logged in as carol \(device d1\)/);
  });

  it('register killed outright (SIGKILL) mid-way: only a temporary file is left, which the next register removes', async () => {
    const dave = new Profile(join(root, 'dave'), 'dave', server.url);
    const killed = await interrupt(dave, ['register', 'dave', '--device', 'd1'], hung.url, hung, hung.connections(), 'SIGKILL');
    assert.equal(killed.code, null);
    const left = accountFiles(dave);
    assert.ok(!left.includes('dave.parley'), `a store that would block a retry: ${left.join(', ')}`);
    assert.ok(left.every((name) => /^dave\.parley\.\d+\.tmp(-wal|-shm|-journal)?$/.test(name)), left.join(', '));
    assert.match(ok(await dave.run(['register', 'dave', '--device', 'd1']), 'register again'), /^Registered dave \(device d1\)/);
    assert.deepEqual(accountFiles(dave), ['dave.parley']);
  });

  it('restore interrupted during its login (after the backup was fetched): no store left, restore then works', async () => {
    const erin = new Profile(join(root, 'erin-old'), 'erin', server.url);
    const fresh = new Profile(join(root, 'erin-new'), 'erin', server.url);
    const BACKUP_VAR = 'PARLEY_TEST_BACKUP_PASSPHRASE';
    const backupEnv = { [BACKUP_VAR]: 'a long backup passphrase for erin, for the test' };
    ok(await erin.run(['register', 'erin', '--device', 'laptop']), 'register');
    ok(await erin.run(['backup', '--backup-passphrase-env', BACKUP_VAR], { env: backupEnv }), 'backup');
    // The backup is fetched over a first connection (relayed to the server); the login's is never answered.
    const halfway = await tcpStub(server.port, 1);
    try {
      const restoreArgs = ['restore', 'erin', '--yes', '--backup-passphrase-env', BACKUP_VAR];
      const run = new Running([...restoreArgs, '--profile', fresh.dir, '--server', halfway.url, '--passphrase-env', PASS_VAR], { ...fresh.env, ...backupEnv });
      try {
        await until(() => halfway.connections() >= 2, 'the login connection');
        run.child.kill('SIGINT');
        assert.equal(await run.exited, 130, run.stderr);
      } finally {
        run.kill();
      }
      assert.deepEqual(accountFiles(fresh), []);
      const r = await fresh.run(restoreArgs, { env: backupEnv });
      assert.match(ok(r, 'restore again'), /^Restored erin from the key backup of device laptop on ws:\S+: this machine is the new device laptop-r2\./);
      assert.deepEqual(accountFiles(fresh), ['erin.parley']);
    } finally {
      halfway.close();
    }
  });

  it('restore cut off once the new device was added (its login cannot connect): the store is kept, the CLI says what to check, and the new device logs in', async () => {
    const gail = new Profile(join(root, 'gail-old'), 'gail', server.url);
    const fresh = new Profile(join(root, 'gail-new'), 'gail', server.url);
    const BACKUP_VAR = 'PARLEY_TEST_BACKUP_PASSPHRASE';
    const backupEnv = { [BACKUP_VAR]: 'a long backup passphrase for gail, for the test' };
    ok(await gail.run(['register', 'gail', '--device', 'laptop']), 'register');
    ok(await gail.run(['backup', '--backup-passphrase-env', BACKUP_VAR], { env: backupEnv }), 'backup');
    // Relayed: the backup fetch, then the backed-up key's connection (add, remove); the new device's login is refused.
    const cut = await tcpStub(server.port, 2, 'refuse');
    try {
      const run = new Running(['restore', 'gail', '--replaces', 'laptop', '--backup-passphrase-env', BACKUP_VAR, '--profile', fresh.dir, '--server', cut.url, '--passphrase-env', PASS_VAR], { ...fresh.env, ...backupEnv });
      try {
        assert.equal(await run.exited, 1, run.stderr);
      } finally {
        run.kill();
      }
      assert.equal(cut.connections(), 3, 'the fetch, the backed-up key, the new device');
      assert.match(run.stderr, /the restore of gail stopped after the new device laptop-r2 was added: once 'parley login gail' works, check 'parley devices' and remove laptop if it is still listed/);
      assert.match(run.stderr, /the account is kept in/);
    } finally {
      cut.close();
    }
    assert.deepEqual(accountFiles(fresh), ['gail.parley']);
    assert.match(ok(await fresh.run(['login', 'gail']), 'login'), /^Logged in as gail \(device laptop-r2\)/);
    assert.doesNotMatch(ok(await fresh.run(['devices']), 'devices'), /^\s*laptop\b(?!-)/m);
  });

  it('backup on a device whose restore was cut off before removing the backed-up device: warns while that device is still listed', async () => {
    const hal = new Profile(join(root, 'hal-old'), 'hal', server.url);
    const fresh = new Profile(join(root, 'hal-new'), 'hal', server.url);
    const BACKUP_VAR = 'PARLEY_TEST_BACKUP_PASSPHRASE';
    const backupPass = 'a long backup passphrase for hal, for the test';
    ok(await hal.run(['register', 'hal', '--device', 'laptop']), 'register');
    ok(await hal.run(['backup', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPass } }), 'backup');
    // The SDK's restore into the new profile's store, cut off as the new backup is stored (before the removal),
    // with every later connection refused: the new device exists, the backed-up one too.
    const stored = await ParleyClient.fetchKeyBackup(server.url, 'hal', await backupFetchSecret(backupPass, 'hal'));
    ensureProfileDir(fresh.dir);
    const store = await SqliteClientStore.open(storePath(fresh.dir, 'hal'), new TextEncoder().encode(fresh.passphrase));
    let cut = false;
    const transport: TransportFactory = async (url, events) => {
      if (cut) throw new Error('refused');
      const socket: { t?: Transport } = {};
      socket.t = await webSocketTransport(url, {
        message: (text) => {
          events.message(text);
          if ((JSON.parse(text) as { t?: string }).t === 'backup.stored') {
            cut = true;
            socket.t?.close(1001, 'gone');
          }
        },
        close: (code, reason) => events.close(code, reason),
      });
      return socket.t;
    };
    await assert.rejects(ParleyClient.restore(server.url, stored.backup, backupPass, { store, transport, reconnect: false }));
    assert.deepEqual(store.account(), { userId: 'hal', deviceId: 'laptop-r2' });
    store.close();
    rememberAccount(fresh.dir, 'hal', { device: 'laptop-r2', server: server.url });

    const r = await fresh.run(['backup', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPass } });
    ok(r, 'backup on the new device');
    assert.match(r.stderr, /warning: laptop is still a device of hal: the restore that made this device was cut off before removing it\. If it is not in use, remove it: parley remove-device laptop\./);
    ok(await fresh.run(['remove-device', 'laptop']), 'remove-device');
    const again = await fresh.run(['backup', '--backup-passphrase-env', BACKUP_VAR], { env: { [BACKUP_VAR]: backupPass } });
    assert.doesNotMatch(ok(again, 'backup again'), /still a device/);
    assert.doesNotMatch(again.stderr, /still a device/);
  });

  it("login never guesses a device id (the host name's) for a store that has not logged in and that the config does not name", async () => {
    const tablet = new Profile(join(root, 'frank-tablet'), 'frank', server.url);
    ok(await tablet.run(['link-device', 'frank', '--device', 'tablet']), 'link-device');
    rmSync(join(tablet.dir, 'config.json'));
    assertFails(await tablet.run(['login', 'frank']), 2, /has not logged in yet and the profile's config does not name its device: give --device <id>/);
  });

  it('a server URL ending in /v1/ is used and recorded as …/v1; a query or fragment is refused with one clear line', async () => {
    const gina = new Profile(join(root, 'gina'), 'gina', `${server.url}/v1/`);
    assert.match(ok(await gina.run(['register', 'gina', '--device', 'd1']), 'register'), new RegExp(`^Registered gina \\(device d1\\) on ${server.url}/v1\\.`));
    const config = JSON.parse(readFileSync(join(gina.dir, 'config.json'), 'utf8')) as { accounts: Record<string, { server: string }> };
    assert.equal(config.accounts['gina']?.server, `${server.url}/v1`);
    assert.match(ok(await gina.run(['login', 'gina']), 'login'), /^Logged in as gina \(device d1\)/);
    for (const bad of [`${server.url}/v1#x`, `${server.url}#`, `${server.url}/v1?token=x`, `${server.url}?`]) {
      const hank = new Profile(join(root, 'hank'), 'hank', bad);
      assertFails(await hank.run(['register', 'hank']), 2, /the server URL cannot have a query \(\?…\) or a fragment \(#…\)/);
      assert.deepEqual(accountFiles(hank), []);
    }
  });
});
