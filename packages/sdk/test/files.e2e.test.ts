/**
 * Files as encrypted blobs through a real `parley serve`: sealed and
 * uploaded by the sender, announced in the conversation, downloaded and
 * opened by the receiver; the server's database holds none of the file's
 * bytes; a blob altered on the server is refused; limits at their edge; the
 * sender deletes a blob.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ParleyClient } from '../src/client.ts';
import { SdkError } from '../src/errors.ts';
import type { ChatMessage } from '../src/events.ts';
import { FILE_BYTES_MAX, SEAL_OVERHEAD_BYTES } from '../src/file-transfer.ts';
import { FILE_NAME_BYTES_MAX, FILE_UPLOADS_CONCURRENT_MAX } from '../src/limits.ts';
import { closeAll, faultyTransport, marker, recorder, startServer, until, type ServerProcess } from './_harness.ts';

describe('files as encrypted blobs', () => {
  let server: ServerProcess & { url: string };
  const clients: ParleyClient[] = [];
  let alice: ParleyClient;
  let bob: ParleyClient;
  const rb = recorder();
  let room: string;

  before(async () => {
    server = await startServer();
    alice = await ParleyClient.register(server.url, 'fa', 'laptop');
    bob = await ParleyClient.register(server.url, 'fb', 'phone', { on: rb.on });
    clients.push(alice, bob);
    room = await alice.startDirect('fb');
  });
  after(async () => {
    await closeAll(clients);
    server.cleanup();
  });

  const fileMessages = (): (ChatMessage & { kind: 'file' })[] => rb.messages.filter((m): m is ChatMessage & { kind: 'file' } => m.kind === 'file');

  it('a 300 KiB file goes up in chunks and comes out the same; its bytes never reach the server in clear', async () => {
    const text = marker('file-content');
    const file = new TextEncoder().encode(text.repeat(Math.ceil((300 * 1024) / text.length)));
    const sent = await alice.sendFile(room, file, { name: 'notes — été.txt', mediaType: 'text/plain; charset=utf-8' });
    await until(() => fileMessages().length === 1, 'the file message');
    const m = fileMessages()[0];
    assert.ok(m !== undefined);
    assert.equal(m.seq, sent.seq);
    assert.equal(m.file.name, 'notes — été.txt');
    assert.equal(m.file.mediaType, 'text/plain; charset=utf-8');
    assert.equal(m.file.blobSize, file.length + SEAL_OVERHEAD_BYTES);
    assert.deepEqual(await bob.downloadFile(m.file), file);
    // The sender's history keeps the reference too, so it can download its own file.
    const own = (await alice.history(room)).find((e) => e.type === 'message' && e.kind === 'file');
    assert.ok(own !== undefined && own.type === 'message' && own.kind === 'file');
    assert.deepEqual(await alice.downloadFile(own.file), file);
    // Nothing of the file in the server's files.
    const bytes = Buffer.concat(readdirSync(server.dataDir).filter((f) => !f.endsWith('.key')).map((f) => readFileSync(join(server.dataDir, f))));
    assert.equal(bytes.indexOf(Buffer.from(text)), -1);
  });

  it('a blob altered on the server is refused (BAD_RESPONSE), never opened', async () => {
    const file = new Uint8Array(5000).fill(42);
    await alice.sendFile(room, file, { name: 'x.bin' });
    await until(() => fileMessages().length === 2, 'the second file');
    const m = fileMessages()[1];
    assert.ok(m !== undefined);
    const dbFile = readdirSync(server.dataDir).find((f) => /\.(db|sqlite3?)$/.test(f));
    assert.ok(dbFile !== undefined);
    const db = new Database(join(server.dataDir, dbFile));
    try {
      const row = db.prepare<[string], { data: Buffer }>('SELECT data FROM blob_chunks WHERE blob_id = ? AND idx = 0').get(m.file.blobId);
      assert.ok(row !== undefined);
      const flipped = Buffer.from(row.data);
      flipped[100] = (flipped[100] ?? 0) ^ 1;
      db.prepare('UPDATE blob_chunks SET data = ? WHERE blob_id = ? AND idx = 0').run(flipped, m.file.blobId);
    } finally {
      db.close();
    }
    await assert.rejects(bob.downloadFile(m.file), (e: unknown) => SdkError.is(e, 'BAD_RESPONSE'));
  });

  it('limits: an empty file, one byte over FILE_BYTES_MAX, a name over FILE_NAME_BYTES_MAX, a media type that is not ASCII', async () => {
    await assert.rejects(alice.sendFile(room, new Uint8Array(0)), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await assert.rejects(alice.sendFile(room, new Uint8Array(FILE_BYTES_MAX + 1)), (e: unknown) => SdkError.is(e, 'LIMIT'));
    await assert.rejects(alice.sendFile(room, Uint8Array.of(1), { name: 'é'.repeat(FILE_NAME_BYTES_MAX / 2 + 1) }), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await assert.rejects(alice.sendFile(room, Uint8Array.of(1), { mediaType: 'imäge/png' }), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    await assert.rejects(alice.sendFile(room, Uint8Array.of(1), { mediaType: 'text/plain;\ncharset=utf-8' }), (e: unknown) => SdkError.is(e, 'INVALID_ARGUMENT'));
    // Exactly FILE_BYTES_MAX fits one blob of BLOB_BYTES_MAX.
    const biggest = new Uint8Array(FILE_BYTES_MAX).fill(7);
    await alice.sendFile(room, biggest, { name: 'max.bin' });
    await until(() => fileMessages().length === 3, 'the largest file');
    const m = fileMessages()[2];
    assert.ok(m !== undefined);
    assert.deepEqual(await bob.downloadFile(m.file), biggest);
  });

  it("deleteFile: the sender's blob goes (freeing its quota); the message stays; only the sender's user may delete", async () => {
    const file = new TextEncoder().encode(marker('to-delete'));
    const sent = await alice.sendFile(room, file, { name: 'gone.txt' });
    await until(() => fileMessages().some((m) => m.seq === sent.seq), 'the file message');
    const m = fileMessages().find((x) => x.seq === sent.seq);
    assert.ok(m !== undefined);
    assert.equal(await bob.deleteFile(m.file), false, "bob cannot delete alice's blob");
    assert.deepEqual(await bob.downloadFile(m.file), file);
    assert.equal(await alice.deleteFile(m.file), true);
    assert.equal(await alice.deleteFile(m.file), false, 'deleted once');
    await assert.rejects(bob.downloadFile(m.file), (e: unknown) => e instanceof SdkError && e.serverCode === 'not_found');
    const kept = (await bob.history(room)).find((e) => e.seq === sent.seq);
    assert.equal(kept?.type === 'message' && kept.kind === 'file' ? kept.file.name : null, 'gone.txt', 'the message itself stays');
  });
  it('more files at once than the server lets a user have open uploads: all go up, FILE_UPLOADS_CONCURRENT_MAX at a time', async () => {
    const files = Array.from({ length: 3 * FILE_UPLOADS_CONCURRENT_MAX }, (_, i) => new Uint8Array(40_000 + i).fill(i));
    const sent = await Promise.all(files.map((bytes, i) => alice.sendFile(room, bytes, { name: `many-${i}.bin` })));
    assert.equal(sent.length, files.length);
    await until(() => fileMessages().filter((m) => m.file.name.startsWith('many-')).length === files.length, 'bob to see every file');
  });

  it('an upload that fails part-way deletes its half-made blob, so it does not hold one of the open uploads until it expires', async () => {
    let dropped = 0;
    const faulty = await ParleyClient.register(server.url, 'fz', 'laptop', {
      transport: faultyTransport((f) => (f.t === 'blob.stored' && dropped++ < 1 ? 'drop' : 'pass')),
    });
    clients.push(faulty);
    const faultyRoom = await faulty.startDirect('fb');
    await assert.rejects(faulty.sendFile(faultyRoom, new Uint8Array(10_000).fill(7), { name: 'cut.bin' }), (e: SdkError) => e.code === 'TIMEOUT');
    const db = new Database(join(server.dataDir, 'parley.db'), { readonly: true });
    try {
      await until(() => (db.prepare("SELECT count(*) AS n FROM blobs WHERE owner_user_id = 'fz' AND complete = 0").get() as { n: number }).n === 0, 'the half-made blob to be deleted');
    } finally {
      db.close();
    }
    await faulty.close();
  });
});
