/**
 * `parley themis …`: the Themis developer tools, as a commander command
 * group. This file only declares commands, options and help; the work is in
 * `keygen.ts`, `cell.ts` and `message.ts`.
 *
 * Usage errors (commander's and ours) are one line on stderr and exit
 * code 2; see `cli-error.ts` for every exit code.
 *
 * @module
 */
import { Command, Option } from 'commander';
import { exitOnCommanderError, formatCommanderError, runAction } from './cli-error.ts';
import { open, seal, type CellOptions } from './cell.ts';
import { STDIO } from './io.ts';
import { keygen, KEY_TYPES, RSA_BITS, type KeygenOptions } from './keygen.ts';
import { formatSize, MAX_INPUT_BYTES } from './limits.ts';
import { decrypt, encrypt, sign, verify, type PairOptions, type SignOptions } from './message.ts';

function subcommand(group: Command, name: string, description: string): Command {
  return group
    .command(name)
    .description(description)
    .configureOutput({ outputError: (text, write) => write(formatCommanderError(text, `parley themis ${name}`)) });
}

function ioOptions(cmd: Command, direction: 'protect' | 'unprotect', base64Help: string): Command {
  const limit = direction === 'protect' ? formatSize(MAX_INPUT_BYTES) : `${formatSize(MAX_INPUT_BYTES)} of data plus its overhead`;
  return cmd
    .option('-i, --in <file>', `input file, or - for stdin (at most ${limit})`, STDIO)
    .option('-o, --out <file>', 'output file, or - for stdout', STDIO)
    .option('-f, --force', 'overwrite --out if it is an existing file (a device or FIFO, such as /dev/null, needs none)')
    .option('-a, --base64', base64Help);
}

const KEY_SOURCES_HELP = `
Key sources (--key, --peer):
  <file>        a file holding the raw Themis key (as written by keygen --out)
  env:VAR       an environment variable holding the key in base64
  base64:TEXT   the key in base64 -- public keys only: the command line of a
                process is visible to other users, so secret keys (private and
                symmetric) are never taken from it`;

const GROUP_HELP = `
Keys are raw Themis key bytes in files, or base64 text. --base64 applies to the
protected side (sealed, signed or encrypted data): seal/sign/encrypt write it as
base64 text, open/verify/decrypt read base64 text (whitespace and line breaks
allowed). Plaintext is always raw bytes. On a terminal, what open, verify and
decrypt recover is shown with its control characters as visible \\u{…} escapes
(someone else's data must not act on the terminal); a file or a pipe gets
the exact bytes.

Exit codes: 0 success; 1 the operation failed (wrong key, passphrase or context,
invalid signature, corrupted or empty data, write error); 2 usage error (options,
key or passphrase source, unreadable input, existing output without --force,
input over the size limit); 130 interrupted at the prompt.

Examples:
  parley themis keygen --out alice              # alice.priv (0600), alice.pub
  parley themis sign --key alice.priv --in report.pdf --out report.signed
  parley themis verify --key alice.pub --in report.signed --out report.checked.pdf
  parley themis keygen --type symmetric --out backup    # backup.key (0600)
  tar c docs | parley themis seal --key backup.key --context docs > docs.cell
  parley themis open --passphrase-env NOTE_PASS --base64 --in note.b64 > note.txt
${KEY_SOURCES_HELP}`;

/** The `themis` command group, ready for `program.addCommand()`. */
export function themisCommand(): Command {
  const group = new Command('themis')
    .description('Themis developer tools: keygen, seal/open (Secure Cell), sign/verify and encrypt/decrypt (Secure Message)')
    .exitOverride(exitOnCommanderError)
    .configureOutput({ outputError: (text, write) => write(formatCommanderError(text, 'parley themis')) })
    .addHelpText('after', GROUP_HELP);

  subcommand(group, 'keygen', 'generate a Themis key pair (EC P-256 by default, or RSA) or a symmetric key')
    .addOption(new Option('-t, --type <type>', 'key type').choices(KEY_TYPES).default('ec'))
    .addOption(new Option('--bits <bits>', 'RSA modulus size (default 2048)').choices(RSA_BITS))
    .option('-o, --out <prefix>', 'write <prefix>.priv (mode 0600) and <prefix>.pub, or <prefix>.key (mode 0600) for a symmetric key; without it, print the keys in base64')
    .option('-f, --force', 'overwrite existing key files')
    .addHelpText(
      'after',
      `
Files hold the raw Themis key bytes, readable by every Themis implementation.
Without --out the keys are printed in base64 on stdout, the secret one labelled:
they can be used with env:VAR (and public keys with base64:TEXT).

Examples:
  parley themis keygen --out alice
  parley themis keygen --type rsa --bits 4096 --out server
  parley themis keygen --type symmetric --out backup
  export CELL_KEY=$(parley themis keygen --type symmetric | sed -n 's/^symmetric: //p')`,
    )
    .action(runAction((options: KeygenOptions) => keygen(options)));

  for (const [name, description] of [
    ['seal', 'encrypt with Secure Cell (Seal mode) under a symmetric key or a passphrase'],
    ['open', 'decrypt a Secure Cell (Seal mode) made by seal or any Themis implementation'],
  ] as const) {
    const cmd = subcommand(group, name, description)
      .addOption(new Option('-k, --key <source>', 'symmetric key: <file> or env:VAR (see below)').conflicts(['passphraseEnv', 'passphraseFile']))
      .addOption(new Option('--passphrase-env <var>', 'read the passphrase from environment variable <var>').conflicts('passphraseFile'))
      .option('--passphrase-file <file>', "read the passphrase from <file> (its bytes, minus one trailing newline)")
      .option('-c, --context <text>', 'context (UTF-8): not secret, not stored in the cell; opening needs the same')
      // Present only to refuse them with an explanation, never to use them.
      .addOption(new Option('--passphrase [text]').hideHelp())
      .addOption(new Option('--password [text]').hideHelp());
    ioOptions(cmd, name === 'seal' ? 'protect' : 'unprotect', name === 'seal' ? 'write the sealed data as base64 text' : 'read the sealed data as base64 text');
    cmd.addHelpText(
      'after',
      `
Without --key, --passphrase-env or --passphrase-file, the passphrase is asked
on the terminal (without echo${name === 'seal' ? ', twice' : ''}); the input must then come from --in.
A passphrase is never accepted as an argument: other users can see the
command line. Sealed data is ${name === 'seal' ? 'written' : 'read'} as raw bytes unless --base64 is given.
${KEY_SOURCES_HELP}

Examples:
  parley themis ${name === 'seal' ? 'seal --key backup.key --in notes.txt --out notes.cell' : 'open --key backup.key --in notes.cell --out notes.txt'}
  parley themis ${name === 'seal' ? 'seal --passphrase-file ~/.pass --context v1 --base64 < notes.txt' : 'open --passphrase-file ~/.pass --context v1 --base64 < notes.b64'}`,
    );
    cmd.action(runAction((options: CellOptions) => (name === 'seal' ? seal(options) : open(options))));
  }

  const signCmd = subcommand(group, 'sign', 'sign with Secure Message: the output is the data in clear plus its signature').requiredOption(
    '-k, --key <source>',
    'your private key: <file> or env:VAR',
  );
  ioOptions(signCmd, 'protect', 'write the signed message as base64 text').action(runAction((options: SignOptions) => sign(options)));

  const verifyCmd = subcommand(group, 'verify', 'verify a Secure Message signature and output the original data (exit 1 if invalid)').requiredOption(
    '-k, --key <source>',
    "the signer's public key: <file>, env:VAR or base64:TEXT",
  );
  ioOptions(verifyCmd, 'unprotect', 'read the signed message as base64 text')
    .addHelpText('after', '\nNothing is written unless the signature is valid.')
    .action(runAction((options: SignOptions) => verify(options)));

  const encryptCmd = subcommand(group, 'encrypt', "encrypt with Secure Message from your key pair to a peer's public key")
    .requiredOption('-k, --key <source>', 'your private key: <file> or env:VAR')
    .requiredOption('-p, --peer <source>', "the recipient's public key: <file>, env:VAR or base64:TEXT");
  ioOptions(encryptCmd, 'protect', 'write the encrypted message as base64 text').action(runAction((options: PairOptions) => encrypt(options)));

  const decryptCmd = subcommand(group, 'decrypt', 'decrypt a Secure Message sent to you')
    .requiredOption('-k, --key <source>', 'your private key: <file> or env:VAR')
    .requiredOption('-p, --peer <source>', "the sender's public key: <file>, env:VAR or base64:TEXT");
  ioOptions(decryptCmd, 'unprotect', 'read the encrypted message as base64 text').action(runAction((options: PairOptions) => decrypt(options)));

  for (const cmd of [signCmd, verifyCmd, encryptCmd, decryptCmd]) cmd.addHelpText('after', KEY_SOURCES_HELP);
  return group;
}
