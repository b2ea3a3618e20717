/**
 * The address a connection comes from, as the per-address limits see it
 * (failed logins and key-backup fetches per user and address, tutorial
 * handshakes per address).
 *
 * Behind a reverse proxy every connection comes from the proxy, so one
 * address would be everyone's: bad signatures sent in a user's name from
 * anywhere would lock that user out everywhere. With `trustProxy` (set only
 * when a proxy the operator runs is the sole way in) the address is the one
 * that proxy appended to `X-Forwarded-For` — the last entry: the ones before
 * it are whatever the client wrote. Without it the header is ignored, so a
 * client cannot pick its own address.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** Longest `X-Forwarded-For` header looked at (a proxy chain of a few hops; anything longer is not one). */
const FORWARDED_FOR_CHARS_MAX = 1024;

export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const socketAddress = req.socket.remoteAddress ?? '';
  if (!trustProxy) return socketAddress;
  const header = req.headers['x-forwarded-for'];
  // Several headers: the proxy's is the last one.
  const value = Array.isArray(header) ? header[header.length - 1] : header;
  if (value === undefined || value.length > FORWARDED_FOR_CHARS_MAX) return socketAddress;
  const last = value.split(',').pop()?.trim() ?? '';
  return isIP(last) !== 0 ? last : socketAddress;
}
