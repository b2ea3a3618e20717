/**
 * Who is connected, and delivery to them. Outgoing frames are serialised
 * once per message and the same string is written to every recipient
 * socket — never rebuilt per recipient.
 *
 * Room membership is cached in memory (read through from storage,
 * invalidated on every change this node makes). Publishes are serialised
 * per room so that deliveries leave in sequence order.
 *
 * @module
 */
import type { WebSocket } from 'ws';
import type { AppendResult, ChangeMemberOptions, MembershipChange, Role, RoomEntry, RoomEntryInput, Storage } from '../storage/types.ts';
import type { Delivery, FanOut } from '../fanout/types.ts';
import { MEMBERS_CACHE_MAX } from '../limits.ts';
import { b64 } from './context.ts';
import { PrebuiltFrame } from './prebuilt-frame.ts';

export interface Conn {
  readonly connId: number;
  readonly ws: WebSocket;
  userId: string | null;
  deviceId: string | null;
  close(code: number, reason: string): void;
}

/** A log step waiting for its turn to deliver (`Hub.#onLog`). */
interface LogSlot {
  settled: boolean;
  deliver: (() => void) | null;
  next: LogSlot | null;
}

export class Hub {
  readonly #byUser = new Map<string, Set<Conn>>();
  readonly #members = new Map<string, Set<string>>();
  readonly #roomTails = new Map<string, Promise<unknown>>();
  readonly #storage: Storage;
  readonly #fanout: FanOut;
  #nextConnId = 1;

  readonly #onDelivered: (n: number) => void;

  /**
   * Member sets are cached only when this process is the only one changing
   * them: with several processes sharing rooms (a broker fan-out), another
   * process's change would leave this cache stale, so every check reads the
   * store.
   */
  readonly #cacheEnabled: boolean;

  constructor(storage: Storage, fanout: FanOut, onDelivered: (n: number) => void = () => undefined, options: { cacheMembers?: boolean } = {}) {
    this.#storage = storage;
    this.#fanout = fanout;
    this.#onDelivered = onDelivered;
    this.#cacheEnabled = options.cacheMembers ?? true;
    fanout.subscribe((d) => this.#deliverLocal(d));
  }

  newConnId(): number {
    return this.#nextConnId++;
  }

  /** Returns true if this is the user's first connection on this node (they came online). */
  attach(c: Conn): boolean {
    if (c.userId === null) return false;
    let set = this.#byUser.get(c.userId);
    if (set === undefined) this.#byUser.set(c.userId, (set = new Set()));
    set.add(c);
    return set.size === 1;
  }

  /** Returns true if this was the user's last connection on this node (they went offline). */
  detach(c: Conn): boolean {
    if (c.userId === null) return false;
    const set = this.#byUser.get(c.userId);
    if (set === undefined || !set.delete(c)) return false;
    if (set.size === 0) {
      this.#byUser.delete(c.userId);
      return true;
    }
    return false;
  }

  /** Every open authenticated connection (for shutdown). */
  *connections(): Iterable<Conn> {
    for (const set of this.#byUser.values()) yield* set;
  }

  /** Deliver one prebuilt frame to every connection of `userIds` on every node, except `skip`. */
  deliver(userIds: Iterable<string>, frame: string, skip?: Conn): void {
    this.#fanout.publish({ users: userIds, frame, ...(skip !== undefined && { skip: { node: this.#fanout.node, connId: skip.connId } }) });
  }

  /** Deliver a frame to one device of one user (mailbox), wherever it is connected. */
  deliverToDevice(userId: string, deviceId: string, frame: string): void {
    this.#fanout.publish({ users: [userId], device: deviceId, frame });
  }

  /**
   * End the sessions of a user's device (null: of all its devices) on every
   * node, except `skip`: each gets `frame`, then is closed with `code`.
   */
  endSessions(userId: string, deviceId: string | null, frame: string, code: number, skip?: Conn): void {
    this.#fanout.publish({
      users: [userId],
      frame,
      close: code,
      ...(deviceId !== null && { device: deviceId }),
      ...(skip !== undefined && { skip: { node: this.#fanout.node, connId: skip.connId } }),
    });
  }

  /** Write a delivery to this node's sockets. */
  #deliverLocal(d: Delivery): void {
    const skipId = d.skip !== undefined && d.skip.node === this.#fanout.node ? d.skip.connId : -1;
    // Framed once; every recipient socket gets the same bytes.
    let frame: PrebuiltFrame | null = null;
    let n = 0;
    // Only a session-ending delivery collects its connections (none is allocated per message).
    let closing: Conn[] | null = null;
    for (const u of d.users) {
      const set = this.#byUser.get(u);
      if (set === undefined) continue;
      for (const c of set) {
        if (c.connId === skipId || (d.device !== undefined && c.deviceId !== d.device)) continue;
        frame ??= new PrebuiltFrame(d.frame);
        if (frame.sendTo(c.ws)) n++;
        if (d.close !== undefined) (closing ??= []).push(c);
      }
    }
    if (n > 0) this.#onDelivered(n);
    if (closing !== null) this.#close(closing, d.close as number);
  }

  /** End these sessions (after the delivery loop: closing a connection takes it out of the set being walked). */
  #close(closing: readonly Conn[], code: number): void {
    for (const c of closing) {
      try {
        c.close(code, 'session ended');
      } catch {
        // A code ws refuses (a bug: other processes' deliveries carry 4000–4999 only): one connection must not stop the rest.
      }
    }
  }

  /** The cached member set of a room, if cached (a snapshot: never mutated). */
  cachedMembers(roomId: string): ReadonlySet<string> | undefined {
    return this.#members.get(roomId);
  }

  async members(roomId: string): Promise<Set<string>> {
    let m = this.#members.get(roomId);
    if (m === undefined) {
      m = new Set((await this.#storage.listMembers(roomId)).map((x) => x.userId));
      // Unknown rooms (ids made up by a client) are not cached, so they cannot grow memory.
      if (m.size > 0) this.#cacheMembers(roomId, m);
    }
    return m;
  }

  #cacheMembers(roomId: string, m: Set<string>): void {
    if (!this.#cacheEnabled) return;
    this.#members.delete(roomId);
    this.#members.set(roomId, m);
    if (this.#members.size > MEMBERS_CACHE_MAX) {
      const oldest = this.#members.keys().next();
      if (oldest.done !== true) this.#members.delete(oldest.value);
    }
  }

  invalidateMembers(roomId: string): void {
    this.#members.delete(roomId);
  }

  /** Replace the cached member set (after a change this node made). Cached sets are never mutated: they are snapshots. */
  setMembers(roomId: string, members: ReadonlySet<string>): void {
    this.#cacheMembers(roomId, members as Set<string>);
  }

  /**
   * Run `task` after every earlier task queued under the same key, in this
   * process: membership decisions of a room (`members:<room>`),
   * and every check-then-write of a per-user or per-device limit
   * (`limits:rooms`, `devices:<user>`, `keys:<user>/<device>`, `blobs:<user>`), so that
   * concurrent requests from several connections cannot all pass the check
   * before any of them writes.
   */
  inOrder<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.#roomTails.get(key) ?? Promise.resolve();
    const run = prev.then(task, task);
    this.#setTail(key, run);
    return run;
  }

  #setTail(roomId: string, p: Promise<unknown>): void {
    const tail = p.then(
      () => undefined,
      () => undefined,
    );
    this.#roomTails.set(roomId, tail);
    void tail.then(() => {
      if (this.#roomTails.get(roomId) === tail) this.#roomTails.delete(roomId);
    });
  }

  /**
   * Log steps started and not yet delivered, oldest first (storage that
   * commits in call order): one queue for all rooms, as such storage settles
   * every step in call order anyway — the queue only evens out the ticks
   * between a step settling and its delivery.
   */
  #undeliveredHead: LogSlot | null = null;
  #undeliveredTail: LogSlot | null = null;

  /**
   * Run a step on the room log and deliver its result, deliveries leaving in
   * the order the steps were made (= seq order in each room). When storage
   * commits in call order (SQLite) steps start at once — concurrent ones
   * share one commit — and a delivery waits only for the earlier steps'
   * deliveries (an append and a membership change settle a tick apart);
   * otherwise (PostgreSQL) steps are chained per room.
   */
  #onLog<T>(roomId: string, step: () => Promise<T>, deliver: (r: T) => void): Promise<T> {
    if (!this.#storage.appendsInCallOrder) {
      const prev = this.#roomTails.get(roomId) ?? Promise.resolve();
      const run = prev.then(step).then((r) => {
        deliver(r);
        return r;
      });
      this.#setTail(roomId, run);
      return run;
    }
    const slot: LogSlot = { settled: false, deliver: null, next: null };
    if (this.#undeliveredTail === null) this.#undeliveredHead = slot;
    else this.#undeliveredTail.next = slot;
    this.#undeliveredTail = slot;
    return step().then(
      (r) => {
        slot.deliver = () => deliver(r);
        slot.settled = true;
        this.#flushUndelivered();
        return r;
      },
      (e: unknown) => {
        slot.settled = true;
        this.#flushUndelivered();
        throw e;
      },
    );
  }

  #flushUndelivered(): void {
    let head = this.#undeliveredHead;
    while (head !== null && head.settled) {
      const deliver = head.deliver;
      head = head.next;
      this.#undeliveredHead = head;
      if (head === null) this.#undeliveredTail = null;
      // A delivery that throws (a bug) must not hold back the others: its entry is stored, and sync gives it.
      try {
        deliver?.();
      } catch {
        // nothing to undo
      }
    }
  }

  /**
   * Append a message and deliver it. `recipients` is this process's
   * membership snapshot taken when the message was queued — exact when this
   * process makes every membership change of the room (one server), since
   * changes take their place in the same order. With several processes
   * (`cacheMembers` off) the store checks that the sender is still a member
   * at the message's place in the log and names the members there, and
   * those are the recipients. `bodyB64` is the body as the publisher sent
   * it (validated base64 of the same bytes), so it need not be encoded again.
   */
  appendAndDeliver(roomId: string, input: RoomEntryInput, recipients: ReadonlySet<string>, skip?: Conn, bodyB64?: string): Promise<AppendResult> {
    const options = this.#cacheEnabled ? undefined : { requireMember: true };
    return this.#onLog(
      roomId,
      () => this.#storage.append(roomId, input, options),
      (r) => {
        if (!r.duplicate) this.deliver(r.members ?? recipients, msgFrame(r.entry, bodyB64), skip);
      },
    );
  }

  /**
   * Change one membership and log it (`Storage.changeMember`: applied only if
   * the user's role is still `expected`; null when it was not), then deliver
   * the event to the members after it and to a removed member.
   */
  async changeMemberAndDeliver(roomId: string, userId: string, expected: Role | null, role: Role | null, event: RoomEntryInput, options?: ChangeMemberOptions): Promise<MembershipChange | null> {
    const before = await this.members(roomId);
    // One synchronous step: the cached snapshot changes and the change is
    // queued on the log before any later publish reads the one or queues
    // behind the other, so a message goes to exactly the members at its
    // place in the log. (Callers decide `expected` inside the room's
    // `members:` section, so in one process the change is not stale.)
    const after = new Set(before);
    if (role === null) after.delete(userId);
    else after.add(userId);
    this.setMembers(roomId, after);
    let r: MembershipChange | null;
    try {
      r = await this.#onLog(
        roomId,
        () => this.#storage.changeMember(roomId, userId, expected, role, event, options),
        (change) => {
          if (change === null) return;
          const members = new Set(change.members);
          // A removed member still learns of its removal; a new member sees its addition.
          this.deliver(role === null ? [...members, userId] : members, msgFrame(change.entry));
          if (change.handedOver !== undefined) this.deliver(members, msgFrame(change.handedOver.entry));
        },
      );
    } catch (e) {
      this.invalidateMembers(roomId);
      throw e;
    }
    if (r === null) this.invalidateMembers(roomId);
    else this.setMembers(roomId, new Set(r.members));
    return r;
  }
}

/**
 * The serialised `msg` frame for a room entry: the fields of `entryFrame`,
 * in its order, written without a generic serialiser walking the body
 * (base64 never needs escaping; the strings are escaped as JSON).
 */
export function msgFrame(e: RoomEntry, bodyB64: string = b64(e.body)): string {
  const q = JSON.stringify;
  return `{"t":"msg","roomId":${q(e.roomId)},"seq":${e.seq},"kind":${q(e.kind)},"from":{"userId":${q(e.senderUserId)},"deviceId":${q(e.senderDeviceId)}},"clientId":${q(e.clientId)},"body":"${bodyB64}","ts":${e.createdAt}}`;
}

/** The `msg` frame body for a room entry (without `t`). */
export function entryFrame(e: RoomEntry): Record<string, unknown> {
  return {
    roomId: e.roomId,
    seq: e.seq,
    kind: e.kind,
    from: { userId: e.senderUserId, deviceId: e.senderDeviceId },
    clientId: e.clientId,
    body: b64(e.body),
    ts: e.createdAt,
  };
}
