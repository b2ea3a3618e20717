/**
 * Input and output of the `parley themis` tools: files or stdin/stdout
 * (`-`), bounded reads, strict but whitespace-tolerant base64, and
 * no-clobber writes. Everything stays bytes (`Uint8Array`/`Buffer`) end to
 * end, so binary data passes through unchanged.
 *
 * @module
 */
import { constants as fsConstants, createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { isatty } from 'node:tty';
import { CliError, failure, usageError } from './cli-error.ts';
import { base64TextLimit, formatSize } from './limits.ts';
import { inert } from './render.ts';

/** The name that stands for stdin (as input) or stdout (as output). */
export const STDIO = '-';

/** Short, safe reason for a file-system error (its code, never a stack). */
export function describeFsError(e: unknown): string {
  const code = typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : '';
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a parent is not a directory';
    case 'EEXIST':
      return 'already exists';
    case 'EPIPE':
      return 'broken pipe (the reader stopped reading)';
    default:
      return code === '' ? 'I/O error' : `I/O error (${code})`;
  }
}

function tooLarge(what: string, limit: number): Error {
  return usageError(`${what} is larger than the ${formatSize(limit)} limit`);
}

/** Reads a stream whole, giving up (and destroying it) as soon as it exceeds `limit` bytes. */
async function readBounded(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > limit) {
      stream.destroy();
      throw tooLarge(what, limit);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, total);
}

/**
 * Reads a whole file, at most `limit` bytes. Regular files are size-checked
 * before reading; pipes and devices are bounded while reading.
 */
export async function readFileBounded(path: string, limit: number, what: string): Promise<Buffer> {
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    throw usageError(`cannot read ${what} ${JSON.stringify(path)}: ${describeFsError(e)}`);
  }
  if (info.isDirectory()) throw usageError(`cannot read ${what} ${JSON.stringify(path)}: is a directory`);
  if (info.isFile() && info.size > limit) throw tooLarge(`${what} ${JSON.stringify(path)}`, limit);
  try {
    return await readBounded(createReadStream(path), limit, `${what} ${JSON.stringify(path)}`);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw usageError(`cannot read ${what} ${JSON.stringify(path)}: ${describeFsError(e)}`);
  }
}

/**
 * Decodes base64 text (standard alphabet, padding optional), ignoring
 * whitespace and line breaks anywhere. Returns `null` for anything else, so
 * that corrupted text is refused rather than silently skipped (Node's own
 * decoder drops characters it does not know).
 */
export function decodeBase64(text: string): Uint8Array | null {
  const compact = text.replace(/[\s]+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return null;
  const unpadded = compact.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return null;
  if (compact.length !== unpadded.length && compact.length % 4 !== 0) return null;
  const bytes = Buffer.from(unpadded, 'base64');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Base64 text of `bytes` on one line, with a final newline. */
export function encodeBase64Line(bytes: Uint8Array): Buffer {
  return Buffer.from(`${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64')}\n`, 'latin1');
}

export interface InputOptions {
  /** Largest accepted input in bytes (after base64 decoding). */
  limit: number;
  /** The input is base64 text. */
  base64: boolean;
}

/** Reads the input: a file, or stdin for `-`. */
export async function readInput(source: string, options: InputOptions): Promise<Uint8Array> {
  const readLimit = options.base64 ? base64TextLimit(options.limit) : options.limit;
  const raw = source === STDIO ? await readBounded(process.stdin, readLimit, 'input') : await readFileBounded(source, readLimit, 'input');
  if (!options.base64) return raw;
  const decoded = decodeBase64(raw.toString('latin1'));
  if (decoded === null) throw failure('input is not valid base64');
  if (decoded.length > options.limit) throw tooLarge('input', options.limit);
  return decoded;
}

export interface OutputOptions {
  /** Overwrite an existing regular file. */
  force: boolean;
  /** The output is secret (a key, a plaintext): regular files are created (or reset to) mode 0600. */
  secret: boolean;
  /**
   * On a terminal, show it inert ({@link terminalText}): it is someone
   * else's data (a plaintext), whose control characters could act on the
   * terminal. Default: `secret`.
   */
  inert?: boolean;
}

/**
 * Fails early, before any work, when `dest` is a directory, or is an
 * existing regular file and `force` is off. An existing device or FIFO
 * (`/dev/null`, a pipe from a process substitution) is written to as it is,
 * without `--force`: nothing is replaced there.
 * {@link writeOutput} checks again on what it opens.
 */
export async function checkOutput(dest: string, force: boolean): Promise<void> {
  if (dest === STDIO) return;
  let info;
  try {
    info = await stat(dest);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return;
    throw usageError(`cannot write ${JSON.stringify(dest)}: ${describeFsError(e)}`);
  }
  if (info.isDirectory()) throw usageError(`cannot write ${JSON.stringify(dest)}: is a directory`);
  if (info.isFile() && !force) throw usageError(`${JSON.stringify(dest)} already exists; use --force to overwrite it`);
}

/**
 * Refuses binary output to a terminal (it would garble the screen, or act on
 * it: bytes from someone else can hold escape sequences, and cannot be
 * copied back). `instead` names what the command offers instead.
 */
export function checkBinaryOutput(dest: string, base64: boolean, instead = 'use --out <file> or --base64'): void {
  if (dest === STDIO && !base64 && process.stdout.isTTY === true) {
    throw usageError(`refusing to write binary output to a terminal; ${instead}`);
  }
}

/** Longest UTF-8 sequence of a lead byte (0 when it cannot start one), and the range of its second byte. */
function utf8Lead(b: number): { length: number; lo: number; hi: number } {
  if (b >= 0xc2 && b <= 0xdf) return { length: 2, lo: 0x80, hi: 0xbf };
  if (b === 0xe0) return { length: 3, lo: 0xa0, hi: 0xbf };
  if (b === 0xed) return { length: 3, lo: 0x80, hi: 0x9f }; // no surrogates
  if (b >= 0xe1 && b <= 0xef) return { length: 3, lo: 0x80, hi: 0xbf };
  if (b === 0xf0) return { length: 4, lo: 0x90, hi: 0xbf };
  if (b >= 0xf1 && b <= 0xf3) return { length: 4, lo: 0x80, hi: 0xbf };
  if (b === 0xf4) return { length: 4, lo: 0x80, hi: 0x8f }; // up to U+10FFFF
  return { length: 0, lo: 0, hi: 0 };
}

const textDecoder = new TextDecoder('utf-8');

/**
 * `data` as text that is safe to show on a terminal: UTF-8 text as it is,
 * except that control characters (tab and line breaks, and a carriage
 * return before one, excepted), bidi overrides and the other characters
 * chat shows escaped are written as visible `\u{…}` escapes, and bytes
 * that are not UTF-8 as `\x{…}`. `changed` tells whether anything was
 * escaped (readable text passes unchanged).
 */
export function terminalText(data: Uint8Array): { text: string; changed: boolean } {
  const parts: string[] = [];
  let changed = false;
  let start = 0;
  let i = 0;
  const flush = (end: number): void => {
    if (end <= start) return;
    const text = textDecoder.decode(data.subarray(start, end));
    const safe = text
      .split('\r\n')
      .map((line) => inert(line))
      .join('\r\n');
    if (safe !== text) changed = true;
    parts.push(safe);
  };
  while (i < data.length) {
    const b = data[i] ?? 0;
    if (b < 0x80) {
      i++;
      continue;
    }
    const lead = utf8Lead(b);
    let ok = lead.length > 0 && i + lead.length <= data.length;
    for (let k = 1; ok && k < lead.length; k++) {
      const c = data[i + k] ?? 0;
      ok = k === 1 ? c >= lead.lo && c <= lead.hi : c >= 0x80 && c <= 0xbf;
    }
    if (ok) {
      i += lead.length;
      continue;
    }
    flush(i);
    parts.push(`\\x{${b.toString(16)}}`);
    changed = true;
    i++;
    start = i;
  }
  flush(data.length);
  return { text: parts.join(''), changed };
}

let stdoutGuarded = false;

function writeStdout(data: Uint8Array): Promise<void> {
  // A closed pipe (`… | head`) is reported through the write callback; without
  // a listener the same error would also crash the process with a stack trace.
  if (!stdoutGuarded) {
    process.stdout.on('error', () => undefined);
    stdoutGuarded = true;
  }
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (err) => (err ? reject(failure(`cannot write to standard output: ${describeFsError(err)}`)) : resolve()));
  });
}

/** What is written to a terminal: `data`, inert if asked (with a note on stderr when that changed anything). */
function forTerminal(data: Uint8Array, options: OutputOptions): Uint8Array {
  if (!(options.inert ?? options.secret)) return data;
  const { text, changed } = terminalText(data);
  if (!changed) return data;
  process.stderr.write(
    'parley: note: the output holds control characters or bytes that are not UTF-8, shown as \\u{…} / \\x{…} escapes on this terminal; for the exact bytes, use --out <file> or a pipe\n',
  );
  return Buffer.from(text, 'utf8');
}

/** Flags for an existing file that is written as it is: never created, truncated or made our controlling terminal. */
const WRITE_EXISTING = fsConstants.O_WRONLY | (fsConstants.O_NOCTTY ?? 0);

/**
 * Writes `data` to a file or, for `-`, to stdout.
 *
 * - A new file is created exclusively (mode 0600 when `secret`).
 * - An existing regular file is overwritten only with `force`, and reset to
 *   0600 first when `secret`.
 * - An existing file of any other kind (`/dev/null`, a terminal, a FIFO) is
 *   written to as it is: no `force` needed, its mode never changed (a
 *   device node is shared by every user of the machine).
 * - On a terminal (stdout or a named one), see {@link OutputOptions.inert}.
 *
 * What is opened is checked (not the name beforehand), so a file swapped in
 * meanwhile is treated for what it is.
 */
export async function writeOutput(dest: string, data: Uint8Array, options: OutputOptions): Promise<void> {
  if (dest === STDIO) return writeStdout(process.stdout.isTTY === true ? forTerminal(data, options) : data);
  const cannot = (e: unknown): CliError => usageError(`cannot write ${JSON.stringify(dest)}: ${describeFsError(e)}`);
  const exists = (): CliError => usageError(`${JSON.stringify(dest)} already exists; use --force to overwrite it`);
  let handle: FileHandle;
  let created = true;
  try {
    handle = await open(dest, fsConstants.O_CREAT | fsConstants.O_EXCL | WRITE_EXISTING, options.secret ? 0o600 : 0o666);
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'EEXIST') throw cannot(e);
    created = false;
    const before = await stat(dest).catch(() => undefined);
    if (before?.isFile() === true && !options.force) throw exists();
    try {
      handle = await open(dest, WRITE_EXISTING);
    } catch (e2) {
      throw cannot(e2);
    }
  }
  try {
    const info = await handle.stat();
    let out = data;
    if (info.isFile()) {
      if (!created) {
        if (!options.force) throw exists();
        // An existing file keeps its mode on open: tighten it before any secret goes in.
        if (options.secret) await handle.chmod(0o600);
        await handle.truncate(0);
      }
    } else if (isatty(handle.fd)) {
      out = forTerminal(data, options);
    }
    await handle.writeFile(out);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw failure(`cannot write ${JSON.stringify(dest)}: ${describeFsError(e)}`);
  } finally {
    await handle.close();
  }
}
