/**
 * Blobs over a real server process: upload in chunks (every chunk but the
 * last exactly BLOB_CHUNK_BYTES), complete, read back by another user;
 * everything a client controls refused at its edge — sizes, chunk lengths
 * and indexes, someone else's upload, reading an incomplete blob, open
 * uploads per user. Deleting frees the uploader's quota at once; on a
 * server with a three-second upload lifetime, abandoned uploads stop counting
 * and are swept away.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startServerProcess, type ServerProcess } from './_server-process.ts';
import { authed, b64, registered, type V1Client } from './_v1-client.ts';
import { BLOB_BYTES_MAX, BLOB_BYTES_PER_USER_MAX, BLOB_CHUNK_BYTES, BLOB_COUNT_PER_USER_MAX, BLOB_UPLOADS_OPEN_MAX } from '../src/limits.ts';

describe('v1 blobs', () => {
  let server: ServerProcess;
  let url: string;
  const clients: V1Client[] = [];
  before(async () => {
    server = await startServerProcess();
    url = `ws://127.0.0.1:${server.port}/v1`;
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.stop();
    server.cleanup();
  });
  async function user(id: string): Promise<V1Client> {
    const r = await registered(url, id, 'dev1');
    clients.push(r.client);
    return r.client;
  }
  const code = (f: Record<string, unknown>): unknown => f['code'];

  test('upload in chunks, complete, read back by another user', async () => {
    const owner = await user('bl-owner');
    const reader = await user('bl-reader');
    const data = randomBytes(2 * BLOB_CHUNK_BYTES + 1234);
    const created = await owner.request({ t: 'blob.create', size: data.length });
    assert.equal(created.t, 'blob.created');
    const blobId = created['blobId'] as string;
    assert.match(blobId, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(created['chunkBytes'], BLOB_CHUNK_BYTES);
    // Not readable while incomplete, and not completable with a chunk missing.
    assert.equal(code(await reader.request({ t: 'blob.get', blobId, index: 0 })), 'not_found');
    for (const index of [2, 0]) assert.equal((await owner.request({ t: 'blob.chunk', blobId, index, data: b64(data.subarray(index * BLOB_CHUNK_BYTES, (index + 1) * BLOB_CHUNK_BYTES)) })).t, 'blob.stored');
    assert.equal(code(await owner.request({ t: 'blob.complete', blobId })), 'conflict');
    // Someone else cannot add to it; it looks like no upload.
    assert.equal(code(await reader.request({ t: 'blob.chunk', blobId, index: 1, data: b64(data.subarray(BLOB_CHUNK_BYTES, 2 * BLOB_CHUNK_BYTES)) })), 'not_found');
    await owner.request({ t: 'blob.chunk', blobId, index: 1, data: b64(data.subarray(BLOB_CHUNK_BYTES, 2 * BLOB_CHUNK_BYTES)) });
    const done = await owner.request({ t: 'blob.complete', blobId });
    assert.deepEqual([done.t, done['size']], ['blob.completed', data.length]);
    assert.equal(code(await owner.request({ t: 'blob.chunk', blobId, index: 0, data: b64(data.subarray(0, BLOB_CHUNK_BYTES)) })), 'conflict', 'complete blobs are immutable');
    const parts = [];
    for (let index = 0; index < 3; index++) {
      const f = await reader.request({ t: 'blob.get', blobId, index });
      assert.deepEqual([f.t, f['index'], f['size']], ['blob', index, data.length]);
      parts.push(Buffer.from(f['data'] as string, 'base64'));
    }
    assert.ok(Buffer.concat(parts).equals(data));
    assert.equal(code(await reader.request({ t: 'blob.get', blobId, index: 3 })), 'not_found');
    assert.equal(code(await reader.request({ t: 'blob.get', blobId: 'AAAAAAAAAAAAAAAAAAAAAA', index: 0 })), 'not_found');
  });

  test('every limit at its edge: size, chunk length, index, blob id, open uploads', async () => {
    const u = await user('bl-limits');
    assert.equal(code(await u.request({ t: 'blob.create', size: 0 })), 'bad_frame');
    assert.equal(code(await u.request({ t: 'blob.create', size: BLOB_BYTES_MAX + 1 })), 'bad_frame');
    const max = await u.request({ t: 'blob.create', size: BLOB_BYTES_MAX });
    assert.equal(max.t, 'blob.created', 'exactly BLOB_BYTES_MAX is accepted');
    const blobId = max['blobId'] as string;
    const lastIndex = Math.ceil(BLOB_BYTES_MAX / BLOB_CHUNK_BYTES) - 1;
    assert.equal(code(await u.request({ t: 'blob.chunk', blobId, index: 0, data: b64(randomBytes(BLOB_CHUNK_BYTES - 1)) })), 'bad_frame', 'a short middle chunk');
    assert.equal(code(await u.request({ t: 'blob.chunk', blobId, index: 0, data: b64(randomBytes(BLOB_CHUNK_BYTES + 1)) })), 'bad_frame', 'a chunk over BLOB_CHUNK_BYTES');
    assert.equal(code(await u.request({ t: 'blob.chunk', blobId, index: lastIndex + 1, data: b64(randomBytes(10)) })), 'bad_frame', 'past the last index');
    assert.equal((await u.request({ t: 'blob.chunk', blobId, index: lastIndex, data: b64(randomBytes(BLOB_CHUNK_BYTES)) })).t, 'blob.stored');
    assert.equal(code(await u.request({ t: 'blob.chunk', blobId: 'not-an-id', index: 0, data: b64(randomBytes(1)) })), 'bad_frame');
    const small = await u.request({ t: 'blob.create', size: 10 });
    assert.equal(code(await u.request({ t: 'blob.chunk', blobId: small['blobId'], index: 0, data: b64(randomBytes(11)) })), 'bad_frame', 'the last chunk holds exactly the rest');
    // Open uploads: two so far; fill to the limit, then one more is refused.
    for (let i = 2; i < BLOB_UPLOADS_OPEN_MAX; i++) assert.equal((await u.request({ t: 'blob.create', size: 1 })).t, 'blob.created');
    assert.equal(code(await u.request({ t: 'blob.create', size: 1 })), 'limit_exceeded');
  });

  test('concurrent creates from several connections of one user stop at the limits (counted and created in one step)', async () => {
    const r = await registered(url, 'bl-race', 'dev1');
    clients.push(r.client);
    const more = await Promise.all(Array.from({ length: BLOB_UPLOADS_OPEN_MAX + 3 }, async (_, i) => (await authed(url, r.session.accessToken as string, `bl-race#${i}`)).client));
    clients.push(...more);
    const small = await Promise.all(more.map((c) => c.request({ t: 'blob.create', size: 1 })));
    assert.equal(small.filter((f) => f.t === 'blob.created').length, BLOB_UPLOADS_OPEN_MAX, 'open uploads');
    for (const f of small) if (f.t !== 'blob.created') assert.equal(code(f), 'limit_exceeded');
    // Bytes: a fresh user, creates that each fit alone but not all together.
    const q = await registered(url, 'bl-race-bytes', 'dev1');
    clients.push(q.client);
    const n = Math.min(BLOB_UPLOADS_OPEN_MAX, Math.floor(BLOB_BYTES_PER_USER_MAX / BLOB_BYTES_MAX) + 2);
    const conns = await Promise.all(Array.from({ length: n }, async (_, i) => (await authed(url, q.session.accessToken as string, `bl-race-bytes#${i}`)).client));
    clients.push(...conns);
    const big = await Promise.all(conns.map((c) => c.request({ t: 'blob.create', size: BLOB_BYTES_MAX })));
    assert.equal(big.filter((f) => f.t === 'blob.created').length, Math.floor(BLOB_BYTES_PER_USER_MAX / BLOB_BYTES_MAX), 'bytes per user');
  });

  test('bytes per user: blobs up to BLOB_BYTES_PER_USER_MAX in all, not one byte more', async () => {
    const u = await user('bl-quota');
    const whole = Math.floor(BLOB_BYTES_PER_USER_MAX / BLOB_BYTES_MAX);
    assert.ok(whole < BLOB_UPLOADS_OPEN_MAX, 'the byte limit is reached before the open-upload limit');
    for (let i = 0; i < whole; i++) assert.equal((await u.request({ t: 'blob.create', size: BLOB_BYTES_MAX })).t, 'blob.created');
    const rest = BLOB_BYTES_PER_USER_MAX - whole * BLOB_BYTES_MAX;
    if (rest > 0) assert.equal((await u.request({ t: 'blob.create', size: rest })).t, 'blob.created');
    assert.equal(code(await u.request({ t: 'blob.create', size: 1 })), 'limit_exceeded');
  });

  test(`blobs per user: BLOB_COUNT_PER_USER_MAX (${BLOB_COUNT_PER_USER_MAX}) in all, then limit_exceeded; a delete makes room`, async () => {
    const u = await user('bl-count');
    // All but one stored already (tiny complete blobs, written into the server's database beside it).
    const db = new Database(join(server.dataDir, 'parley.db'));
    try {
      db.pragma('busy_timeout = 5000');
      const insert = db.prepare('INSERT INTO blobs (blob_id, owner_user_id, size, complete, created_at, completed_at) VALUES (?, ?, 1, 1, ?, ?)');
      const now = Date.now();
      db.transaction(() => {
        for (let i = 0; i < BLOB_COUNT_PER_USER_MAX - 1; i++) insert.run(`count-${String(i).padStart(16, '0')}`, 'bl-count', now, now);
      })();
    } finally {
      db.close();
    }
    const last = await u.request({ t: 'blob.create', size: 1 });
    assert.equal(last.t, 'blob.created', 'the last one fits');
    assert.equal(code(await u.request({ t: 'blob.create', size: 1 })), 'limit_exceeded');
    assert.equal((await u.request({ t: 'blob.delete', blobId: last['blobId'] })).t, 'blob.deleted');
    assert.equal((await u.request({ t: 'blob.create', size: 1 })).t, 'blob.created');
  });

  test('delete: only the uploader, complete or not; the blob is gone and its bytes no longer count', async () => {
    const u = await user('bl-delete');
    const other = await user('bl-delete-other');
    const whole = Math.floor(BLOB_BYTES_PER_USER_MAX / BLOB_BYTES_MAX);
    const ids: string[] = [];
    for (let i = 0; i < whole; i++) ids.push((await u.request({ t: 'blob.create', size: BLOB_BYTES_MAX }))['blobId'] as string);
    assert.equal(code(await u.request({ t: 'blob.create', size: 1 })), 'limit_exceeded');
    // A small complete one, read by someone else, then deleted.
    const big = ids.pop() as string;
    assert.equal(code(await other.request({ t: 'blob.delete', blobId: big })), 'not_found', "someone else's blob looks like none");
    const gone = await u.request({ t: 'blob.delete', blobId: big });
    assert.deepEqual([gone.t, gone['blobId']], ['blob.deleted', big]);
    assert.equal(code(await u.request({ t: 'blob.delete', blobId: big })), 'not_found', 'deleted once');
    assert.equal(code(await u.request({ t: 'blob.chunk', blobId: big, index: 0, data: b64(randomBytes(BLOB_CHUNK_BYTES)) })), 'not_found');
    const small = (await u.request({ t: 'blob.create', size: 3 }))['blobId'] as string;
    await u.request({ t: 'blob.chunk', blobId: small, index: 0, data: b64(Buffer.from('abc')) });
    await u.request({ t: 'blob.complete', blobId: small });
    assert.equal((await other.request({ t: 'blob.get', blobId: small, index: 0 })).t, 'blob');
    assert.equal((await u.request({ t: 'blob.delete', blobId: small })).t, 'blob.deleted');
    assert.equal(code(await other.request({ t: 'blob.get', blobId: small, index: 0 })), 'not_found');
    assert.equal(code(await u.request({ t: 'blob.delete', blobId: 'AAAAAAAAAAAAAAAAAAAAAA' })), 'not_found');
    assert.equal(code(await u.request({ t: 'blob.delete', blobId: 'not-an-id' })), 'bad_frame');
  });
});

describe('v1 blobs: expiry (PARLEY_BLOB_UPLOAD_TTL_S=3)', () => {
  // Long enough for the BLOB_UPLOADS_OPEN_MAX creates and the refused one after them to run before the first expires.
  const UPLOAD_TTL_S = 3;
  let server: ServerProcess;
  let url: string;
  const clients: V1Client[] = [];
  before(async () => {
    server = await startServerProcess([], { env: { PARLEY_BLOB_UPLOAD_TTL_S: String(UPLOAD_TTL_S), PARLEY_LOG_LEVEL: 'info' } });
    url = `ws://127.0.0.1:${server.port}/v1`;
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.stop();
    server.cleanup();
  });
  const code = (f: Record<string, unknown>): unknown => f['code'];
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  test('abandoned uploads stop counting once expired, refuse chunks, and are swept from the store; complete blobs stay', async () => {
    const r = await registered(url, 'bl-expiry', 'dev1');
    clients.push(r.client);
    const u = r.client;
    const kept = (await u.request({ t: 'blob.create', size: 2 }))['blobId'] as string;
    await u.request({ t: 'blob.chunk', blobId: kept, index: 0, data: b64(Buffer.from('ok')) });
    assert.equal((await u.request({ t: 'blob.complete', blobId: kept })).t, 'blob.completed');
    const open: string[] = [];
    for (let i = 0; i < BLOB_UPLOADS_OPEN_MAX; i++) open.push((await u.request({ t: 'blob.create', size: 1 }))['blobId'] as string);
    assert.equal(code(await u.request({ t: 'blob.create', size: 1 })), 'limit_exceeded');
    // Every open upload was created before this: just past the lifetime, all have expired.
    await sleep(UPLOAD_TTL_S * 1000 + 100);
    assert.equal(code(await u.request({ t: 'blob.chunk', blobId: open[0], index: 0, data: b64(Buffer.from('x')) })), 'not_found', 'an expired upload takes no chunk');
    assert.equal(code(await u.request({ t: 'blob.complete', blobId: open[1] })), 'not_found');
    // Another user's abandoned upload, with a chunk, goes in the periodic sweep (every half lifetime: 1.5 s here).
    const r2 = await registered(url, 'bl-expiry-2', 'dev1');
    clients.push(r2.client);
    const abandoned = (await r2.client.request({ t: 'blob.create', size: 5 }))['blobId'] as string;
    assert.equal((await r2.client.request({ t: 'blob.chunk', blobId: abandoned, index: 0, data: b64(Buffer.from('12345')) })).t, 'blob.stored');
    const fresh = await u.request({ t: 'blob.create', size: 1 });
    assert.equal(fresh.t, 'blob.created', 'expired uploads no longer count against BLOB_UPLOADS_OPEN_MAX');
    // Both users' remaining uploads (bl-expiry's fresh one too) expire and are swept from the database.
    const db = new Database(join(server.dataDir, 'parley.db'), { readonly: true });
    try {
      const count = (complete: number): number => (db.prepare('SELECT COUNT(*) AS n FROM blobs WHERE complete = ?').get(complete) as { n: number }).n;
      const deadline = Date.now() + 20_000;
      while (count(0) > 0 && Date.now() < deadline) await sleep(100);
      assert.equal(count(0), 0, 'every abandoned upload was swept');
      assert.equal(count(1), 1, 'the complete blob stays');
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM blob_chunks WHERE blob_id <> ?').get(kept) as { n: number }).n, 0, 'with their chunks (the abandoned upload had one)');
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM blob_chunks WHERE blob_id = ?').get(kept) as { n: number }).n, 1, "the complete blob's chunk stays");
    } finally {
      db.close();
    }
    // The sweep logs after its commit, and the line crosses a pipe: it may come a moment after the rows went.
    const logDeadline = Date.now() + 5_000;
    while (!server.logs.some((l) => l.msg === 'expired blobs removed') && Date.now() < logDeadline) await sleep(50);
    assert.ok(server.logs.some((l) => l.msg === 'expired blobs removed'));
    // The complete blob has no retention limit this short: still there.
    assert.equal((await u.request({ t: 'blob.get', blobId: kept, index: 0 })).t, 'blob');
  });
});
