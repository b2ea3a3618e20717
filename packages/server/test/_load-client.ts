/**
 * A lean Parley v1 client for the load-and-fault test (load-fault.test.ts).
 *
 * Unlike the functional test client it keeps no frame history: it records,
 * per room, a 32-bit fingerprint of every entry it learned (live `msg`,
 * `sync` replies, and its own acknowledged messages), publishes a planned
 * list of messages through a small window with client-side pacing, and
 * survives disconnects (its own random ones and the server's death) by
 * reconnecting, re-authenticating (access token, refresh token or a signed
 * login), syncing from its last contiguous seq per room and re-publishing
 * every message it has no `ack` for, with the same clientId.
 *
 * Everything it notices that breaks the protocol's promises goes into a
 * shared {@link Violations} list, tagged with the invariant (numbered as in
 * load-fault.test.ts). Besides the final comparison with the stored log, it
 * checks as it goes that live deliveries on a connection come in seq order
 * and without gaps (see `Conn.got`), so that a lost live delivery is caught
 * even though a later sync would repair it.
 */
import { sign, type KeyObject } from 'node:crypto';
import WebSocket from 'ws';
import { generateEd25519 } from './_v1-client.ts';
import { HISTORY_PAGE_MAX, SYNC_ENTRIES_PER_ROOM_MAX } from '../src/limits.ts';

export interface Frame {
  t: string;
  re?: string;
  [key: string]: unknown;
}

/** A room entry as the server sends it (`msg` without `t`, or a history entry). */
export interface Entry {
  roomId: string;
  seq: number;
  kind: string;
  from: { userId: string; deviceId: string };
  clientId: string;
  body: string;
  ts: number;
}

// ---------------------------------------------------------------- findings

/** Invariant violations, counted per invariant with the first few examples. */
export class Violations {
  readonly byInvariant = new Map<string, { count: number; examples: string[] }>();

  add(invariant: string, detail: string): void {
    let v = this.byInvariant.get(invariant);
    if (v === undefined) this.byInvariant.set(invariant, (v = { count: 0, examples: [] }));
    v.count++;
    if (v.examples.length < 10) v.examples.push(detail);
  }

  get total(): number {
    let n = 0;
    for (const v of this.byInvariant.values()) n += v.count;
    return n;
  }

  summary(): string {
    const lines: string[] = [];
    for (const [name, v] of this.byInvariant) lines.push(`${name}: ${v.count}\n    ${v.examples.join('\n    ')}`);
    return lines.join('\n');
  }
}

export interface LoadStats {
  connects: number;
  connectFailures: number;
  randomDisconnects: number;
  /** Connections that closed without the client asking (the server died or dropped them). */
  droppedByServer: number;
  authToken: number;
  authRefresh: number;
  authLogin: number;
  authRegister: number;
  /** Refresh tokens rejected after the reply that would have replaced them was lost (expected after a crash). */
  refreshLostReply: number;
  publishes: number;
  republishes: number;
  acks: number;
  duplicateAcks: number;
  rateLimited: number;
  liveMsgs: number;
  /** `msg` frames received while a sync was running (sync replies and live ones mixed). */
  syncWindowMsgs: number;
  /** `msg` frames for a seq already known (deduplicated away). */
  duplicateMsgs: number;
  syncs: number;
  /** Sync rounds that continued a sync cut at SYNC_ENTRIES_PER_ROOM_MAX. */
  syncContinuations: number;
  /** Gap-check epochs completed (see `Conn.got`). */
  gapCheckedEpochs: number;
  /** Why connection attempts failed (first line of the error), counted. */
  connectErrors: Map<string, number>;
  /** How long each successful (re)connection took, from the first attempt to an authenticated session (ms). */
  connectMs: number[];
  /** How long each sync request took to be answered (ms). */
  syncMs: number[];
}

export function newStats(): LoadStats {
  return {
    connects: 0,
    connectFailures: 0,
    randomDisconnects: 0,
    droppedByServer: 0,
    authToken: 0,
    authRefresh: 0,
    authLogin: 0,
    authRegister: 0,
    refreshLostReply: 0,
    publishes: 0,
    republishes: 0,
    acks: 0,
    duplicateAcks: 0,
    rateLimited: 0,
    liveMsgs: 0,
    syncWindowMsgs: 0,
    duplicateMsgs: 0,
    syncs: 0,
    gapCheckedEpochs: 0,
    syncContinuations: 0,
    connectMs: [],
    syncMs: [],
    connectErrors: new Map(),
  };
}

// ---------------------------------------------------------------- content

const FILLER = 'lorem-ipsum-dolor-sit-amet-consectetur-adipiscing'; // ~ a short ciphertext's size

/** The body a test message carries: it names its sender and clientId, so any receiver can check it. */
export function messageBody(userId: string, deviceId: string, clientId: string): string {
  return Buffer.from(`${userId}/${deviceId}/${clientId}/${FILLER}`, 'utf8').toString('base64');
}

/** FNV-1a over an entry's content; never 0 (0 marks "unknown" in a {@link RoomView}). */
export function entryHash(kind: string, userId: string, deviceId: string, clientId: string, body: string): number {
  let h = 0x811c9dc5;
  const s = `${kind}\n${userId}\n${deviceId}\n${clientId}\n${body}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 1;
}

export const hashOf = (e: Entry): number => entryHash(e.kind, e.from.userId, e.from.deviceId, e.clientId, e.body);

/** What one client knows of one room: a fingerprint per seq (deduplicated by seq). */
export class RoomView {
  hashes = new Int32Array(256);
  /** Distinct seqs known. */
  count = 0;
  /** Every seq in 1..watermark is known. */
  watermark = 0;
  maxSeq = 0;

  /** 'new', 'same' (a duplicate delivery with identical content) or 'conflict' (same seq, different content). */
  record(seq: number, hash: number): 'new' | 'same' | 'conflict' {
    if (seq >= this.hashes.length) {
      const bigger = new Int32Array(Math.max(seq + 1, this.hashes.length * 2));
      bigger.set(this.hashes);
      this.hashes = bigger;
    }
    const old = this.hashes[seq] ?? 0;
    if (old !== 0) return old === hash ? 'same' : 'conflict';
    this.hashes[seq] = hash;
    this.count++;
    if (seq > this.maxSeq) this.maxSeq = seq;
    while (this.watermark + 1 < this.hashes.length && (this.hashes[this.watermark + 1] ?? 0) !== 0) this.watermark++;
    return 'new';
  }

  at(seq: number): number {
    return this.hashes[seq] ?? 0;
  }
}

// ---------------------------------------------------------------- client

export interface Target {
  /** Where the server is now (it may move when restarted). */
  url: string;
  /** What the server is going through (labels failed connection attempts in the report). */
  phase?: string;
}

export interface OutMsg {
  roomId: string;
  clientId: string;
  body: string;
  sends: number;
}

interface Conn {
  readonly ws: WebSocket;
  readonly id: number;
  open: boolean;
  closedByUs: boolean;
  readonly pending: Map<string, { resolve: (f: Frame) => void; reject: (e: Error) => void }>;
  /** Publishes sent on this connection and not yet answered, by request id. */
  readonly inflight: Map<string, OutMsg>;
  /** Syncs running; while > 0, `msg` frames are not counted as live. */
  syncing: number;
  readonly idleWaiters: (() => void)[];
  /** Highest seq delivered live (outside sync windows) on this connection, per room. */
  readonly lastLive: Map<string, number>;
  /**
   * Live-gap check, in epochs that each start with a sync chain (a sync and the
   * rounds that continue it). `got` holds every seq received in the epoch (msg or
   * ack), per room. Once the chain is answered, `gapCheckFrom` holds, per room it
   * covered, the seq it started after: from then on the connection must receive
   * every later entry (live, or as the ack of its own publish), so a missing seq
   * below one received is a lost live delivery. A room first seen later in the
   * epoch (joined) is checked from the first seq received. The epoch ends (gaps
   * are collected) when the connection closes or a new sync chain starts, since
   * that sync would fill the holes.
   */
  readonly got: Map<string, Set<number>>;
  chainFrom: Record<string, number> | null;
  chainRooms: string[] | null;
  gapCheckFrom: Map<string, number> | null;
  readonly closed: Promise<void>;
  /** `target.phase` when the connection was opened. */
  readonly openedIn: string;
  closeCode: number;
}

/** Seqs a connection did not receive although it received a later one (see `Conn.got`). */
export interface LiveGap {
  connId: number;
  roomId: string;
  seq: number;
  /** clientIds of this connection's publishes still unanswered when it closed (their entries are excused). */
  unanswered: ReadonlySet<string>;
  /** Context for the report. */
  context: string;
}

export interface LoadClientOptions {
  target: Target;
  stats: LoadStats;
  violations: Violations;
  rng: () => number;
  /** Publishes awaiting an ack at once, per connection. */
  window: number;
  /** Client-side pacing (token bucket; stays under the server's MESSAGES_PER_SECOND). */
  ratePerSecond: number;
  burst: number;
  /** Chance, after each publish, of dropping the connection a moment later. */
  disconnectProbability: number;
  /** Called on every first ack of a clientId. */
  onAck?: () => void;
  /** Request timeout (ms); a timeout is a violation (the server stalled). */
  requestTimeoutMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class LoadClient {
  readonly userId: string;
  readonly deviceId = 'd1';
  readonly #privateKey: KeyObject;
  readonly identityKeyB64: string;
  readonly #o: LoadClientOptions;
  #accessToken: string | null = null;
  #refreshToken: string | null = null;
  /** A refresh was sent and its reply never came: the token may be spent. */
  #refreshUncertain = false;

  /** What this device knows of each room. */
  readonly rooms = new Map<string, RoomView>();
  /** clientId → where the server said it stored it. */
  readonly acked = new Map<string, { roomId: string; seq: number }>();
  /** Messages this client will publish, in plan order. */
  readonly plan: OutMsg[] = [];
  /** Entries a connection missed while receiving later ones (checked against the log at the end). */
  readonly liveGaps: LiveGap[] = [];
  /** Publishes the server refused for good (a violation each). */
  readonly failed: OutMsg[] = [];
  #nextPlan = 0;
  readonly #retry: OutMsg[] = [];
  /** Issued and not acked (in flight on some connection or waiting for a resend). */
  readonly #outstanding = new Set<OutMsg>();
  #conn: Conn | null = null;
  #connIds = 0;
  #reqIds = 0;
  #wake: (() => void) | null = null;
  #tokens: number;
  #tokensAt = performance.now();
  /** Random disconnects on (off for setup and the final sync). */
  chaos = false;

  constructor(userId: string, options: LoadClientOptions) {
    this.userId = userId;
    this.#o = options;
    this.#tokens = options.burst;
    // Public key encoded by the keygen job: see newDeviceKey in _v1-client.ts (a Node 20 deadlock).
    const { privateKey, publicKey: jwk } = generateEd25519();
    if (typeof jwk.x !== 'string') throw new Error('Ed25519 JWK without x');
    this.#privateKey = privateKey;
    this.identityKeyB64 = Buffer.from(jwk.x, 'base64url').toString('base64');
  }

  get connected(): boolean {
    return this.#conn !== null && this.#conn.open;
  }

  get pendingCount(): number {
    return this.#outstanding.size + (this.plan.length - this.#nextPlan);
  }

  /** Add a message to publish (to `roomId`, with a unique clientId). */
  addToPlan(roomId: string, clientId: string): void {
    this.plan.push({ roomId, clientId, body: messageBody(this.userId, this.deviceId, clientId), sends: 0 });
  }

  #room(roomId: string): RoomView {
    let v = this.rooms.get(roomId);
    if (v === undefined) this.rooms.set(roomId, (v = new RoomView()));
    return v;
  }

  #signal(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  #waitSignal(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.#wake === done) this.#wake = null;
        resolve();
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.#wake = done;
    });
  }

  // ------------------------------------------------------------ transport

  #open(url: string): Promise<Conn> {
    // The server accepts one connection per event-loop turn (libuv >= 1.45), and a turn
    // under this load can take most of a second: a short handshake timeout only adds
    // abandoned connections to its accept queue.
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 30_000 });
    let onClosed = (): void => undefined;
    const closed = new Promise<void>((r) => (onClosed = r));
    const conn: Conn = {
      ws,
      id: ++this.#connIds,
      open: false,
      closedByUs: false,
      pending: new Map(),
      inflight: new Map(),
      syncing: 0,
      idleWaiters: [],
      lastLive: new Map(),
      got: new Map(),
      chainFrom: null,
      chainRooms: null,
      gapCheckFrom: null,
      closed,
      openedIn: this.#o.target.phase ?? '',
      closeCode: 0,
    };
    let failure = 'closed before open';
    ws.on('error', (err) => {
      failure = `closed before open: ${err.message}`;
    }); // 'close' follows
    ws.on('message', (data: Buffer) => this.#onFrame(conn, JSON.parse(data.toString('utf8')) as Frame));
    ws.on('close', (code: number) => {
      conn.closeCode = code;
      this.#onClose(conn);
      onClosed();
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        conn.open = true;
        resolve(conn);
      });
      ws.once('close', () => reject(new Error(failure)));
    });
  }

  #request(conn: Conn, frame: Record<string, unknown>): Promise<Frame> {
    const id = `r${++this.#reqIds}`;
    if (!conn.open) return Promise.reject(new Error('connection closed'));
    return new Promise<Frame>((resolve, reject) => {
      const timeoutMs = this.#o.requestTimeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        if (!conn.pending.delete(id)) return;
        this.#o.violations.add('server-stall', `${this.userId}: no answer to ${String(frame['t'])} within ${timeoutMs} ms`);
        this.#drop(conn, false);
        reject(new Error(`timeout waiting for ${String(frame['t'])}`));
      }, timeoutMs);
      conn.pending.set(id, {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      conn.ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  #drop(conn: Conn, graceful: boolean): void {
    conn.closedByUs = true;
    if (this.#conn === conn) this.#conn = null;
    if (graceful) conn.ws.close(1000, 'bye');
    else conn.ws.terminate();
    this.#signal();
  }

  #onClose(conn: Conn): void {
    const wasOpen = conn.open;
    conn.open = false;
    if (wasOpen && !conn.closedByUs) this.#o.stats.droppedByServer++;
    for (const p of conn.pending.values()) p.reject(new Error('connection closed'));
    conn.pending.clear();
    this.#collectGaps(conn);
    // Whatever was not acknowledged is published again, with the same clientId.
    this.#retry.unshift(...conn.inflight.values());
    conn.inflight.clear();
    conn.syncing = 0;
    for (const w of conn.idleWaiters.splice(0)) w();
    if (this.#conn === conn) this.#conn = null;
    this.#signal();
  }

  #gotOn(conn: Conn, roomId: string, seq: number): void {
    let set = conn.got.get(roomId);
    if (set === undefined) conn.got.set(roomId, (set = new Set()));
    set.add(seq);
  }

  /** End the connection's gap-check epoch: record every seq it missed below one it received. */
  #collectGaps(conn: Conn): void {
    const check = conn.gapCheckFrom;
    conn.gapCheckFrom = null;
    if (check !== null) {
      this.#o.stats.gapCheckedEpochs++;
      const unanswered = new Set([...conn.inflight.values()].map((m) => m.clientId));
      for (const [roomId, got] of conn.got) {
        let min = Infinity;
        let max = 0;
        for (const s of got) {
          if (s > max) max = s;
          if (s < min) min = s;
        }
        const from = check.get(roomId) ?? min - 1;
        for (let s = from + 1; s < max; s++) {
          if (got.has(s)) continue;
          const context = `opened ${conn.openedIn}; epoch after seq ${from}; got ${got.size} seqs, ${min}..${max}; ${conn.open ? 'open' : conn.closedByUs ? 'closed by the client' : `closed by the server (${conn.closeCode})`}`;
          this.liveGaps.push({ connId: conn.id, roomId, seq: s, unanswered, context });
        }
      }
    }
    conn.got.clear();
  }

  #onFrame(conn: Conn, f: Frame): void {
    if (f.re !== undefined) {
      const p = conn.pending.get(f.re);
      if (p !== undefined) {
        conn.pending.delete(f.re);
        p.resolve(f);
        return;
      }
      const m = conn.inflight.get(f.re);
      if (m !== undefined) {
        conn.inflight.delete(f.re);
        this.#onPublishAnswer(conn, m, f);
        return;
      }
      this.#o.violations.add('protocol', `${this.userId}: answer to an unknown request ${JSON.stringify(f).slice(0, 200)}`);
      return;
    }
    switch (f.t) {
      case 'msg':
        this.#onMsg(conn, f as unknown as Entry);
        return;
      case 'presence':
      case 'typing':
      case 'receipt':
      case 'mail':
        return;
      default:
        this.#o.violations.add('unsolicited-frame', `${this.userId}: ${JSON.stringify(f).slice(0, 200)}`);
    }
  }

  #onMsg(conn: Conn, e: Entry): void {
    const v = this.#o.violations;
    if (e.kind === 'message' && e.body !== messageBody(e.from.userId, e.from.deviceId, e.clientId)) {
      v.add('2-body-integrity', `${this.userId}: room ${e.roomId} seq ${e.seq}: body does not match sender ${e.from.userId}/${e.from.deviceId} clientId ${e.clientId}`);
    }
    const r = this.#room(e.roomId).record(e.seq, hashOf(e));
    this.#gotOn(conn, e.roomId, e.seq);
    if (r === 'same') this.#o.stats.duplicateMsgs++;
    if (r === 'conflict') v.add('2-delivery-conflict', `${this.userId}: room ${e.roomId} seq ${e.seq} delivered with different contents`);
    if (conn.syncing === 0) {
      this.#o.stats.liveMsgs++;
      const last = conn.lastLive.get(e.roomId) ?? 0;
      if (e.seq <= last) v.add('2-live-order', `${this.userId} conn ${conn.id}: room ${e.roomId} live seq ${e.seq} after live seq ${last}`);
      else conn.lastLive.set(e.roomId, e.seq);
    } else {
      this.#o.stats.syncWindowMsgs++;
    }
  }

  #onPublishAnswer(conn: Conn, m: OutMsg, f: Frame): void {
    const v = this.#o.violations;
    if (f.t === 'ack') {
      const seq = f['seq'] as number;
      if (f['roomId'] !== m.roomId || f['clientId'] !== m.clientId || !Number.isInteger(seq) || seq < 1) {
        v.add('protocol', `${this.userId}: ack ${JSON.stringify(f)} for ${m.roomId}/${m.clientId}`);
      }
      this.#o.stats.acks++;
      if (f['duplicate'] === true) this.#o.stats.duplicateAcks++;
      this.#gotOn(conn, m.roomId, seq);
      const prev = this.acked.get(m.clientId);
      if (prev !== undefined && prev.seq !== seq) v.add('3-ack-seq-changed', `${this.userId}: clientId ${m.clientId} acked at seq ${prev.seq} and again at seq ${seq} in room ${m.roomId}`);
      if (prev === undefined) {
        this.acked.set(m.clientId, { roomId: m.roomId, seq });
        this.#outstanding.delete(m);
        this.#o.onAck?.();
      }
      if (this.#room(m.roomId).record(seq, entryHash('message', this.userId, this.deviceId, m.clientId, m.body)) === 'conflict') {
        v.add('2-delivery-conflict', `${this.userId}: own message ${m.clientId} acked at room ${m.roomId} seq ${seq}, which this client received with other contents`);
      }
    } else if (f.t === 'error' && f['code'] === 'rate_limited') {
      this.#o.stats.rateLimited++;
      this.#retry.push(m);
    } else {
      v.add('publish-refused', `${this.userId}: ${m.roomId}/${m.clientId}: ${JSON.stringify(f).slice(0, 200)}`);
      this.#outstanding.delete(m);
      this.failed.push(m);
    }
    this.#signal();
  }

  // ------------------------------------------------------------ sessions

  #expectSession(f: Frame, what: string): void {
    if (f.t !== 'session') throw new Error(`${what}: ${JSON.stringify(f).slice(0, 200)}`);
    if (f['userId'] !== this.userId || f['deviceId'] !== this.deviceId) {
      this.#o.violations.add('protocol', `${this.userId}: ${what} gave a session for ${String(f['userId'])}/${String(f['deviceId'])}`);
    }
    if (typeof f['accessToken'] === 'string') this.#accessToken = f['accessToken'];
    if (typeof f['refreshToken'] === 'string') {
      this.#refreshToken = f['refreshToken'];
      this.#refreshUncertain = false;
    }
  }

  async #signedRequest(conn: Conn, purpose: 'parley-register-v1' | 'parley-login-v1'): Promise<Frame> {
    const c = await this.#request(conn, { t: 'challenge' });
    if (c.t !== 'challenge' || typeof c['nonce'] !== 'string') throw new Error(`challenge: ${JSON.stringify(c)}`);
    const nonce = Buffer.from(c['nonce'], 'base64');
    const message = Buffer.concat([Buffer.from(purpose, 'utf8'), Buffer.from([0x0a]), nonce, Buffer.from(`${this.userId}\n${this.deviceId}`, 'utf8')]);
    const signature = sign(null, message, this.#privateKey).toString('base64');
    if (purpose === 'parley-register-v1') {
      return this.#request(conn, { t: 'register', userId: this.userId, deviceId: this.deviceId, identityKey: this.identityKeyB64, signature });
    }
    return this.#request(conn, { t: 'login', userId: this.userId, deviceId: this.deviceId, signature });
  }

  async #authenticate(conn: Conn, register: boolean): Promise<void> {
    const stats = this.#o.stats;
    if (register) {
      stats.authRegister++;
      return this.#expectSession(await this.#signedRequest(conn, 'parley-register-v1'), 'register');
    }
    const r = this.#o.rng();
    if (r < 0.6 && this.#accessToken !== null) {
      stats.authToken++;
      const f = await this.#request(conn, { t: 'auth', accessToken: this.#accessToken });
      if (f.t === 'session') return this.#expectSession(f, 'auth');
      this.#o.violations.add('auth', `${this.userId}: a valid access token was refused: ${JSON.stringify(f)}`);
    } else if (r < 0.85 && this.#refreshToken !== null) {
      stats.authRefresh++;
      const maybeSpent = this.#refreshUncertain;
      this.#refreshUncertain = true;
      const f = await this.#request(conn, { t: 'refresh', refreshToken: this.#refreshToken });
      if (f.t === 'session') return this.#expectSession(f, 'refresh');
      this.#refreshToken = null;
      this.#refreshUncertain = false;
      if (maybeSpent && f['code'] === 'invalid_credentials') stats.refreshLostReply++;
      else this.#o.violations.add('auth', `${this.userId}: an unspent refresh token was refused: ${JSON.stringify(f)}`);
    }
    stats.authLogin++;
    this.#expectSession(await this.#signedRequest(conn, 'parley-login-v1'), 'login');
  }

  /** Connect (retrying with backoff while the server is away), authenticate and start a sync. */
  async connect(register = false): Promise<void> {
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt) * (0.5 + this.#o.rng()));
      if (attempt > 200) throw new Error(`${this.userId}: could not reconnect`);
      let conn: Conn | null = null;
      const attemptPhase = this.#o.target.phase ?? '';
      try {
        conn = await this.#open(this.#o.target.url);
        const w = await this.#request(conn, { t: 'hello', versions: [1] });
        if (w.t !== 'welcome' || w['version'] !== 1) throw new Error(`hello: ${JSON.stringify(w)}`);
        await this.#authenticate(conn, register && attempt === 0);
      } catch (err) {
        this.#o.stats.connectFailures++;
        const why = `${err instanceof Error ? err.message.replace(/"nonce":"[^"]*"|\d+(\.\d+)*(:\d+)?/g, '…').slice(0, 120) : String(err)} (${attemptPhase})`;
        this.#o.stats.connectErrors.set(why, (this.#o.stats.connectErrors.get(why) ?? 0) + 1);
        if (conn !== null) this.#drop(conn, false);
        // A register whose reply was lost may have happened: log in from then on.
        if (register && !(err instanceof Error && /closed|timeout/.test(err.message))) throw err;
        continue;
      }
      if (!conn.open) continue;
      this.#o.stats.connects++;
      this.#o.stats.connectMs.push(performance.now() - started);
      this.#conn = conn;
      this.#startSync(conn);
      return;
    }
  }

  /**
   * Sync every room from its contiguous watermark (unknown rooms from 0). While a
   * room hit the page cap, ask again from where each room's answer stopped
   * (`continueFrom`, the previous `synced.rooms`).
   */
  #startSync(conn: Conn, continueFrom?: Record<string, number>): void {
    const from: Record<string, number> = {};
    for (const [roomId, view] of this.rooms) from[roomId] = view.watermark;
    if (continueFrom !== undefined) {
      Object.assign(from, continueFrom);
      this.#o.stats.syncContinuations++;
    }
    const first = continueFrom === undefined && conn.syncing === 0;
    if (first) {
      this.#collectGaps(conn);
      conn.chainFrom = from;
      conn.chainRooms = null;
    }
    conn.syncing++;
    this.#o.stats.syncs++;
    const started = performance.now();
    const finish = (): void => {
      // The chain (with all its rounds) is complete when no sync is left running.
      if (conn.syncing === 1 && conn.open && conn.chainRooms !== null) {
        const base = conn.chainFrom ?? {};
        conn.gapCheckFrom = new Map(conn.chainRooms.map((r) => [r, base[r] ?? 0]));
      }
      this.#o.stats.syncMs.push(performance.now() - started);
      conn.syncing = Math.max(0, conn.syncing - 1);
      if (conn.syncing === 0) for (const w of conn.idleWaiters.splice(0)) w();
    };
    this.#request(conn, { t: 'sync', rooms: from }).then(
      (f) => {
        if (f.t !== 'synced') {
          this.#o.violations.add('sync', `${this.userId}: sync answered ${JSON.stringify(f).slice(0, 200)}`);
          return finish();
        }
        let more = false;
        if (first) conn.chainRooms = Object.keys(f['rooms'] as Record<string, number>);
        for (const [roomId, upTo] of Object.entries(f['rooms'] as Record<string, number>)) {
          const after = from[roomId] ?? 0;
          if (upTo - after >= SYNC_ENTRIES_PER_ROOM_MAX) more = true;
          const view = this.#room(roomId);
          if (view.watermark < upTo) this.#o.violations.add('2-sync-incomplete', `${this.userId}: room ${roomId} synced up to ${upTo} from ${after} but seq ${view.watermark + 1} never arrived`);
        }
        if (more && conn.open) this.#startSync(conn, f['rooms'] as Record<string, number>);
        finish();
      },
      () => finish(),
    );
  }

  /** Resolves when no sync is running on the current connection (reconnecting if needed). */
  async syncNow(): Promise<void> {
    for (;;) {
      if (this.#conn === null || !this.#conn.open) {
        await this.connect();
      } else {
        this.#startSync(this.#conn);
      }
      const conn = this.#conn;
      if (conn === null) continue;
      if (conn.syncing > 0) await new Promise<void>((r) => conn.idleWaiters.push(r));
      if (conn.open && this.#conn === conn) return;
    }
  }

  /** A request on the current connection (setup only: room creation). */
  async call(frame: Record<string, unknown>): Promise<Frame> {
    if (this.#conn === null) throw new Error(`${this.userId}: not connected`);
    return this.#request(this.#conn, frame);
  }

  #pace(): number {
    const now = performance.now();
    this.#tokens = Math.min(this.#o.burst, this.#tokens + ((now - this.#tokensAt) / 1000) * this.#o.ratePerSecond);
    this.#tokensAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.#tokens) * 1000) / this.#o.ratePerSecond);
  }

  #next(): OutMsg | null {
    const again = this.#retry.shift();
    if (again !== undefined) return again;
    const m = this.plan[this.#nextPlan];
    if (m === undefined) return null;
    this.#nextPlan++;
    this.#outstanding.add(m);
    return m;
  }

  /** Publish the whole plan; returns once every message is acknowledged (or refused for good). */
  async run(): Promise<void> {
    while (this.#nextPlan < this.plan.length || this.#outstanding.size > 0) {
      const conn = this.#conn;
      if (conn === null || !conn.open) {
        await sleep(this.#o.rng() * 100);
        if (this.#conn === null || !this.#conn.open) await this.connect();
        continue;
      }
      if (conn.inflight.size >= this.#o.window || (this.#retry.length === 0 && this.#nextPlan >= this.plan.length)) {
        await this.#waitSignal(250);
        continue;
      }
      const wait = this.#pace();
      if (wait > 0) {
        await sleep(wait);
        continue;
      }
      const m = this.#next();
      if (m === null) continue;
      const id = `p${++this.#reqIds}`;
      conn.inflight.set(id, m);
      if (m.sends > 0) this.#o.stats.republishes++;
      m.sends++;
      this.#o.stats.publishes++;
      conn.ws.send(JSON.stringify({ t: 'publish', id, roomId: m.roomId, clientId: m.clientId, body: m.body }));
      if (this.chaos && this.#o.rng() < this.#o.disconnectProbability) {
        const abrupt = this.#o.rng() < 0.7;
        setTimeout(() => {
          if (!conn.open || conn.closedByUs) return;
          this.#o.stats.randomDisconnects++;
          this.#drop(conn, !abrupt);
        }, this.#o.rng() * 50);
      }
    }
  }

  /** Close the current connection (cleanly, or by dropping the socket); resolves when it is closed. */
  async close(graceful = true): Promise<void> {
    const conn = this.#conn;
    if (conn === null) return;
    this.#drop(conn, graceful);
    await conn.closed;
  }

  /**
   * The room's whole log as stored, read with `history` from a fresh
   * connection that logs this device in with a signed challenge.
   */
  async readLog(roomId: string): Promise<Entry[]> {
    const conn = await this.#open(this.#o.target.url);
    try {
      const w = await this.#request(conn, { t: 'hello', versions: [1] });
      if (w.t !== 'welcome') throw new Error(`hello: ${JSON.stringify(w)}`);
      this.#expectSession(await this.#signedRequest(conn, 'parley-login-v1'), 'login');
      const entries: Entry[] = [];
      for (;;) {
        const after = entries.length === 0 ? 0 : (entries[entries.length - 1] as Entry).seq;
        const page = await this.#request(conn, { t: 'history', roomId, after, limit: HISTORY_PAGE_MAX });
        if (page.t !== 'history') throw new Error(`history: ${JSON.stringify(page).slice(0, 200)}`);
        const got = page['entries'] as Entry[];
        if (got.length === 0) return entries;
        entries.push(...got);
      }
    } finally {
      this.#drop(conn, true);
    }
  }
}
