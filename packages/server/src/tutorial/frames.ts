/**
 * Frames of the Themis "encrypted chat with mobile websocket example"
 * tutorial protocol: WebSocket text frames, no JSON.
 *
 * ```
 * client → server  frame 1   <name>:<base64 of the client's UEC2 public key>
 * client ↔ server  frames    <base64 of a Secure Session handshake message>
 * client → server  frames    <base64 of wrap(UTF-8 chat line)>
 * server → client  frames    <base64 of wrap("<sender name>: <line>")>
 * ```
 *
 * Android sends base64 with line breaks every 76 characters and a trailing
 * newline; iOS none. We accept any ASCII whitespace inside and emit strict
 * base64 (both clients decode leniently).
 *
 * @module
 */
import { TUTORIAL_NAME_BYTES_MAX } from '../limits.ts';

const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;
const WHITESPACE = /[\t\n\r ]+/g;

/** Strict decode after removing whitespace; null if not base64. */
export function decodeBase64Lenient(text: string): Uint8Array | null {
  const compact = text.replace(WHITESPACE, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64_BODY.test(compact)) return null;
  return new Uint8Array(Buffer.from(compact, 'base64'));
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Characters a name may not hold: control characters (Cc), format
 * characters (Cf: bidi overrides, zero-width joiners and spaces, which make
 * two different names look alike or reorder what a client shows), and line
 * or paragraph separators.
 */
const NAME_FORBIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/**
 * Names no client may take: the server's own lines are signed with it.
 * Compared after NFKC and lower-casing, so `Server`, `ｓｅｒｖｅｒ` and
 * `ſerver` are it too.
 */
const RESERVED_NAMES = new Set(['server']);

/**
 * Scripts told apart when a name mixes them (UTS #39 "highly restrictive":
 * one script, or Latin with the scripts written beside it in Chinese,
 * Japanese and Korean). A letter of any other script counts as "other".
 * Common and Inherited characters (digits, punctuation, combining marks)
 * belong to every script.
 */
const SCRIPTS: readonly [string, RegExp][] = (
  ['Latin', 'Cyrillic', 'Greek', 'Armenian', 'Georgian', 'Hebrew', 'Arabic', 'Devanagari', 'Thai', 'Han', 'Hiragana', 'Katakana', 'Hangul', 'Bopomofo', 'Cherokee'] as const
).map((name) => [name, new RegExp(`\\p{Script=${name}}`, 'u')]);
const SCRIPT_NEUTRAL = /[\p{Script=Common}\p{Script=Inherited}]/u;
const MIXES_ALLOWED: readonly ReadonlySet<string>[] = [new Set(['Latin', 'Han', 'Hiragana', 'Katakana']), new Set(['Latin', 'Han', 'Bopomofo']), new Set(['Latin', 'Han', 'Hangul'])];

/** Whether the name's letters come from one script (or an allowed mix): `ѕerver`, with a Cyrillic dze, does not. */
function singleScript(name: string): boolean {
  const used = new Set<string>();
  for (const ch of name) {
    if (SCRIPT_NEUTRAL.test(ch)) continue;
    used.add(SCRIPTS.find(([, re]) => re.test(ch))?.[0] ?? 'other');
  }
  if (used.size <= 1) return true;
  return MIXES_ALLOWED.some((mix) => [...used].every((script) => mix.has(script)));
}

function validName(name: string): boolean {
  return (
    name.length > 0 &&
    name === name.trim() &&
    !NAME_FORBIDDEN.test(name) &&
    // One spelling per name: a decomposed `José` would otherwise be a second `José`.
    name === name.normalize('NFC') &&
    !RESERVED_NAMES.has(name.normalize('NFKC').toLowerCase()) &&
    singleScript(name)
  );
}

export interface Hello {
  name: string;
  nameBytes: Uint8Array;
  publicKey: Uint8Array;
}

/**
 * Parse frame 1. The name is everything before the first `:` (the reference
 * server splits on `:`, so names cannot contain one); it must be non-empty
 * text of at most TUTORIAL_NAME_BYTES_MAX bytes, without leading or trailing
 * white space, control, format or separator characters, in NFC, of one
 * script (see singleScript), and not `server` (see RESERVED_NAMES).
 */
export function parseHello(text: string): Hello | null {
  const colon = text.indexOf(':');
  if (colon <= 0) return null;
  const name = text.slice(0, colon);
  const nameBytes = new TextEncoder().encode(name);
  if (nameBytes.length > TUTORIAL_NAME_BYTES_MAX || !validName(name)) return null;
  const publicKey = decodeBase64Lenient(text.slice(colon + 1));
  if (publicKey === null) return null;
  return { name, nameBytes, publicKey };
}
