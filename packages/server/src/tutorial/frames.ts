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

/** Names no client may take: the server's own lines are signed with it. */
const RESERVED_NAMES = new Set(['server']);

function validName(name: string): boolean {
  return name.length > 0 && name === name.trim() && !NAME_FORBIDDEN.test(name) && !RESERVED_NAMES.has(name.toLowerCase());
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
 * white space, control, format or separator characters, and not `server`.
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
