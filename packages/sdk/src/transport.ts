/**
 * The socket under a connection, behind a three-method interface so the
 * client does not depend on one WebSocket implementation: `ws` in Node
 * (transport-ws.ts), the platform's `WebSocket` in browsers
 * (transport-browser.ts); the default is picked by the `#default-transport`
 * import (package.json `imports`: `node` → ws, anything else → browser).
 *
 * The protocol uses text frames only (docs/protocol.md, "Framing"); a binary
 * frame from the server closes the socket.
 *
 * @module
 */
import { SdkError } from './errors.ts';

export interface Transport {
  send(text: string): void;
  /** Close with the closing handshake. */
  close(code?: number, reason?: string): void;
}

export interface TransportEvents {
  message(text: string): void;
  /** Called once, when the socket is closed for whatever reason. */
  close(code: number, reason: string): void;
}

/** Opens a socket to `url`; resolves once it is open, rejects with `CLOSED` when it cannot be opened. */
export type TransportFactory = (url: string, events: TransportEvents) => Promise<Transport>;

/**
 * The `/v1` endpoint for a server address: `ws://host:port`, `http://…` and
 * `https://…` are accepted, and a URL without a path gets `/v1` (`/` is the
 * Themis tutorial protocol, whose server reads every message).
 */
export function v1Url(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new SdkError('INVALID_ARGUMENT', `not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new SdkError('INVALID_ARGUMENT', `unsupported URL scheme ${u.protocol}`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1';
  return u.toString();
}
