/**
 * Rooms (docs/protocol.md, "Rooms"), the client's side: the rooms this
 * user is in, their members (cached per room until a membership event is
 * processed there), leaving one, and direct rooms — the one room of this
 * user and one other. The server says which rooms are direct
 * (`room.list`), but which user a direct room is with is pinned in the
 * client store — when this device opens or finds the room, when a message
 * there says it is the sender's direct room with this user (payload.ts,
 * inbound.ts), or when this device first sends in one the peer opened —
 * and from then on a message there is encrypted for this user and that
 * peer only, whatever the server lists (outbound.ts, `#seal`).
 *
 * Separate from the client because finding a room, creating one and
 * pinning its peer share state of their own with the members cache: the
 * room kinds seen in room lists, the members asked for per room, and the
 * lookups under way per user (so concurrent `startDirect` calls for one
 * user make one room).
 *
 * @module
 */
import type { ClientStore } from './client-store.ts';
import { SdkError } from './errors.ts';
import { readMembers, readRooms, ROOM_ID, stringField, USER_ID, type RoomSummary } from './frames.ts';
import { ROOM_KINDS_MAX } from './limits.ts';
import type { Link } from './link.ts';

export class Rooms {
  readonly #me: string;
  readonly #store: ClientStore;
  /** The client's link: its requests, and whether the client closed. */
  readonly #link: Pick<Link, 'request' | 'ended' | 'endError' | 'assertOpen'>;
  readonly #members = new Map<string, Promise<readonly string[]>>();
  /** Room kinds from the server's room lists (null: looked for, not listed); see `pinDirect`. */
  readonly #roomKinds = new Map<string, string | null>();
  readonly #directs = new Map<string, Promise<string>>();

  constructor(userId: string, store: ClientStore, link: Pick<Link, 'request' | 'ended' | 'endError' | 'assertOpen'>) {
    this.#me = userId;
    this.#store = store;
    this.#link = link;
  }

  /** `ParleyClient.leave`: resolves once the server took it. */
  async leave(roomId: string): Promise<void> {
    this.#link.assertOpen();
    if (typeof roomId !== 'string' || !ROOM_ID.test(roomId)) throw new SdkError('INVALID_ARGUMENT', 'roomId is not a room id');
    await this.#link.request({ t: 'room.leave', roomId }, ['ok']);
  }

  /** `ParleyClient.rooms`: every room this user is in, with the last seq of each. */
  async list(): Promise<RoomSummary[]> {
    this.#link.assertOpen();
    return readRooms(await this.#link.request({ t: 'room.list' }, ['rooms']));
  }

  /** The members of `roomId`, asked of the server once (again after a failure, or after `forgetMembers`). */
  members(roomId: string): Promise<readonly string[]> {
    let p = this.#members.get(roomId);
    if (p === undefined) {
      const fetched = this.#link.request({ t: 'room.members', roomId }, ['members']).then(readMembers);
      this.#members.set(roomId, fetched);
      fetched.catch(() => {
        if (this.#members.get(roomId) === fetched) this.#members.delete(roomId);
      });
      p = fetched;
    }
    return p;
  }

  /** Forget the cached members of `roomId` (a membership event was processed there). */
  forgetMembers(roomId: string): void {
    this.#members.delete(roomId);
  }

  /** `ParleyClient.startDirect`: the direct room with `userId`, an existing one else a new one. */
  startDirect(userId: string): Promise<string> {
    if (this.#link.ended) return Promise.reject(this.#link.endError);
    if (typeof userId !== 'string' || !USER_ID.test(userId) || userId === this.#me) return Promise.reject(new SdkError('INVALID_ARGUMENT', 'startDirect needs another user id'));
    let p = this.#directs.get(userId);
    if (p === undefined) {
      p = this.#findOrCreate(userId).finally(() => this.#directs.delete(userId));
      this.#directs.set(userId, p);
    }
    return p;
  }

  /** `ParleyClient.findDirect`: the direct room with `userId`, or null; never creates one. */
  async findDirect(userId: string): Promise<string | null> {
    this.#link.assertOpen();
    if (typeof userId !== 'string' || !USER_ID.test(userId) || userId === this.#me) throw new SdkError('INVALID_ARGUMENT', 'findDirect needs another user id');
    return this.#find(userId);
  }

  async #find(userId: string): Promise<string | null> {
    const rooms = readRooms(await this.#link.request({ t: 'room.list' }, ['rooms']));
    this.noteKinds(rooms);
    for (const room of rooms) {
      // A pin (this device's, or a peer's message's) stands whatever kind the server now lists.
      const pinned = this.#store.directPeer(room.roomId);
      if (pinned !== null) {
        if (pinned === userId) return room.roomId;
        continue;
      }
      if (room.kind !== 'direct') continue;
      const members = await this.members(room.roomId);
      if (members.length === 2 && members.includes(userId) && members.includes(this.#me)) {
        this.#store.setDirectPeer(room.roomId, userId);
        return room.roomId;
      }
    }
    return null;
  }

  /**
   * A room this device did not open but the server lists as direct (the
   * peer opened it): pinned to its other member the first time this device
   * sends there, so a member the server adds later gets nothing. Null for
   * any other room, and for a direct room the peer has left.
   */
  async pinDirect(roomId: string): Promise<string | null> {
    if (!this.#roomKinds.has(roomId)) this.noteKinds(readRooms(await this.#link.request({ t: 'room.list' }, ['rooms'])), roomId);
    if (this.#roomKinds.get(roomId) !== 'direct') return null;
    const members = await this.members(roomId);
    const others = members.filter((u) => u !== this.#me);
    if (members.length === 1 && others.length === 0) return null;
    if (members.length !== 2 || others.length !== 1 || others[0] === undefined) {
      this.#members.delete(roomId); // asked again next time
      throw new SdkError('BAD_RESPONSE', `the server lists direct room ${roomId} with ${members.length} members: a direct room has two, this user and one other`);
    }
    const peer = others[0];
    this.#store.setDirectPeer(roomId, peer);
    return peer;
  }

  /** Remember the kind of each listed room (`also`: a room looked for, remembered as not listed). */
  noteKinds(rooms: readonly RoomSummary[], also?: string): void {
    if (this.#roomKinds.size + rooms.length > ROOM_KINDS_MAX) this.#roomKinds.clear();
    if (also !== undefined) this.#roomKinds.set(also, null);
    for (const room of rooms) this.#roomKinds.set(room.roomId, room.kind);
  }

  async #findOrCreate(userId: string): Promise<string> {
    const existing = await this.#find(userId);
    if (existing !== null) return existing;
    const f = await this.#link.request({ t: 'room.create', kind: 'direct', members: [userId] }, ['room']);
    const room = f['room'];
    if (typeof room !== 'object' || room === null) throw new SdkError('BAD_RESPONSE', 'room.create answered without a room');
    const roomId = stringField(room as Record<string, unknown>, 'roomId', 'room', ROOM_ID);
    this.#store.setDirectPeer(roomId, userId);
    return roomId;
  }
}
