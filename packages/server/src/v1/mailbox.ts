/**
 * Per-device mailbox: messages addressed to one device (key agreement
 * messages, MLS Welcomes). Stored until the device acknowledges them; pushed
 * live when the device is connected and in pages at login and after each ack.
 *
 * @module
 */
import { MAILBOX_FROM_SENDER_MAX, MAILBOX_MAX, MAILBOX_PAGE } from '../limits.ts';
import { isMailboxSenderFull, isUnknownDevice, type MailboxEntry } from '../storage/types.ts';
import { b64, type HandlerContext, type Me, type V1Deps } from './context.ts';
import type { MailboxAck, MailboxSend } from './frames.ts';
import type { z } from 'zod';

export function mailFrame(e: MailboxEntry): string {
  return JSON.stringify({ t: 'mail', id: e.id, from: { userId: e.fromUserId, deviceId: e.fromDeviceId }, clientId: e.clientId, payload: b64(e.payload), ts: e.createdAt });
}

export async function onMailboxSend(ctx: HandlerContext, f: z.infer<typeof MailboxSend>): Promise<void> {
  const { storage, hub } = ctx.deps;
  if ((await storage.getDevice(f.userId, f.deviceId)) === null) return ctx.error(f.id, 'not_found', 'no such device');
  let r;
  try {
    r = await storage.enqueueMailbox(
      f.userId,
      f.deviceId,
      { fromUserId: ctx.me.userId, fromDeviceId: ctx.me.deviceId, clientId: f.clientId, payload: f.payload, createdAt: Date.now() },
      MAILBOX_MAX,
      MAILBOX_FROM_SENDER_MAX,
    );
  } catch (e) {
    // Removed since the check above (the enqueue checks again with its write, so nothing is stored for it).
    if (isUnknownDevice(e)) return ctx.error(f.id, 'not_found', 'no such device');
    if (!isMailboxSenderFull(e)) throw e;
    return ctx.error(f.id, 'limit_exceeded', `the recipient's mailbox holds ${MAILBOX_FROM_SENDER_MAX} entries from you already (until it acknowledges some)`);
  }
  if (r === null) return ctx.error(f.id, 'limit_exceeded', "the recipient's mailbox is full");
  // A repeat (the sender retrying) was pushed when it was first stored.
  if (!r.duplicate) hub.deliverToDevice(f.userId, f.deviceId, mailFrame(r.entry));
  ctx.reply(f.id, { t: 'ack', userId: f.userId, deviceId: f.deviceId, clientId: f.clientId, mailboxId: r.entry.id, ...(r.duplicate && { duplicate: true }) });
}

/** What one connection was sent of its device's mailbox in pages. */
export interface MailboxCursor {
  /** The highest id pushed in a page on this connection. */
  pushedUpTo: number;
}

/**
 * Push the next page of pending entries after `afterId` — and after what
 * this connection was already sent in pages, so a partial ack does not
 * bring the rest of a page again — to this connection.
 */
export async function pushMailbox(deps: V1Deps, me: Me, afterId: number, cursor: MailboxCursor, send: (frame: string) => void): Promise<void> {
  for (const e of await deps.storage.readMailbox(me.userId, me.deviceId, Math.max(afterId, cursor.pushedUpTo), MAILBOX_PAGE)) {
    send(mailFrame(e));
    cursor.pushedUpTo = Math.max(cursor.pushedUpTo, e.id);
  }
}

export async function onMailboxAck(ctx: HandlerContext, f: z.infer<typeof MailboxAck>, cursor: MailboxCursor, send: (frame: string) => void): Promise<void> {
  const deleted = await ctx.deps.storage.ackMailbox(ctx.me.userId, ctx.me.deviceId, f.upTo);
  ctx.reply(f.id, { t: 'ok', deleted });
  await pushMailbox(ctx.deps, ctx.me, f.upTo, cursor, send);
}
