/**
 * Every tunable and every bound of the SDK, in one place. Values the server
 * also enforces are mirrored here (with the server's name) and replaced by
 * what the server announces in `welcome.limits` when it is smaller.
 *
 * @module
 */

// ---- requests and connections ----

/** How long a request waits for its answer before failing with `TIMEOUT`. */
export const REQUEST_TIMEOUT_MS = 15_000;

/**
 * How long a heartbeat `ping` (sent after `welcome.limits.heartbeatMs` of
 * silence) waits for its `pong` before the connection is taken for dead and
 * replaced. Short: the server answers a ping at once.
 */
export const HEARTBEAT_TIMEOUT_MS = 10_000;

/** The shortest heartbeat interval taken from a server (a hostile one must not make us ping in a loop). */
export const HEARTBEAT_INTERVAL_MIN_MS = 1_000;

/** How long a `sync` (which streams up to SYNC_ENTRIES_PER_ROOM_MAX entries per room first) may take. */
export const SYNC_TIMEOUT_MS = 60_000;

/**
 * Syncs in a row that may leave a hole in a room (its replay lost on the
 * way) before the hole is passed over. The server numbers a room's entries
 * without gaps, so a hole is always a loss below the SDK; passing over it
 * skips an entry for good, so it is the last resort.
 */
export const HOLE_SYNCS_MAX = 3;

/**
 * Holes passed over (passed-holes.ts) remembered, oldest forgotten first:
 * an entry that later turns up in one is still processed, and a catch-up
 * asks for the room from the hole's start. Kept by the store where it can
 * (every store of the SDK), so a restart forgets none.
 */
export const PASSED_HOLES_MAX = 1000;

/**
 * Rooms this device keeps a cursor for (rooms it is in, and rooms it left
 * until their last entries are read). A room's first cursor is not stored
 * beyond it — its entries are still processed, and read again on the next
 * catch-up — so a server that invents rooms cannot grow the store without
 * end. A server allows a user 1,000 rooms.
 */
export const ROOM_CURSORS_MAX = 10_000;

/** Longest `room.list` answer taken (BAD_RESPONSE beyond): the rooms a catch-up syncs. */
export const ROOMS_LISTED_MAX = 10_000;

/**
 * Entries a catch-up processes before it gives the event loop back (a
 * timer tick): about 60 ms of decryption in a browser, so that a backlog of
 * thousands never runs as one task that freezes the page.
 */
export const CATCH_UP_PART = 100;

/** Users whose presence is remembered (the longest unheard-of forgotten first): bounds what a server's presence frames can make the client keep. */
export const PRESENCE_KNOWN_MAX = 10_000;

/**
 * Entries held while a connection catches up (inbound.ts, "Holding"), and
 * their base64 body characters. Past either, entries next in their room's
 * order are processed at once; if the rest still exceed it (entries far
 * past holes, which a server that never answers the sync can send without
 * end), they are dropped and the connection is replaced — they are not yet
 * processed, so the next catch-up reads them again from the cursors.
 */
export const HELD_ENTRIES_MAX = 20_000;
export const HELD_BODY_CHARS_MAX = 64 * 1024 * 1024;

/** Seqs of this device's own messages remembered above room cursors (inbound.ts, "Gaps"); beyond, forgotten (one extra sync). */
export const OWN_SEQS_MAX = 10_000;

/** How long opening the WebSocket may take. */
export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Largest frame accepted from the server. A `history` page can carry
 * HISTORY_PAGE_MAX bodies of BODY_BYTES_MAX each, base64-encoded (≈ 17.5 MB).
 */
export const INBOUND_FRAME_BYTES_MAX = 32 * 1024 * 1024;

/** How often a request interrupted by a lost connection is re-sent on the next one. */
export const REQUEST_RETRIES_MAX = 3;

/** First reconnect delay; doubles per failed attempt (with jitter) up to RECONNECT_DELAY_MAX_MS. */
export const RECONNECT_DELAY_MIN_MS = 250;
export const RECONNECT_DELAY_MAX_MS = 30_000;

/** A connection that lasted this long resets the reconnect backoff when it closes; one closed sooner does not. */
export const CONNECTION_STABLE_MS = 10_000;

/** The soonest an access token is renewed after it is issued, whatever lifetime the server gives it (0 would renew in a loop). */
export const RENEWAL_DELAY_MIN_MS = 1_000;

/** How long a replaced connection may finish its pending requests before it is closed. */
export const RETIRE_GRACE_MS = 5_000;

/**
 * The access token is renewed (a new connection authenticated with the
 * refresh token replaces the old one) this long before it expires: a quarter
 * of its lifetime, at most a minute. The server closes a connection whose
 * token expires (4001), so renewing early means no gap in delivery.
 */
export const TOKEN_REFRESH_LEAD_MAX_MS = 60_000;
export const TOKEN_REFRESH_LEAD_FRACTION = 0.25;

/** Wait before re-sending a publish the server refused with `rate_limited` or `internal`. */
export const PUBLISH_RETRY_DELAY_MS = 1_000;

// ---- the server's limits (packages/server/src/limits.ts) ----

/** The server's BODY_BYTES_MAX: largest room message body, decoded. */
export const BODY_BYTES_MAX = 64 * 1024;

/** The server's HISTORY_PAGE_MAX: entries per history page. */
export const HISTORY_PAGE_MAX = 200;

/** The server's ONE_TIME_PREKEYS_PER_UPLOAD_MAX: one-time prekeys per `keys.upload` frame. */
export const ONE_TIME_PREKEYS_PER_UPLOAD_MAX = 200;

/** Longest user, device, room and message id (the server's id patterns, docs/protocol.md). */
export const ID_LENGTH_MAX = 64;

// ---- prekeys ----

/** One-time prekeys the server should hold for this device; topped up to this. */
export const ONE_TIME_PREKEYS_TARGET = 100;

/** Top up when the server holds fewer than this. */
export const ONE_TIME_PREKEYS_LOW_WATER = 25;

/**
 * Private one-time prekeys kept: the newest ids, those on the server and
 * those it handed out most recently. Older ones were handed out long ago
 * (the server hands out the lowest ids first) and either used (removed
 * then) or never will be — a peer fetching bundles it does not write with
 * would otherwise grow the store without end. A first message using one
 * discarded here fails to decrypt (`decryptionError`): the price of a bound,
 * paid only by a peer that waited for this many hand-outs before writing.
 */
export const ONE_TIME_PREKEYS_KEPT_MAX = 1000;

/** Ids looked at by one discarding pass (a store that predates it may hold many). */
export const ONE_TIME_PREKEYS_DISCARD_SCAN_MAX = 10_000;

// ---- messages ----

/**
 * Largest envelope overhead over its plaintext (packages/protocol/README.md,
 * "Wire format"): 74 bytes of framing, header and tags, up to 16 bytes of
 * CBC padding, and 1,645 bytes of PQXDH fields in a prekey message.
 */
export const ENVELOPE_OVERHEAD_MAX = 74 + 16 + 1645;

/** Entries in one room body container: a bound on parsing work, well above any direct room's device count. */
export const CONTAINER_ENTRIES_MAX = 1024;

/** Messages waiting to be published (across reconnects); `send` fails with `LIMIT` beyond. */
export const OUTBOUND_QUEUE_MAX = 1000;

/** Message ids remembered to drop duplicates (oldest forgotten first). */
export const SEEN_IDS_MAX = 10_000;

/** Room kinds remembered from the server's room lists (forgotten all at once beyond it; one `room.list` brings them back). */
export const ROOM_KINDS_MAX = 10_000;

/** Decrypted and sent messages the memory store keeps for `history` (oldest evicted first). */
export const MESSAGE_CACHE_MAX = 10_000;

/** How long a user's device list from the key directory is reused before it is fetched again. */
export const DEVICE_LIST_TTL_MS = 5 * 60_000;

// ---- ephemeral signals ----

/** `client.typing` sends at most one `typing` frame per room this often (the rest are dropped), so keystrokes cannot flood the server's frame limit. */
export const TYPING_INTERVAL_MS = 3_000;

/**
 * Smallest chunk a download accepts (but the last): a server serving a blob
 * in tiny chunks would make a download take one request per byte.
 */
export const BLOB_CHUNK_BYTES_MIN = 16 * 1024;

/** Largest blob the server takes (its BLOB_BYTES_MAX); `welcome.limits.blobBytes` may lower it. */
export const BLOB_BYTES_MAX = 16 * 1024 * 1024;

/** A file name in a file message, in UTF-8 bytes. */
export const FILE_NAME_BYTES_MAX = 255;

/** A media type in a file message ("image/png"), in ASCII characters. */
export const MEDIA_TYPE_BYTES_MAX = 127;

/** Delivery receipts are sent at most this often per room (for the newest seq delivered meanwhile). */
export const RECEIPT_INTERVAL_MS = 1_000;

/** Devices per user a peer record keeps (well above the server's DEVICES_PER_USER_MAX, 16). */
export const PEER_DEVICES_MAX = 256;

/** Refused identity keys remembered per user, so each is reported once (the oldest forgotten first). */
export const PEER_REFUSED_KEYS_MAX = 64;

/**
 * How long a verification may run, and how old a received `start` may be
 * (by the server's clock) to be offered: a request older than this, replayed
 * after a device was away, is dropped.
 */
export const VERIFICATION_TIMEOUT_MS = 5 * 60_000;

/** Verification requests waiting for an answer at once (one per user; beyond, new ones are refused). */
export const VERIFICATION_PENDING_MAX = 32;

/**
 * Files this client uploads at once; more wait for a turn. The server lets a
 * user have 8 uploads open at once across all devices (BLOB_UPLOADS_OPEN_MAX).
 */
export const FILE_UPLOADS_CONCURRENT_MAX = 4;

/**
 * Rooms this device was in, no longer listed by the server, named in one
 * catch-up to get what it missed up to its removal (the server looks at as
 * many: its SYNC_FORMER_ROOMS_MAX).
 */
export const SYNC_FORMER_ROOMS_MAX = 64;

// ---- restores ----

/**
 * Device ids a restore tries when it picks the new device's id itself
 * (`laptop` → `laptop-r2`, `laptop-r3`, …): ids of removed devices stay
 * taken, so a few may be; a server answering `conflict` to every one must
 * not keep it trying.
 */
export const RESTORE_DEVICE_ID_ATTEMPTS = 8;
