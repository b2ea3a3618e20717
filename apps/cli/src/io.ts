/**
 * Input and output of the `parley themis` tools: files or stdin/stdout
 * (`-`), bounded reads, strict but whitespace-tolerant base64, and
 * no-clobber writes. Everything stays bytes (`Uint8Array`/`Buffer`) end to
 * end, so binary data passes through unchanged.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { CliError, failure, usageError } from './cli-error.ts';
import { base64TextLimit, formatSize } from './limits.ts';

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
  /** Overwrite an existing file. */
  force: boolean;
  /** The output is secret (a key, a plaintext): files are created (or reset to) mode 0600. */
  secret: boolean;
}

/**
 * Fails early, before any work, when `dest` is a directory, or exists and
 * `force` is off.
 * {@link writeOutput} checks again atomically (exclusive create).
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
  if (!force) throw usageError(`${JSON.stringify(dest)} already exists; use --force to overwrite it`);
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

/** Writes `data` to a file (never clobbering one unless `force`) or, for `-`, to stdout. */
export async function writeOutput(dest: string, data: Uint8Array, options: OutputOptions): Promise<void> {
  if (dest === STDIO) return writeStdout(data);
  let handle;
  try {
    handle = await open(dest, options.force ? 'w' : 'wx', options.secret ? 0o600 : 0o666);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'EEXIST') throw usageError(`${JSON.stringify(dest)} already exists; use --force to overwrite it`);
    throw usageError(`cannot write ${JSON.stringify(dest)}: ${describeFsError(e)}`);
  }
  try {
    // An existing file keeps its mode on open: tighten it before any secret goes in.
    if (options.secret) await handle.chmod(0o600);
    await handle.writeFile(data);
  } catch (e) {
    throw failure(`cannot write ${JSON.stringify(dest)}: ${describeFsError(e)}`);
  } finally {
    await handle.close();
  }
}
