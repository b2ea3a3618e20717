/**
 * A small Parley protocol v1 test client (docs/protocol.md) over a real
 * WebSocket: JSON frames, request/response correlation by `id`/`re`, a
 * queue of unsolicited frames (`msg`, errors without `re`, …), and helpers
 * for every implemented request.
 *
 * Device identity keys are Ed25519 keys from node:crypto; they are kept in a
 * module-wide key ring so a test can log the same device in again from a new
 * connection.
 */
import { generateKeyPairSync, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Socket } from 'node:net';
import WebSocket from 'ws';

/** Any frame the server sends. */
export interface Frame {
  t: string;
  re?: string;
  [key: string]: unknown;
}

export interface ErrorFrame extends Frame {
  t: 'error';
  code: string;
  message: string;
}

export interface SessionFrame extends Frame {
  t: 'session';
  userId: string;
  deviceId: string;
  accessToken?: string;
  refreshToken?: string;
  expiresIn: number;
}

export interface RoomInfo {
  roomId: string;
  kind: 'direct' | 'group';
  role: 'owner' | 'admin' | 'member';
  lastSeq: number;
}

export interface Entry {
  roomId: string;
  seq: number;
  kind: string;
  from: { userId: string; deviceId: string };
  clientId: string;
  body: string;
  ts: number;
}

export interface MsgFrame extends Frame, Entry {
  t: 'msg';
}

export interface AckFrame extends Frame {
  t: 'ack';
  roomId: string;
  clientId: string;
  seq: number;
  ts: number;
  duplicate?: true;
}

export interface SyncResult {
  /** The `msg` frames that arrived while the sync ran (live deliveries included; dedupe by roomId+seq). */
  entries: MsgFrame[];
  /** The `synced` frame, or the error that answered the sync. */
  reply: Frame;
}

// ---------------------------------------------------------------- keys

export type Purpose = 'parley-register-v1' | 'parley-login-v1';

export interface DeviceKey {
  userId: string;
  deviceId: string;
  privateKey: KeyObject;
  /** Raw 32-byte Ed25519 public key. */
  identityKey: Uint8Array;
}

const keyRing = new Map<string, DeviceKey>();

/** An Ed25519 key pair, the public half as JWK encoded by the keygen job (see newDeviceKey). */
export function generateEd25519(): { privateKey: KeyObject; publicKey: JsonWebKey } {
  const generate = generateKeyPairSync as unknown as (type: 'ed25519', options: object) => { privateKey: KeyObject; publicKey: JsonWebKey };
  return generate('ed25519', { publicKeyEncoding: { format: 'jwk' } });
}

/** A fresh Ed25519 identity key for (userId, deviceId); remembered in the key ring. */
export function newDeviceKey(userId: string, deviceId: string): DeviceKey {
  // Node 20 can deadlock exporting a freshly generated key as JWK (the export holds the key's mutex while allocating; a GC then finalises the keygen job, which takes the same mutex) — so the public key is encoded by the keygen job itself.
  const { privateKey, publicKey: jwk } = generateEd25519();
  if (typeof jwk.x !== 'string') throw new Error('Ed25519 JWK without x');
  const identityKey = new Uint8Array(Buffer.from(jwk.x, 'base64url'));
  if (identityKey.length !== 32) throw new Error(`Ed25519 public key of ${identityKey.length} bytes`);
  const key = { userId, deviceId, privateKey, identityKey };
  keyRing.set(`${userId}\n${deviceId}`, key);
  return key;
}

export function deviceKey(userId: string, deviceId: string): DeviceKey {
  const k = keyRing.get(`${userId}\n${deviceId}`);
  if (k === undefined) throw new Error(`no key for ${userId}/${deviceId}`);
  return k;
}

/** `UTF-8(purpose) ‖ 0x0A ‖ nonce ‖ UTF-8(userId "\n" deviceId)`. */
export function challengeMessage(purpose: Purpose, nonce: Uint8Array, userId: string, deviceId: string): Uint8Array {
  return Buffer.concat([Buffer.from(purpose, 'utf8'), Buffer.from([0x0a]), nonce, Buffer.from(`${userId}\n${deviceId}`, 'utf8')]);
}

export function signChallenge(privateKey: KeyObject, purpose: Purpose, nonce: Uint8Array, userId: string, deviceId: string): string {
  return sign(null, challengeMessage(purpose, nonce, userId, deviceId), privateKey).toString('base64');
}

export const b64 = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64');
export const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

// ---------------------------------------------------------------- client

export interface Closed {
  code: number;
  reason: string;
}

export class V1Client {
  readonly ws: WebSocket;
  readonly label: string;
  /** Every frame received, in order (for debugging and log checks). */
  readonly received: Frame[] = [];
  /** Unsolicited frames (no pending request matched them), oldest first; `waitFor` takes from here. */
  readonly inbox: Frame[] = [];
  readonly closed: Promise<Closed>;
  closeInfo: Closed | null = null;
  /** When the close was seen (ms since the epoch). */
  closedAt: number | null = null;
  #nextId = 1;
  readonly #pending = new Map<string, { resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #waiters = new Set<() => void>();
  /** While a sync runs, `msg` frames go here instead of the inbox. */
  #collector: MsgFrame[] | null = null;
  /** Identity of the authenticated device, once a session frame arrived. */
  session: SessionFrame | null = null;

  private constructor(ws: WebSocket, label: string) {
    this.ws = ws;
    this.label = label;
    this.closed = new Promise<Closed>((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this.closedAt = Date.now();
        for (const [id, p] of this.#pending) {
          clearTimeout(p.timer);
          p.reject(new Error(`${label}: connection closed (${code} ${reason.toString()}) before the answer to ${id}`));
        }
        this.#pending.clear();
        this.#wake();
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data, isBinary) => {
      let frame: Frame;
      try {
        frame = JSON.parse(isBinary ? '"binary"' : (data as Buffer).toString('utf8')) as Frame;
      } catch {
        frame = { t: '!unparseable' };
      }
      this.received.push(frame);
      const p = frame.re !== undefined ? this.#pending.get(frame.re) : undefined;
      if (p !== undefined && frame.re !== undefined) {
        this.#pending.delete(frame.re);
        clearTimeout(p.timer);
        if (frame.t === 'session') this.session = frame as SessionFrame;
        p.resolve(frame);
      } else if (frame.t === 'msg' && this.#collector !== null) {
        this.#collector.push(frame as MsgFrame);
      } else {
        this.inbox.push(frame);
      }
      this.#wake();
    });
  }

  /** `autoPong: false`: a peer whose network is gone (it never answers the server's pings). */
  static async connect(url: string, label = 'client', localAddress?: string, headers?: Record<string, string>, options: { autoPong?: boolean } = {}): Promise<V1Client> {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(localAddress !== undefined && { localAddress }), ...(headers !== undefined && { headers }), ...(options.autoPong === false && { autoPong: false }) });
    const c = new V1Client(ws, label);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('error', () => undefined);
    return c;
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Send any JSON value as one text frame. */
  send(obj: unknown): void {
    this.ws.send(JSON.stringify(obj));
  }

  /** Send raw bytes or text, as a text frame unless `binary`. */
  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /**
   * Run `fn` (which sends frames) with the TCP socket corked, so that every
   * frame it sends leaves in one write and reaches the server in (usually) one
   * read — a burst whose timing does not depend on how busy this machine is.
   * Relies on ws keeping its socket as `_socket`.
   */
  burst<T>(fn: () => T): T {
    const socket = (this.ws as unknown as { _socket?: Socket })._socket;
    if (socket === undefined) throw new Error('ws has no _socket');
    socket.cork();
    try {
      return fn();
    } finally {
      socket.uncork();
    }
  }

  newId(): string {
    return String(this.#nextId++);
  }

  /** Send a frame with a fresh `id` (unless it has one) and resolve with the frame whose `re` matches (errors included). */
  request(frame: Record<string, unknown>, ms = 10_000): Promise<Frame> {
    const id = typeof frame['id'] === 'string' ? frame['id'] : this.newId();
    return new Promise<Frame>((resolve, reject) => {
      if (!this.isOpen) {
        reject(new Error(`${this.label}: not open (${JSON.stringify(this.closeInfo)}) for ${String(frame['t'])}`));
        return;
      }
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.label}: no answer to ${String(frame['t'])} ${id} within ${ms} ms; last frames ${JSON.stringify(this.received.slice(-5)).slice(0, 800)}`));
      }, ms);
      this.#pending.set(id, { resolve, reject, timer });
      this.send({ ...frame, id });
    });
  }

  /** Take the first unsolicited frame matching `predicate` from the inbox, waiting up to `ms` (a bound for failing, generous for a loaded machine). */
  async waitFor<T extends Frame = Frame>(predicate: (f: Frame) => boolean, ms = 15_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.inbox.findIndex(predicate);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as T;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label}: no matching frame within ${ms} ms; inbox ${JSON.stringify(this.inbox.slice(-5)).slice(0, 800)}`);
      if (!this.isOpen && this.closeInfo !== null) throw new Error(`${this.label}: closed (${this.closeInfo.code}) while waiting; inbox ${JSON.stringify(this.inbox.slice(-5)).slice(0, 800)}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.#waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.min(left, 250));
        this.#waiters.add(done);
      });
    }
  }

  /** Wait until `n` `msg` frames of `roomId` are in the inbox and take them (in arrival order). */
  async takeMsgs(roomId: string, n: number, ms = 15_000): Promise<MsgFrame[]> {
    const out: MsgFrame[] = [];
    while (out.length < n) out.push(await this.waitFor<MsgFrame>((f) => f.t === 'msg' && f['roomId'] === roomId, ms));
    return out;
  }

  /** The `msg` frames of `roomId` currently in the inbox, taken out of it. */
  drainMsgs(roomId?: string): MsgFrame[] {
    const out: MsgFrame[] = [];
    for (let i = 0; i < this.inbox.length; ) {
      const f = this.inbox[i] as Frame;
      if (f.t === 'msg' && (roomId === undefined || f['roomId'] === roomId)) {
        out.push(f as MsgFrame);
        this.inbox.splice(i, 1);
      } else i++;
    }
    return out;
  }

  /** Give the server `ms` to send anything more, then return what arrived unsolicited (without taking it). */
  async quiet(ms = 200): Promise<Frame[]> {
    await new Promise((r) => setTimeout(r, ms));
    return [...this.inbox];
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
  }

  /** Drop the TCP connection without a closing handshake. */
  terminate(): void {
    this.ws.terminate();
  }

  // ------------------------------------------------------------ protocol helpers

  hello(versions: number[] = [1]): Promise<Frame> {
    return this.request({ t: 'hello', versions });
  }

  async challenge(): Promise<Uint8Array> {
    const f = await this.request({ t: 'challenge' });
    if (f.t !== 'challenge' || typeof f['nonce'] !== 'string') throw new Error(`${this.label}: challenge answered ${JSON.stringify(f)}`);
    return unb64(f['nonce']);
  }

  /** Register `userId` with its first device: a new key, a challenge, a signature. Resolves with the answer (session or error). */
  async register(userId: string, deviceId: string, key: DeviceKey = newDeviceKey(userId, deviceId)): Promise<Frame> {
    const nonce = await this.challenge();
    return this.request({
      t: 'register',
      userId,
      deviceId,
      identityKey: b64(key.identityKey),
      signature: signChallenge(key.privateKey, 'parley-register-v1', nonce, userId, deviceId),
    });
  }

  /** Log a device in with its key from the key ring (or `key`). */
  async login(userId: string, deviceId: string, key: DeviceKey = deviceKey(userId, deviceId)): Promise<Frame> {
    const nonce = await this.challenge();
    return this.request({ t: 'login', userId, deviceId, signature: signChallenge(key.privateKey, 'parley-login-v1', nonce, userId, deviceId) });
  }

  auth(accessToken: string): Promise<Frame> {
    return this.request({ t: 'auth', accessToken });
  }

  refresh(refreshToken: string): Promise<Frame> {
    return this.request({ t: 'refresh', refreshToken });
  }

  createRoom(kind: 'group' | 'direct', members: string[]): Promise<Frame> {
    return this.request({ t: 'room.create', kind, members });
  }

  roomAdd(roomId: string, userId: string, role?: 'admin' | 'member'): Promise<Frame> {
    return this.request({ t: 'room.add', roomId, userId, ...(role !== undefined && { role }) });
  }

  roomRemove(roomId: string, userId: string): Promise<Frame> {
    return this.request({ t: 'room.remove', roomId, userId });
  }

  roomLeave(roomId: string): Promise<Frame> {
    return this.request({ t: 'room.leave', roomId });
  }

  roomList(): Promise<Frame> {
    return this.request({ t: 'room.list' });
  }

  roomMembers(roomId: string): Promise<Frame> {
    return this.request({ t: 'room.members', roomId });
  }

  publish(roomId: string, clientId: string, body: Uint8Array | string): Promise<Frame> {
    return this.request({ t: 'publish', roomId, clientId, body: typeof body === 'string' ? body : b64(body) });
  }

  /** Sync: the `msg` frames received until `synced` (or an error) answers. */
  async sync(rooms: Record<string, number> = {}, ms = 10_000): Promise<SyncResult> {
    if (this.#collector !== null) throw new Error(`${this.label}: one sync at a time`);
    const entries: MsgFrame[] = [];
    this.#collector = entries;
    try {
      const reply = await this.request({ t: 'sync', rooms }, ms);
      return { entries, reply };
    } finally {
      this.#collector = null;
    }
  }

  history(roomId: string, page: { before?: number; after?: number; limit?: number }): Promise<Frame> {
    return this.request({ t: 'history', roomId, ...page });
  }
}

/** Connect, `hello`, and register a new user (with its first device); throws unless a session results. */
export async function registered(url: string, userId: string, deviceId = 'dev1'): Promise<{ client: V1Client; session: SessionFrame }> {
  const client = await V1Client.connect(url, `${userId}/${deviceId}`);
  const w = await client.hello();
  if (w.t !== 'welcome') throw new Error(`hello answered ${JSON.stringify(w)}`);
  const s = await client.register(userId, deviceId);
  if (s.t !== 'session') throw new Error(`register ${userId} answered ${JSON.stringify(s)}`);
  return { client, session: s as SessionFrame };
}

/** Connect, `hello`, and log in a known device; throws unless a session results. */
export async function loggedIn(url: string, userId: string, deviceId = 'dev1', label = `${userId}/${deviceId}`): Promise<{ client: V1Client; session: SessionFrame }> {
  const client = await V1Client.connect(url, label);
  const w = await client.hello();
  if (w.t !== 'welcome') throw new Error(`hello answered ${JSON.stringify(w)}`);
  const s = await client.login(userId, deviceId);
  if (s.t !== 'session') throw new Error(`login ${userId} answered ${JSON.stringify(s)}`);
  return { client, session: s as SessionFrame };
}

/** Connect, `hello`, and `auth` with an access token; throws unless a session results. */
export async function authed(url: string, accessToken: string, label = 'authed'): Promise<{ client: V1Client; session: SessionFrame }> {
  const client = await V1Client.connect(url, label);
  const w = await client.hello();
  if (w.t !== 'welcome') throw new Error(`hello answered ${JSON.stringify(w)}`);
  const s = await client.auth(accessToken);
  if (s.t !== 'session') throw new Error(`auth answered ${JSON.stringify(s)}`);
  return { client, session: s as SessionFrame };
}
