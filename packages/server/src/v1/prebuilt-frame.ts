/**
 * Outgoing v1 frames: built once per message, written to every recipient
 * socket, and coalesced per socket within one event-loop turn.
 *
 * Built once: `ws.send(data)` frames the payload again for each socket (a
 * header Buffer plus the payload, two chunks under cork/uncork). For a
 * message going to a thousand sockets that is a thousand identical frames,
 * and the per-socket work was the largest cost in our profiles
 * (bench/SERVER-RESULTS.md). Here `ws`'s own framing (`Sender.frame`, what
 * `ws.send` uses) builds the complete unmasked text frame once, and the same
 * bytes are written straight to each connection's TCP socket.
 *
 * Coalesced: a group commit settles many publishes at once, so one socket
 * is often owed several frames in the same turn (its acks and other
 * members' messages). The first write of a turn corks the socket and the
 * uncork is queued with `process.nextTick`, which runs after the current
 * promise jobs: all of the turn's frames leave in one `writev` — one system
 * call instead of one per frame, and no added delay.
 *
 * Why writing past `ws` is safe: a server-side `ws` Sender writes each frame
 * to the socket synchronously unless it is compressing (permessage-deflate)
 * or reading a `Blob`. Parley's v1 server turns permessage-deflate off and
 * never sends Blobs, so frames `ws` itself writes (pong, close) are on the
 * socket in call order, and a frame written here lands between them exactly
 * as `ws.send` would have put it (`ws`'s own cork/uncork nests inside ours).
 * If `ws` ever changes shape (no `_socket` or no `Sender.frame`), frames go
 * through `ws.send` instead.
 *
 * @module
 */
import * as wsExports from 'ws';
import type { WebSocket } from 'ws';
import { SEND_BUFFER_BYTES_MAX } from '../limits.ts';

/** The part of `ws`'s Sender this module uses (public in `ws`, not in @types/ws). */
interface SenderStatics {
  frame(data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[];
}

interface SocketLike {
  writable: boolean;
  writableCorked: number;
  writableLength: number;
  write(chunk: Uint8Array): boolean;
  cork(): void;
  uncork(): void;
}

// A named export of `ws`'s ESM entry (wrapper.mjs). Not a property of the
// default export there: `WebSocket.Sender` exists only under require('ws').
const Sender = (wsExports as unknown as { Sender?: SenderStatics }).Sender;

/** Whether frames are built once and written past `ws` (false: the `ws.send` fallback). */
export const PREBUILT_FRAMES = Sender !== undefined && typeof Sender.frame === 'function';

const OPCODE_TEXT = 1;
const OPEN = 1;
/** Policy violation (RFC 6455 §7.4.1): the peer does not read what it is sent. */
const CLOSE_TOO_SLOW = 1008;

function socketOf(ws: WebSocket): SocketLike | null {
  const socket = (ws as unknown as { _socket?: SocketLike })._socket;
  return socket !== undefined && typeof socket.write === 'function' && typeof socket.cork === 'function' ? socket : null;
}

const uncork = (socket: SocketLike): void => socket.uncork();

/** A text message framed once, for one or many sockets. */
export class PrebuiltFrame {
  /** The UTF-8 payload (for the fallback path). */
  readonly payload: Buffer;
  /** The complete frame (header ‖ payload), or null if `ws`'s framing is unavailable. */
  readonly wire: Buffer | null;

  constructor(text: string) {
    if (!PREBUILT_FRAMES || Sender === undefined) {
      this.payload = Buffer.from(text, 'utf8');
      this.wire = null;
      return;
    }
    // One buffer for header and payload: the text is encoded once, straight
    // after room for the header, and `ws` writes the header it framed into
    // that room. (Encoding, then concatenating, made two ~payload-sized
    // buffers per message, a measurable share of the server's garbage.)
    const n = Buffer.byteLength(text, 'utf8');
    const room = n < 126 ? 2 : n < 65536 ? 4 : 10; // unmasked header sizes (RFC 6455 §5.2)
    const wire = Buffer.allocUnsafe(room + n);
    wire.write(text, room, 'utf8');
    this.payload = wire.subarray(room);
    const parts = Sender.frame(this.payload, { fin: true, opcode: OPCODE_TEXT, mask: false, readOnly: true, rsv1: false });
    const [head, body] = parts;
    if (parts.length === 2 && head !== undefined && head.length === room && body === this.payload) {
      head.copy(wire, 0);
      this.wire = wire;
    } else {
      this.wire = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    }
  }

  /**
   * Write the frame to one connection. Returns false if it was not open, or
   * if it has more than SEND_BUFFER_BYTES_MAX unread: then it is closed
   * instead (a reader that stopped must not make the server queue without bound).
   */
  sendTo(ws: WebSocket): boolean {
    if (ws.readyState !== OPEN) return false;
    const socket = this.wire === null ? null : socketOf(ws);
    if ((socket === null ? ws.bufferedAmount : socket.writableLength) > SEND_BUFFER_BYTES_MAX) {
      ws.close(CLOSE_TOO_SLOW, 'too slow');
      return false;
    }
    if (socket === null || this.wire === null) {
      ws.send(this.payload, { binary: false });
      return true;
    }
    if (!socket.writable) return false;
    if (socket.writableCorked === 0) {
      socket.cork();
      process.nextTick(uncork, socket);
    }
    socket.write(this.wire);
    return true;
  }
}

/** Bytes written to the connection and not yet handed to the network. */
export function unsentBytes(ws: WebSocket): number {
  const socket = socketOf(ws);
  return socket === null ? ws.bufferedAmount : socket.writableLength;
}

/**
 * Resolves true once at most `belowBytes` are unsent on the connection;
 * false if it closed first, or read nothing for `idleMs` (it is then closed:
 * 1008 "too slow"). A client that keeps reading, however slowly, is waited
 * for: only a standstill counts.
 */
export function drained(ws: WebSocket, belowBytes: number, idleMs: number): Promise<boolean> {
  if (ws.readyState !== OPEN) return Promise.resolve(false);
  if (unsentBytes(ws) <= belowBytes) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    let unsent = unsentBytes(ws);
    let progressAt = Date.now();
    // Polled: a paused sync is rare, and `ws` has no event for "this much left".
    const poll = setInterval(() => {
      if (ws.readyState !== OPEN) return finish(false);
      const now = unsentBytes(ws);
      if (now <= belowBytes) return finish(true);
      if (now < unsent) progressAt = Date.now();
      unsent = now;
      if (Date.now() - progressAt >= idleMs) {
        ws.close(CLOSE_TOO_SLOW, 'too slow');
        finish(false);
      }
    }, DRAIN_POLL_MS);
    const finish = (ok: boolean): void => {
      clearInterval(poll);
      resolve(ok);
    };
  });
}

/** How often a paused sync looks at what is left to send. */
const DRAIN_POLL_MS = 20;

/** Send one text frame to one connection (framed, coalesced like a fan-out frame). */
export function sendText(ws: WebSocket, text: string): void {
  new PrebuiltFrame(text).sendTo(ws);
}
