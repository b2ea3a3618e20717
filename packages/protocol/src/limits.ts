/**
 * Every limit on what a peer (or a stored record) controls, in one place.
 * Each is tested at its edge in `test/limits.test.ts`.
 *
 * @module
 */

/**
 * MAX_SKIP of the Double Ratchet spec: how far ahead of the next expected
 * message of a receiving chain one message may be. Reaching message n when
 * Nr is expected derives and stores n − Nr skipped keys; n − Nr = MAX_SKIP is
 * accepted, one more is refused (`TOO_MANY_SKIPPED`). It applies to both
 * jumps a message can cause: to PN on the chain being closed, and to N on the
 * new one. It bounds the work one message can cost (≤ 2 · MAX_SKIP HMACs).
 */
export const MAX_SKIP = 1000;

/**
 * Skipped message keys kept per session (one peer device), across all
 * chains of the current state and the archived ones. When a message would
 * take the store past this, the oldest keys are evicted — an archived
 * state's before the current one's — and their messages become
 * undecryptable (reported as `DUPLICATE` while their chain is remembered).
 * Eviction rather than refusal: refusing would let a long-absent peer, or
 * an attacker replaying nothing but gaps, wedge the session for good; the
 * evicted messages are the ones least likely to arrive. Per session rather
 * than per state, so a peer that starts session after session cannot make
 * the record (loaded, copied and sealed again for every message it sends)
 * ARCHIVED_STATES_MAX + 1 times larger.
 */
export const SKIPPED_KEYS_MAX = 2000;

/**
 * Closed receiving chains whose header keys are remembered, so a replay of
 * one of their messages is reported as `DUPLICATE` rather than
 * `DECRYPT_FAILED`. Their skipped keys do not depend on this (they live under
 * SKIPPED_KEYS_MAX); it only bounds state size. Oldest forgotten first.
 */
export const PREVIOUS_CHAINS_MAX = 5;

/**
 * Earlier session states kept per peer device besides the current one, so
 * messages still in flight on a replaced session (both sides started one at
 * once, or the peer re-ran PQXDH) decrypt. Oldest dropped first. Each costs
 * one trial decryption of a message that matches no other state.
 */
export const ARCHIVED_STATES_MAX = 5;

/**
 * Base keys (EK_A) of the peer's sessions whose state was dropped from the
 * archive, remembered so that a replay of such a session's first message is
 * refused (`DECRYPT_FAILED`, its state is gone) instead of starting the
 * session again. (Without a
 * one-time prekey nothing else makes a first message single-use, and a
 * replayed one would become the current state: the next reply would go to
 * a session the peer no longer has.) 32 bytes each; oldest forgotten first.
 */
export const RETIRED_BASE_KEYS_MAX = 64;

/** Largest plaintext `encrypt` accepts, so every envelope fits ENVELOPE_BYTES_MAX. */
export const PLAINTEXT_BYTES_MAX = 60 * 1024;

/**
 * Largest envelope `decrypt` reads (larger ones are refused before any
 * work). Equal to the server's BODY_BYTES_MAX, so anything the relay accepts
 * is readable; the largest envelope we write (a prekey message carrying
 * PLAINTEXT_BYTES_MAX) stays below it.
 */
export const ENVELOPE_BYTES_MAX = 64 * 1024;

/** Largest caller associated data (`ad`) per message. */
export const ASSOCIATED_DATA_BYTES_MAX = 1024;

/**
 * Messages one sending chain may carry: N is a u32 on the wire. Reaching it
 * (about 4 billion messages without a reply) makes `encrypt` refuse with
 * `LIMIT` rather than wrap N around and reuse a message number.
 */
export const CHAIN_LENGTH_MAX = 0xffff_ffff;

/** Longest user or device id, in UTF-8 bytes (a u8 length on the wire). */
export const ADDRESS_PART_BYTES_MAX = 255;

/** One-time prekeys `generateOneTimePrekeys` makes per call (a batch to upload). */
export const ONE_TIME_PREKEYS_PER_BATCH_MAX = 1000;
