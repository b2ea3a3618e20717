/**
 * Text output of the chat commands: lines on stdout (what was asked for:
 * messages, numbers, results), notes on stderr (what happened: status,
 * hints), so `parley history bob > log` keeps only the conversation.
 *
 * @module
 */
import { STDIO, writeOutput } from './io.ts';

/** One line on stdout (a closed pipe is one clean error, never a crash). */
export function writeLine(text: string): Promise<void> {
  return writeOutput(STDIO, Buffer.from(`${text}\n`, 'utf8'), { force: false, secret: false });
}

/** Several lines on stdout in one write. */
export function writeLines(lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return Promise.resolve();
  return writeOutput(STDIO, Buffer.from(`${lines.join('\n')}\n`, 'utf8'), { force: false, secret: false });
}

/** A note on stderr. */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}
