/**
 * Where Secure Cell passphrases come from. Never the command line: the
 * arguments of a process are visible to every user of the machine (`ps`,
 * `/proc/<pid>/cmdline`) and end up in shell history. The sources are
 *
 * - `--passphrase-env VAR`: the value of an environment variable (UTF-8);
 * - `--passphrase-file FILE`: the file's bytes, minus one trailing newline;
 * - an interactive prompt (no echo) when stdin is a terminal.
 *
 * @module
 */
import { CliError, EXIT_INTERRUPTED, usageError } from './cli-error.ts';
import { readFileBounded } from './io.ts';
import { formatSize, MAX_PASSPHRASE_BYTES } from './limits.ts';

export interface PassphraseOptions {
  passphraseEnv?: string;
  passphraseFile?: string;
}

function checkLength(bytes: Uint8Array, where: string): Uint8Array {
  if (bytes.length === 0) throw usageError(`${where} is empty`);
  if (bytes.length > MAX_PASSPHRASE_BYTES) throw usageError(`${where} is longer than the ${formatSize(MAX_PASSPHRASE_BYTES)} limit`);
  return bytes;
}

/** Strips one trailing `\n` or `\r\n` (what editors and `echo` add). */
function stripNewline(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  if (bytes[end - 1] === 0x0a) end--;
  if (end < bytes.length && bytes[end - 1] === 0x0d) end--;
  return bytes.subarray(0, end);
}

/** The option names to mention in messages (commands with two passphrases have two pairs). */
export interface PassphraseFlags {
  env: string;
  file: string;
}

const DEFAULT_FLAGS: PassphraseFlags = { env: '--passphrase-env', file: '--passphrase-file' };

/** Reads the passphrase from the environment variable or file named in `options`; `undefined` when neither is given. */
export async function passphraseFromOptions(options: PassphraseOptions, flags: PassphraseFlags = DEFAULT_FLAGS): Promise<Uint8Array | undefined> {
  if (options.passphraseEnv !== undefined) {
    const name = options.passphraseEnv;
    const value = process.env[name];
    if (value === undefined) throw usageError(`${flags.env}: environment variable ${name} is not set`);
    return checkLength(Buffer.from(value, 'utf8'), `the passphrase in ${name}`);
  }
  if (options.passphraseFile !== undefined) {
    const raw = await readFileBounded(options.passphraseFile, MAX_PASSPHRASE_BYTES + 2, flags.file);
    return checkLength(stripNewline(raw), `the passphrase in ${JSON.stringify(options.passphraseFile)}`);
  }
  return undefined;
}

/** Whether a passphrase can be asked for interactively. */
export function canPrompt(): boolean {
  return process.stdin.isTTY === true;
}

/** Reads one line from the terminal without echoing it. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Echo off before the prompt shows, so that nothing typed early is echoed.
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let chars: string[] = [];
    const finish = (error: CliError | undefined): void => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (error === undefined) resolve(chars.join(''));
      else reject(error);
      chars = [];
    };
    const onEnd = (): void => finish(usageError('no passphrase entered'));
    const onData = (chunk: string): void => {
      if (chunk.startsWith('\u001b')) return; // arrow keys and other escape sequences
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish(undefined);
        if (ch === '\u0003') return finish(new CliError('interrupted', EXIT_INTERRUPTED)); // Ctrl-C
        if (ch === '\u0004') return finish(chars.length === 0 ? usageError('no passphrase entered') : undefined); // Ctrl-D
        if (ch === '\u007f' || ch === '\b') chars.pop();
        else if (ch === '\u0015') chars = []; // Ctrl-U
        else if (ch >= ' ') chars.push(ch);
        if (chars.length > MAX_PASSPHRASE_BYTES) return finish(usageError(`the passphrase is longer than the ${formatSize(MAX_PASSPHRASE_BYTES)} limit`));
      }
      return undefined;
    };
    stdin.on('data', onData);
    stdin.on('end', onEnd);
  });
}

/** Tries at a prompt: a mistyped repeat of a new passphrase, or a wrong one (the store's), is asked again until this many. */
export const PASSPHRASE_TRIES = 3;

/** A new passphrase shorter than this many characters gets a warning (never a refusal: it is the user's choice). */
export const PASSPHRASE_WARN_BELOW = 8;

/** Characters (code points) in UTF-8 `bytes`, counted without making a string of a secret. */
export function characterCount(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) if ((b & 0xc0) !== 0x80) n++;
  return n;
}

/** "try again (2 tries left)" after the `attempt`-th of {@link PASSPHRASE_TRIES}. */
export function triesLeft(attempt: number): string {
  const left = PASSPHRASE_TRIES - attempt;
  return `try again (${left} ${left === 1 ? 'try' : 'tries'} left)`;
}

/** Asks for the passphrase on the terminal; with `confirm`, twice, and asks again after a mismatch. */
export function promptPassphrase(confirm: boolean): Promise<Uint8Array> {
  return promptPassphraseAs('Passphrase', confirm);
}

/**
 * The same, naming the passphrase (`label`, capitalised, e.g. "Backup
 * passphrase"): the prompt is `label: `, the confirmation `Repeat label: `.
 * A repeat that does not match starts over, up to {@link PASSPHRASE_TRIES}
 * times: a typo should not end the command.
 */
export async function promptPassphraseAs(label: string, confirm: boolean): Promise<Uint8Array> {
  for (let attempt = 1; ; attempt++) {
    const first = await promptHidden(`${label}: `);
    const bytes = checkLength(Buffer.from(first, 'utf8'), 'the passphrase');
    if (!confirm) return bytes;
    const second = await promptHidden(`Repeat ${label.charAt(0).toLowerCase()}${label.slice(1)}: `);
    if (second === first) return bytes;
    bytes.fill(0);
    if (attempt === PASSPHRASE_TRIES) throw usageError(`the passphrases do not match (${PASSPHRASE_TRIES} tries)`);
    process.stderr.write(`The passphrases do not match; ${triesLeft(attempt)}.\n`);
  }
}
