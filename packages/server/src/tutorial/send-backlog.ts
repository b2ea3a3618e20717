/**
 * Readers that do not read. Every tutorial line is wrapped for every
 * recipient and written at once; a recipient that reads nothing would make
 * the server hold its bytes for ever, and a few of them all of its memory.
 * So the bytes waiting for each reader are bounded:
 *
 * - a frame that would take a reader's waiting bytes over
 *   TUTORIAL_SEND_BUFFER_BYTES_MAX is not written: the reader is cut off
 *   (a frame to an idle connection is written whatever its size);
 * - a reader with bytes waiting that reads none of them for
 *   TUTORIAL_SEND_STALL_MS is cut off by a timer (no further line needed);
 * - when more than TUTORIAL_SEND_BUFFER_BYTES_TOTAL_MAX wait for all readers
 *   together, those holding more than an equal share are cut off.
 *
 * Bytes already in the kernel's socket buffer are not counted (Node cannot
 * set SO_SNDBUF): they are bounded by the kernel, per socket.
 *
 * @module
 */
import type { WebSocket } from 'ws';
import { unsentBytes } from '../v1/prebuilt-frame.ts';
import type { TutorialLimits } from './settings.ts';

/** What the backlog needs of a connection: its socket (readers are told apart by identity). */
export interface Reader {
  readonly ws: WebSocket;
}

/** How far a backlogged reader had read when last looked at, and when that last moved (ms). */
interface Progress {
  mark: number;
  at: number;
}

/**
 * How far a connection has read: bytes handed to the network (the socket's
 * bytes written less those still queued); or, without a socket to ask, less
 * the bytes unsent (then only a shrinking queue counts as reading).
 */
function readMark(ws: WebSocket): number {
  const socket = (ws as unknown as { _socket?: { bytesWritten?: unknown; writableLength?: unknown } })._socket;
  if (typeof socket?.bytesWritten === 'number' && typeof socket.writableLength === 'number') return socket.bytesWritten - socket.writableLength;
  return -unsentBytes(ws);
}

/** The size of a text frame on the wire: its header (2, 4 or 10 bytes, unmasked: RFC 6455 §5.2) and the ASCII text. */
const wireBytes = (frame: string): number => frame.length + (frame.length < 126 ? 2 : frame.length < 65_536 ? 4 : 10);

export class SendBacklog<R extends Reader> {
  readonly #limits: Pick<TutorialLimits, 'sendBufferBytes' | 'sendBufferBytesTotal' | 'sendStallMs'>;
  readonly #cutOff: (r: R, why: string) => void;
  /** Readers with bytes waiting, looked at every #tick ms while there are any. */
  readonly #waiting = new Map<R, Progress>();
  readonly #tick: number;
  #timer: NodeJS.Timeout | null = null;

  /** `cutOff` drops a reader's connection and must call {@link forget} for it. */
  constructor(limits: Pick<TutorialLimits, 'sendBufferBytes' | 'sendBufferBytesTotal' | 'sendStallMs'>, cutOff: (r: R, why: string) => void) {
    this.#limits = limits;
    this.#cutOff = cutOff;
    // A tenth of the stall time: a stalled reader is cut off at most 10 % late.
    this.#tick = Math.max(10, Math.min(1000, limits.sendStallMs / 10));
  }

  /** Write an ASCII text frame to `r`, unless that would take its waiting bytes over the limit: then `r` is cut off and false returned. */
  send(r: R, frame: string): boolean {
    const unsent = unsentBytes(r.ws);
    if (unsent > 0 && unsent + wireBytes(frame) > this.#limits.sendBufferBytes) {
      this.#cutOff(r, 'too slow: send buffer full');
      return false;
    }
    r.ws.send(frame);
    if (unsentBytes(r.ws) > 0 && !this.#waiting.has(r)) {
      this.#waiting.set(r, { mark: readMark(r.ws), at: Date.now() });
      this.#timer ??= setInterval(() => this.#check(), this.#tick);
    }
    return true;
  }

  /**
   * Before a line goes out: when more than the total limit waits for all
   * readers, cut off every one holding more than an equal share of it among
   * `connected` connections (there is one at least).
   */
  shed(connected: number): void {
    let total = 0;
    for (const r of this.#waiting.keys()) total += unsentBytes(r.ws);
    if (total <= this.#limits.sendBufferBytesTotal) return;
    const share = this.#limits.sendBufferBytesTotal / Math.max(1, connected);
    for (const r of [...this.#waiting.keys()]) if (unsentBytes(r.ws) > share) this.#cutOff(r, 'too slow: over its share of the total send buffer');
  }

  /** `r` is gone. */
  forget(r: R): void {
    this.#waiting.delete(r);
    this.#stopIfIdle();
  }

  /** Cut off the readers with bytes waiting that have read none of them for the stall time. */
  #check(): void {
    const now = Date.now();
    for (const [r, progress] of this.#waiting) {
      if (unsentBytes(r.ws) === 0) {
        this.#waiting.delete(r);
        continue;
      }
      const mark = readMark(r.ws);
      if (mark > progress.mark) {
        progress.mark = mark;
        progress.at = now;
      } else if (now - progress.at >= this.#limits.sendStallMs) {
        this.#cutOff(r, 'too slow: read nothing for TUTORIAL_SEND_STALL_MS');
      }
    }
    this.#stopIfIdle();
  }

  #stopIfIdle(): void {
    if (this.#waiting.size > 0 || this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
  }
}
