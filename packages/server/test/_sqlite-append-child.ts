/**
 * Child process for storage-sqlite-crash.test.ts. Opens the SQLite store in
 * argv[2], creates room "r" if needed, then appends entries one after
 * another from lastSeq+1 on, and writes each entry's seq to stdout only
 * after its append promise resolved (the acknowledgement). Runs until
 * killed.
 */
import { SqliteStorage } from '../src/storage/sqlite.ts';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: _sqlite-append-child.js DIR');
const s = new SqliteStorage(dir);
await s.migrate();
await s.createRoom({ roomId: 'r', kind: 'group', createdBy: 'u', createdAt: 1 });
const enc = new TextEncoder();
for (let seq = (await s.lastSeq('r')) + 1; ; seq++) {
  const { entry } = await s.append('r', {
    kind: 'message',
    senderUserId: 'u',
    senderDeviceId: 'd',
    clientId: `c${seq}`,
    body: enc.encode(`body ${seq}`),
    createdAt: seq,
  });
  process.stdout.write(`${entry.seq}\n`);
}
