/**
 * The Themis tutorial chat: every connection on `/` runs its own Secure
 * Session with the server; every chat line is unwrapped with the sender's
 * session and re-wrapped for each recipient with *that recipient's* session
 * (the tutorial's reference server wraps with the sender's session, which
 * nobody else can read), prefixed by the sender's name. Lines go to every
 * established client, the sender included, as the reference server does.
 *
 * A failing client — bad hello, bad handshake, garbage frames, flooding,
 * not reading, not answering pings — only ever loses its own connection.
 *
 * A name belongs to the established session that proved its key: a
 * connection that only announces `<name>:<key>` takes nothing from anyone
 * (public keys are public). When its handshake completes, it replaces an
 * established connection of the same name (or one alike: names.ts) and key,
 * and is refused if that name is held with another key by a connection that
 * is still open (one whose close has begun holds nothing).
 *
 * What one client or one host can make the server do is bounded: lines
 * (TUTORIAL_LINES_PER_SECOND) and frames (TUTORIAL_FRAMES_PER_SECOND_MAX)
 * per connection, relaying in all and per address (relay-budget.ts),
 * connections per address (TUTORIAL_CLIENTS_PER_ADDRESS_MAX, counted by
 * address.ts, kept in address-counts.ts), bytes waiting for a reader
 * (send-backlog.ts), and how long a dead peer keeps its name
 * (TUTORIAL_PING_INTERVAL_MS + TUTORIAL_PONG_TIMEOUT_MS: heartbeat.ts).
 *
 * What the server keeps of each connection: client.ts.
 *
 * @module
 */
import type { WebSocket } from 'ws';
import { SecureSession, PublicKey, ThemisError, type KeyPair } from '@parley/themis';
import { equalBytes } from '@parley/themis/hazmat';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { addressKey } from './address.ts';
import { AddressCounts } from './address-counts.ts';
import { live, newClient, type Client, type DropReason } from './client.ts';

/** The error metric's code for each reason a line was not relayed. */
const DROP_CODES: Readonly<Record<DropReason, string>> = { rate: 'RATE_LIMITED', 'too-long': 'LINE_TOO_LONG', busy: 'RELAY_BUSY', 'over-share': 'RELAY_SHARE' };
import { HELLO_MALFORMED, decodeBase64Lenient, encodeBase64, oneRow, parseHello } from './frames.ts';
import { Heartbeat } from './heartbeat.ts';
import { RelayBudget } from './relay-budget.ts';
import { SendBacklog } from './send-backlog.ts';
import { CLOSE, TUTORIAL_LIMITS, type TutorialLimits } from './settings.ts';

const SERVER_ID = new TextEncoder().encode('server');
/** How the server signs its own lines; no client may take this name, nor one alike (names.ts). */
const SERVER_NAME = 'server';
const PROTOCOL = 'tutorial';

export interface TutorialChatOptions {
  keyPair: KeyPair;
  log: Logger;
  metrics: Metrics;
  /** Limits other than those of limits.ts (tests). */
  limits?: Partial<TutorialLimits>;
  /** The clock of the rate limits and the relay budget (tests); timers use real time. */
  now?: () => number;
}

export class TutorialChat {
  readonly #keyPair: KeyPair;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #limits: Readonly<TutorialLimits>;
  readonly #now: () => number;
  readonly #budget: RelayBudget;
  /** Established clients by the skeleton of their name (so no two alike). */
  readonly #bySkeleton = new Map<string, Client>();
  readonly #all = new Set<Client>();
  /** Established clients: the recipients of every line. */
  readonly #chatting = new Set<Client>();
  readonly #perAddress = new AddressCounts();
  readonly #backlog: SendBacklog<Client>;
  readonly #heartbeat: Heartbeat<Client>;
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();

  constructor(options: TutorialChatOptions) {
    this.#keyPair = options.keyPair;
    this.#log = options.log.child({ protocol: PROTOCOL });
    this.#metrics = options.metrics;
    this.#limits = Object.freeze({ ...TUTORIAL_LIMITS, ...options.limits });
    this.#now = options.now ?? Date.now;
    this.#budget = new RelayBudget(this.#limits.relayUnitsPerSecond, this.#now);
    this.#backlog = new SendBacklog(this.#limits, (c, why) => this.#cutOff(c, why));
    this.#heartbeat = new Heartbeat(this.#limits, (c, why) => this.#cutOff(c, why));
  }

  get connectedCount(): number {
    return this.#all.size;
  }

  /** Take over a freshly upgraded WebSocket from `address`. */
  accept(ws: WebSocket, address = ''): void {
    const L = this.#limits;
    if (this.#all.size >= L.clients) {
      ws.close(CLOSE.TRY_AGAIN_LATER, 'server full');
      return;
    }
    const key = addressKey(address);
    const counts = this.#perAddress.peek(key);
    // One address cannot take every place, nor fill the server with connections that never finish a handshake.
    if (counts.established >= L.clientsPerAddress) {
      ws.close(CLOSE.TRY_AGAIN_LATER, `too many connections from this address (at most ${L.clientsPerAddress})`);
      return;
    }
    if (counts.pending >= L.handshakesPerAddress) {
      ws.close(CLOSE.TRY_AGAIN_LATER, 'too many handshakes from this address');
      return;
    }
    this.#perAddress.pend(key);
    const c = newClient(ws, key, L, this.#now);
    this.#all.add(c);
    this.#metrics.connections.inc({ protocol: PROTOCOL });
    c.timer = setTimeout(() => this.#close(c, CLOSE.POLICY, 'handshake timeout'), L.handshakeMs);
    this.#heartbeat.schedule(c);
    ws.on('message', (data, isBinary) => {
      try {
        this.#onFrame(c, data as Buffer, isBinary);
      } catch (err) {
        // A bug here must cost one connection, never the process.
        this.#log.error({ err: err instanceof Error ? err.message : String(err), client: c.name }, 'tutorial frame handler failed');
        this.#close(c, 1011, 'internal error');
      }
    });
    ws.on('pong', () => this.#heartbeat.pong(c));
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
    const parsed = parseHello(text);
    if (!parsed.ok) {
      this.#log.info({ why: parsed.reason }, 'tutorial hello refused');
      this.#close(c, CLOSE.POLICY, parsed.reason);
      return;
    }
    const hello = parsed.hello;
    let key: PublicKey | null;
    try {
      key = new PublicKey(hello.publicKey);
      if (key.kind !== 'ec-public') key = null;
    } catch {
      key = null;
    }
    if (key === null) {
      this.#close(c, CLOSE.POLICY, HELLO_MALFORMED);
      return;
    }
    const refused = this.#nameRefusal(hello.name, hello.skeleton, key);
    if (refused !== null) {
      this.#log.info({ client: hello.name, why: refused }, 'name already connected with a different key; refused');
      this.#close(c, CLOSE.POLICY, refused);
      return;
    }
    c.name = hello.name;
    c.skeleton = hello.skeleton;
    c.publicKey = key;
    const nameBytes = hello.nameBytes;
    c.session = new SecureSession(SERVER_ID, this.#keyPair.privateKey, (id) => (equalBytes(id, nameBytes) ? key : null));
    c.phase = 'handshake';
    this.#log.info({ client: c.name }, 'tutorial client announced');
  }

  /**
   * Why `name` (with `key`) cannot be had now, or null: it, or a name alike,
   * is held with another key by an open connection. A holder whose close has
   * begun (close frame sent or received, or the peer hung up) holds nothing:
   * its user is reconnecting.
   */
  #nameRefusal(name: string, skeleton: string, key: PublicKey): string | null {
    const holder = this.#bySkeleton.get(skeleton);
    if (holder === undefined || !live(holder) || holder.publicKey === null || equalBytes(holder.publicKey, key)) return null;
    return holder.name === name ? 'name in use' : 'name refused: it looks like the name of a connected client';
  }

  /** The handshake proved the key: the name is this connection's now. */
  #established(c: Client): void {
    const refused = c.publicKey === null ? 'name in use' : this.#nameRefusal(c.name, c.skeleton, c.publicKey);
    if (refused !== null) {
      // Another key's session was established first, while this one shook hands.
      this.#close(c, CLOSE.POLICY, refused);
      return;
    }
    const previous = this.#bySkeleton.get(c.skeleton);
    const counts = this.#perAddress.of(c.address);
    const replaced = previous !== undefined && previous.address === c.address ? 1 : 0;
    if (counts.established - replaced >= this.#limits.clientsPerAddress) {
      this.#close(c, CLOSE.TRY_AGAIN_LATER, `too many connections from this address (at most ${this.#limits.clientsPerAddress})`);
      return;
    }
    if (previous !== undefined) this.#close(previous, CLOSE.REPLACED, 'replaced by a new connection');
    this.#unpend(c);
    c.phase = 'chat';
    counts.established++;
    if (c.timer !== null) clearTimeout(c.timer);
    c.timer = null;
    this.#bySkeleton.set(c.skeleton, c);
    this.#chatting.add(c);
    this.#log.info({ client: c.name }, 'tutorial session established');
  }

  #unpend(c: Client): void {
    if (c.phase !== 'hello' && c.phase !== 'handshake') return;
    this.#perAddress.of(c.address).pending--;
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
    if (!c.frames.take()) {
      // A flood: unwrapping it is the cost to bound, and dropping frames
      // unread would leave the session out of step anyway.
      this.#metrics.errors.inc({ protocol: PROTOCOL, code: 'FLOOD' });
      this.#log.info({ client: c.name }, 'tutorial client over TUTORIAL_FRAMES_PER_SECOND_MAX closed');
      this.#close(c, CLOSE.POLICY, 'too many frames');
      return;
    }
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
    if (line.length > this.#limits.lineBytes) {
      // A long paste, read and authenticated like any line: not relayed, and
      // the sender is told why — no strike, it is not a malformed frame.
      this.#drop(c, 'too-long');
      return;
    }
    if (!c.lines.take()) {
      // Too fast (a paste): the line is not relayed, which is not the
      // client's fault as a malformed frame is — no strike; the sender is told.
      this.#drop(c, 'rate');
      return;
    }
    const out = this.#encoder.encode(`${c.name}: ${oneRow(this.#decoder.decode(line))}`);
    const cost = this.#chatting.size * Math.ceil(Math.max(1, out.length) / this.#limits.relayUnitBytes);
    const verdict = this.#budget.take(c.address, cost);
    if (verdict !== 'relay') {
      this.#drop(c, verdict);
      return;
    }
    const started = process.hrtime.bigint();
    this.#metrics.messages.inc({ protocol: PROTOCOL });
    this.#backlog.shed(this.#all.size);
    let delivered = 0;
    for (const r of this.#chatting) {
      if (r.session === null || !live(r)) continue;
      if (this.#send(r, r.session.wrap(out))) delivered++;
    }
    this.#metrics.deliveries.inc({ protocol: PROTOCOL }, delivered);
    this.#metrics.deliveryLatency.observe({ protocol: PROTOCOL }, Number(process.hrtime.bigint() - started) / 1e9);
  }

  #drop(c: Client, why: DropReason): void {
    c.dropped++;
    c.droppedWhy.add(why);
    this.#metrics.errors.inc({ protocol: PROTOCOL, code: DROP_CODES[why] });
    this.#tellDropped(c);
  }

  /** Write a wrapped frame, unless the peer does not read what it is sent (send-backlog.ts): then it is cut off. */
  #send(r: Client, wrapped: Uint8Array): boolean {
    return this.#backlog.send(r, encodeBase64(wrapped));
  }

  /** At most once a second, a line from the server telling the sender how many of its lines were not relayed, and why. */
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
    const reasons = [...c.droppedWhy].map((why) =>
      why === 'rate'
        ? `at most ${this.#limits.linesPerSecond} lines per second`
        : why === 'too-long'
          ? `longer than ${this.#limits.lineBytes} bytes`
          : why === 'over-share'
            ? "over your address's share of the server's relaying"
            : 'the server is busy, try again shortly',
    );
    c.dropped = 0;
    c.droppedWhy.clear();
    const note = `${SERVER_NAME}: ${n} line${n === 1 ? ' was' : 's were'} not delivered: ${reasons.join('; ')}`;
    this.#send(c, c.session.wrap(this.#encoder.encode(note)));
  }

  #invalid(c: Client, why: string): void {
    c.invalid++;
    this.#metrics.errors.inc({ protocol: PROTOCOL, code: 'INVALID_FRAME' });
    this.#log.debug({ client: c.name, why }, 'invalid tutorial frame dropped');
    if (c.invalid > this.#limits.invalidFrames) this.#close(c, CLOSE.POLICY, 'too many invalid frames');
  }

  #close(c: Client, code: number, reason: string): void {
    if (c.phase === 'closed') return;
    this.#forget(c);
    c.ws.close(code, reason);
  }

  /**
   * Drop the connection without a close handshake: for a peer that reads
   * nothing (a close frame would wait behind what it has not read, and its
   * bytes stay in memory until it does) or is gone.
   */
  #cutOff(c: Client, why: string): void {
    if (c.phase === 'closed') return;
    this.#log.info({ client: c.name, why }, 'tutorial client cut off');
    this.#metrics.errors.inc({ protocol: PROTOCOL, code: why.startsWith('too slow') ? 'TOO_SLOW' : 'NO_PONG' });
    this.#forget(c);
    c.ws.terminate();
  }

  #forget(c: Client): void {
    if (c.phase === 'closed') return;
    this.#perAddress.release(c.address, c.phase === 'chat');
    c.phase = 'closed';
    if (c.timer !== null) clearTimeout(c.timer);
    c.timer = null;
    if (c.heartbeat !== null) clearTimeout(c.heartbeat);
    c.heartbeat = null;
    // Only if it is still the holder: a new connection may have taken the name while this one was closing.
    if (this.#bySkeleton.get(c.skeleton) === c) this.#bySkeleton.delete(c.skeleton);
    this.#chatting.delete(c);
    this.#backlog.forget(c);
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
