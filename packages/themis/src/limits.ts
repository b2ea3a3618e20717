/**
 * Every limit that bounds what an attacker controls, in one place.
 *
 * Each is tested at its edge (test/limits.test.ts). None of them changes a byte
 * that an honest Themis peer produces, and only SESSION_ID_LENGTH_MAX refuses
 * something one could write (an id over 64 KiB).
 *
 * @module
 */

/** PBKDF2 iterations this library writes in passphrase Secure Cells (Themis ≥ 0.15). */
export const PBKDF2_ITERATIONS_DEFAULT = 314_110;

/**
 * Highest PBKDF2 iteration count accepted from a passphrase cell header.
 * A header is attacker-controlled; without a bound, a 4-byte field could make
 * one decrypt call spin for hours. Every Themis encoder writes the default,
 * 314,110; 2 million (~6x) costs ~0.5 s natively and ~3.5 s in the pure-JS
 * backend (a browser tab), where 10 million froze a page for ~18 s.
 */
export const PBKDF2_ITERATIONS_MAX = 2_000_000;

/** Lowest count accepted from a header (0 would be no key stretching at all; Themis accepts 1). */
export const PBKDF2_ITERATIONS_MIN = 1;

/** Salt length in passphrase cells we write (as Themis). */
export const PBKDF2_SALT_LENGTH = 16;
/** Largest salt accepted from a passphrase cell header (the field is u16). */
export const PBKDF2_SALT_LENGTH_MAX = 1024;

/**
 * Largest IV and tag fields accepted in a Secure Cell header. Themis accepts
 * any length ≥ 12 / ≥ 16 and uses the first 12 / 16 bytes; we accept the same
 * but bound them so a lying header cannot claim gigabytes.
 */
export const CELL_IV_LENGTH_MAX = 256;
export const CELL_TAG_LENGTH_MAX = 256;

/**
 * Largest plaintext Secure Cell and Secure Message will encrypt, and the
 * largest a header may claim. Themis length fields are u32; we stay under
 * 2^32 − overhead so sums never overflow.
 */
export const MESSAGE_LENGTH_MAX = 0xffff_0000;

/** Largest RSA modulus accepted in a key container (Themis defines up to 8192). */
export const RSA_BITS_MAX = 8192;

/** RSA key sizes Themis can generate. */
export const RSA_BITS_ALLOWED: readonly number[] = Object.freeze([1024, 2048, 4096]);
export const RSA_BITS_DEFAULT = 2048;

/** Secure Session: Themis accepts incoming seq within ±8 of the last accepted one. */
export const SESSION_SEQ_WINDOW = 8;

/**
 * Secure Session (strict mode): how many sequence numbers below the highest
 * seen are remembered for replay detection. Older ones are refused. 64 is
 * far wider than the ±8 reordering a Themis peer can produce.
 */
export const SESSION_REPLAY_WINDOW = 64;

/** Secure Session: accepted clock difference of a data message's timestamp (Themis: 24 h). */
export const SESSION_TIMESTAMP_WINDOW_SECONDS = 86_400;

/**
 * Secure Session: largest session id (identity) accepted in a handshake, and
 * emitted. Themis itself has no bound (wasm-themis handshakes with 20,000-byte
 * ids), so this is the one limit here that can refuse what an honest peer
 * writes — only an id no application uses: ids are names, and 64 KiB keeps a
 * handshake message within what a transport should carry in one frame.
 */
export const SESSION_ID_LENGTH_MAX = 65_536;
