/**
 * Every size limit of the `parley themis` tools, in one place. Inputs are
 * read whole into memory (Themis cryptosystems are one-shot), so each
 * source is bounded and refused with a clear error at the edge.
 *
 * @module
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** Largest plaintext the tools read (seal, sign, encrypt): 64 MiB. */
export const MAX_INPUT_BYTES = 64 * MiB;

/**
 * Extra room for inputs that are the tools' own outputs (open, verify,
 * decrypt): a sealed cell, signed or encrypted message of a
 * {@link MAX_INPUT_BYTES} plaintext is larger by its header, tag or
 * signature (under 1 KiB even with RSA-4096), so whatever the tools wrote,
 * they can read back.
 */
export const MAX_OVERHEAD_BYTES = 64 * KiB;

/** Largest sealed, signed or encrypted input (binary, after base64 decoding). */
export const MAX_SEALED_BYTES = MAX_INPUT_BYTES + MAX_OVERHEAD_BYTES;

/**
 * How much base64 text is read for a binary limit `n`: base64 is 4/3 of the
 * binary size; the rest is room for line breaks and other whitespace.
 */
export function base64TextLimit(binaryLimit: number): number {
  return binaryLimit * 2;
}

/** Largest key file or key value (an RSA-8192 private key is under 5 KiB). */
export const MAX_KEY_BYTES = 64 * KiB;

/** Largest passphrase (from a file, an environment variable or the prompt). */
export const MAX_PASSPHRASE_BYTES = 4 * KiB;

/** `64 MiB`, `64 MiB + 64 KiB`, `4 KiB`-style label for messages. */
export function formatSize(n: number): string {
  if (n % KiB !== 0) return `${n} bytes`;
  if (n < MiB) return `${n / KiB} KiB`;
  const rest = n % MiB;
  return `${(n - rest) / MiB} MiB${rest === 0 ? '' : ` + ${rest / KiB} KiB`}`;
}
