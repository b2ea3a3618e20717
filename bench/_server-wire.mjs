// A minimal RFC 6455 WebSocket client over net.Socket, for the server
// benchmark's load generator (bench/server.bench.mjs). It does the opening
// handshake, writes masked frames, and parses the server's (unmasked) frames
// with as little work as possible: a frame that lies entirely inside one
// TCP read is handed over as (buffer, start, end) without copying; only a
// frame split across reads is copied together. No extensions, no
// fragmentation (neither server fragments), ping answered with pong.
//
// The benchmark's receivers only look at the first bytes of each frame
// (a message index or a `seq`), so one load-generator CPU can absorb the
// same delivery rate a full `ws` client could not.
import { Buffer } from 'node:buffer';
import { clearTimeout } from 'node:timers';
import { connect } from 'node:net';
import { randomBytes, randomFillSync } from 'node:crypto';

const OP_TEXT = 1;
const OP_BINARY = 2;
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;

// Masking keys come from a random pool refilled in bulk (one syscall per 1024 frames).
const maskPool = Buffer.allocUnsafe(4096);
let maskOff = maskPool.length;
function maskKey() {
  if (maskOff >= maskPool.length) {
    randomFillSync(maskPool);
    maskOff = 0;
  }
  const o = maskOff;
  maskOff += 4;
  return o;
}

/** Encodes one masked client frame (FIN set). */
export function encodeFrame(opcode, payload) {
  const len = payload.length;
  const hdr = len < 126 ? 6 : len < 65536 ? 8 : 14;
  const out = Buffer.allocUnsafe(hdr + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  const k = maskKey();
  const m0 = maskPool[k], m1 = maskPool[k + 1], m2 = maskPool[k + 2], m3 = maskPool[k + 3];
  out[hdr - 4] = m0;
  out[hdr - 3] = m1;
  out[hdr - 2] = m2;
  out[hdr - 1] = m3;
  let i = 0;
  for (; i + 3 < len; i += 4) {
    out[hdr + i] = payload[i] ^ m0;
    out[hdr + i + 1] = payload[i + 1] ^ m1;
    out[hdr + i + 2] = payload[i + 2] ^ m2;
    out[hdr + i + 3] = payload[i + 3] ^ m3;
  }
  for (; i < len; i++) out[hdr + i] = payload[i] ^ maskPool[k + (i & 3)];
  return out;
}

/** Total length (header + payload) of the unmasked frame starting at `off`, or -1 if the header is incomplete. */
function frameTotal(buf, off, end) {
  const avail = end - off;
  if (avail < 2) return -1;
  const len7 = buf[off + 1] & 0x7f;
  if (len7 < 126) return 2 + len7;
  if (len7 === 126) return avail < 4 ? -1 : 4 + buf.readUInt16BE(off + 2);
  return avail < 10 ? -1 : 10 + Number(buf.readBigUInt64BE(off + 2));
}

export class RawWs {
  /** @type {import('node:net').Socket} */
  sock;
  /**
   * Called for every data frame: (opcode, buf, start, end, now) where
   * buf[start, end) is the payload and `now` is performance.now() at the
   * moment the TCP read that completed the frame was handled.
   */
  onFrame = () => {};
  /** Called once when the connection ends, with the close code if the server sent one. */
  onClose = () => {};
  closed = false;
  closeCode = 0;
  /** Bytes of a frame split across reads. */
  #pend = null;

  constructor(sock) {
    this.sock = sock;
  }

  sendText(str) {
    this.sock.write(encodeFrame(OP_TEXT, Buffer.from(str, 'utf8')));
  }

  sendBinary(buf) {
    this.sock.write(encodeFrame(OP_BINARY, buf));
  }

  /** Pre-encoded frame bytes (from encodeFrame). */
  sendEncoded(frame) {
    this.sock.write(frame);
  }

  destroy() {
    this.sock.destroy();
  }

  _feed(chunk) {
    const now = performance.now();
    let off = 0;
    if (this.#pend !== null) {
      let p = this.#pend;
      let total = frameTotal(p, 0, p.length);
      let took = 0;
      if (total < 0) {
        // Header incomplete: borrow up to 10 more bytes to read it.
        took = Math.min(10, chunk.length);
        p = Buffer.concat([p, chunk.subarray(0, took)]);
        total = frameTotal(p, 0, p.length);
        if (total < 0) {
          this.#pend = p;
          return;
        }
      }
      const have = p.length;
      if (have >= total) {
        // The borrowed bytes completed the frame (and maybe more): give back the excess.
        this.#pend = null;
        this.#emit(p, 0, total, now);
        off = took - (have - total);
      } else {
        const need = total - have;
        if (need > chunk.length - took) {
          this.#pend = Buffer.concat([p, chunk.subarray(took)]);
          return;
        }
        const full = Buffer.concat([p, chunk.subarray(took, took + need)]);
        this.#pend = null;
        this.#emit(full, 0, total, now);
        off = took + need;
      }
    }
    const end = chunk.length;
    while (off < end) {
      const total = frameTotal(chunk, off, end);
      if (total < 0 || off + total > end) {
        this.#pend = Buffer.from(chunk.subarray(off)); // copy: do not pin the whole read buffer
        return;
      }
      this.#emit(chunk, off, off + total, now);
      off += total;
    }
  }

  #emit(buf, off, end, now) {
    const op = buf[off] & 0x0f;
    const len7 = buf[off + 1] & 0x7f;
    const start = off + (len7 < 126 ? 2 : len7 === 126 ? 4 : 10);
    if (op === OP_TEXT || op === OP_BINARY) this.onFrame(op, buf, start, end, now);
    else if (op === OP_PING) this.sock.write(encodeFrame(OP_PONG, buf.subarray(start, end)));
    else if (op === OP_CLOSE) {
      this.closeCode = end - start >= 2 ? buf.readUInt16BE(start) : 1005;
      this.sock.end();
    }
  }
}

/**
 * Opens a WebSocket to ws://127.0.0.1:port/path. Resolves once the server
 * answered 101; bytes after the response go to the frame parser.
 */
export function openWs(port, path, { noDelay = true, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host: '127.0.0.1' });
    const ws = new RawWs(sock);
    let head = Buffer.alloc(0);
    let upgraded = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`WebSocket handshake to ${path} timed out`));
    }, timeoutMs);
    sock.setNoDelay(noDelay);
    sock.on('connect', () => {
      const key = randomBytes(16).toString('base64');
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    sock.on('data', (chunk) => {
      if (upgraded) return ws._feed(chunk);
      head = Buffer.concat([head, chunk]);
      const i = head.indexOf('\r\n\r\n');
      if (i < 0) return;
      clearTimeout(timer);
      const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      if (!/^HTTP\/1\.1 101 /.test(status)) {
        sock.destroy();
        reject(new Error(`WebSocket handshake to ${path} failed: ${status}`));
        return;
      }
      upgraded = true;
      resolve(ws);
      if (head.length > i + 4) ws._feed(head.subarray(i + 4));
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      if (!upgraded) reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      if (!upgraded) reject(new Error(`connection to ${path} closed during the handshake`));
      if (ws.closed) return;
      ws.closed = true;
      ws.onClose(ws.closeCode);
    });
  });
}

/** Runs `fn(i)` for i in [0, n) with at most `concurrency` running at once; resolves to the results. */
export async function pool(n, concurrency, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
  return out;
}
