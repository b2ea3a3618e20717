/**
 * The shape every data command shares (seal/open, sign/verify,
 * encrypt/decrypt): check the output, read the bounded input, apply one
 * Themis operation, write the result. Output is written only after the
 * operation succeeded, so a failed `open` or `verify` leaves no file and
 * prints nothing on stdout.
 *
 * `--base64` applies to the protected side: protecting writes base64 text,
 * unprotecting reads it. Plaintext is always raw bytes.
 *
 * @module
 */
import { ThemisError } from '@parley/themis';
import { failure } from './cli-error.ts';
import { checkBinaryOutput, checkOutput, encodeBase64Line, readInput, writeOutput } from './io.ts';
import { MAX_INPUT_BYTES, MAX_SEALED_BYTES } from './limits.ts';

/** The I/O options of every data command. */
export interface IoOptions {
  in: string;
  out: string;
  base64?: boolean;
  force?: boolean;
}

export interface Transform {
  /** `protect`: plaintext in, protected data out (seal, sign, encrypt); `unprotect`: the reverse. */
  direction: 'protect' | 'unprotect';
  /** The verb for messages: `seal`, `sign`, … */
  verb: string;
  /** The one line shown when an unprotect operation fails, whatever the reason (wrong key, tampering, bad framing). */
  opaqueFailure?: string;
}

/** Checks the output before anything else is done (so no secret is asked for in vain). */
export async function prepareOutput(io: IoOptions, t: Transform): Promise<void> {
  await checkOutput(io.out, io.force === true);
  if (t.direction === 'protect') checkBinaryOutput(io.out, io.base64 === true);
}

/** Reads the input, applies `operation`, writes the result. Call {@link prepareOutput} first. */
export async function runTransform(io: IoOptions, t: Transform, operation: (input: Uint8Array) => Uint8Array | Promise<Uint8Array>): Promise<void> {
  const protect = t.direction === 'protect';
  const base64 = io.base64 === true;
  const input = await readInput(io.in, { limit: protect ? MAX_INPUT_BYTES : MAX_SEALED_BYTES, base64: base64 && !protect });
  if (protect && input.length === 0) throw failure(`the input is empty; Themis cannot ${t.verb} empty data`);
  let output: Uint8Array;
  try {
    output = await operation(input);
  } catch (e) {
    if (!(e instanceof ThemisError)) throw e;
    // Unprotect failures are one opaque outcome; protect failures carry the Themis reason (never key material).
    throw failure(protect ? `cannot ${t.verb}: ${e.message}` : (t.opaqueFailure ?? `cannot ${t.verb}`));
  }
  try {
    await writeOutput(io.out, protect && base64 ? encodeBase64Line(output) : output, { force: io.force === true, secret: !protect });
  } finally {
    if (!protect) output.fill(0);
  }
}
