/**
 * The browser transport: the platform's `WebSocket`. The default transport
 * everywhere but Node (the `#default-transport` import).
 *
 * A browser WebSocket cannot bound an inbound frame before receiving it (no
 * `maxPayload`), so a text frame longer than INBOUND_FRAME_BYTES_MAX
 * characters (each at least one byte) closes the socket once it arrived —
 * the SDK never parses it. Binary frames close the socket too (the protocol
 * is text only), as in the Node transport.
 *
 * @module
 */
import { SdkError } from './errors.ts';
import { CONNECT_TIMEOUT_MS, INBOUND_FRAME_BYTES_MAX } from './limits.ts';
import type { Transport, TransportFactory } from './transport.ts';

const CLOSE_UNSUPPORTED_DATA = 1003;
const CLOSE_TOO_BIG = 1009;

export const browserWebSocketTransport: TransportFactory = (url, events) =>
  new Promise<Transport>((resolve, reject) => {
    const Socket = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    if (Socket === undefined) {
      reject(new SdkError('INVALID_ARGUMENT', 'this platform has no WebSocket: pass options.transport'));
      return;
    }
    let ws: WebSocket;
    try {
      ws = new Socket(url);
    } catch (e) {
      reject(new SdkError('INVALID_ARGUMENT', `cannot open ${url}`, { cause: e }));
      return;
    }
    let opened = false;
    let closed = false;
    const timer = setTimeout(() => {
      if (!opened) ws.close();
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      opened = true;
      clearTimeout(timer);
      resolve({
        send: (text) => ws.send(text),
        close: (code, reason) => ws.close(code, reason),
      });
    };
    ws.onmessage = (ev: MessageEvent<unknown>) => {
      if (closed) return;
      if (typeof ev.data !== 'string') {
        ws.close(CLOSE_UNSUPPORTED_DATA, 'binary frames are not part of the protocol');
        return;
      }
      if (ev.data.length > INBOUND_FRAME_BYTES_MAX) {
        ws.close(CLOSE_TOO_BIG, 'frame too large');
        return;
      }
      events.message(ev.data);
    };
    ws.onclose = (ev: CloseEvent) => {
      clearTimeout(timer);
      if (!opened) {
        reject(new SdkError('CLOSED', `connection to ${url} closed before it opened (${ev.code})`));
        return;
      }
      if (closed) return;
      closed = true;
      events.close(ev.code, ev.reason);
    };
    // An error is followed by close, which reports it.
    ws.onerror = () => undefined;
  });

export { browserWebSocketTransport as defaultTransport };
