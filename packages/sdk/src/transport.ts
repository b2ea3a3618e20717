/**
 * The socket under a connection, behind a three-method interface so the
 * client does not depend on one WebSocket implementation: the default uses
 * `ws` (Node); a browser build can pass one over the global `WebSocket`.
 *
 * The protocol uses text frames only (docs/protocol.md, "Framing"); a binary
 * frame from the server closes the socket.
 *
 * @module
 */
import WebSocket from 'ws';
import { SdkError } from './errors.ts';
import { CONNECT_TIMEOUT_MS, INBOUND_FRAME_BYTES_MAX } from './limits.ts';

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

const CLOSE_UNSUPPORTED_DATA = 1003;
const textDecoder = new TextDecoder();

/** The default transport: a `ws` WebSocket without compression, bounded inbound frames. */
export const webSocketTransport: TransportFactory = (url, events) =>
  new Promise<Transport>((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: INBOUND_FRAME_BYTES_MAX, handshakeTimeout: CONNECT_TIMEOUT_MS });
    } catch (e) {
      reject(new SdkError('INVALID_ARGUMENT', `cannot open ${url}`, { cause: e }));
      return;
    }
    let opened = false;
    ws.on('open', () => {
      opened = true;
      resolve({
        send: (text) => ws.send(text),
        close: (code, reason) => ws.close(code, reason),
      });
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        ws.close(CLOSE_UNSUPPORTED_DATA, 'binary frames are not part of the protocol');
        return;
      }
      events.message(textDecoder.decode(data as Uint8Array));
    });
    ws.on('error', (err) => {
      // Before 'open' the connection attempt failed; after it, 'close' follows.
      if (!opened) reject(new SdkError('CLOSED', `cannot connect to ${url}: ${err.message}`, { cause: err }));
    });
    ws.on('close', (code, reason) => {
      if (!opened) {
        reject(new SdkError('CLOSED', `connection to ${url} closed before it opened (${code})`));
        return;
      }
      events.close(code, textDecoder.decode(reason));
    });
  });

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
