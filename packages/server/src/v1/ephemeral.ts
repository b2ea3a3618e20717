/**
 * Ephemeral signals, never stored: typing indicators, delivery/read
 * receipts and presence. They reach the room's (or contacts') connected
 * devices only; a device that is offline simply misses them.
 *
 * @module
 */
import type { HandlerContext, V1Deps } from './context.ts';
import type { Receipt, Typing } from './frames.ts';
import type { Conn } from './hub.ts';
import type { z } from 'zod';


export async function onTyping(ctx: HandlerContext, f: z.infer<typeof Typing>, self: Conn): Promise<void> {
  const members = await ctx.deps.hub.members(f.roomId);
  if (!members.has(ctx.me.userId)) return ctx.error(f.id, 'not_found', 'no such room');
  ctx.deps.hub.deliver(members, JSON.stringify({ t: 'typing', roomId: f.roomId, from: ctx.me }), self);
}

export async function onReceipt(ctx: HandlerContext, f: z.infer<typeof Receipt>, self: Conn): Promise<void> {
  const members = await ctx.deps.hub.members(f.roomId);
  if (!members.has(ctx.me.userId)) return ctx.error(f.id, 'not_found', 'no such room');
  if (f.seq > (await ctx.deps.storage.lastSeq(f.roomId))) return ctx.error(f.id, 'bad_frame', 'no such entry');
  ctx.deps.hub.deliver(members, JSON.stringify({ t: 'receipt', roomId: f.roomId, seq: f.seq, kind: f.kind, from: ctx.me }), self);
}

/** Tell everyone who shares a room with `userId` that it came online or went offline. */
export async function announcePresence(deps: V1Deps, userId: string, online: boolean): Promise<void> {
  const audience = new Set<string>();
  for (const r of await deps.storage.listRoomsOf(userId)) for (const u of await deps.hub.members(r.roomId)) if (u !== userId) audience.add(u);
  if (audience.size > 0) deps.hub.deliver(audience, JSON.stringify({ t: 'presence', userId, online }));
}
