/**
 * Every limit the server enforces on what a client controls, in one place.
 * Each is tested at its edge by the end-to-end tests.
 *
 * @module
 */

/** Largest WebSocket message accepted on any path (ws closes with 1009 beyond it). */
export const FRAME_BYTES_MAX = 256 * 1024;

/** How long a connection may stay without completing its handshake / login. */
export const UNAUTHENTICATED_LIFETIME_MS = 10_000;

/**
 * Announced in `welcome.limits.heartbeatMs`: a client that has heard nothing
 * for this long sends `ping` (answered `pong`), so it notices a connection
 * that died without a close (a NAT or Wi-Fi change) instead of waiting on it
 * for ever. Not a limit the server enforces; well under common NAT timeouts.
 */
export const HEARTBEAT_MS = 25_000;

/**
 * The server's own check for v1 peers that are gone without a close: each
 * connection is pinged this often, and one that did not answer the
 * previous ping is cut off (v1/dead-peers.ts) — within two intervals.
 */
export const V1_PING_INTERVAL_MS = 30_000;

/**
 * Bytes queued for one connection that it has not read yet. A write finding
 * more than this closes the connection (1008 "too slow") instead of queueing
 * without bound; a v1 client resumes from its last seq when it reconnects.
 */
export const SEND_BUFFER_BYTES_MAX = 32 * 1024 * 1024;

/**
 * A `sync` streams stored entries, far more than SEND_BUFFER_BYTES_MAX in
 * all (1000 entries of 64 KiB per room): it pauses whenever this much is
 * unsent and goes on once the client has read it, so the slow-reader close
 * judges the client, not the server's own burst.
 */
export const SYNC_PAUSE_BYTES = 4 * 1024 * 1024;

/** How long a paused `sync` waits for the client to read before the connection is closed (1008 "too slow"). */
export const SYNC_DRAIN_TIMEOUT_MS = 30_000;

// ---- Themis tutorial protocol ----

/** Longest tutorial client name, in UTF-8 bytes (it is also the Secure Session id). */
export const TUTORIAL_NAME_BYTES_MAX = 256;

/** Largest chat line, in bytes, a tutorial client may send (after unwrap). */
export const TUTORIAL_LINE_BYTES_MAX = 16 * 1024;

/** Tutorial clients connected at once (each costs a Secure Session and a re-wrap per line). */
export const TUTORIAL_CLIENTS_MAX = 1000;

/**
 * Tutorial connections from one address (an IPv6 address counts by its /64)
 * with a completed handshake. Beyond it a new connection is closed with 1013
 * "too many connections from this address", so one host cannot take every
 * one of TUTORIAL_CLIENTS_MAX; a NAT or office sharing one address still
 * has room for a roomful of people.
 */
export const TUTORIAL_CLIENTS_PER_ADDRESS_MAX = 32;

/** Connections from one address still before the end of their handshake (the rest wait with 1013). */
export const TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX = 16;

/** Chat lines per second per tutorial connection (token bucket, burst = this); lines beyond it are not relayed. */
export const TUTORIAL_LINES_PER_SECOND = 20;

/**
 * Frames per second per chatting tutorial connection (token bucket, burst =
 * this). Every frame is unwrapped, even a line over TUTORIAL_LINES_PER_SECOND
 * (skipping one would put the sender's Secure Session out of step), so this
 * bounds the decryption one connection can cost: the frame over it closes
 * the connection (1008) before it is unwrapped. Ten times the line rate —
 * the tutorial apps send one frame per line typed, however long the line.
 */
export const TUTORIAL_FRAMES_PER_SECOND_MAX = 10 * TUTORIAL_LINES_PER_SECOND;

/**
 * The server-wide relay budget, in units per second. Relaying a line costs
 * one unit per recipient per started TUTORIAL_RELAY_UNIT_BYTES of the line:
 * each recipient gets its own wrap, base64 and write, 20–25 µs of CPU for a
 * short line on our 2-core test machine, so the budget holds relaying to
 * about a quarter of a core (with 1000 clients: 10 lines a second in all;
 * with 50: 200). The addresses that sent a line within the last second or
 * two share it equally, each share a token bucket (burst: one second of
 * it); a server-wide bucket (burst: two seconds) bounds the sum
 * (tutorial/relay-budget.ts). A line over either is not relayed and its
 * sender is told ("server: N lines were not delivered: …").
 */
export const TUTORIAL_RELAY_UNITS_PER_SECOND = 10_000;

/** The line length one relay unit pays for (see TUTORIAL_RELAY_UNITS_PER_SECOND): a 16 KiB line costs 4 units per recipient. */
export const TUTORIAL_RELAY_UNIT_BYTES = 4096;

/**
 * Bytes queued for one tutorial connection that it has not read yet (about
 * ten of the longest lines, thousands of ordinary ones). A line that would
 * take it over closes the connection (1008 "too slow") instead.
 */
export const TUTORIAL_SEND_BUFFER_BYTES_MAX = 256 * 1024;

/**
 * Bytes queued for all tutorial connections together. Over it, before a
 * line is relayed, every connection holding more than an equal share of it
 * (this divided by the connections) is closed as too slow.
 */
export const TUTORIAL_SEND_BUFFER_BYTES_TOTAL_MAX = 64 * 1024 * 1024;

/** A tutorial connection with bytes waiting that reads none of them for this long is closed (cut off: it reads nothing, not even a close frame). */
export const TUTORIAL_SEND_STALL_MS = 30_000;

/** A tutorial connection is pinged after this long without a ping (keeps NAT mappings alive and finds dead peers). */
export const TUTORIAL_PING_INTERVAL_MS = 30_000;

/** A tutorial connection that does not answer a ping within this long is cut off, and its name is free again. */
export const TUTORIAL_PONG_TIMEOUT_MS = 20_000;

/** Invalid frames tolerated on one connection before it is closed. */
export const INVALID_FRAMES_MAX = 10;

// ---- Parley protocol v1 ----

/** Protocol versions this server speaks. */
export const PROTOCOL_VERSIONS: readonly number[] = Object.freeze([1]);

/** Largest decoded message body (ciphertext) a client may publish. */
export const BODY_BYTES_MAX = 64 * 1024;

/** Messages a connection may publish per second (token bucket; burst = this). */
export const MESSAGES_PER_SECOND = 50;

/** Frames of any kind a connection may send per second before `rate_limited`. */
export const FRAMES_PER_SECOND = 200;

/**
 * Unfinished frames of one connection: the one whose handler awaits (a
 * storage read or write) counts, with those waiting behind it. When a frame
 * joins and makes this many (one running, this minus one waiting), the
 * server stops reading that socket (TCP pushes back on the client) until no
 * more than half of this are left. The frames of a chunk already read still
 * join, so the backlog stays within this plus one chunk. A frame handled at
 * once (nothing unfinished before it, a handler that does not await) is
 * never counted. Each pause counts once in `parley_reads_paused_total`.
 */
export const FRAMES_QUEUED_MAX = 64;

/** Rooms a user may belong to. */
export const ROOMS_PER_USER_MAX = 1000;

/**
 * Others may put a user in a room (`room.create` naming it, `room.add`)
 * only while it is in fewer rooms than this; the rest of ROOMS_PER_USER_MAX
 * is the user's own, for rooms it creates. Anyone can add anyone (there are
 * no invitations), so without it a stranger creating rooms with a user and
 * leaving them could use up that user's whole quota and stop it from
 * starting any conversation.
 */
export const ROOMS_ADDED_BY_OTHERS_MAX = 900;

/** Members per room at creation (more can be added up to the same bound). */
export const ROOM_MEMBERS_MAX = 1000;

/** Failed login/register/auth attempts on one connection before it is closed. */
export const LOGIN_ATTEMPTS_MAX = 5;

/**
 * Failed logins per user and peer address per minute, across connections
 * (then `rate_limited`); also failed `backup.fetch` per user, from any address
 * (its secret can be guessed, a device key cannot).
 */
export const LOGIN_FAILURES_PER_USER_PER_MINUTE = 10;

/** Access-token lifetime. */
export const ACCESS_TOKEN_TTL_S = 900;

/**
 * The longest a host-minted access token may live (`exp − iat`; `iat` is
 * required): signing out everywhere cannot end the host's tokens (they
 * carry no session epoch), so each one opens sessions for at most a day.
 */
export const HOST_TOKEN_LIFETIME_MAX_S = 24 * 3600;

/** How far ahead of the server's clock a host token's `iat` may be (the host's clock may run a little fast). */
export const HOST_TOKEN_CLOCK_SKEW_S = 60;

/** Refresh-token lifetime (single use, rotated). */
export const REFRESH_TOKEN_TTL_S = 30 * 24 * 3600;

/**
 * How long a spent refresh token renews once more: for a client whose
 * `session` answer was lost with its connection. Its successor, never used,
 * is revoked in favour of a new one. After this, or once the successor has
 * been used, a spent token is taken as stolen and every token of its login
 * is revoked (docs/protocol.md, "Refresh").
 */
export const REFRESH_REUSE_GRACE_MS = 60_000;

/** Logins (refresh-token families) kept per device: a new login beyond this drops the one renewed least recently. */
export const REFRESH_FAMILIES_PER_DEVICE_MAX = 16;

/**
 * Spent tokens a login keeps to recognise reuse: each until it would have
 * expired. A client renewing every ACCESS_TOKEN_TTL_S spends ~3,100 in
 * REFRESH_TOKEN_TTL_S; a login that would keep more renews faster than any
 * client needs and is revoked. Never forgotten early: a spent token pushed
 * out by renewing quickly would stop revealing a copy.
 */
export const REFRESH_SPENT_KEPT_PER_FAMILY = 4096;

/** Entries returned per history page. */
export const HISTORY_PAGE_MAX = 200;

/**
 * Body bytes per history page: a page ends at the entry whose body takes
 * the total to this (so it has at least one entry) and says `more: true`.
 * Without it a page of HISTORY_PAGE_MAX bodies of BODY_BYTES_MAX is ~17 MB
 * read and serialised in one event-loop turn, and a few such requests a
 * second hold every other connection's acks back by hundreds of ms; 1 MiB
 * is still 16 of the largest bodies, or a full page of ordinary messages.
 * A `sync` reads a room's entries this much at a time too (up to 64 MiB
 * per room otherwise, held while the client reads), invisibly to clients.
 */
export const HISTORY_PAGE_BYTES_MAX = 1024 * 1024;

/** Entries sent per room in one sync before the client must ask again. */
export const SYNC_ENTRIES_PER_ROOM_MAX = 1000;
/**
 * Rooms named in one `sync` that the user is no longer in, looked up for what
 * it missed before its removal (each costs a scan of the room's membership
 * events); the rest are ignored.
 */
export const SYNC_FORMER_ROOMS_MAX = 64;
/** Membership events read per scan when looking for a user's removal. */
export const MEMBERSHIP_EVENTS_PAGE = 1000;

/** Pending mailbox entries per device. */
export const MAILBOX_MAX = 1000;

/**
 * Pending entries from one user in one device's mailbox (a tenth of it):
 * anyone may write to any device's mailbox, so without it one user could
 * fill it for everyone. Legitimate senders leave a few (a key agreement per
 * device pair, a Welcome per group) until the device comes online.
 */
export const MAILBOX_FROM_SENDER_MAX = 100;

/** Rooms whose member sets are cached in memory (oldest evicted first). */
export const MEMBERS_CACHE_MAX = 100_000;

/** Length of the nonce in a login challenge. */
export const CHALLENGE_BYTES = 32;

/** One-time prekeys stored per device, and per upload frame. */
export const ONE_TIME_PREKEYS_MAX = 1000;
export const ONE_TIME_PREKEYS_PER_UPLOAD_MAX = 200;

/** MLS KeyPackages stored per device, per upload frame, and the size of one. */
export const KEY_PACKAGES_MAX = 1000;
export const KEY_PACKAGES_PER_UPLOAD_MAX = 100;
export const KEY_PACKAGE_BYTES_MAX = 8 * 1024;

/** Signed and one-time prekeys are X25519 public keys: exactly this many bytes. */
export const PREKEY_BYTES = 32;
/** Largest PQ prekey accepted (an ML-KEM-1024 encapsulation key is 1568 bytes; ML-KEM-768's, 1184). */
export const PQ_PREKEY_BYTES_MAX = 1568;

/** Largest decoded mailbox payload (e.g. a PQXDH initial message or an MLS Welcome). */
export const MAILBOX_PAYLOAD_BYTES_MAX = 128 * 1024;

/** Mailbox entries pushed per page (at login and after each `mailbox.ack`). */
export const MAILBOX_PAGE = 100;

/** Devices one user may have (the first from `register`, the others from `device.add`). */
export const DEVICES_PER_USER_MAX = 16;

/**
 * Device ids one user may ever have, its removed devices' included: the
 * ids of removed devices are kept (never reused for another key), so
 * adding and removing in turn cannot grow the store without bound.
 */
export const DEVICE_IDS_PER_USER_MAX = 1000;

/** Largest key backup (sealed by the client) the server keeps per user. */
export const KEY_BACKUP_BYTES_MAX = 64 * 1024;

/** Largest blob (a file, encrypted by the client) — uploaded and fetched in BLOB_CHUNK_BYTES chunks. */
export const BLOB_BYTES_MAX = 16 * 1024 * 1024;

/** Every chunk of a blob but the last is exactly this long (its base64 fits a frame). */
export const BLOB_CHUNK_BYTES = 128 * 1024;

/** Bytes of blobs a user may have stored (complete or not). */
export const BLOB_BYTES_PER_USER_MAX = 64 * 1024 * 1024;

/** Blobs a user may have started and not completed at once. */
export const BLOB_UPLOADS_OPEN_MAX = 8;

/** Blobs a user may have stored at once, complete or not (so tiny files cannot pile up rows). */
export const BLOB_COUNT_PER_USER_MAX = 1000;

/** Default seconds an upload may stay incomplete before it is removed (PARLEY_BLOB_UPLOAD_TTL_S). */
export const BLOB_UPLOAD_TTL_S_DEFAULT = 60 * 60;

/** Default days a complete blob is kept (PARLEY_BLOB_RETENTION_DAYS; 0 keeps it until its uploader deletes it). */
export const BLOB_RETENTION_DAYS_DEFAULT = 30;

/** Longest pause between two sweeps of expired blobs. */
export const BLOB_SWEEP_INTERVAL_MS_MAX = 10 * 60 * 1000;

/** Expired blobs removed per storage transaction (a 16 MiB blob is 128 chunks). */
export const BLOB_EXPIRY_BATCH = 16;
/** Length of the backup fetch secret a client derives from its passphrase. */
export const BACKUP_FETCH_SECRET_BYTES = 32;

/** Largest fan-out message accepted from Redis (a frame plus its recipient list; frames are at most ~256 KiB). */
export const FANOUT_MESSAGE_BYTES_MAX = 1024 * 1024;

/**
 * Recipients per fan-out message: a delivery to more users (a presence
 * change seen by everyone sharing a room with a busy user) is split, so no
 * message nears FANOUT_MESSAGE_BYTES_MAX (1000 ids of ≤ 64 characters and
 * the largest frame stay well under it).
 */
export const FANOUT_USERS_PER_MESSAGE = 1000;

/**
 * Recipients remembered of this process's deliveries that did not reach
 * Redis (fanout/redis.ts, "Lost deliveries"): once Redis is back, their
 * connections on every process are asked to reconnect and sync. Beyond
 * this many, every connection of the deployment is.
 */
export const FANOUT_LOST_USERS_MAX = 10_000;
