/**
 * The Node transport: a `ws` WebSocket without compression, inbound frames
 * bounded by the socket itself (`maxPayload`). Exported from
 * `@parley/sdk/node`; the default transport in Node.
 *
 * @module
 */
import WebSocket from 'ws';
import { SdkError } from './errors.ts';
import { CONNECT_TIMEOUT_MS, INBOUND_FRAME_BYTES_MAX } from './limits.ts';
import type { Transport, TransportFactory } from './transport.ts';

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

export { webSocketTransport as defaultTransport };
