/**
 * What the server holds after a conversation: its data directory (SQLite
 * database, WAL, key files) and its logs, read as raw bytes, contain none of
 * the plaintexts and none of the devices' private keys — while they do
 * contain public material, which shows the scan can find what is there.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { MemoryClientStore } from '../src/client-store.ts';
import { ONE_TIME_PREKEYS_TARGET } from '../src/limits.ts';
import { closeAll, marker, provisionDevice, recorder, startServer, until, type ServerProcess } from './_harness.ts';

/** Every private key a memory store holds right after its device published its keys. */
function privateKeys(store: MemoryClientStore): Uint8Array[] {
  const keys = [store.identity.identityKeyPair().exportSeed()];
  const spk = store.prekeys.loadSignedPrekey(1);
  const pq = store.prekeys.loadPqPrekey(1);
  assert.ok(spk !== undefined && pq !== undefined);
  keys.push(spk.exportPrivateKey());
  keys.push(pq.toBytes().subarray(6, 6 + 64)); // the ML-KEM seed d ‖ z (packages/protocol/src/prekeys.ts record layout)
  for (let id = 1; id <= ONE_TIME_PREKEYS_TARGET; id++) {
    const otk = store.prekeys.loadOneTimePrekey(id);
    assert.ok(otk !== undefined, `one-time prekey ${id}`);
    keys.push(otk.exportPrivateKey());
  }
  return keys;
}

function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push({ path, bytes: readFileSync(path) });
  }
  return out;
}

/** The forms a secret could take in a file or a log line. */
function encodings(secret: Uint8Array): Buffer[] {
  const b = Buffer.from(secret);
  return [b, Buffer.from(b.toString('hex')), Buffer.from(b.toString('base64').replace(/=+$/, '')), Buffer.from(b.toString('base64url'))];
}

describe('the server at rest', () => {
  let server: ServerProcess & { url: string };
  const clients: ParleyClient[] = [];

  before(async () => {
    // The most verbose logs the server has.
    server = await startServer({ env: { PARLEY_LOG_LEVEL: 'trace' } });
  });
  after(async () => {
    await closeAll(clients);
    server.cleanup();
  });

  it('holds no plaintext and no private key, in its database, its WAL, its files or its logs', async () => {
    const stores = { alice: MemoryClientStore.create(), bob: MemoryClientStore.create(), bob2: MemoryClientStore.create() };
    const [ra, rb, rb2] = [recorder(), recorder(), recorder()];
    const alice = await ParleyClient.register(server.url, 'alice', 'laptop', { store: stores.alice, on: ra.on });
    const bob = await ParleyClient.register(server.url, 'bob', 'phone', { store: stores.bob, on: rb.on });
    await provisionDevice(bob, stores.bob2, 'tablet');
    const bob2 = await ParleyClient.login(server.url, 'bob', 'tablet', { store: stores.bob2, on: rb2.on });
    clients.push(alice, bob, bob2);
    const secrets = [...privateKeys(stores.alice), ...privateKeys(stores.bob), ...privateKeys(stores.bob2)];

    const room = await alice.startDirect('bob');
    const plaintexts: Uint8Array[] = [];
    const sent: string[] = [];
    for (let i = 0; i < 4; i++) {
      const fromAlice = marker(`alice-says-${i}`);
      const fromBob = marker(`bob-says-${i}`);
      await alice.send(room, `a message with ${fromAlice} inside`);
      await bob.send(room, `and a reply with ${fromBob} inside`);
      plaintexts.push(Buffer.from(fromAlice), Buffer.from(fromBob));
      sent.push(fromAlice, fromBob);
    }
    const binary = globalThis.crypto.getRandomValues(new Uint8Array(48));
    const ack = await bob2.send(room, binary);
    plaintexts.push(binary);
    await until(() => ra.messages.length === 5 && rb.messages.length === 5 && rb2.messages.length === 8, 'every delivery');
    const seen = ra.messages.filter((m) => m.kind === 'text').map((m) => (m.kind === 'text' ? m.text : ''));
    assert.ok(seen.every((t, i) => t.includes(sent[2 * i + 1] as string)), 'the markers did travel');

    const scan = (what: string): void => {
      const files = filesUnder(server.dataDir);
      assert.ok(files.some((f) => f.path.endsWith('parley.db')), `${what}: the database file exists`);
      const logs = Buffer.from(JSON.stringify(server.logs) + server.stderr.join(''));
      const haystacks = [...files, { path: 'server logs', bytes: logs }];
      // Positive controls: public data is there, so the scan can see what the server stores.
      const everything = Buffer.concat(files.map((f) => f.bytes));
      assert.ok(everything.includes(Buffer.from(stores.alice.identityPublicKey)), `${what}: alice's public identity key is stored`);
      assert.ok(everything.includes(Buffer.from(ack.id)), `${what}: the last message's clientId is stored`);
      for (const h of haystacks) {
        for (const p of plaintexts) assert.equal(h.bytes.indexOf(Buffer.from(p)), -1, `${what}: a plaintext in ${h.path}`);
        for (const s of secrets) for (const form of encodings(s)) assert.equal(h.bytes.indexOf(form), -1, `${what}: a private key in ${h.path}`);
      }
    };
    scan('while running');
    await closeAll(clients);
    await server.stop(); // shutdown checkpoints the WAL into the database
    scan('after shutdown');
  });
});
