/**
 * Frames of the Themis "encrypted chat with mobile websocket example"
 * tutorial protocol: WebSocket text frames, no JSON.
 *
 * ```
 * client → server  frame 1   <name>:<base64 of the client's UEC2 public key>
 * client ↔ server  frames    <base64 of a Secure Session handshake message>
 * client → server  frames    <base64 of wrap(UTF-8 chat line)>
 * server → client  frames    <base64 of wrap("<sender name>: <line as one row>")>
 * ```
 *
 * The line is relayed as one row (`oneRow`: no line breaks, no control
 * characters), so it cannot look like several lines from several senders.
 *
 * Android sends base64 with line breaks every 76 characters and a trailing
 * newline; iOS none. We accept any ASCII whitespace inside and emit strict
 * base64 (both clients decode leniently).
 *
 * @module
 */
import { checkName } from './names.ts';

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

export interface Hello {
  name: string;
  nameBytes: Uint8Array;
  /** The name's skeleton (names.ts): equal for names that look alike. */
  skeleton: string;
  publicKey: Uint8Array;
}

/** Why a hello is refused when it is not `<name>:<base64 key>` at all. */
export const HELLO_MALFORMED = 'expected <name>:<base64 EC public key>';

/**
 * Parse frame 1. The name is everything before the first `:` (the reference
 * server splits on `:`, so names cannot contain one); names.ts says which
 * names are refused, and why (the reason goes in the close frame). The key
 * must be base64 (any ASCII white space inside).
 */
export function parseHello(text: string): { ok: true; hello: Hello } | { ok: false; reason: string } {
  const colon = text.indexOf(':');
  if (colon < 0) return { ok: false, reason: HELLO_MALFORMED };
  const name = text.slice(0, colon);
  const verdict = checkName(name);
  if (!verdict.ok) return verdict;
  const publicKey = decodeBase64Lenient(text.slice(colon + 1));
  if (publicKey === null) return { ok: false, reason: HELLO_MALFORMED };
  return { ok: true, hello: { name, nameBytes: new TextEncoder().encode(name), skeleton: verdict.skeleton, publicKey } };
}

/** What a line break inside a chat line is relayed as. */
export const LINE_BREAK_MARK = '\u21B5';
/** Line breaks: CR LF (one break), LF, VT, FF, CR, NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR. */
const LINE_BREAK = /\r\n|[\n\v\f\r\u0085\u2028\u2029]/g;
/** The other C0 and C1 control characters but TAB (a terminal's escape sequences move the cursor to another row too). */
const OTHER_CONTROL = /(?![\t\n\v\f\r\u0085])\p{Cc}/gu;

/**
 * A chat line as it is relayed: one row. The tutorial apps append each
 * line they receive after a line break (Android `"\n" + message`, iOS
 * `"\n* " + message`), so a break inside a line would start a row that
 * looks like another sender's line (`ok\nbob: pay me`). Each line break
 * becomes LINE_BREAK_MARK (↵) and every other control character U+FFFD;
 * the rest of the text is unchanged.
 */
export function oneRow(line: string): string {
  return line.replace(LINE_BREAK, LINE_BREAK_MARK).replace(OTHER_CONTROL, '\uFFFD');
}
