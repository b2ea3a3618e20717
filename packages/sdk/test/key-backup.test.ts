/**
 * Key backup (key-backup.ts). Every export and every import that reaches
 * the cell runs PBKDF2 with 314,110 iterations (~0.3 s), so the tests share
 * one backup and keep the number of such calls small; inputs refused before
 * PBKDF2 cost nothing.
 */
import assert from 'node:assert/strict';
import { pbkdf2Sync } from 'node:crypto';
import { describe, it, before } from 'node:test';
import { backend } from '@parley/themis/hazmat';
import { SdkError } from '../src/errors.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import {
  BACKUP_FETCH_SECRET_BYTES,
  backupFetchSecret,
  exportKeyBackup,
  importKeyBackup,
  KEY_BACKUP_BYTES_MAX,
  openKeyBackup,
  KEY_BACKUP_V1_CELL_BYTES,
  ONE_TIME_PREKEY_ID_RESTORE_GAP,
  keyBackupDeviceId,
  readKeyBackupOwner,
  readKeyBackupReplaces,
  sealKeyBackup,
  type KeyBackupOwner,
} from '../src/key-backup.ts';

const OWNER = { userId: 'alice', deviceId: 'laptop' };
const PASSPHRASE = 'tulip-orbit-canyon-velvet-42';
const isCode = (code: string) => (e: unknown) => SdkError.is(e) && e.code === code;

function flip(b: Uint8Array, at: number): Uint8Array {
  const out = b.slice();
  out[at] = (out[at] as number) ^ 1;
  return out;
}

/**
 * Count the PBKDF2 runs of Themis's crypto backend (sync and async) from now
 * until `restore()`; they still run. The backend is the one object every
 * Secure Cell derives its keys through (`@parley/themis/hazmat`).
 */
function countingPbkdf2(): { readonly count: number; restore(): void } {
  const derive = backend.pbkdf2Sha256;
  const deriveAsync = backend.pbkdf2Sha256Async;
  let count = 0;
  backend.pbkdf2Sha256 = (...args) => {
    count++;
    return derive(...args);
  };
  backend.pbkdf2Sha256Async = (...args) => {
    count++;
    return deriveAsync(...args);
  };
  return {
    get count() {
      return count;
    },
    restore() {
      backend.pbkdf2Sha256 = derive;
      backend.pbkdf2Sha256Async = deriveAsync;
    },
  };
}

/** Where the cell starts in a backup of OWNER: magic, version, two length-prefixed ids. */
const CELL_AT = 4 + 1 + 1 + OWNER.userId.length + 1 + OWNER.deviceId.length;

/** The same cell under a header naming another owner. */
function withHeader(backup: Uint8Array, owner: KeyBackupOwner): Uint8Array {
  const enc = new TextEncoder();
  const u = enc.encode(owner.userId);
  const d = enc.encode(owner.deviceId);
  return Uint8Array.of(...backup.subarray(0, 5), u.length, ...u, d.length, ...d, ...backup.subarray(CELL_AT));
}

/** Latin-1 view of bytes, so text searches see every byte as one character. */
const latin1 = (b: Uint8Array): string => String.fromCharCode(...b);
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const base64 = (b: Uint8Array): string => btoa(latin1(b));
const base64url = (b: Uint8Array): string => base64(b).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

describe('key backup', () => {
  let store: MemoryClientStore;
  let seed: Uint8Array;
  let backup: Uint8Array;
  let nextIdBefore: number;

  before(async () => {
    store = MemoryClientStore.create();
    store.setAccount(OWNER);
    store.reserveOneTimePrekeyIds(150); // as after one publish and one top-up
    nextIdBefore = store.reserveOneTimePrekeyIds(0);
    seed = store.identity.identityKeyPair().exportSeed();
    backup = await exportKeyBackup(store, PASSPHRASE);
  });

  it('round-trips the identity into a fresh, unpublished store for the same account', async () => {
    assert.equal(backup.length, CELL_AT + KEY_BACKUP_V1_CELL_BYTES);
    assert.deepEqual(readKeyBackupOwner(backup), OWNER);
    assert.equal(store.reserveOneTimePrekeyIds(0), nextIdBefore, 'export reserves no ids');
    const restored = await importKeyBackup(backup, PASSPHRASE, OWNER);
    assert.deepEqual(restored.identityPublicKey, store.identityPublicKey);
    assert.deepEqual(restored.identity.identityKeyPair().exportSeed(), seed);
    assert.deepEqual(restored.account(), OWNER);
    assert.equal(restored.prekeysPublished(), false, 'the next login publishes fresh prekeys');
    assert.equal(restored.sessions.size, 0, 'sessions are not backed up');
    assert.equal(restored.prekeys.oneTimePrekeyCount, 0, 'private prekeys are not backed up');
    // One-time prekey ids resume past anything uploaded since the backup.
    assert.equal(restored.reserveOneTimePrekeyIds(0), nextIdBefore + ONE_TIME_PREKEY_ID_RESTORE_GAP);
    // The restored identity signs as the original.
    const msg = new TextEncoder().encode('login challenge');
    assert.deepEqual(restored.identity.identityKeyPair().sign(msg), store.identity.identityKeyPair().sign(msg));
    // The store-agnostic form, for other ClientStore implementations.
    const keys = await openKeyBackup(backup, PASSPHRASE, OWNER);
    assert.deepEqual(keys.identity.publicKey, store.identityPublicKey);
    assert.equal(keys.nextOneTimePrekeyId, nextIdBefore + ONE_TIME_PREKEY_ID_RESTORE_GAP);
  });

  it('version 2 records the device a restore replaces, bound to the sealed part: altered, it opens nothing', async () => {
    const replaces = { deviceId: 'old-laptop', identityKey: MemoryClientStore.create().identityPublicKey };
    const v2 = await sealKeyBackup(store, OWNER, PASSPHRASE, replaces);
    assert.equal(v2[4], 0x02);
    assert.equal(v2.length, CELL_AT + 1 + replaces.deviceId.length + 32 + KEY_BACKUP_V1_CELL_BYTES);
    assert.deepEqual(readKeyBackupOwner(v2), OWNER);
    assert.deepEqual(readKeyBackupReplaces(v2), replaces);
    assert.equal(readKeyBackupReplaces(backup), null, 'version 1 records none');
    assert.equal(keyBackupDeviceId(v2), OWNER.deviceId);
    assert.equal(keyBackupDeviceId(backup), OWNER.deviceId);
    for (const none of [null, undefined, new Uint8Array(0), v2.subarray(0, 20)]) assert.equal(keyBackupDeviceId(none), null);
    const keys = await openKeyBackup(v2, PASSPHRASE, OWNER);
    assert.deepEqual(keys.identity.publicKey, store.identityPublicKey);
    assert.deepEqual(keys.replaces, replaces);
    assert.equal((await openKeyBackup(backup, PASSPHRASE, OWNER)).replaces, null);
    // The replaced id or key altered in the clear header: the context no longer matches.
    const idAt = CELL_AT + 1;
    await assert.rejects(openKeyBackup(flip(v2, idAt), PASSPHRASE, OWNER), isCode('BAD_PASSPHRASE'));
    await assert.rejects(openKeyBackup(flip(v2, idAt + replaces.deviceId.length + 5), PASSPHRASE, OWNER), isCode('BAD_PASSPHRASE'));
    // A version 1 header on a version 2 body (the record of the replaced device cut out), and the other way round.
    const cut = Uint8Array.of(...v2.subarray(0, 4), 0x01, ...v2.subarray(5, CELL_AT), ...v2.subarray(v2.length - KEY_BACKUP_V1_CELL_BYTES));
    await assert.rejects(openKeyBackup(cut, PASSPHRASE, OWNER), isCode('BAD_PASSPHRASE'));
    // Malformed: a device replacing itself, an unknown version, a replaced id that is not an id.
    const self = await sealKeyBackup(store, OWNER, PASSPHRASE, { deviceId: 'elsewhere', identityKey: replaces.identityKey });
    const selfId = new TextEncoder().encode(OWNER.deviceId);
    const selfHeader = Uint8Array.of(...self.subarray(0, CELL_AT), selfId.length, ...selfId, ...self.subarray(CELL_AT + 1 + 'elsewhere'.length));
    assert.throws(() => readKeyBackupOwner(selfHeader), isCode('MALFORMED'));
    const v3 = v2.slice();
    v3[4] = 0x03;
    assert.throws(() => readKeyBackupOwner(v3), isCode('MALFORMED'));
    const badId = v2.slice();
    badId[idAt] = 0x2f; // '/'
    assert.throws(() => readKeyBackupOwner(badId), isCode('MALFORMED'));
    await assert.rejects(sealKeyBackup(store, OWNER, PASSPHRASE, { deviceId: OWNER.deviceId, identityKey: replaces.identityKey }), isCode('INVALID_ARGUMENT'));
    await assert.rejects(sealKeyBackup(store, OWNER, PASSPHRASE, { deviceId: 'x', identityKey: new Uint8Array(31) }), isCode('INVALID_ARGUMENT'));
  });

  it('refuses a wrong passphrase with BAD_PASSPHRASE', async () => {
    await assert.rejects(importKeyBackup(backup, PASSPHRASE + '!', OWNER), isCode('BAD_PASSPHRASE'));
  });

  it('refuses another user or device: by its header at once, by the sealed context when the header lies', async () => {
    for (const owner of [{ userId: 'mallory', deviceId: 'laptop' }, { userId: 'alice', deviceId: 'phone' }]) {
      const who = `${owner.userId}/${owner.deviceId}`;
      await assert.rejects(importKeyBackup(backup, PASSPHRASE, owner), isCode('INVALID_ARGUMENT'), `${who}: header names alice/laptop`);
      // The header rewritten to name the other account: the cell's context still says alice/laptop.
      const relabelled = withHeader(backup, owner);
      assert.deepEqual(readKeyBackupOwner(relabelled), owner);
      await assert.rejects(importKeyBackup(relabelled, PASSPHRASE, owner), isCode('BAD_PASSPHRASE'), `${who}: relabelled`);
    }
  });

  it('refuses tampered and truncated bytes', async () => {
    // PBKDF2 runs counted where Themis runs them (its backend, as Themis's own tests intercept it), not timed.
    const derivations = countingPbkdf2();
    try {
      // Through the cell (PBKDF2 runs): a flipped bit in the ciphertext, the tag, the salt.
      for (const at of [backup.length - 1, CELL_AT + 32, CELL_AT + 60]) {
        const before = derivations.count;
        await assert.rejects(importKeyBackup(flip(backup, at), PASSPHRASE, OWNER), isCode('BAD_PASSPHRASE'), `byte ${at}`);
        assert.ok(derivations.count > before, `byte ${at}: PBKDF2 ran (the count sees the cell's key derivation)`);
      }
      // Before the cell (no PBKDF2): magic, version, ids, any other length.
      const patched = (at: number, v: number): Uint8Array => {
        const b = backup.slice();
        b[at] = v;
        return b;
      };
      const cheap = [
        flip(backup, 0),
        flip(backup, 4),
        patched(5, 0), // user id length 0
        patched(5, 65), // user id length above 64
        patched(6, 0x41), // 'A': outside the user id pattern
        patched(CELL_AT - 1, 0x20), // ' ' in the device id
        backup.subarray(0, backup.length - 1),
        Uint8Array.of(...backup, 0),
        new Uint8Array(0),
        backup.subarray(0, 3),
      ];
      const before = derivations.count;
      for (const [i, bytes] of cheap.entries()) {
        await assert.rejects(importKeyBackup(bytes, PASSPHRASE, OWNER), isCode('MALFORMED'), `case ${i}`);
        assert.throws(() => readKeyBackupOwner(bytes), isCode('MALFORMED'), `case ${i}`);
      }
      assert.equal(derivations.count - before, 0, 'refused without running PBKDF2');
    } finally {
      derivations.restore();
    }
  });

  it('refuses input above KEY_BACKUP_BYTES_MAX with LIMIT, and bad arguments with INVALID_ARGUMENT', async () => {
    await assert.rejects(importKeyBackup(new Uint8Array(KEY_BACKUP_BYTES_MAX + 1), PASSPHRASE, OWNER), isCode('LIMIT'));
    await assert.rejects(importKeyBackup(new Uint8Array(KEY_BACKUP_BYTES_MAX), PASSPHRASE, OWNER), isCode('MALFORMED'), 'at the limit: looked at, not a backup');
    await assert.rejects(importKeyBackup(backup, '', OWNER), isCode('INVALID_ARGUMENT'));
    await assert.rejects(importKeyBackup(backup, PASSPHRASE, { userId: 'Alice!', deviceId: 'laptop' }), isCode('INVALID_ARGUMENT'));
    await assert.rejects(importKeyBackup(backup, PASSPHRASE, { userId: 'alice', deviceId: '' }), isCode('INVALID_ARGUMENT'));
    await assert.rejects(importKeyBackup('backup' as unknown as Uint8Array, PASSPHRASE, OWNER), isCode('INVALID_ARGUMENT'));
    await assert.rejects(exportKeyBackup(MemoryClientStore.create(), PASSPHRASE), isCode('INVALID_ARGUMENT'), 'a store with no account');
    await assert.rejects(exportKeyBackup(store, new Uint8Array(0)), isCode('INVALID_ARGUMENT'));
  });

  it('holds no key material in clear: raw, hex, base64', () => {
    const identity = store.identity.identityKeyPair();
    const secrets = { seed, publicKey: identity.publicKey };
    const text = latin1(backup);
    const texts = [text, text.toLowerCase(), text.toUpperCase()];
    for (const [name, value] of Object.entries(secrets)) {
      // Any 8-byte window of the key, as raw bytes …
      for (let i = 0; i + 8 <= value.length; i++) {
        assert.ok(!text.includes(latin1(value.subarray(i, i + 8))), `${name}[${i}…] in clear`);
      }
      // … and its text encodings (should the bytes ever be stored as text).
      for (const encoded of [hex(value), base64(value), base64url(value)]) {
        for (const t of texts) assert.ok(!t.includes(encoded.slice(0, 16).toLowerCase()) && !t.includes(encoded.slice(0, 16)), `${name} encoded in clear`);
      }
    }
  });

  it('accepts the same passphrase typed in another Unicode form (NFKC)', async () => {
    const s = MemoryClientStore.create();
    s.setAccount({ userId: 'bob', deviceId: 'phone' });
    const composed = 'caf\u00e9 \ufb01ve';
    const decomposed = 'cafe\u0301 five';
    const b = await exportKeyBackup(s, composed);
    const restored = await importKeyBackup(b, decomposed, { userId: 'bob', deviceId: 'phone' });
    assert.deepEqual(restored.identityPublicKey, s.identityPublicKey);
  });

  it('derives the fetch secret as documented, per user', async () => {
    const got = await backupFetchSecret(PASSPHRASE, 'alice');
    const expected = pbkdf2Sync(PASSPHRASE, 'parley-key-backup-fetch-v1\nalice', 314_110, 32, 'sha256');
    assert.equal(got.length, BACKUP_FETCH_SECRET_BYTES);
    assert.deepEqual(got, new Uint8Array(expected));
    assert.ok(!latin1(backup).includes(latin1(got.subarray(0, 8))), 'unrelated to the backup bytes');
    await assert.rejects(backupFetchSecret(PASSPHRASE, 'No Such User'), isCode('INVALID_ARGUMENT'));
    await assert.rejects(backupFetchSecret('', 'alice'), isCode('INVALID_ARGUMENT'));
  });
});
