/**
 * Rooms and their members over v1 (docs/protocol.md, "Rooms"):
 * `room.create`, `room.add`, `room.remove`, `room.leave`, `room.list` and
 * `room.members`.
 *
 * Every membership change is decided inside the room's `members:` section
 * (`Hub.inOrder`), against the roles it changes, and written together with
 * its log event; one that a concurrent change (on any process) made stale
 * is decided again. A user's room count is held under its own key while a
 * change adds it somewhere. Apart from the connection: these rules need
 * only who asks and how to answer (`HandlerContext`), and they are the
 * largest part of the protocol's logic.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { membershipEventBody } from '../storage/_shared.ts';
import type { ChangeMemberOptions, Role, Storage } from '../storage/types.ts';
import { ROOM_MEMBERS_MAX, ROOMS_ADDED_BY_OTHERS_MAX, ROOMS_PER_USER_MAX } from '../limits.ts';
import type { HandlerContext } from './context.ts';
import type { ErrorCode, RoomAdd, RoomCreate, RoomList, RoomMembers } from './frames.ts';

/**
 * The `Hub.inOrder` key of a user's room count (ROOMS_PER_USER_MAX): every
 * change that adds a membership holds the key of each user it adds, so a
 * count and its write cannot interleave with another's — and changes for
 * other users never wait on it. (The room-size limit is decided inside the
 * room's own `members:` section.)
 */
const roomsOfKey = (userId: string): string => `rooms-of:${userId}`;

/**
 * How many times a membership request is decided again when a concurrent
 * change (another connection or process) made its decision stale.
 */
const MEMBERSHIP_ATTEMPTS_MAX = 16;

/** A membership change as decided: what to change, against which roles (`Storage.changeMember`). */
interface MembershipDecision {
  userId: string;
  expected: Role | null;
  role: Role | null;
  kind: 'member-added' | 'member-removed' | 'role-changed';
  actorRole?: Role;
  handOver?: boolean;
}

/** `userId`'s role in the room; null if it is not a member (or there is no such room). */
export async function roleIn(storage: Storage, roomId: string, userId: string): Promise<'owner' | 'admin' | 'member' | null> {
  return (await storage.getMember(roomId, userId))?.role ?? null;
}

export async function onRoomCreate(ctx: HandlerContext, f: z.infer<typeof RoomCreate>): Promise<void> {
  const { me } = ctx;
  const { storage } = ctx.deps;
  const others = [...new Set(f.members.filter((u) => u !== me.userId))];
  if (f.kind === 'direct' && others.length !== 1) return ctx.error(f.id, 'bad_frame', 'a direct room has exactly one other member');
  if (others.length + 1 > ROOM_MEMBERS_MAX) return ctx.error(f.id, 'limit_exceeded', 'too many members');
  for (const u of others) if ((await storage.getUser(u)) === null) return ctx.error(f.id, 'not_found', `no user ${u}`);
  const room = await holdingRoomCounts(ctx, [me.userId, ...others], async () => {
    for (const u of [me.userId, ...others]) {
      // The creator may use its whole quota; the members it names, only what others may (ROOMS_ADDED_BY_OTHERS_MAX).
      if ((await storage.countRoomsOf(u)) >= (u === me.userId ? ROOMS_PER_USER_MAX : ROOMS_ADDED_BY_OTHERS_MAX)) {
        ctx.error(f.id, 'limit_exceeded', `${u} is in too many rooms`);
        return null;
      }
    }
    const roomId = randomBytes(16).toString('base64url');
    await storage.createRoom({ roomId, kind: f.kind, createdBy: me.userId, createdAt: Date.now() });
    await changeMembership(ctx, roomId, me.userId, null, 'owner', 'member-added');
    for (const u of others) await changeMembership(ctx, roomId, u, null, 'member', 'member-added');
    return roomId;
  });
  if (room === null) return;
  ctx.send({ t: 'room', ...(f.id !== undefined && { re: f.id }), room: { roomId: room, kind: f.kind, role: 'owner', lastSeq: await storage.lastSeq(room) } });
}

/**
 * Run `task` holding the room-count key of each of `userIds`, taken in
 * sorted order so that two callers never wait on each other. Always taken
 * before a room's `members:` key, never after it.
 */
function holdingRoomCounts<T>(ctx: HandlerContext, userIds: readonly string[], task: () => Promise<T>): Promise<T> {
  const keys = [...new Set(userIds)].sort().map(roomsOfKey);
  const hold = (i: number): Promise<T> => {
    const key = keys[i];
    return key === undefined ? task() : ctx.deps.hub.inOrder(key, () => hold(i + 1));
  };
  return hold(0);
}

/**
 * Change one membership and log it (`Hub.changeMemberAndDeliver`): applied
 * only if the user's role is still `expected`, the role every check of the
 * caller was made against. False when it was not (a concurrent change, here
 * or on another process, got there first): the caller decides again.
 */
async function changeMembership(
  ctx: HandlerContext,
  roomId: string,
  userId: string,
  expected: Role | null,
  role: Role | null,
  kind: 'member-added' | 'member-removed' | 'role-changed',
  options?: ChangeMemberOptions,
): Promise<boolean> {
  const { me } = ctx;
  const clientId = `ev-${randomBytes(12).toString('base64url')}`;
  const event = { kind, senderUserId: me.userId, senderDeviceId: me.deviceId, clientId, body: membershipEventBody(userId, role, me.userId), createdAt: Date.now() };
  return (await ctx.deps.hub.changeMemberAndDeliver(roomId, userId, expected, role, event, options)) !== null;
}

/**
 * Decide a membership change and make it, inside the room's `members:`
 * section; if a concurrent change made the decision stale, decide again
 * (it sees that change). `decide` answers an error to send, 'done', or the
 * change to make.
 */
async function membershipStep(ctx: HandlerContext, roomId: string, decide: () => Promise<[ErrorCode, string] | 'done' | MembershipDecision>): Promise<[ErrorCode, string] | null> {
  for (let attempt = 0; attempt < MEMBERSHIP_ATTEMPTS_MAX; attempt++) {
    // Another process changed the room between decision and change: wait a
    // little (random, so racing processes fall out of step) and decide again.
    if (attempt > 0) await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 10 * attempt)));
    const outcome = await ctx.deps.hub.inOrder(`members:${roomId}`, async () => {
      const d = await decide();
      if (d === 'done' || Array.isArray(d)) return d;
      const options: ChangeMemberOptions = { ...(d.actorRole !== undefined && { actorRole: d.actorRole }), ...(d.handOver === true && { handOver: true }) };
      return (await changeMembership(ctx, roomId, d.userId, d.expected, d.role, d.kind, options)) ? 'done' : 'stale';
    });
    if (outcome === 'done') return null;
    if (outcome !== 'stale') return outcome;
  }
  return ['internal', 'the room kept changing; try again'];
}

export async function onRoomAdd(ctx: HandlerContext, f: z.infer<typeof RoomAdd>): Promise<void> {
  const { me } = ctx;
  const { storage } = ctx.deps;
  const room = await storage.getRoom(f.roomId);
  const myRole = await roleIn(storage, f.roomId, me.userId);
  if (room === null || myRole === null) return ctx.error(f.id, 'not_found', 'no such room');
  if (myRole === 'member') return ctx.error(f.id, 'forbidden', 'only owners and admins add members');
  if (room.kind === 'direct') return ctx.error(f.id, 'forbidden', 'a direct room has fixed members');
  if ((await storage.getUser(f.userId)) === null) return ctx.error(f.id, 'not_found', 'no such user');
  const role = f.role ?? 'member';
  if (role === 'admin' && myRole !== 'owner') return ctx.error(f.id, 'forbidden', 'only owners make admins');
  const failure = await holdingRoomCounts(ctx, [f.userId], () =>
    membershipStep(ctx, f.roomId, async () => {
      // Read again on every attempt: the caller's own role too may have changed.
      const mine = await roleIn(storage, f.roomId, me.userId);
      if (mine === null) return ['not_found', 'no such room'];
      if (mine === 'member') return ['forbidden', 'only owners and admins add members'];
      if (role === 'admin' && mine !== 'owner') return ['forbidden', 'only owners make admins'];
      const existing = await roleIn(storage, f.roomId, f.userId);
      if (existing === 'owner') return ['forbidden', 'cannot change an owner'];
      if (existing === 'admin' && mine !== 'owner') return ['forbidden', 'only owners change an admin'];
      // Nothing changes: no event in the log.
      if (existing === role) return 'done';
      // Only a new membership counts against the limits (a role change adds no room).
      if (existing === null) {
        const bound = f.userId === me.userId ? ROOMS_PER_USER_MAX : ROOMS_ADDED_BY_OTHERS_MAX;
        if ((await storage.countRoomsOf(f.userId)) >= bound) return ['limit_exceeded', 'user is in too many rooms'];
        if ((await ctx.deps.hub.members(f.roomId)).size >= ROOM_MEMBERS_MAX) return ['limit_exceeded', 'room is full'];
      }
      return { userId: f.userId, expected: existing, role, kind: existing === null ? 'member-added' : 'role-changed', actorRole: mine };
    }),
  );
  if (failure !== null) return ctx.error(f.id, failure[0], failure[1]);
  ctx.send({ t: 'ok', ...(f.id !== undefined && { re: f.id }) });
}

/** `room.remove` of `userId`, or `room.leave` (`userId` is the caller's own). */
export async function onRoomRemove(ctx: HandlerContext, re: string | undefined, roomId: string, userId: string): Promise<void> {
  const { me } = ctx;
  const { storage } = ctx.deps;
  const room = await storage.getRoom(roomId);
  if (room === null) return ctx.error(re, 'not_found', 'no such room');
  const failure = await membershipStep(ctx, roomId, async () => {
    const myRole = await roleIn(storage, roomId, me.userId);
    if (myRole === null) return ['not_found', 'no such room'];
    const theirRole = await roleIn(storage, roomId, userId);
    if (theirRole === null) return ['not_found', 'not a member'];
    if (userId !== me.userId) {
      if (room.kind === 'direct') return ['forbidden', 'a direct room has fixed members'];
      if (myRole === 'member') return ['forbidden', 'only owners and admins remove members'];
      if (theirRole === 'owner' && myRole !== 'owner') return ['forbidden', 'only owners remove owners'];
      if (theirRole === 'admin' && myRole !== 'owner') return ['forbidden', 'only owners remove admins'];
    }
    // An owner leaving (or removed) must not leave the room without one:
    // nobody could then make admins. In the same step, the first admin by
    // user id (else the first member) becomes owner (`handOver`).
    return { userId, expected: theirRole, role: null, kind: 'member-removed', actorRole: myRole, handOver: theirRole === 'owner' };
  });
  if (failure !== null) return ctx.error(re, failure[0], failure[1]);
  ctx.send({ t: 'ok', ...(re !== undefined && { re }) });
}

export async function onRoomList(ctx: HandlerContext, f: z.infer<typeof RoomList>): Promise<void> {
  const rooms = await ctx.deps.storage.listRoomsOf(ctx.me.userId);
  const out = rooms.map((r) => ({ roomId: r.roomId, kind: r.kind, role: r.role, lastSeq: r.lastSeq }));
  ctx.send({ t: 'rooms', ...(f.id !== undefined && { re: f.id }), rooms: out });
}

export async function onRoomMembers(ctx: HandlerContext, f: z.infer<typeof RoomMembers>): Promise<void> {
  if ((await roleIn(ctx.deps.storage, f.roomId, ctx.me.userId)) === null) return ctx.error(f.id, 'not_found', 'no such room');
  ctx.send({ t: 'members', ...(f.id !== undefined && { re: f.id }), roomId: f.roomId, members: await ctx.deps.storage.listMembers(f.roomId) });
}
