/**
 * The schema, as numbered migrations written once for both backends. Each
 * migration is a function of the dialect's column types, so SQLite and
 * PostgreSQL get the same tables, keys, constraints and indexes by
 * construction. Applied versions are recorded in `schema_migrations`.
 *
 * Append-only: never edit a migration that has shipped; add the next one.
 * A migration marked `only` changes one backend's physical layout (what
 * its engine makes cheap); the other backend records it and runs nothing.
 *
 * @module
 */

export type Dialect = 'sqlite' | 'postgres';

export interface ColumnTypes {
  /** Identifiers: compared and ordered byte-wise on both backends. */
  id: string;
  bytes: string;
  /** 64-bit integers (timestamps in ms, sequence numbers, key ids). */
  int: string;
  /** An integer primary key the database assigns in increasing order. */
  autoId: string;
  /** What closes a CREATE TABLE (SQLite tables are STRICT: declared types are enforced). */
  end: string;
}

const TYPES: Record<Dialect, ColumnTypes> = {
  sqlite: { id: 'TEXT', bytes: 'BLOB', int: 'INTEGER', autoId: 'INTEGER PRIMARY KEY', end: ') STRICT' },
  postgres: {
    id: 'TEXT COLLATE "C"',
    bytes: 'BYTEA',
    int: 'BIGINT',
    autoId: 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY',
    end: ')',
  },
};

export interface Migration {
  version: number;
  name: string;
  /** The one backend it applies to (a physical layout); absent: both. */
  only?: Dialect;
  sql(t: ColumnTypes): string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: (t) => `
CREATE TABLE users (
  user_id ${t.id} PRIMARY KEY,
  created_at ${t.int} NOT NULL
${t.end};

CREATE TABLE devices (
  user_id ${t.id} NOT NULL,
  device_id ${t.id} NOT NULL,
  identity_key ${t.bytes} NOT NULL,
  created_at ${t.int} NOT NULL,
  PRIMARY KEY (user_id, device_id)
${t.end};

CREATE TABLE signed_prekeys (
  user_id ${t.id} NOT NULL,
  device_id ${t.id} NOT NULL,
  key_id ${t.int} NOT NULL,
  public_key ${t.bytes} NOT NULL,
  signature ${t.bytes} NOT NULL,
  PRIMARY KEY (user_id, device_id)
${t.end};

CREATE TABLE pq_prekeys (
  user_id ${t.id} NOT NULL,
  device_id ${t.id} NOT NULL,
  key_id ${t.int} NOT NULL,
  public_key ${t.bytes} NOT NULL,
  signature ${t.bytes} NOT NULL,
  PRIMARY KEY (user_id, device_id)
${t.end};

CREATE TABLE one_time_prekeys (
  user_id ${t.id} NOT NULL,
  device_id ${t.id} NOT NULL,
  key_id ${t.int} NOT NULL,
  public_key ${t.bytes} NOT NULL,
  PRIMARY KEY (user_id, device_id, key_id)
${t.end};

CREATE TABLE key_packages (
  id ${t.autoId},
  user_id ${t.id} NOT NULL,
  device_id ${t.id} NOT NULL,
  ref ${t.id} NOT NULL,
  data ${t.bytes} NOT NULL,
  UNIQUE (user_id, device_id, ref)
${t.end};
CREATE INDEX key_packages_by_device ON key_packages (user_id, device_id, id);

CREATE TABLE rooms (
  room_id ${t.id} PRIMARY KEY,
  kind ${t.id} NOT NULL CHECK (kind IN ('direct', 'group')),
  created_by ${t.id} NOT NULL,
  created_at ${t.int} NOT NULL,
  -- The room log's sequence counter: bumped under the row's write lock in
  -- the same transaction that inserts the entry, so seqs are gap-free.
  last_seq ${t.int} NOT NULL DEFAULT 0
${t.end};

CREATE TABLE members (
  room_id ${t.id} NOT NULL,
  user_id ${t.id} NOT NULL,
  role ${t.id} NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  PRIMARY KEY (room_id, user_id)
${t.end};
CREATE INDEX members_by_user ON members (user_id, room_id);

CREATE TABLE room_entries (
  room_id ${t.id} NOT NULL,
  seq ${t.int} NOT NULL,
  kind ${t.id} NOT NULL CHECK (kind IN ('message', 'member-added', 'member-removed', 'role-changed')),
  sender_user_id ${t.id} NOT NULL,
  sender_device_id ${t.id} NOT NULL,
  client_id ${t.id} NOT NULL,
  body ${t.bytes} NOT NULL,
  created_at ${t.int} NOT NULL,
  PRIMARY KEY (room_id, seq),
  UNIQUE (room_id, sender_user_id, sender_device_id, client_id)
${t.end};

-- One row per recipient device: the last mailbox id handed out. Like
-- rooms.last_seq it is the per-device lock that orders enqueues.
CREATE TABLE mailbox_counters (
  user_id ${t.id} NOT NULL,
  device_id ${t.id} NOT NULL,
  last_id ${t.int} NOT NULL,
  PRIMARY KEY (user_id, device_id)
${t.end};

CREATE TABLE mailbox (
  user_id ${t.id} NOT NULL,
  device_id ${t.id} NOT NULL,
  id ${t.int} NOT NULL,
  from_user_id ${t.id} NOT NULL,
  from_device_id ${t.id} NOT NULL,
  client_id ${t.id} NOT NULL,
  payload ${t.bytes} NOT NULL,
  created_at ${t.int} NOT NULL,
  PRIMARY KEY (user_id, device_id, id),
  UNIQUE (user_id, device_id, from_user_id, from_device_id, client_id)
${t.end};

CREATE TABLE refresh_tokens (
  token_hash ${t.id} PRIMARY KEY,
  user_id ${t.id} NOT NULL,
  device_id ${t.id} NOT NULL,
  expires_at ${t.int} NOT NULL
${t.end};
CREATE INDEX refresh_tokens_by_device ON refresh_tokens (user_id, device_id);

CREATE TABLE key_backups (
  user_id ${t.id} PRIMARY KEY,
  backup ${t.bytes} NOT NULL,
  updated_at ${t.int} NOT NULL
${t.end};
`,
  },
  {
    version: 2,
    name: 'read markers',
    sql: (t) => `
-- Per member of a room: the highest seq it reported delivered and read
-- (receipts). Only ever raised; read implies delivered.
CREATE TABLE read_markers (
  room_id ${t.id} NOT NULL,
  user_id ${t.id} NOT NULL,
  delivered_seq ${t.int} NOT NULL,
  read_seq ${t.int} NOT NULL,
  updated_at ${t.int} NOT NULL,
  PRIMARY KEY (room_id, user_id)
${t.end};
`,
  },
  {
    version: 3,
    name: 'key backup fetch secret',
    sql: (t) => `
-- SHA-256 of the secret a client derives from its backup passphrase; lets a
-- device that has no key yet fetch the sealed backup (null: not fetchable).
ALTER TABLE key_backups ADD COLUMN auth_hash ${t.bytes};
`,
  },
  {
    version: 4,
    name: 'blobs',
    sql: (t) => `
-- Files, encrypted by the client: opaque bytes in fixed-size chunks, by a
-- random id. complete: 0 while uploading, 1 once every chunk is stored.
CREATE TABLE blobs (
  blob_id ${t.id} PRIMARY KEY,
  owner_user_id ${t.id} NOT NULL,
  size ${t.int} NOT NULL,
  complete ${t.int} NOT NULL,
  created_at ${t.int} NOT NULL
${t.end};
CREATE INDEX blobs_by_owner ON blobs (owner_user_id);
CREATE TABLE blob_chunks (
  blob_id ${t.id} NOT NULL,
  idx ${t.int} NOT NULL,
  data ${t.bytes} NOT NULL,
  PRIMARY KEY (blob_id, idx)
${t.end};
`,
  },
  {
    version: 5,
    name: 'blob expiry',
    sql: () => `
-- Abandoned uploads and blobs past the retention period are removed by age.
CREATE INDEX blobs_by_age ON blobs (complete, created_at);
`,
  },
  {
    version: 6,
    name: 'blob completion time',
    sql: (t) => `
-- Retention counts from completion. Blobs completed before this migration
-- count from their creation (the best this database knows).
ALTER TABLE blobs ADD COLUMN completed_at ${t.int};
UPDATE blobs SET completed_at = created_at WHERE complete = 1;
CREATE INDEX blobs_by_completion ON blobs (complete, completed_at);
`,
  },
  {
    version: 7,
    name: 'server secrets',
    sql: (t) => `
-- Values every server process on this database must share: the access-token
-- signing secret and the deployment id that names its fan-out channel.
CREATE TABLE server_secrets (
  name ${t.id} PRIMARY KEY,
  value ${t.bytes} NOT NULL
${t.end};
`,
  },
  {
    version: 8,
    name: 'membership version',
    sql: (t) => `
-- Bumped in the transaction of every membership change, under the room's
-- lock: a process that appends an entry learns from it whether the member
-- set it has is still the one at the entry's place in the log.
ALTER TABLE rooms ADD COLUMN members_version ${t.int} NOT NULL DEFAULT 0;
`,
  },
  {
    version: 9,
    name: 'compact room log',
    only: 'sqlite',
    sql: () => `
-- SQLite's room log, laid out for the append (storage/sqlite-dedupe.ts says
-- why): rows in arrival order under an integer rowid, found by an integer
-- room number and seq, and deduplicated through a 48-bit digest of the
-- sender and client id (not unique: a digest match is checked field by
-- field). Before: two indexes keyed by the room's text id, one of them also
-- by three text ids, which made each append dirty ~5x the pages.
-- parley_dedupe() is registered on the connection by SqliteStorage.
ALTER TABLE rooms ADD COLUMN log_no INTEGER;
UPDATE rooms SET log_no = rowid;
CREATE UNIQUE INDEX rooms_by_log_no ON rooms (log_no);

CREATE TABLE room_log (
  id INTEGER PRIMARY KEY,
  room INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  dedupe INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('message', 'member-added', 'member-removed', 'role-changed')),
  sender_user_id TEXT NOT NULL,
  sender_device_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  body BLOB NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
INSERT INTO room_log (room, seq, dedupe, kind, sender_user_id, sender_device_id, client_id, body, created_at)
  SELECT r.log_no, e.seq, parley_dedupe(e.sender_user_id, e.sender_device_id, e.client_id), e.kind,
         e.sender_user_id, e.sender_device_id, e.client_id, e.body, e.created_at
  FROM room_entries e JOIN rooms r ON r.room_id = e.room_id
  ORDER BY e.rowid;
DROP TABLE room_entries;
CREATE UNIQUE INDEX room_log_by_seq ON room_log (room, seq);
CREATE INDEX room_log_by_dedupe ON room_log (room, dedupe);
`,
  },
  {
    version: 10,
    name: 'key package signatures',
    sql: (t) => `
-- The device's identity signature over a KeyPackage, checked on upload and
-- handed out with it, so the claimer checks it too. Packages stored before
-- have none (NULL).
ALTER TABLE key_packages ADD COLUMN signature ${t.bytes};
`,
  },
  {
    version: 11,
    name: 'refresh token families',
    sql: (t) => `
-- Rotation with reuse detection (storage/refresh-rotation.ts): a spent token
-- stays, marked spent and pointing at its successor, so a second use is seen.
-- Tokens stored before are each the first of their own family.
ALTER TABLE refresh_tokens ADD COLUMN family ${t.id} NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN issued_at ${t.int} NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN spent_at ${t.int};
ALTER TABLE refresh_tokens ADD COLUMN successor ${t.id};
UPDATE refresh_tokens SET family = token_hash;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family);
`,
  },
  {
    version: 12,
    name: 'device session epochs and removed devices',
    sql: (t) => `
-- The server's access tokens name their device's epoch; signing out
-- everywhere replaces it, so tokens issued before stop working at once.
-- Devices stored before have '' (their tokens carried no epoch).
ALTER TABLE devices ADD COLUMN session_epoch ${t.id} NOT NULL DEFAULT '';

-- The ids of removed devices, never given to another key: clients that knew
-- the old key refuse a new one under its id for good (a key change). The
-- key stays too (public), so the removed device itself can be told.
CREATE TABLE removed_devices (
  user_id ${t.id} NOT NULL,
  device_id ${t.id} NOT NULL,
  identity_key ${t.bytes} NOT NULL,
  removed_at ${t.int} NOT NULL,
  PRIMARY KEY (user_id, device_id)
${t.end};
`,
  },
];

/** The bookkeeping table itself; created before any migration runs. */
export function migrationsTableSql(dialect: Dialect): string {
  const t = TYPES[dialect];
  return `CREATE TABLE IF NOT EXISTS schema_migrations (
  version ${t.int} PRIMARY KEY,
  name ${t.id} NOT NULL,
  applied_at ${t.int} NOT NULL
${t.end}`;
}

/** The SQL of one migration for one backend (null: recorded, nothing to run there). */
export function migrationSql(m: Migration, dialect: Dialect): string | null {
  return m.only === undefined || m.only === dialect ? m.sql(TYPES[dialect]) : null;
}
