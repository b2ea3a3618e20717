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

// ---- Themis tutorial protocol ----

/** Longest tutorial client name, in UTF-8 bytes (it is also the Secure Session id). */
export const TUTORIAL_NAME_BYTES_MAX = 256;

/** Largest chat line, in bytes, a tutorial client may send (after unwrap). */
export const TUTORIAL_LINE_BYTES_MAX = 16 * 1024;

/** Tutorial clients connected at once (each costs a Secure Session and a re-wrap per line). */
export const TUTORIAL_CLIENTS_MAX = 1000;

/** Chat lines per second per tutorial connection (token bucket, burst = this). */
export const TUTORIAL_LINES_PER_SECOND = 20;

/** Invalid frames tolerated on one connection before it is closed. */
export const INVALID_FRAMES_MAX = 10;
