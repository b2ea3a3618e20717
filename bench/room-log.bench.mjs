// Room-log append cost in SQLite: Parley's `room_entries` table against a
// bare append-only table (the floor for a durable append in SQLite), same
// pragmas as `parley serve` (WAL, synchronous = FULL, no auto-checkpoint),
// one transaction per batch as the server's group commit does.
//
// Why it exists: in the 2-member-rooms server benchmark every message is one
// INSERT and the server commits everything in flight at once (a batch is
// ~3,000 appends there), so the append's own cost — B-tree pages dirtied and
// written to the WAL per message — bounds messages/s. This measures that part
// alone: the layout before migration 9 (room_entries), the one migration 9
// shipped (room_log: integer room number, 48-bit dedupe digest probed before
// a plain INSERT, as packages/server/src/storage/sqlite.ts appends), and a
// bare append-only table.
//
//   node bench/room-log.bench.mjs            all layouts × batches 50, 200, 3000
//   node bench/room-log.bench.mjs --quick    fewer messages
//
// Each (layout, batch) runs in a fresh child process pinned to CPU 0 when
// taskset exists, on a fresh database in a temporary directory. Rooms: 1,500
// direct rooms, two members each, messages round-robin over the rooms; ids of
// the lengths Parley's clients use (22-character base64url).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const ROOMS = 1500;
const BODY_BYTES = 1024;

// The first two mirror packages/server/src/storage/_schema.ts (room_entries,
// migrations 1-8; room_log, migration 9); the baseline keeps the same
// columns without any key.
const LAYOUTS = {
  room_entries: {
    sql: `CREATE TABLE room_entries (room_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
      sender_user_id TEXT NOT NULL, sender_device_id TEXT NOT NULL, client_id TEXT NOT NULL, body BLOB NOT NULL,
      created_at INTEGER NOT NULL, PRIMARY KEY (room_id, seq),
      UNIQUE (room_id, sender_user_id, sender_device_id, client_id)) STRICT`,
    insert: `INSERT INTO room_entries (room_id, seq, kind, sender_user_id, sender_device_id, client_id, body, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (room_id, sender_user_id, sender_device_id, client_id) DO NOTHING`,
    args: (m, r) => [r.room, r.seq, 'message', m.user, m.device, m.clientId, m.body, m.at],
  },
  room_log: {
    sql: `CREATE TABLE room_log (id INTEGER PRIMARY KEY, room INTEGER NOT NULL, seq INTEGER NOT NULL,
      dedupe INTEGER NOT NULL, kind TEXT NOT NULL, sender_user_id TEXT NOT NULL, sender_device_id TEXT NOT NULL,
      client_id TEXT NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL) STRICT;
      CREATE UNIQUE INDEX room_log_by_seq ON room_log (room, seq);
      CREATE INDEX room_log_by_dedupe ON room_log (room, dedupe)`,
    // The server probes the digest, compares the ids of what it finds, then inserts.
    probe: 'SELECT sender_user_id, sender_device_id, client_id FROM room_log WHERE room = ? AND dedupe = ?',
    insert: `INSERT INTO room_log (room, seq, dedupe, kind, sender_user_id, sender_device_id, client_id, body, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    args: (m, r) => [r.roomNo, r.seq, m.dedupe, 'message', m.user, m.device, m.clientId, m.body, m.at],
  },
  'append-only': {
    sql: `CREATE TABLE room_entries (room_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
      sender_user_id TEXT NOT NULL, sender_device_id TEXT NOT NULL, client_id TEXT NOT NULL, body BLOB NOT NULL,
      created_at INTEGER NOT NULL) STRICT`,
    insert: `INSERT INTO room_entries (room_id, seq, kind, sender_user_id, sender_device_id, client_id, body, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    args: (m, r) => [r.room, r.seq, 'message', m.user, m.device, m.clientId, m.body, m.at],
  },
};
const BATCHES = [50, 200, 3000];

const id = () => randomBytes(16).toString('base64url');

/** One measurement in this process: returns µs per message (CPU and wall). */
function measure(layout, batch, total, warmup) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-room-log-'));
  try {
    const db = new Database(join(dir, 'bench.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('wal_autocheckpoint = 0');
    const spec = LAYOUTS[layout];
    db.exec(spec.sql);
    const insert = db.prepare(spec.insert);
    const probe = spec.probe === undefined ? null : db.prepare(spec.probe);
    const rooms = Array.from({ length: ROOMS }, (_, i) => ({ room: id(), roomNo: i + 1, members: [[id(), id()], [id(), id()]], seq: 0 }));
    const body = randomBytes(BODY_BYTES);
    // Client ids and hashes made before the clock starts: only SQLite is timed.
    const messages = Array.from({ length: warmup + total }, (_, i) => {
      const r = rooms[i % ROOMS];
      const [user, device] = r.members[(i / ROOMS) & 1];
      return { r, user, device, clientId: id(), dedupe: randomBytes(6).readUIntBE(0, 6), body, at: 1_700_000_000_000 + i };
    });
    let next = 0;
    const write = db.transaction((n) => {
      for (let k = 0; k < n && next < messages.length; k++) {
        const m = messages[next++];
        m.r.seq += 1;
        if (probe !== null && probe.all(m.r.roomNo, m.dedupe).some((x) => x.client_id === m.clientId)) continue;
        insert.run(...spec.args(m, m.r));
      }
    });
    while (next < warmup) write(Math.min(batch, warmup - next));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    while (next < messages.length) write(batch);
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    db.close();
    return { cpuUs: (cpu.user + cpu.system) / total, sysUs: cpu.system / total, wallUs: (wall * 1000) / total };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  const [, layout, batch, total, warmup] = argv;
  process.stdout.write(JSON.stringify(measure(layout, Number(batch), Number(total), Number(warmup))));
} else {
  const quick = argv.includes('--quick');
  const total = quick ? 30_000 : 120_000;
  const warmup = quick ? 6_000 : 20_000;
  const self = fileURLToPath(import.meta.url);
  const pin = existsSync('/usr/bin/taskset');
  const run = (layout, batch) => {
    const cmd = pin ? 'taskset' : process.execPath;
    const args = [...(pin ? ['-c', '0', process.execPath] : []), self, '--child', layout, String(batch), String(total), String(warmup)];
    const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`child ${layout}/${batch} exited ${r.status}`);
    return JSON.parse(r.stdout);
  };
  console.log(`# Room-log append in SQLite — Node ${process.version}, ${ROOMS} rooms, ${BODY_BYTES} B bodies, ${total} messages per run${pin ? ', pinned to CPU 0' : ''}`);
  console.log('# WAL, synchronous = FULL, one transaction per batch; µs per message; ratio = layout ÷ append-only (CPU)\n');
  console.log('| batch | layout | CPU µs/msg | of which kernel | wall µs/msg | CPU ÷ append-only |');
  console.log('|---|---|---|---|---|---|');
  for (const batch of BATCHES) {
    const base = run('append-only', batch);
    for (const layout of Object.keys(LAYOUTS)) {
      const r = layout === 'append-only' ? base : run(layout, batch);
      console.log(`| ${batch} | ${layout} | ${r.cpuUs.toFixed(1)} | ${r.sysUs.toFixed(1)} | ${r.wallUs.toFixed(1)} | ${(r.cpuUs / base.cpuUs).toFixed(2)}× |`);
    }
  }
}
