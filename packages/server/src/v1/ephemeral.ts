/**
 * Signals beside the room log: typing indicators (ephemeral: only
 * connected devices get them; an offline one simply misses them) and
 * delivery/read receipts, which are relayed the same way and also kept as
 * each member's read markers, so an offline member can ask for them later.
 *
 * @module
 */
import type { HandlerContext } from './context.ts';
import type { Receipt, Receipts, Typing } from './frames.ts';
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
  if (f.seq > (await ctx.deps.storage.lastSeq(f.roomId))) return ctx.error(f.id, 'not_found', 'no such entry');
  // Kept as the member's read marker (so a member who was offline learns it
  // with `receipts`), relayed live only when it moved the marker.
  const { changed } = await ctx.deps.storage.setReceipt(f.roomId, ctx.me.userId, f.kind, f.seq, Date.now());
  if (changed) ctx.deps.hub.deliver(members, JSON.stringify({ t: 'receipt', roomId: f.roomId, seq: f.seq, kind: f.kind, from: ctx.me }), self);
  if (f.id !== undefined) ctx.reply(f.id, { t: 'receipted', roomId: f.roomId });
}

/** Every member's delivered and read markers of a room (members only). */
export async function onReceipts(ctx: HandlerContext, f: z.infer<typeof Receipts>): Promise<void> {
  const members = await ctx.deps.hub.members(f.roomId);
  if (!members.has(ctx.me.userId)) return ctx.error(f.id, 'not_found', 'no such room');
  const markers = (await ctx.deps.storage.listReceipts(f.roomId)).filter((m) => members.has(m.userId));
  ctx.reply(f.id, { t: 'receipts', roomId: f.roomId, members: markers.map(({ userId, delivered, read }) => ({ userId, delivered, read })) });
}
