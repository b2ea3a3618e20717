/**
 * The receiving side: room entries in (live `msg` frames, `sync` replays,
 * `history` pages), typed events out.
 *
 * Order and exactly-once. The server numbers each room's entries 1, 2, 3, …
 * and delivers a room's entries to a connection in that order, but a `sync`
 * replays stored entries while live ones keep coming, and during a token
 * renewal two connections deliver the same entries. So while a connection
 * catches up, entries are held; when its sync is done they are processed
 * sorted by seq. Every entry at or below the room's cursor (the highest seq
 * processed, kept in the store) is a repeat and dropped, so each entry is
 * processed once, in order, however often it arrives. On top of that, a
 * message whose id (from inside the encrypted payload) was already shown in
 * the room is dropped.
 *
 * Gaps. A live entry more than one past the room's cursor means something
 * in between has not arrived (a frame lost below us, or — with several
 * server processes sharing a room — two processes' deliveries crossing).
 * Processing it would move the cursor past the missing entry and drop it
 * for good when it comes, so instead the pipeline starts holding and asks
 * for a `sync` (hooks.gap): the replay fills the hole, and the flush after
 * it processes everything by seq. The server numbers entries without gaps,
 * so a hole left after a sync means the replay was lost too: the client
 * syncs again, up to HOLE_SYNCS_MAX times, and only then passes over it.
 * A hole passed over is remembered (passed-holes.ts, kept by the store
 * where it can): the entries missing there may still come — a server that
 * sent a false seq far ahead and is honest again — and are then processed,
 * not dropped as repeats; and the next catch-up asks for the room from the
 * hole's start (`syncFrom`).
 * The server does not echo a device's own messages to it live, so the
 * seqs of this device's acknowledged messages (`sent`) fill holes too.
 *
 * Holding is bounded (HELD_ENTRIES_MAX, HELD_BODY_CHARS_MAX): what is next in
 * its room's order is processed early, and if the rest still exceeds the
 * bound the held entries are dropped (hooks.overflow): the cursors have not
 * moved past them, so a new connection's catch-up reads them again.
 *
 * Failure is per entry. Whatever an entry holds — a body that does not
 * parse, no envelope for this device, an envelope that does not decrypt, a
 * replay, a payload from a future version — it becomes one
 * `decryptionError` event and the stream goes on.
 *
 * Decrypted messages are kept in the store by (room, seq), because a
 * message key is deleted once used: `history` and a later replay of the
 * same entry read the kept copy instead of decrypting again.
 *
 * @module
 */
import { fromBase64, fromUtf8 } from './_bytes.ts';
import type { ClientStore } from './client-store.ts';
import { asSdkError, SdkError } from './errors.ts';
import type { ClientEvents, DecryptionFailure, HistoryEntry, KeptMessage, MembershipEvent, MessageMeta } from './events.ts';
import { USER_ID, type DeviceRef, type RoomEntry } from './frames.ts';
import { HELD_BODY_CHARS_MAX, HELD_ENTRIES_MAX, OWN_SEQS_MAX, ROOM_CURSORS_MAX, SEEN_IDS_MAX } from './limits.ts';
import { PassedHoles } from './passed-holes.ts';
import { CONTROL_VERIFICATION, type StoredContent } from './payload.ts';
import { openRoomMessage } from './room-cipher.ts';

export interface InboundHooks {
  emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void;
  /** A first message of a new session decrypted: one of our one-time prekeys may be spent. */
  prekeyMessageOpened(): void;
  /** A membership event was processed for `roomId`. */
  membershipChanged(roomId: string): void;
  /** A message decrypted from `from` (to notice devices the directory does not list yet). */
  messageFrom(from: DeviceRef): void;
  /** A live entry skipped past the room's cursor: the pipeline now holds; `sync`, then `flush`. */
  gap(roomId: string): void;
  /** Held entries past the bound were dropped (still holding): catch up again on a new connection. */
  overflow(): void;
  /** A control message (payload.ts) decrypted, in room order: `bytes` is its content, type byte first. */
  control(meta: MessageMeta, bytes: Uint8Array): void;
  /** Whether this device's message `clientId` is still waiting for its ack (its copy is kept then). */
  ownPending(clientId: string): boolean;
}

export type OpenOutcome =
  /** `control`: a control message's content when it was decrypted just now (null from a kept copy, which has none). */
  | { readonly ok: true; readonly message: KeptMessage; readonly control: Uint8Array | null }
  | { readonly ok: false; readonly failure: DecryptionFailure };

export class Inbound {
  readonly #store: ClientStore;
  readonly #me: DeviceRef;
  readonly #hooks: InboundHooks;
  #held: RoomEntry[] | null = null;
  /** Body characters of the held entries. */
  #heldChars = 0;
  /** Insertion-ordered, so the oldest id is forgotten first. */
  readonly #seen = new Set<string>();
  /**
   * Control messages `history` decrypted before the stream reached them: the
   * kept copy holds no content, so the content waits here for `#deliver`
   * (bounded like `#seen`; by room and seq).
   */
  readonly #earlyControls = new Map<string, Uint8Array>();
  /**
   * Entries that decrypted but held no valid payload (MALFORMED_PAYLOAD):
   * their message key is spent, so opening them again would read as a
   * replay (DUPLICATE). The first reason is kept for later reads, by room
   * and seq, bounded like `#seen`. In memory only: a later process sees
   * DUPLICATE for such an entry.
   */
  readonly #malformed = new Map<string, { readonly from: DeviceRef; readonly clientId: string }>();
  /** Per room, seqs of this device's own acknowledged messages above the cursor (never delivered to it live). */
  readonly #own = new Map<string, Set<number>>();
  #ownCount = 0;
  /** Holes passed over (see "Gaps"), kept by the store where it can. */
  readonly #passed: PassedHoles;

  constructor(store: ClientStore, me: DeviceRef, hooks: InboundHooks) {
    this.#store = store;
    this.#me = me;
    this.#hooks = hooks;
    this.#passed = new PassedHoles(store);
  }

  /** Hold entries from now until `flush` (a connection is catching up). */
  hold(): void {
    this.#held ??= [];
  }

  get holding(): boolean {
    return this.#held !== null;
  }

  /** This device's message was stored at `seq`: it will not come back live, so it is no hole. */
  sent(roomId: string, seq: number): void {
    if (seq <= this.#store.roomCursor(roomId)) return;
    // Bounded: forgetting costs one sync that replays them, nothing more.
    if (this.#ownCount >= OWN_SEQS_MAX) {
      this.#own.clear();
      this.#ownCount = 0;
    }
    let seqs = this.#own.get(roomId);
    if (seqs === undefined) this.#own.set(roomId, (seqs = new Set()));
    if (!seqs.has(seq)) this.#ownCount++;
    seqs.add(seq);
  }

  /**
   * The room's cursor, first moved over this device's own entries right
   * above it. The seqs stay remembered (see #claimedOwn) until OWN_SEQS_MAX
   * clears them all.
   */
  #cursor(roomId: string): number {
    let cursor = this.#store.roomCursor(roomId);
    const seqs = this.#own.get(roomId);
    if (seqs === undefined) return cursor;
    const start = cursor;
    while (seqs.has(cursor + 1)) cursor++;
    if (cursor !== start) this.#store.setRoomCursor(roomId, cursor);
    return cursor;
  }

  /**
   * An entry of another device at a seq the cursor passed because the server
   * acknowledged one of this device's messages with it: the ack or the entry
   * is false (an honest server numbers each entry once). The entry is not
   * dropped unseen: it is processed (once; the seq is forgotten), and `open`
   * reports the clash with the copy kept at that seq.
   */
  #claimedOwn(entry: RoomEntry): boolean {
    const seqs = this.#own.get(entry.roomId);
    if (seqs === undefined || this.#isMe(entry.from) || !seqs.delete(entry.seq)) return false;
    this.#ownCount--;
    return true;
  }

  receive(entry: RoomEntry): void {
    if (this.#held !== null) {
      this.#held.push(entry);
      this.#heldChars += entry.body.length;
      if (this.#held.length > HELD_ENTRIES_MAX || this.#heldChars > HELD_BODY_CHARS_MAX) this.#relieve();
      return;
    }
    if (entry.seq > this.#cursor(entry.roomId) + 1) {
      this.#held = [entry];
      this.#heldChars = entry.body.length;
      this.#hooks.gap(entry.roomId);
      return;
    }
    this.#process(entry);
  }

  /** Over the bound: process what is next in its room, still holding; if that is not enough, drop the rest. */
  #relieve(): void {
    this.flushSome(false, Infinity, true);
    // Down to half, so that a bound nearly reached is not relieved at every entry.
    if ((this.#held?.length ?? 0) <= HELD_ENTRIES_MAX / 2 && this.#heldChars <= HELD_BODY_CHARS_MAX / 2) return;
    this.#held = [];
    this.#heldChars = 0;
    this.#hooks.overflow();
  }

  /**
   * Process everything held, by seq (stable, so each room's entries stay in
   * order), and stop holding. A room whose held entries still start past a
   * hole keeps them held unless `passOverHoles`: the caller syncs again.
   * Returns the number of rooms left with a hole (0 when no longer holding).
   */
  flush(passOverHoles = true): number {
    for (;;) {
      const step = this.flushSome(passOverHoles, Infinity);
      if (!step.more) return step.holed;
    }
  }

  /**
   * `flush` a part at a time: at most `max` entries processed, still holding
   * (entries arriving meanwhile join the held ones, in seq order) while
   * `more` is true — so a long catch-up can give the event loop back between
   * parts. When `more` is false it has done what `flush` does.
   */
  flushSome(passOverHoles: boolean, max: number, keepHolding = false): { more: boolean; holed: number } {
    const held = this.#held ?? [];
    held.sort((a, b) => a.seq - b.seq);
    const holed = new Set<string>();
    const kept: RoomEntry[] = [];
    let done = 0;
    for (let i = 0; i < held.length; i++) {
      const entry = held[i] as RoomEntry;
      if (!holed.has(entry.roomId) && (passOverHoles || entry.seq <= this.#cursor(entry.roomId) + 1)) {
        if (done === max) {
          // Out of this part's budget: what is left stays held for the next.
          this.#held = [...kept, ...held.slice(i)];
          this.#heldChars = bodyChars(this.#held);
          return { more: true, holed: 0 };
        }
        this.#process(entry);
        done++;
        continue;
      }
      holed.add(entry.roomId);
      kept.push(entry);
    }
    this.#held = kept.length > 0 || keepHolding ? kept : null;
    this.#heldChars = bodyChars(kept);
    return { more: false, holed: holed.size };
  }

  /** Where a catch-up should sync `roomId` from: its cursor, or below it where a hole was passed over. */
  syncFrom(roomId: string, cursor: number): number {
    return this.#passed.syncFrom(roomId, cursor);
  }

  /** A catch-up synced these rooms from their holes' start: what it did not fill, the server does not have. */
  settlePassedHoles(roomIds: ReadonlySet<string>): void {
    this.#passed.settle(roomIds);
  }

  #process(entry: RoomEntry): void {
    const cursor = this.#cursor(entry.roomId);
    if (entry.seq <= cursor && !this.#claimedOwn(entry) && !this.#passed.take(entry)) return;
    if (entry.seq > cursor + 1) this.#passed.passOver(entry, cursor);
    try {
      this.#deliver(entry);
    } catch (e) {
      this.#hooks.emit('error', asSdkError(e));
    }
    if (entry.seq > cursor) this.#advance(entry.roomId, cursor, entry.seq);
  }

  /**
   * How many rooms have a cursor, at least (counted from the store when
   * first needed, then counting the rooms given one here; a cursor
   * forgotten elsewhere is seen at the next count from the store).
   */
  #cursorCount: number | null = null;
  /** Whether a room beyond ROOM_CURSORS_MAX was reported already (once per client). */
  #cursorsFullReported = false;

  /** Move a room's cursor to `seq`; a new room gets one only while fewer than ROOM_CURSORS_MAX rooms have one. */
  #advance(roomId: string, cursor: number, seq: number): void {
    // Cursor 0: a room never read (or, rarely, one rewound to its start — then counted once more than it is).
    if (cursor === 0) {
      let count = this.#cursorCount ?? ROOM_CURSORS_MAX;
      if (count >= ROOM_CURSORS_MAX) {
        const cursors = this.#store.roomCursors();
        count = Object.keys(cursors).length - (cursors[roomId] === undefined ? 0 : 1);
      }
      this.#cursorCount = count;
      if (count >= ROOM_CURSORS_MAX) {
        if (!this.#cursorsFullReported) this.#hooks.emit('error', new SdkError('LIMIT', `this device keeps cursors for ${ROOM_CURSORS_MAX} rooms; room ${roomId} is read but its place not kept`));
        this.#cursorsFullReported = true;
        return;
      }
      this.#cursorCount++;
    }
    this.#store.setRoomCursor(roomId, seq);
  }


  #deliver(entry: RoomEntry): void {
    if (entry.kind !== 'message') {
      const event = membershipEvent(entry);
      this.#hooks.membershipChanged(entry.roomId);
      if (event !== null) this.#hooks.emit('membership', event);
      // Not a membership event (an unknown kind, or a message relabelled): surfaced, never dropped unseen.
      else this.#hooks.emit('decryptionError', { roomId: entry.roomId, seq: entry.seq, from: entry.from, clientId: entry.clientId, serverTs: entry.ts, reason: 'MALFORMED_BODY' });
      return;
    }
    if (this.#isMe(entry.from)) {
      // This device's own message, replayed by a sync: its copy was kept when it was acknowledged (or
      // will be: it is still waiting for its ack). Otherwise it is reported, never passed over unseen:
      // sent by an earlier store of this device (before a restore), or another's entry labelled as ours.
      const kept = this.#store.loadMessage(entry.roomId, entry.seq);
      if ((kept !== undefined && this.#isKeptFor(kept, entry)) || this.#hooks.ownPending(entry.clientId)) return;
      this.#hooks.emit('decryptionError', { roomId: entry.roomId, seq: entry.seq, from: entry.from, clientId: entry.clientId, serverTs: entry.ts, reason: 'NO_LOCAL_COPY' });
      return;
    }
    const r = this.open(entry);
    if (!r.ok) {
      this.#hooks.emit('decryptionError', r.failure);
      return;
    }
    const key = JSON.stringify([entry.roomId, r.message.sender.userId, r.message.id]);
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    if (this.#seen.size > SEEN_IDS_MAX) {
      const oldest = this.#seen.values().next();
      if (oldest.done !== true) this.#seen.delete(oldest.value);
    }
    if (r.message.kind !== 'control') {
      this.#hooks.emit('message', r.message);
      return;
    }
    const early = JSON.stringify([entry.roomId, entry.seq]);
    const control = r.control ?? this.#earlyControls.get(early) ?? null;
    this.#earlyControls.delete(early);
    if (control !== null) this.#hooks.control(r.message, control);
  }

  /** The message an entry holds for this device: the kept copy, or decrypted now (and kept). Never throws for bad input. */
  open(entry: RoomEntry): OpenOutcome {
    const kept = this.#store.loadMessage(entry.roomId, entry.seq);
    if (kept !== undefined) {
      if (this.#isKeptFor(kept, entry)) return { ok: true, message: kept, control: null };
      // Another entry than the one kept for this seq: the server numbered two alike (a false ack or a
      // false history page). Reported, and this entry is opened as if nothing were kept (nothing is overwritten).
      this.#hooks.emit('error', new SdkError('BAD_RESPONSE', `seq ${entry.seq} of room ${entry.roomId} holds another entry than the message this device kept for it`));
    }
    const fail = (reason: DecryptionFailure['reason']): OpenOutcome => ({
      ok: false,
      failure: { roomId: entry.roomId, seq: entry.seq, from: entry.from, clientId: entry.clientId, serverTs: entry.ts, reason },
    });
    if (this.#isMe(entry.from)) return fail('NO_LOCAL_COPY');
    // Looked up only when there is something to find: this is every message's path.
    const malformed = this.#malformed.size === 0 ? undefined : this.#malformed.get(malformedKey(entry));
    if (malformed !== undefined && malformed.from.userId === entry.from.userId && malformed.from.deviceId === entry.from.deviceId && malformed.clientId === entry.clientId) return fail('MALFORMED_PAYLOAD');
    const r = openRoomMessage(this.#store, this.#me, entry.from, entry.roomId, entry.body);
    if (!r.ok) {
      if (r.reason === 'MALFORMED_PAYLOAD') this.#rememberMalformed(entry);
      return fail(r.reason);
    }
    if (r.prekeyMessage) this.#hooks.prekeyMessageOpened();
    this.#hooks.messageFrom(entry.from);
    const p = r.payload;
    // The entry's clientId is the id inside the payload (payload.ts): a sender or relay that makes them
    // differ would make every later read of this seq look like another entry. Refused now, once.
    if (p.id !== entry.clientId) {
      this.#rememberMalformed(entry);
      return fail('MALFORMED_PAYLOAD');
    }
    const content: StoredContent =
      p.kind === 'text' ? { kind: 'text', text: p.text } : p.kind === 'binary' ? { kind: 'binary', bytes: p.bytes } : p.kind === 'file' ? { kind: 'file', file: p.file } : { kind: 'control', controlType: p.bytes[0] };
    const message: KeptMessage = {
      ...content,
      roomId: entry.roomId,
      seq: entry.seq,
      id: p.id,
      sender: { userId: entry.from.userId, deviceId: entry.from.deviceId },
      outgoing: entry.from.userId === this.#me.userId,
      sentAt: p.sentAt,
      serverTs: entry.ts,
    };
    if (kept === undefined) this.#store.storeMessage(message);
    if (p.direct !== undefined) this.#noteDirect(entry.roomId, entry.from.userId, p.direct);
    return { ok: true, message, control: p.kind === 'control' ? p.bytes : null };
  }

  /**
   * `sender` wrote in `roomId` as in its direct room with `peer` (payload.ts,
   * authenticated by the envelope, unlike the server's room list): the room
   * is pinned to the other user, so replies go to that user alone. A room
   * pinned to someone else keeps its pin, and the clash is reported.
   */
  #noteDirect(roomId: string, sender: string, peer: string): void {
    const me = this.#me.userId;
    // From this user's other device: the room is with `peer`. From another user: with the sender, if it names this user.
    const other = sender === me ? peer : peer === me ? sender : null;
    if (other === null || other === me) return;
    const pinned = this.#store.directPeer(roomId);
    if (pinned === null) this.#store.setDirectPeer(roomId, other);
    else if (pinned !== other) this.#hooks.emit('error', new SdkError('BAD_RESPONSE', `room ${roomId} is this device's direct room with ${pinned}, but a message there from ${sender} says it is with ${other}`));
  }

  #rememberMalformed(entry: RoomEntry): void {
    this.#malformed.set(malformedKey(entry), { from: { userId: entry.from.userId, deviceId: entry.from.deviceId }, clientId: entry.clientId });
    if (this.#malformed.size > SEEN_IDS_MAX) {
      const oldest = this.#malformed.keys().next();
      if (oldest.done !== true) this.#malformed.delete(oldest.value);
    }
  }

  /** An entry as `history` returns it. */
  historyEntry(entry: RoomEntry): HistoryEntry | null {
    if (entry.kind !== 'message') {
      const event = membershipEvent(entry);
      if (event !== null) return { type: 'membership', ...event };
      return { type: 'undecryptable', roomId: entry.roomId, seq: entry.seq, from: entry.from, clientId: entry.clientId, serverTs: entry.ts, reason: 'MALFORMED_BODY' };
    }
    const r = this.open(entry);
    if (!r.ok) return { type: 'undecryptable', ...r.failure };
    const m = r.message;
    // Opened here before the stream got to it: its content is for `#deliver` (a verification step, in order).
    if (r.control !== null && entry.seq > this.#store.roomCursor(entry.roomId)) {
      this.#earlyControls.set(JSON.stringify([entry.roomId, entry.seq]), r.control);
      if (this.#earlyControls.size > SEEN_IDS_MAX) {
        const oldest = this.#earlyControls.keys().next();
        if (oldest.done !== true) this.#earlyControls.delete(oldest.value);
      }
    }
    if (m.kind !== 'control') return { type: 'message', ...m };
    // Other control messages (a session reset) are the client's business alone: not in history.
    if (m.controlType !== undefined && m.controlType !== CONTROL_VERIFICATION) return null;
    return { type: 'verification', roomId: m.roomId, seq: m.seq, id: m.id, sender: m.sender, outgoing: m.outgoing, sentAt: m.sentAt, serverTs: m.serverTs };
  }

  /** Whether `kept` is the message `entry` holds: same sending device, same id (the entry's clientId). */
  #isKeptFor(kept: KeptMessage, entry: RoomEntry): boolean {
    return kept.id === entry.clientId && kept.sender.userId === entry.from.userId && kept.sender.deviceId === entry.from.deviceId;
  }

  #isMe(d: DeviceRef): boolean {
    return d.userId === this.#me.userId && d.deviceId === this.#me.deviceId;
  }
}

function malformedKey(entry: RoomEntry): string {
  return JSON.stringify([entry.roomId, entry.seq]);
}

/** A membership event's body: base64 of UTF-8 JSON `{ userId, role?, by }` (docs/protocol.md, "Messages"); null if it is not one. */
function membershipEvent(entry: RoomEntry): MembershipEvent | null {
  const bytes = fromBase64(entry.body);
  const text = bytes === null ? null : fromUtf8(bytes);
  if (text === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  const userId = o['userId'];
  if (typeof userId !== 'string' || !USER_ID.test(userId)) return null;
  return {
    roomId: entry.roomId,
    seq: entry.seq,
    kind: entry.kind,
    userId,
    role: typeof o['role'] === 'string' ? o['role'] : null,
    by: typeof o['by'] === 'string' ? o['by'] : null,
    serverTs: entry.ts,
  };
}

function bodyChars(entries: readonly RoomEntry[]): number {
  let n = 0;
  for (const e of entries) n += e.body.length;
  return n;
}
