/**
 * One Parley v1 connection: version negotiation, authentication, then
 * rooms and messages (docs/protocol.md). Every inbound frame is parsed by
 * `frames.ts` first; handlers only ever see valid frames. A failing or
 * abusive client loses its own connection and nothing else.
 *
 * @module
 */
import type { WebSocket } from 'ws';
import { isNotAMember } from '../storage/types.ts';
import {
  FRAMES_PER_SECOND,
  INVALID_FRAMES_MAX,
  MESSAGES_PER_SECOND,
  PROTOCOL_VERSIONS,
  UNAUTHENTICATED_LIFETIME_MS,
} from '../limits.ts';
import { parseFrame, requestIdOf, type ErrorCode, type InboundFrame, type PublishFrame } from './frames.ts';
import type { Conn } from './hub.ts';
import { sendText } from './prebuilt-frame.ts';
import { TokenBucket } from '../rate-limit.ts';
import { type HandlerContext, type Me, type V1Deps } from './context.ts';
import { FrameOrder } from './frame-order.ts';
import { Authentication, type SessionTokens } from './authentication.ts';
import { onDeviceAdd, onDeviceRemove, onSessionsRevoke, type SessionEnd } from './devices.ts';
import { onBackupFetch, onBackupGet, onBackupPut } from './key-backup.ts';
import { onBlobChunk, onBlobComplete, onBlobCreate, onBlobDelete, onBlobGet } from './blobs.ts';
import { onClaimKeyPackage, onKeysFetch, onKeysUpload } from './key-directory.ts';
import { onMailboxAck, onMailboxSend, pushMailbox, type MailboxCursor } from './mailbox.ts';
import { onReceipt, onReceipts, onTyping } from './ephemeral.ts';
import { onPresenceGet } from './presence.ts';
import { onRoomAdd, onRoomCreate, onRoomList, onRoomMembers, onRoomRemove } from './rooms.ts';
import { CLOSE_V1, welcomeLimits } from './settings.ts';
import { onHistory, onSync, type SyncTarget } from './sync.ts';

export type { V1Deps } from './context.ts';
export { CLOSE_V1 };

const PROTOCOL = 'v1';

/** The longest delay setTimeout takes (2^31 − 1 ms; longer ones fire at once). */
const TIMER_MS_MAX = 2_147_483_647;

type Phase = 'hello' | 'unauthenticated' | 'authenticated' | 'closed';

type Frame<T extends InboundFrame['t']> = Extract<InboundFrame, { t: T }>;

type Parsed = ReturnType<typeof parseFrame>;


export class V1Connection implements Conn, SyncTarget {
  readonly connId: number;
  readonly ws: WebSocket;
  userId: string | null = null;
  deviceId: string | null = null;
  readonly #d: V1Deps;
  #phase: Phase = 'hello';
  #invalid = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #frames = new TokenBucket(FRAMES_PER_SECOND);
  readonly #messages = new TokenBucket(MESSAGES_PER_SECOND);
  /** Frames handled one after another, answered in order (frame-order.ts). */
  readonly #order: FrameOrder<Parsed>;

  /** How far this connection was sent its device's mailbox in pages. */
  readonly #mail: MailboxCursor = { pushedUpTo: 0 };

  /** The way in: challenge, register, login, auth, refresh. */
  readonly #auth: Authentication;

  constructor(ws: WebSocket, deps: V1Deps, address = '') {
    this.ws = ws;
    this.#d = deps;
    this.#auth = new Authentication({
      deps,
      address,
      authenticated: () => this.#phase === 'authenticated',
      send: this.#sendFrame,
      error: this.#answerError,
      close: (code, reason) => this.close(code, reason),
      startSession: (re, userId, deviceId, tokens) => this.#startSession(re, userId, deviceId, tokens),
    });
    this.#order = new FrameOrder<Parsed>({
      handle: (parsed) => this.#handle(parsed),
      isPublish: (parsed) => parsed.ok && parsed.frame.t === 'publish',
      failed: (err) => this.#failed(err),
      pause: () => {
        ws.pause();
        return ws.isPaused;
      },
      resume: () => ws.resume(),
      get paused() {
        return ws.isPaused;
      },
    });
    this.connId = deps.hub.newConnId();
    deps.metrics.connections.inc({ protocol: PROTOCOL });
    this.#timer = setTimeout(() => this.close(CLOSE_V1.POLICY, 'authentication timeout'), UNAUTHENTICATED_LIFETIME_MS);
    ws.on('message', (data, isBinary) => {
      if (this.#phase === 'closed') return;
      if (!this.#frames.take()) {
        // Parsed only for its id, so the client can pair the refusal with its
        // request; this costs at most INVALID_FRAMES_MAX parses (each is a strike).
        const re = isBinary ? undefined : requestIdOf((data as Buffer).toString('utf8'));
        this.#strike();
        this.#order.refuse(() => this.#error(re, 'rate_limited', 'too many frames'));
        return;
      }
      if (isBinary) {
        this.#order.refuse(() => this.#error(undefined, 'bad_frame', 'binary frames are not part of the protocol'));
        return;
      }
      // A pause (FRAMES_QUEUED_MAX unfinished frames) counts once.
      if (this.#order.enqueue(parseFrame((data as Buffer).toString('utf8')))) this.#d.metrics.readsPaused.inc({ protocol: PROTOCOL });
    });
    ws.on('close', () => this.#forget());
    ws.on('error', () => this.#forget());
  }

  #failed(err: unknown): void {
    this.#d.log.error({ err: err instanceof Error ? err.message : String(err), connId: this.connId }, 'v1 handler failed');
    this.close(CLOSE_V1.INTERNAL, 'internal error');
  }

  #send(obj: Record<string, unknown>): void {
    this.#sendRaw(JSON.stringify(obj));
  }

  #sendRaw(frame: string): void {
    sendText(this.ws, frame);
  }

  // A HandlerContext's ways to answer: made once per connection, not per frame.
  readonly #reply = (re: string | undefined, frame: Record<string, unknown>): void => this.#send({ ...frame, ...(re !== undefined && { re }) });
  readonly #sendFrame = (frame: Record<string, unknown>): void => this.#send(frame);
  readonly #answerError = (re: string | undefined, code: ErrorCode, message: string): void => this.#error(re, code, message);

  #ctx(me: Me): HandlerContext {
    return { me, deps: this.#d, reply: this.#reply, send: this.#sendFrame, error: this.#answerError };
  }

  #error(re: string | undefined, code: ErrorCode, message: string): void {
    this.#d.metrics.errors.inc({ protocol: PROTOCOL, code });
    this.#send({ t: 'error', ...(re !== undefined && { re }), code, message });
    // Every frame answered bad_frame counts, whichever check refused it (docs/protocol.md, "Errors").
    if (code === 'bad_frame') this.#strike();
  }

  #strike(): void {
    this.#invalid++;
    if (this.#invalid >= INVALID_FRAMES_MAX) this.close(CLOSE_V1.POLICY, 'too many invalid frames');
  }

  #handle(parsed: Parsed): void | Promise<void> {
    if (this.#phase === 'closed') return;
    if (!parsed.ok) {
      this.#error(parsed.id, 'bad_frame', parsed.message);
      return;
    }
    const f = parsed.frame;
    if (this.#phase === 'hello') {
      if (f.t !== 'hello') {
        this.#error(f.id, 'bad_frame', 'the first frame must be hello');
        return;
      }
      return this.#onHello(f);
    }
    switch (f.t) {
      case 'hello':
        return this.#error(f.id, 'bad_frame', 'hello was already received');
      case 'ping':
        return this.#reply(f.id, { t: 'pong' });
      case 'challenge':
        return this.#auth.onChallenge(f);
      case 'register':
        return this.#auth.onRegister(f);
      case 'login':
        return this.#auth.onLogin(f);
      case 'auth':
        return this.#auth.onAuth(f);
      case 'refresh':
        return this.#auth.onRefresh(f);
      case 'backup.fetch':
        return onBackupFetch(this.#d, f, (frame) => this.#send(frame), (re, code, message) => (code === 'invalid_credentials' ? this.#auth.failLogin(re, message) : this.#error(re, code, message)));
      default:
        break;
    }
    if (this.#phase !== 'authenticated' || this.userId === null || this.deviceId === null) {
      this.#error(f.id, 'unauthenticated', 'authenticate first');
      return;
    }
    const me = { userId: this.userId, deviceId: this.deviceId };
    switch (f.t) {
      case 'device.add':
        return onDeviceAdd(this.#ctx(me), f);
      case 'device.remove':
        return onDeviceRemove(this.#ctx(me), f);
      case 'sessions.revoke':
        return onSessionsRevoke(this.#ctx(me), f, this);
      case 'backup.put':
        return onBackupPut(this.#ctx(me), f);
      case 'backup.get':
        return onBackupGet(this.#ctx(me), f);
      case 'blob.create':
        return onBlobCreate(this.#ctx(me), f);
      case 'blob.chunk':
        return onBlobChunk(this.#ctx(me), f);
      case 'blob.complete':
        return onBlobComplete(this.#ctx(me), f);
      case 'blob.get':
        return onBlobGet(this.#ctx(me), f);
      case 'blob.delete':
        return onBlobDelete(this.#ctx(me), f);
      case 'room.create':
        return onRoomCreate(this.#ctx(me), f);
      case 'room.add':
        return onRoomAdd(this.#ctx(me), f);
      case 'room.remove':
        return onRoomRemove(this.#ctx(me), f.id, f.roomId, f.userId);
      case 'room.leave':
        return onRoomRemove(this.#ctx(me), f.id, f.roomId, me.userId);
      case 'room.list':
        return onRoomList(this.#ctx(me), f);
      case 'room.members':
        return onRoomMembers(this.#ctx(me), f);
      case 'publish':
        return this.#onPublish(f, me);
      case 'sync':
        return onSync(this.#ctx(me), f, this);
      case 'history':
        return onHistory(this.#ctx(me), f);
      case 'keys.upload':
        return onKeysUpload(this.#ctx(me), f);
      case 'keys.fetch':
        return onKeysFetch(this.#ctx(me), f);
      case 'keys.claimKeyPackage':
        return onClaimKeyPackage(this.#ctx(me), f);
      case 'mailbox.send':
        return onMailboxSend(this.#ctx(me), f);
      case 'mailbox.ack':
        return onMailboxAck(this.#ctx(me), f, this.#mail, (frame) => this.#sendRaw(frame));
      case 'typing':
        return onTyping(this.#ctx(me), f, this);
      case 'receipt':
        return onReceipt(this.#ctx(me), f, this);
      case 'receipts':
        return onReceipts(this.#ctx(me), f);
      case 'presence.get':
        return onPresenceGet(this.#ctx(me), f);
    }
  }

  #onHello(f: Frame<'hello'>): void {
    const common = f.versions.filter((v) => PROTOCOL_VERSIONS.includes(v));
    if (common.length === 0) {
      this.#error(f.id, 'unsupported_version', `server speaks ${PROTOCOL_VERSIONS.join(', ')}`);
      this.close(CLOSE_V1.PROTOCOL_ERROR, 'unsupported version');
      return;
    }
    this.#phase = 'unauthenticated';
    this.#send({
      t: 'welcome',
      ...(f.id !== undefined && { re: f.id }),
      version: Math.max(...common),
      limits: welcomeLimits(this.#d.blobs),
    });
  }

  // ---------------------------------------------------------------- session

  async #startSession(re: string | undefined, userId: string, deviceId: string, session: SessionTokens): Promise<void> {
    let tokens: Record<string, unknown>;
    let expiresAtMs: number;
    if (session.kind === 'issued') {
      tokens = { accessToken: session.accessToken, refreshToken: session.refreshToken, expiresIn: session.expiresIn };
      expiresAtMs = Date.now() + session.expiresIn * 1000;
    } else {
      expiresAtMs = session.expiresAt * 1000;
      tokens = { expiresIn: Math.max(0, Math.floor((expiresAtMs - Date.now()) / 1000)) };
    }
    if (this.#phase === 'closed') return;
    this.userId = userId;
    this.deviceId = deviceId;
    this.#phase = 'authenticated';
    if (this.#d.hub.attach(this)) this.#d.announcer.arrived(userId);
    this.#closeAt(expiresAtMs);
    this.#send({ t: 'session', ...(re !== undefined && { re }), userId, deviceId, ...tokens });
    // Attached: a removal or sign-out from now on ends this session. One that
    // committed while it was being set up (its notice went out before) is seen here.
    const device = await this.#d.storage.getDevice(userId, deviceId);
    if (device === null || (session.epoch !== null && session.epoch !== device.sessionEpoch)) {
      const ended: SessionEnd = device === null ? 'device-removed' : 'signed-out';
      this.#send({ t: 'session.ended', reason: ended });
      this.close(ended === 'device-removed' ? CLOSE_V1.DEVICE_REMOVED : CLOSE_V1.SIGNED_OUT, 'session ended');
      return;
    }
    if (this.closed) return;
    await pushMailbox(this.#d, { userId, deviceId }, 0, this.#mail, (frame) => this.#sendRaw(frame));
  }

  /**
   * Close when the credential this connection rests on expires. setTimeout
   * waits at most ~24.8 days: a later expiry (a host-minted token) is
   * reached in steps.
   */
  #closeAt(expiresAtMs: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    const wait = Math.max(0, expiresAtMs - Date.now());
    this.#timer = setTimeout(() => {
      if (this.#phase === 'closed') return;
      if (Date.now() < expiresAtMs) return this.#closeAt(expiresAtMs);
      this.#error(undefined, 'token_expired', 'access token expired; refresh and reconnect');
      this.close(CLOSE_V1.TOKEN_EXPIRED, 'token expired');
    }, Math.min(wait, TIMER_MS_MAX));
  }

  // ---------------------------------------------------------------- messages

  #onPublish(f: PublishFrame, me: Me): void | Promise<void> {
    if (!this.#messages.take()) return this.#order.answer(() => this.#error(f.id, 'rate_limited', 'too many messages per second'));
    const members = this.#d.hub.cachedMembers(f.roomId);
    if (members === undefined) return this.#d.hub.members(f.roomId).then((m) => this.#publishTo(f, me, m));
    this.#publishTo(f, me, members);
  }

  #publishTo(f: PublishFrame, me: Me, members: ReadonlySet<string>): void {
    if (!members.has(me.userId)) return this.#order.answer(() => this.#error(f.id, 'forbidden', 'not a member of this room'));
    const started = process.hrtime.bigint();
    // Not awaited: the next frame (often the next publish) is handled while
    // this one commits, so a pipelining client's messages share one durable
    // commit; the ack follows the answers before it (frame-order.ts).
    const appended = this.#d.hub.appendAndDeliver(
      f.roomId,
      { kind: 'message', senderUserId: me.userId, senderDeviceId: me.deviceId, clientId: f.clientId, body: f.body, createdAt: Date.now() },
      members,
      this,
      f.bodyB64,
    );
    this.#order.publish(appended, (r) => {
      if (r.status === 'rejected') {
        // Removed by another process before the message's place in the log: refused, nothing stored.
        if (isNotAMember(r.reason)) return this.#error(f.id, 'forbidden', 'not a member of this room');
        this.#d.log.error({ err: r.reason instanceof Error ? r.reason.message : String(r.reason), connId: this.connId }, 'publish failed');
        return this.#error(f.id, 'internal', 'could not store the message; retry with the same clientId');
      }
      const { entry, duplicate } = r.value;
      if (!duplicate) {
        this.#d.metrics.messages.inc({ protocol: PROTOCOL });
        this.#d.metrics.deliveryLatency.observe({ protocol: PROTOCOL }, Number(process.hrtime.bigint() - started) / 1e9);
      }
      this.#send({ t: 'ack', ...(f.id !== undefined && { re: f.id }), roomId: f.roomId, clientId: f.clientId, seq: entry.seq, ts: entry.createdAt, ...(duplicate && { duplicate: true }) });
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Whether the connection has closed (or was closed); nothing more is sent or handled. */
  get closed(): boolean {
    return this.#phase === 'closed';
  }

  close(code: number, reason: string): void {
    if (this.#phase === 'closed') return;
    this.#forget();
    this.ws.close(code, reason);
  }

  #forget(): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#d.hub.detach(this) && this.userId !== null) this.#d.announcer.left(this.userId);
    this.#d.metrics.connections.dec({ protocol: PROTOCOL });
  }

  /** Resolves when every frame received so far has been handled and every accepted publish acknowledged. */
  drain(): Promise<void> {
    return this.#order.drain();
  }
}
