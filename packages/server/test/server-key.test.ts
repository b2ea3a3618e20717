// The server's identity key files (server-key.ts): made once, never replaced,
// and never served unless the public key belongs to the private key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyPair } from '@parley/themis';
import { loadOrCreateServerKey } from '../src/server-key.ts';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'parley-server-key-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('first start makes a pair (private file 0600, no temporary files left); later starts load the same pair', () => {
  withDir((dir) => {
    const first = loadOrCreateServerKey(dir);
    assert.equal(first.created, true);
    assert.equal(statSync(join(dir, 'server-key.private')).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir).sort(), ['server-key.private', 'server-key.public']);
    const again = loadOrCreateServerKey(dir);
    assert.equal(again.created, false);
    assert.equal(hex(again.keyPair.publicKey), hex(first.keyPair.publicKey));
    assert.equal(hex(again.keyPair.privateKey), hex(first.keyPair.privateKey));
  });
});

test('a public key file of another pair stops the start; nothing is rewritten', () => {
  withDir((dir) => {
    loadOrCreateServerKey(dir);
    const before = readFileSync(join(dir, 'server-key.private'));
    writeFileSync(join(dir, 'server-key.public'), new KeyPair().publicKey);
    assert.throws(() => loadOrCreateServerKey(dir), /is not the public key of/);
    assert.ok(readFileSync(join(dir, 'server-key.private')).equals(before), 'the identity is kept');
  });
});

test('a missing public key file stops the start instead of replacing the identity', () => {
  withDir((dir) => {
    loadOrCreateServerKey(dir);
    const before = readFileSync(join(dir, 'server-key.private'));
    unlinkSync(join(dir, 'server-key.public'));
    assert.throws(() => loadOrCreateServerKey(dir), /is missing/);
    assert.ok(readFileSync(join(dir, 'server-key.private')).equals(before));
    assert.equal(existsSync(join(dir, 'server-key.public')), false);
  });
});

test('a public key without its private key (lost, or left out of a copy) stops the start: no new identity replaces the pinned one', () => {
  withDir((dir) => {
    const old = loadOrCreateServerKey(dir);
    unlinkSync(join(dir, 'server-key.private'));
    assert.throws(() => loadOrCreateServerKey(dir), (e: Error) => e.message.includes(join(dir, 'server-key.private')) && /is missing/.test(e.message));
    assert.equal(hex(readFileSync(join(dir, 'server-key.public'))), hex(old.keyPair.publicKey), 'the pinned public key is left as it was');
    assert.equal(existsSync(join(dir, 'server-key.private')), false);
  });
});

test('crash-safe creation: a crash before the private key was written leaves nothing used (a new pair is made); after it, the pending public key is checked and put in place', () => {
  withDir((dir) => {
    // Crashed after the pending public key, before the private key: only a pending file.
    writeFileSync(join(dir, 'server-key.public.pending'), new KeyPair().publicKey);
    const made = loadOrCreateServerKey(dir);
    assert.equal(made.created, true);
    assert.deepEqual(readdirSync(dir).sort(), ['server-key.private', 'server-key.public']);
    assert.equal(hex(readFileSync(join(dir, 'server-key.public'))), hex(made.keyPair.publicKey));
  });
  withDir((dir) => {
    // Crashed after the private key, before the pending public key was renamed.
    const pair = loadOrCreateServerKey(dir).keyPair;
    writeFileSync(join(dir, 'server-key.public.pending'), readFileSync(join(dir, 'server-key.public')));
    unlinkSync(join(dir, 'server-key.public'));
    const resumed = loadOrCreateServerKey(dir);
    assert.equal(hex(resumed.keyPair.publicKey), hex(pair.publicKey));
    assert.deepEqual(readdirSync(dir).sort(), ['server-key.private', 'server-key.public']);
    assert.equal(loadOrCreateServerKey(dir).created, false);
  });
  withDir((dir) => {
    // A pending public key of another pair is refused like any wrong public key.
    loadOrCreateServerKey(dir);
    unlinkSync(join(dir, 'server-key.public'));
    writeFileSync(join(dir, 'server-key.public.pending'), new KeyPair().publicKey);
    assert.throws(() => loadOrCreateServerKey(dir), /is not the public key of/);
    assert.equal(existsSync(join(dir, 'server-key.public')), false);
  });
});

test('a truncated private key file stops the start', () => {
  withDir((dir) => {
    loadOrCreateServerKey(dir);
    const priv = readFileSync(join(dir, 'server-key.private'));
    writeFileSync(join(dir, 'server-key.private'), priv.subarray(0, 20));
    // The error names the file to restore.
    assert.throws(() => loadOrCreateServerKey(dir), (e: Error) => e.message.includes(join(dir, 'server-key.private')) && /not a Themis EC key pair/.test(e.message));
  });
});
