/**
 * `parley themis keygen`: new Themis keys.
 *
 * - `ec` (default): an EC P-256 key pair, as `new KeyPair()` in Themis;
 * - `rsa`: an RSA key pair of 1024, 2048 (default) or 4096 bits;
 * - `symmetric`: 32 random bytes for Secure Cell.
 *
 * With `--out <prefix>` the keys go to `<prefix>.priv` (mode 0600) and
 * `<prefix>.pub`, or `<prefix>.key` (mode 0600) for a symmetric key, as raw
 * Themis bytes; existing files are never overwritten without `--force`.
 * Without `--out` the keys are printed in base64, the secret one labelled.
 *
 * @module
 */
import { KeyPair, SymmetricKey } from '@parley/themis';
import { usageError } from './cli-error.ts';
import { checkOutput, STDIO, writeOutput } from './io.ts';

export const KEY_TYPES = ['ec', 'rsa', 'symmetric'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export const RSA_BITS = ['1024', '2048', '4096'] as const;

export interface KeygenOptions {
  type: KeyType;
  bits?: string;
  out?: string;
  force?: boolean;
}

interface KeyFile {
  suffix: string;
  /** Label on stdout. */
  label: string;
  bytes: Uint8Array;
  secret: boolean;
}

function generate(options: KeygenOptions): { title: string; files: KeyFile[] } {
  if (options.type === 'symmetric') {
    const key = new SymmetricKey();
    return {
      title: `Themis symmetric key for Secure Cell (${key.length} bytes, base64). SECRET: anyone who has it can open your cells.`,
      files: [{ suffix: '.key', label: 'symmetric', bytes: key, secret: true }],
    };
  }
  const bits = options.bits === undefined ? undefined : Number(options.bits);
  const pair = options.type === 'rsa' ? KeyPair.generateRSA(bits) : new KeyPair();
  const family = options.type === 'rsa' ? `RSA-${bits ?? 2048}` : 'EC P-256';
  return {
    title: `Themis ${family} key pair (base64). The private key is SECRET: anyone who has it can sign and decrypt as you.`,
    files: [
      { suffix: '.priv', label: 'private', bytes: pair.privateKey, secret: true },
      { suffix: '.pub', label: 'public', bytes: pair.publicKey, secret: false },
    ],
  };
}

function suffixesFor(type: KeyType): string[] {
  return type === 'symmetric' ? ['.key'] : ['.priv', '.pub'];
}

export async function keygen(options: KeygenOptions): Promise<void> {
  if (options.bits !== undefined && options.type !== 'rsa') throw usageError('--bits applies only to --type rsa');
  const force = options.force === true;
  const prefix = options.out === undefined || options.out === STDIO ? undefined : options.out;
  if (prefix === undefined && force) throw usageError('--force applies only with --out');
  // A prefix that names no file (empty, or a directory: `keys/`) would write hidden `.priv`/`.pub` files.
  if (prefix !== undefined && (prefix === '' || /[\\/]$/.test(prefix) || /(^|[\\/])\.{1,2}$/.test(prefix))) {
    throw usageError(`--out takes a file name prefix, as in --out keys/alice (writes keys/alice${suffixesFor(options.type).join(' and keys/alice')}), not ${JSON.stringify(prefix)}`);
  }
  // Refuse before generating anything, and before writing any of the files.
  if (prefix !== undefined) for (const suffix of suffixesFor(options.type)) await checkOutput(prefix + suffix, force);

  const { title, files } = generate(options);
  try {
    if (prefix === undefined) {
      const lines = [`# ${title}`, ...files.map((f) => `${f.label}: ${Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.length).toString('base64')}`)];
      await writeOutput(STDIO, Buffer.from(`${lines.join('\n')}\n`, 'latin1'), { force: false, secret: true });
      return;
    }
    for (const f of files) await writeOutput(prefix + f.suffix, f.bytes, { force, secret: f.secret });
    process.stderr.write(`wrote ${files.map((f) => `${prefix}${f.suffix}${f.secret ? ' (secret, mode 0600)' : ''}`).join(' and ')}\n`);
  } finally {
    for (const f of files) if (f.secret) f.bytes.fill(0);
  }
}
