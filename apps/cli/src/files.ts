/**
 * Files in a direct conversation: `parley send-file <user> <path>`,
 * `parley download <user> <seq>` and `parley delete-file <user> <seq>`, and
 * the same steps for `parley chat`'s `/file` and `/download` commands.
 *
 * The SDK does the cryptography (a fresh Secure Cell key per file, the
 * sealed bytes uploaded as a blob, the key and digest inside the end-to-end
 * encrypted message). This file reads and writes local files: the name a
 * file arrives with is the sender's choice, so it only ever suggests the
 * *last* path component, cleaned, in the current directory, and an existing
 * file is never overwritten without `--force`.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { FILE_BYTES_MAX, SdkError, SEAL_OVERHEAD_BYTES, type ChatMessage, type FileRef, type ParleyClient, type SendResult } from '@parley/sdk';
import { withSession, type Session, type StoreOptions } from './account.ts';
import { failure, usageError } from './cli-error.ts';
import { checkBinaryOutput, checkOutput, readFileBounded, STDIO, writeOutput } from './io.ts';
import { formatSize } from './limits.ts';
import { note } from './output.ts';
import { checkUserId } from './profile.ts';
import { inert } from './render.ts';

export interface SendFileOptions extends StoreOptions {
  name?: string;
  type?: string;
}

export interface DownloadOptions extends StoreOptions {
  output?: string;
  force?: boolean;
}

/** Media types guessed from a file's extension when `--type` is not given (unknown: none is sent). */
const MEDIA_TYPES: Readonly<Record<string, string>> = {
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.html': 'text/html',
  '.json': 'application/json',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
};

/** The media type for `path`: its extension's, or '' when unknown. */
export function guessMediaType(path: string): string {
  return MEDIA_TYPES[extname(path).toLowerCase()] ?? '';
}

/** Bytes of the file a message names (the sealed blob less the Secure Cell overhead). */
export function fileSize(file: FileRef): number {
  return file.blobSize - SEAL_OVERHEAD_BYTES;
}

/**
 * Characters never put in a suggested file name: controls, bidi marks,
 * embeddings, overrides and isolates, line separators, and what Windows
 * refuses in names.
 */
// eslint-disable-next-line no-control-regex -- removing control characters is the point
const NAME_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029<>:"|?*]/gu;
/** Names Windows reserves, with any extension (`nul.txt` too). */
const WINDOWS_RESERVED = /^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
/** Longest suggested name in UTF-8 bytes (file systems take 255). */
const SUGGESTED_NAME_BYTES_MAX = 200;

const encoder = new TextEncoder();

function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/** `text` cut to at most `max` UTF-8 bytes, at a code point boundary. */
function cutUtf8(text: string, max: number): string {
  let out = '';
  let n = 0;
  for (const ch of text) {
    const len = utf8Length(ch);
    if (n + len > max) break;
    out += ch;
    n += len;
  }
  return out;
}

/** `name` cut to at most `max` UTF-8 bytes, its extension kept (up to 16 bytes of it). */
function fitName(name: string, max: number): string {
  if (utf8Length(name) <= max) return name;
  const ext = cutUtf8(extname(name), 16);
  return cutUtf8(name, max - utf8Length(ext)) + ext;
}

/**
 * A local file name for a received file, whose name the sender chose: the
 * last component (after `/` or `\`), unsafe characters dropped, no leading
 * dots or spaces (no hidden files, never `.` or `..`) and no trailing ones,
 * never `-` (stdout), at most SUGGESTED_NAME_BYTES_MAX UTF-8 bytes (the
 * extension kept); `parley-file-<seq>` when nothing usable is left. A name
 * that starts with `-` (which a later `rm *` or `tar cf x.tar *` in that
 * directory would read as an option) or that Windows reserves gets a `_` in
 * front.
 */
export function suggestedName(file: FileRef, seq: number): string {
  const fallback = `parley-file-${seq}`;
  const last = file.name.split(/[/\\]/).pop() ?? '';
  const tidy = (n: string): string => n.replace(/^[. ]+/, '').replace(/[. ]+$/, '');
  let name = tidy(fitName(tidy(last.replace(NAME_UNSAFE, '')), SUGGESTED_NAME_BYTES_MAX));
  if (name === '' || name === STDIO) return fallback;
  if (name.startsWith('-') || WINDOWS_RESERVED.test(name)) name = `_${tidy(fitName(name, SUGGESTED_NAME_BYTES_MAX - 1))}`;
  return name;
}

/** Send the file at `path` in a room; its name is the path's last component unless `name` is given. */
export async function sendFileAt(client: ParleyClient, roomId: string, path: string, options: { name?: string; type?: string } = {}): Promise<{ result: SendResult; name: string; bytes: number }> {
  const data = await readFileBounded(path, FILE_BYTES_MAX, 'file');
  if (data.length === 0) throw failure(`${path} is empty: there is nothing to send`);
  const name = options.name ?? basename(path);
  const result = await client.sendFile(roomId, data, { name, mediaType: options.type ?? guessMediaType(path) });
  return { result, name, bytes: data.length };
}

/** The file message numbered `seq` in a room, or a clear error. */
export async function fileMessage(client: ParleyClient, roomId: string, seq: number): Promise<ChatMessage & { kind: 'file' }> {
  const [entry] = await client.history(roomId, { before: seq + 1, limit: 1 });
  if (entry === undefined || entry.seq !== seq) throw failure(`there is no message #${seq} in this conversation`);
  if (entry.type === 'undecryptable') throw failure(`message #${seq} cannot be decrypted on this device (${entry.reason})`);
  if (entry.type !== 'message' || entry.kind !== 'file') throw failure(`message #${seq} is not a file`);
  return entry;
}

/** How to name another path where `downloadTo` was called: the command's options, or chat's `/download <n> <path>`. */
export const ELSEWHERE_COMMAND = 'save the file elsewhere with -o <path> (add --force to overwrite that path)';

/** Download, check and open the file of message `seq`, and write it to `dest` (a path, or `-` for stdout). */
export async function downloadTo(client: ParleyClient, roomId: string, seq: number, dest: string | undefined, force: boolean, elsewhere = ELSEWHERE_COMMAND): Promise<{ path: string; bytes: number; from: string }> {
  const m = await fileMessage(client, roomId, seq);
  const path = dest ?? suggestedName(m.file, seq);
  checkBinaryOutput(path, false, 'use -o <file>, or pipe it (-o - | less)');
  if (dest === undefined && existsSync(path)) throw usageError(`${JSON.stringify(path)} already exists here; ${elsewhere}`);
  await checkOutput(path, force);
  let data: Uint8Array;
  try {
    data = await client.downloadFile(m.file);
  } catch (e) {
    if (e instanceof SdkError && e.serverCode === 'not_found') throw failure(`the file of message #${seq} is no longer on the server (deleted by its sender, or older than the server keeps files)`);
    throw e;
  }
  try {
    // A received file is plaintext that was end-to-end encrypted: only its owner may read it.
    await writeOutput(path, data, { force, secret: true });
  } finally {
    data.fill(0);
  }
  return { path, bytes: data.length, from: m.sender.userId };
}

function parseSeq(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw usageError(`${JSON.stringify(value)} is not a message number (see 'parley history <user> --json', field seq)`);
  return n;
}

/** Runs `fn` in the existing direct conversation with `peer`, caught up first; a clear error when there is none. */
async function inConversation(peer: string, options: StoreOptions, fn: (s: Session, roomId: string) => Promise<void>): Promise<void> {
  await withSession(options, async (s) => {
    if (peer === s.user) throw usageError(`${peer} is you: give the other user of the conversation`);
    s.ctx.peer = peer;
    await s.client.synced();
    const roomId = await s.client.findDirect(peer);
    if (roomId === null) throw failure(`no conversation with ${peer} yet`);
    await fn(s, roomId);
  });
}

/** `parley send-file <user> <path>`. */
export async function sendFile(peerArg: string, path: string, options: SendFileOptions): Promise<void> {
  const peer = checkUserId(peerArg);
  await withSession(options, async (s) => {
    if (peer === s.user) throw usageError(`${peer} is you: give the user to send the file to`);
    s.ctx.peer = peer;
    await s.client.synced();
    const roomId = await s.client.startDirect(peer);
    const { result, name, bytes } = await sendFileAt(s.client, roomId, path, options);
    // Quoted as the chat and history show a file (inert: its escapes are shown once, not escaped again as JSON would).
    note(`Sent "${inert(name)}" (${formatSize(bytes)}) to ${peer} as message #${result.seq}.`);
    const others = result.skipped.filter((d) => d.userId !== s.user);
    if (others.length > 0) note(`Not delivered to ${others.map((d) => `${d.userId}/${d.deviceId}`).join(', ')} (no usable keys, or an identity key that changed: see 'parley verify ${peer}').`);
  });
}

/** `parley download <user> <seq> [--output <path>] [--force]`. */
export async function download(peerArg: string, seqArg: string, options: DownloadOptions): Promise<void> {
  const peer = checkUserId(peerArg);
  const seq = parseSeq(seqArg);
  // The sender chose the default name: it alone must never pick a file to overwrite.
  if (options.force === true && options.output === undefined) throw usageError('--force needs --output <path>: a file is overwritten only where you say');
  if (options.output !== undefined && options.output !== STDIO) await checkOutput(options.output, options.force === true);
  await inConversation(peer, options, async (s, roomId) => {
    const saved = await downloadTo(s.client, roomId, seq, options.output, options.force === true);
    if (saved.path !== STDIO) note(`Saved ${formatSize(saved.bytes)} from ${saved.from} to ${JSON.stringify(saved.path)}.`);
  });
}

/** `parley delete-file <user> <seq>`: remove from the server the blob of a file this user sent. */
export async function deleteFile(peerArg: string, seqArg: string, options: StoreOptions): Promise<void> {
  const peer = checkUserId(peerArg);
  const seq = parseSeq(seqArg);
  await inConversation(peer, options, async (s, roomId) => {
    const m = await fileMessage(s.client, roomId, seq);
    if (m.sender.userId !== s.user) throw failure(`message #${seq} is a file ${m.sender.userId} sent: only its sender can delete it`);
    if (!(await s.client.deleteFile(m.file))) throw failure(`the file of message #${seq} is no longer on the server`);
    note(`Deleted the file of message #${seq} from the server; the message stays, and whoever has not downloaded the file can no longer.`);
  });
}
