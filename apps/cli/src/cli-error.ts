/**
 * How the `parley` commands fail (`serve`, the chat commands, the `themis`
 * tools, and the parser of each): one line on stderr (`parley: …`),
 * a documented exit code, never a stack trace, never a secret.
 *
 * Exit codes:
 * - 0 success;
 * - 1 the operation failed on the data: decryption or verification failed,
 *   the input is empty or not valid base64, output could not be written;
 * - 2 usage: the invocation must be fixed (options, key or passphrase
 *   sources, unreadable input, existing output without `--force`, input over
 *   the size limit);
 * - 130 interrupted: Ctrl-C at the passphrase prompt, or while
 *   `verify --secret` waits (the attempt is cancelled and the peer told).
 *
 * @module
 */
import type { CommanderError } from 'commander';

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

export type ExitCode = typeof EXIT_FAILED | typeof EXIT_USAGE | typeof EXIT_INTERRUPTED;

/** An expected failure. Its message is shown to the user as is: it must never contain secret material. */
export class CliError extends Error {
  readonly exitCode: ExitCode;

  /** `cause`: the error it explains, for a caller that acts on the kind (never shown). */
  constructor(message: string, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT_USAGE);
}

export function failure(message: string, cause?: unknown): CliError {
  return new CliError(message, EXIT_FAILED, cause === undefined ? undefined : { cause });
}

/** Longest message shown for an unexpected error (they are not ours, so they are cut). */
const UNEXPECTED_MESSAGE_MAX = 200;

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** Writes the one error line for `e` to stderr and returns the exit code to use. */
export function reportError(e: unknown): ExitCode {
  if (e instanceof CliError) {
    process.stderr.write(`parley: ${oneLine(e.message)}\n`);
    return e.exitCode;
  }
  // A bug or an environment failure we did not anticipate: name it, briefly, without the stack.
  const name = e instanceof Error ? e.name : typeof e;
  const rawCode = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  const code = typeof rawCode === 'string' ? ` [${rawCode}]` : '';
  const first = e instanceof Error ? (oneLine(e.message).slice(0, UNEXPECTED_MESSAGE_MAX) || '(no message)') : '';
  process.stderr.write(`parley: unexpected error: ${name}${code}${first === '' ? '' : `: ${first}`}\n`);
  return EXIT_FAILED;
}

/**
 * Wraps a command action: any error becomes one line on stderr and an exit
 * code (set on `process.exitCode`, so pending output is flushed normally).
 */
export function runAction<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      process.exitCode = reportError(e);
    }
  };
}

/**
 * Commander's error text as our one line: `parley: …`, suggestions kept,
 * line breaks folded, and the value of any `--option=value` it echoes
 * removed (it may be a secret typed in the wrong place).
 */
export function formatCommanderError(text: string, commandPath: string): string {
  const body = text
    .replace(/^error:\s*/, '')
    .replace(/'(--?[^'=\s]+)=[^']*'/g, "'$1=…'")
    .replace(/\s*[\r\n]+\s*/g, ' ')
    .trim();
  return `parley: ${body} (see: ${commandPath} --help)\n`;
}

export function exitOnCommanderError(err: CommanderError): never {
  // Help and version requests exit 0; every parse error is a usage error.
  process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
}
