/**
 * `parley themis seal` / `open`: Secure Cell in Seal mode (authenticated
 * encryption, optional context), keyed by a symmetric key or a passphrase.
 *
 * @module
 */
import { SecureCellSeal } from '@parley/themis';
import { usageError } from './cli-error.ts';
import { STDIO } from './io.ts';
import { loadSymmetricKey } from './key-source.ts';
import { canPrompt, passphraseFromOptions, promptPassphrase, type PassphraseOptions } from './passphrase.ts';
import { prepareOutput, runTransform, type IoOptions, type Transform } from './transform.ts';

export interface CellOptions extends IoOptions, PassphraseOptions {
  key?: string;
  context?: string;
  /** Refused: see {@link refuseArgvPassphrase}. */
  passphrase?: string | boolean;
  password?: string | boolean;
}

const OPAQUE_OPEN_FAILURE = 'cannot open: wrong key, passphrase or context, or the data is corrupted';

/** Hidden options that exist only to explain why a passphrase is never read from the command line. */
function refuseArgvPassphrase(options: CellOptions): void {
  if (options.passphrase !== undefined || options.password !== undefined) {
    throw usageError(
      'a passphrase is never accepted on the command line (other users can see it, e.g. with ps); use --passphrase-env VAR, --passphrase-file FILE, or type it at the prompt',
    );
  }
}

type Cell = { encrypt(m: Uint8Array, c?: Uint8Array): Uint8Array; decrypt(m: Uint8Array, c?: Uint8Array): Uint8Array };

/** The cell for the key or passphrase the options name (asking on the terminal if none is named). */
async function openCell(options: CellOptions, confirm: boolean): Promise<{ cell: Cell; wipe(): void }> {
  if (options.key !== undefined) {
    const key = await loadSymmetricKey(options.key, '--key');
    return { cell: SecureCellSeal.withKey(key), wipe: () => key.fill(0) };
  }
  let passphrase = await passphraseFromOptions(options);
  if (passphrase === undefined) {
    if (!canPrompt()) throw usageError('no key: give --key, --passphrase-env or --passphrase-file (a passphrase prompt needs a terminal, and the input in --in <file>)');
    if (options.in === STDIO) {
      throw usageError('to type the passphrase at the prompt, give the input with --in <file> (or use --passphrase-env / --passphrase-file)');
    }
    passphrase = await promptPassphrase(confirm);
  }
  const bytes = passphrase;
  return { cell: SecureCellSeal.withPassphrase(bytes), wipe: () => bytes.fill(0) };
}

function contextBytes(options: CellOptions): Uint8Array | undefined {
  return options.context === undefined || options.context === '' ? undefined : Buffer.from(options.context, 'utf8');
}

async function cellCommand(options: CellOptions, t: Transform): Promise<void> {
  refuseArgvPassphrase(options);
  await prepareOutput(options, t);
  const { cell, wipe } = await openCell(options, t.direction === 'protect');
  const context = contextBytes(options);
  try {
    await runTransform(options, t, (input) => (t.direction === 'protect' ? cell.encrypt(input, context) : cell.decrypt(input, context)));
  } finally {
    wipe();
  }
}

export function seal(options: CellOptions): Promise<void> {
  return cellCommand(options, { direction: 'protect', verb: 'seal' });
}

export function open(options: CellOptions): Promise<void> {
  return cellCommand(options, { direction: 'unprotect', verb: 'open', opaqueFailure: OPAQUE_OPEN_FAILURE });
}
