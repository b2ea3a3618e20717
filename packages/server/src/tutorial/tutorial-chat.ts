/**
 * The Themis tutorial chat: every connection on `/` runs its own Secure
 * Session with the server; every chat line is unwrapped with the sender's
 * session and re-wrapped for each recipient with *that recipient's* session
 * (the tutorial's reference server wraps with the sender's session, which
 * nobody else can read), prefixed by the sender's name. Lines go to every
 * established client, the sender included, as the reference server does.
 *
 * A failing client — bad hello, bad handshake, garbage frames, flooding —
 * only ever loses its own connection.
 *
 * A name belongs to the established session that proved its key: a
 * connection that only announces `<name>:<key>` takes nothing from anyone
 * (public keys are public). When its handshake completes, it replaces an
 * established connection of the same name and key, and is refused if that
 * name is held with another key.
 *
 * @module
 */
import type { WebSocket } from 'ws';
import { SecureSession, PublicKey, ThemisError, type KeyPair } from '@parley/themis';
import { equalBytes } from '@parley/themis/hazmat';
import { TokenBucket } from '../rate-limit.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import {
  INVALID_FRAMES_MAX,
  SEND_BUFFER_BYTES_MAX,
  TUTORIAL_CLIENTS_MAX,
  TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX,
  TUTORIAL_LINE_BYTES_MAX,
  TUTORIAL_LINES_PER_SECOND,
  UNAUTHENTICATED_LIFETIME_MS,
} from '../limits.ts';
import { decodeBase64Lenient, encodeBase64, parseHello } from './frames.ts';

const SERVER_ID = new TextEncoder().encode('server');
/** How the server signs its own lines; no client may take this name (frames.ts). */
const SERVER_NAME = 'server';
const PROTOCOL = 'tutorial';

/** WebSocket close codes used here (RFC 6455 §7.4.1, 4000+ private). */
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  POLICY: 1008,
  TRY_AGAIN_LATER: 1013,
  REPLACED: 4000,
});

type Phase = 'hello' | 'handshake' | 'chat' | 'closed';

interface Client {
  ws: WebSocket;
  /** The peer's address (for the per-address handshake limit). */
  address: string;
  phase: Phase;
  name: string;
  publicKey: PublicKey | null;
  session: SecureSession | null;
  invalid: number;
  lines: TokenBucket;
  /** Lines dropped over the rate limit since the sender was last told. */
  dropped: number;
  /** When the sender was last told about dropped lines (ms), or 0. */
  toldAt: number;
  /** The handshake deadline, then (chat phase) the next dropped-lines notice. */
  timer: NodeJS.Timeout | null;
}

export interface TutorialChatOptions {
  keyPair: KeyPair;
  log: Logger;
  metrics: Metrics;
}

export class TutorialChat {
  readonly #keyPair: KeyPair;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  /** Established clients by name. */
  readonly #byName = new Map<string, Client>();
  readonly #all = new Set<Client>();
  /** Connections still in the hello or handshake phase, per peer address. */
  readonly #pendingByAddress = new Map<string, number>();
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();

  constructor(options: TutorialChatOptions) {
    this.#keyPair = options.keyPair;
    this.#log = options.log.child({ protocol: PROTOCOL });
    this.#metrics = options.metrics;
  }

  get connectedCount(): number {
    return this.#all.size;
  }

  /** Take over a freshly upgraded WebSocket from `address`. */
  accept(ws: WebSocket, address = ''): void {
    if (this.#all.size >= TUTORIAL_CLIENTS_MAX) {
      ws.close(CLOSE.TRY_AGAIN_LATER, 'server full');
      return;
    }
    // One address cannot fill the server with connections that never finish a handshake.
    const pending = this.#pendingByAddress.get(address) ?? 0;
    if (pending >= TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX) {
      ws.close(CLOSE.TRY_AGAIN_LATER, 'too many handshakes from this address');
      return;
    }
    this.#pendingByAddress.set(address, pending + 1);
    const c: Client = { ws, address, phase: 'hello', name: '', publicKey: null, session: null, invalid: 0, lines: new TokenBucket(TUTORIAL_LINES_PER_SECOND), dropped: 0, toldAt: 0, timer: null };
    this.#all.add(c);
    this.#metrics.connections.inc({ protocol: PROTOCOL });
    c.timer = setTimeout(() => this.#close(c, CLOSE.POLICY, 'handshake timeout'), UNAUTHENTICATED_LIFETIME_MS);
    ws.on('message', (data, isBinary) => {
      try {
        this.#onFrame(c, data as Buffer, isBinary);
      } catch (err) {
        // A bug here must cost one connection, never the process.
        this.#log.error({ err: err instanceof Error ? err.message : String(err), client: c.name }, 'tutorial frame handler failed');
        this.#close(c, 1011, 'internal error');
      }
    });
    ws.on('close', () => this.#forget(c));
    ws.on('error', () => this.#forget(c));
  }

  #onFrame(c: Client, data: Buffer, isBinary: boolean): void {
    if (c.phase === 'closed') return;
    if (isBinary) {
      this.#invalid(c, 'binary frame');
      return;
    }
    const text = data.toString('utf8');
    switch (c.phase) {
      case 'hello':
        this.#onHello(c, text);
        return;
      case 'handshake':
        this.#onHandshake(c, text);
        return;
      case 'chat':
        this.#onChat(c, text);
        return;
    }
  }

  #onHello(c: Client, text: string): void {
    const hello = parseHello(text);
    let key: PublicKey | null = null;
    if (hello !== null) {
      try {
        key = new PublicKey(hello.publicKey);
        if (key.kind !== 'ec-public') key = null;
      } catch {
        key = null;
      }
    }
    if (hello === null || key === null) {
      this.#close(c, CLOSE.POLICY, 'expected <name>:<base64 EC public key>');
      return;
    }
    if (this.#heldByOtherKey(hello.name, key)) {
      this.#log.info({ client: hello.name }, 'name already connected with a different key; refused');
      this.#close(c, CLOSE.POLICY, 'name in use');
      return;
    }
    c.name = hello.name;
    c.publicKey = key;
    const nameBytes = hello.nameBytes;
    c.session = new SecureSession(SERVER_ID, this.#keyPair.privateKey, (id) => (equalBytes(id, nameBytes) ? key : null));
    c.phase = 'handshake';
    this.#log.info({ client: c.name }, 'tutorial client announced');
  }

  #heldByOtherKey(name: string, key: PublicKey): boolean {
    const holder = this.#byName.get(name);
    return holder !== undefined && (holder.publicKey === null || !equalBytes(holder.publicKey, key));
  }

  /** The handshake proved the key: the name is this connection's now. */
  #established(c: Client): void {
    if (c.publicKey === null || this.#heldByOtherKey(c.name, c.publicKey)) {
      // Another key's session was established first, while this one shook hands.
      this.#close(c, CLOSE.POLICY, 'name in use');
      return;
    }
    const previous = this.#byName.get(c.name);
    if (previous !== undefined) this.#close(previous, CLOSE.REPLACED, 'replaced by a new connection');
    this.#unpend(c);
    c.phase = 'chat';
    if (c.timer !== null) clearTimeout(c.timer);
    c.timer = null;
    this.#byName.set(c.name, c);
    this.#log.info({ client: c.name }, 'tutorial session established');
  }

  #unpend(c: Client): void {
    if (c.phase !== 'hello' && c.phase !== 'handshake') return;
    const n = (this.#pendingByAddress.get(c.address) ?? 1) - 1;
    if (n <= 0) this.#pendingByAddress.delete(c.address);
    else this.#pendingByAddress.set(c.address, n);
  }

  #onHandshake(c: Client, text: string): void {
    const msg = decodeBase64Lenient(text);
    const session = c.session;
    if (msg === null || session === null) {
      this.#invalid(c, 'handshake frame is not base64');
      return;
    }
    let reply: Uint8Array;
    try {
      reply = session.negotiateReply(msg);
    } catch (err) {
      const code = err instanceof ThemisError ? err.code : 'INTERNAL';
      this.#metrics.errors.inc({ protocol: PROTOCOL, code });
      this.#log.info({ client: c.name, code }, 'tutorial handshake failed');
      this.#close(c, CLOSE.POLICY, 'handshake failed');
      return;
    }
    if (reply.length > 0) c.ws.send(encodeBase64(reply));
    if (session.established()) this.#established(c);
  }

  #onChat(c: Client, text: string): void {
    const session = c.session;
    const msg = decodeBase64Lenient(text);
    if (msg === null || session === null) {
      this.#invalid(c, 'chat frame is not base64');
      return;
    }
    // Every frame is unwrapped, even one over the rate limit: a session
    // that skipped frames would fall out of Secure Session's sequence window
    // and could never read the sender's lines again.
    let line: Uint8Array;
    try {
      line = session.unwrap(msg);
    } catch (err) {
      this.#invalid(c, err instanceof ThemisError ? err.code : 'unwrap failed');
      return;
    }
    if (line.length > TUTORIAL_LINE_BYTES_MAX) {
      this.#invalid(c, 'line too long');
      return;
    }
    if (!c.lines.take()) {
      // Too fast (a paste): the line is not relayed, which is not the
      // client's fault as a malformed frame is — no strike; the sender is told.
      c.dropped++;
      this.#metrics.errors.inc({ protocol: PROTOCOL, code: 'RATE_LIMITED' });
      this.#tellDropped(c);
      return;
    }
    const started = process.hrtime.bigint();
    this.#metrics.messages.inc({ protocol: PROTOCOL });
    const out = this.#encoder.encode(`${c.name}: ${this.#decoder.decode(line)}`);
    let delivered = 0;
    for (const r of this.#all) {
      if (r.phase !== 'chat' || r.session === null) continue;
      if (this.#send(r, r.session.wrap(out))) delivered++;
    }
    this.#metrics.deliveries.inc({ protocol: PROTOCOL }, delivered);
    this.#metrics.deliveryLatency.observe({ protocol: PROTOCOL }, Number(process.hrtime.bigint() - started) / 1e9);
  }

  /** Write a wrapped frame, unless the peer stopped reading: then it is closed (its buffered bytes are bounded). */
  #send(r: Client, wrapped: Uint8Array): boolean {
    if (r.ws.bufferedAmount > SEND_BUFFER_BYTES_MAX) {
      this.#log.info({ client: r.name }, 'tutorial client too slow; closed');
      this.#close(r, CLOSE.POLICY, 'too slow');
      return false;
    }
    r.ws.send(encodeBase64(wrapped));
    return true;
  }

  /** At most once a second, a line from the server telling the sender how many of its lines were not relayed. */
  #tellDropped(c: Client): void {
    if (c.timer !== null || c.phase !== 'chat') return;
    const wait = c.toldAt + 1000 - Date.now();
    if (wait > 0) {
      c.timer = setTimeout(() => {
        c.timer = null;
        this.#tellDropped(c);
      }, wait);
      return;
    }
    if (c.session === null || c.dropped === 0) return;
    c.toldAt = Date.now();
    const n = c.dropped;
    c.dropped = 0;
    const note = `${SERVER_NAME}: ${n} line${n === 1 ? ' was' : 's were'} not delivered: at most ${TUTORIAL_LINES_PER_SECOND} lines per second`;
    this.#send(c, c.session.wrap(this.#encoder.encode(note)));
  }

  #invalid(c: Client, why: string): void {
    c.invalid++;
    this.#metrics.errors.inc({ protocol: PROTOCOL, code: 'INVALID_FRAME' });
    this.#log.debug({ client: c.name, why }, 'invalid tutorial frame dropped');
    if (c.invalid > INVALID_FRAMES_MAX) this.#close(c, CLOSE.POLICY, 'too many invalid frames');
  }

  #close(c: Client, code: number, reason: string): void {
    if (c.phase === 'closed') return;
    this.#forget(c);
    c.ws.close(code, reason);
  }

  #forget(c: Client): void {
    if (c.phase === 'closed') return;
    this.#unpend(c);
    c.phase = 'closed';
    if (c.timer !== null) clearTimeout(c.timer);
    c.timer = null;
    if (this.#byName.get(c.name) === c) this.#byName.delete(c.name);
    this.#all.delete(c);
    c.session?.destroy();
    c.session = null;
    this.#metrics.connections.dec({ protocol: PROTOCOL });
  }

  /** Close every connection (graceful shutdown). */
  closeAll(code: number = CLOSE.GOING_AWAY, reason = 'server shutting down'): void {
    for (const c of [...this.#all]) this.#close(c, code, reason);
  }
}
