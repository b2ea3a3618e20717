/**
 * A user's devices over v1 (docs/protocol.md, "Authentication"): adding one
 * (`device.add`), removing one (`device.remove`) and signing out
 * everywhere (`sessions.revoke`).
 *
 * Adding and removing a device take the acting device's own signature, not
 * only its session: a session is a token, which can be copied, and a copied
 * token must not be able to add a key that then logs in by itself, nor
 * lock the user's own devices out. Signing out everywhere needs only a
 * session and gives none: the asking session lasts as long as its access
 * token, and every device that holds its key logs in again.
 *
 * Both tell whoever might encrypt to the user's devices (the user's own
 * devices and everyone sharing a room with them) `devices.changed`, so
 * their clients fetch the list again instead of waiting for their cache to
 * expire; the key directory stays the authority.
 *
 * @module
 */
import type { z } from 'zod';
import { DEVICE_IDS_PER_USER_MAX, DEVICES_PER_USER_MAX } from '../limits.ts';
import { deviceApprovalMessage, deviceLinkMessage, deviceRemovalMessage, newSessionEpoch, verifyEd25519 } from './auth.ts';
import type { HandlerContext, V1Deps } from './context.ts';
import type { DeviceAdd, DeviceRemove, SessionsRevoke } from './frames.ts';
import type { Conn } from './hub.ts';
import { CLOSE_V1 } from './settings.ts';

/** Why a session was ended by the server (the `session.ended` frame, before its close). */
export type SessionEnd = 'signed-out' | 'device-removed';

/**
 * An authenticated device adds another device of the same user. The new
 * device's signature over `deviceLinkMessage` proves the key is held by
 * whoever asked for it to be added (typically shown on the new device as
 * a QR code); the adding device's signature over `deviceApprovalMessage`
 * proves its own key approved it. The new device then logs in with the
 * usual challenge.
 */
export async function onDeviceAdd(ctx: HandlerContext, f: z.infer<typeof DeviceAdd>): Promise<void> {
  // One change at a time per user in this process; storage checks the limits with the write, across processes.
  await ctx.deps.hub.inOrder(`devices:${ctx.me.userId}`, () => addDevice(ctx, f));
}

async function addDevice(ctx: HandlerContext, f: z.infer<typeof DeviceAdd>): Promise<void> {
  const { me } = ctx;
  const { storage } = ctx.deps;
  if (!verifyEd25519(f.identityKey, deviceLinkMessage(me.userId, f.deviceId), f.signature)) {
    return ctx.error(f.id, 'invalid_credentials', 'the new device key did not sign this request');
  }
  const by = await storage.getDevice(me.userId, me.deviceId);
  if (by === null || !verifyEd25519(by.identityKey, deviceApprovalMessage(me.userId, me.deviceId, f.deviceId, f.identityKey), f.approval)) {
    return ctx.error(f.id, 'invalid_credentials', "this device's key did not approve the new device");
  }
  const device = { userId: me.userId, deviceId: f.deviceId, identityKey: f.identityKey, createdAt: Date.now(), sessionEpoch: newSessionEpoch() };
  const added = await storage.addDeviceWithin(device, { devicesMax: DEVICES_PER_USER_MAX, idsMax: DEVICE_IDS_PER_USER_MAX });
  if (added === 'too-many-devices') return ctx.error(f.id, 'limit_exceeded', `a user has at most ${DEVICES_PER_USER_MAX} devices`);
  if (added === 'too-many-ids') return ctx.error(f.id, 'limit_exceeded', `a user has at most ${DEVICE_IDS_PER_USER_MAX} device ids, removed devices' included`);
  // Taken, or a removed device's: its peers would refuse a new key under that id for good.
  if (added === 'taken') return ctx.error(f.id, 'conflict', 'device id taken, or used by a removed device: choose another');
  ctx.deps.log.info({ userId: me.userId, deviceId: f.deviceId, by: me.deviceId }, 'device added');
  ctx.send({ t: 'device.added', ...(f.id !== undefined && { re: f.id }), userId: me.userId, deviceId: f.deviceId });
  await announceDevicesChanged(ctx.deps, me.userId);
}

/**
 * A device removes itself or another device of its user: the device, its
 * prekeys, KeyPackages, mailbox and refresh tokens go in one step; its
 * connections on every process get `session.ended` and are closed
 * (CLOSE_V1.DEVICE_REMOVED), and its access tokens no longer open a
 * session (the device is gone). A user's last device stays: without it
 * nobody could log in to the account again.
 */
export async function onDeviceRemove(ctx: HandlerContext, f: z.infer<typeof DeviceRemove>): Promise<void> {
  await ctx.deps.hub.inOrder(`devices:${ctx.me.userId}`, () => removeDevice(ctx, f));
}

async function removeDevice(ctx: HandlerContext, f: z.infer<typeof DeviceRemove>): Promise<void> {
  const { me } = ctx;
  const { storage, hub } = ctx.deps;
  const [by, target] = await Promise.all([storage.getDevice(me.userId, me.deviceId), storage.getDevice(me.userId, f.deviceId)]);
  if (target === null) return ctx.error(f.id, 'not_found', 'no such device');
  if (by === null || !verifyEd25519(by.identityKey, deviceRemovalMessage(me.userId, me.deviceId, f.deviceId, target.identityKey), f.approval)) {
    return ctx.error(f.id, 'invalid_credentials', "this device's key did not approve the removal");
  }
  const removed = await storage.removeDevice(me.userId, f.deviceId, Date.now());
  // Without a device nobody could log in to the account again (checked with the write, on every process).
  if (removed === 'last') return ctx.error(f.id, 'conflict', "a user's last device cannot be removed");
  if (removed === 'unknown') return ctx.error(f.id, 'not_found', 'no such device');
  ctx.deps.log.info({ userId: me.userId, deviceId: f.deviceId, by: me.deviceId }, 'device removed');
  // Answered before the removed device's connections close (the asking one among them, when it removed itself).
  ctx.send({ t: 'device.removed', ...(f.id !== undefined && { re: f.id }), userId: me.userId, deviceId: f.deviceId });
  hub.endSessions(me.userId, f.deviceId, sessionEnded('device-removed'), CLOSE_V1.DEVICE_REMOVED);
  await announceDevicesChanged(ctx.deps, me.userId);
}

/**
 * Sign the user out everywhere: every refresh token of every device is
 * deleted and every device's session epoch replaced, so no access token
 * issued before opens a session again; every other connection of the user
 * (on every process) is ended (CLOSE_V1.SIGNED_OUT). The asking connection
 * stays until its access token expires, and gets no new tokens: whoever
 * asked with a copied token gains nothing lasting, and a device logs in
 * again with its key.
 */
export async function onSessionsRevoke(ctx: HandlerContext, f: z.infer<typeof SessionsRevoke>, self: Conn): Promise<void> {
  const { me } = ctx;
  const { storage, hub } = ctx.deps;
  await hub.inOrder(`devices:${me.userId}`, async () => {
    const devices = await storage.resetSessions(me.userId, newSessionEpoch());
    ctx.deps.log.warn({ userId: me.userId, by: me.deviceId, devices }, 'user signed out everywhere');
    hub.endSessions(me.userId, null, sessionEnded('signed-out'), CLOSE_V1.SIGNED_OUT, self);
    ctx.send({ t: 'sessions.revoked', ...(f.id !== undefined && { re: f.id }) });
  });
}

function sessionEnded(reason: SessionEnd): string {
  return JSON.stringify({ t: 'session.ended', reason });
}

/**
 * `devices.changed` to the user's own connections and to every member of
 * every room the user is in: those are who encrypt to the user's devices
 * (after a device is added or removed, and when one publishes its signed
 * prekey — a device just added becomes reachable).
 * Best effort — a client that misses it still fetches the list again when
 * its cache expires.
 */
export async function announceDevicesChanged(deps: V1Deps, userId: string): Promise<void> {
  try {
    const recipients = new Set<string>([userId]);
    for (const room of await deps.storage.listRoomsOf(userId)) {
      for (const member of await deps.hub.members(room.roomId)) recipients.add(member);
    }
    deps.hub.deliver(recipients, JSON.stringify({ t: 'devices.changed', userId }));
  } catch (e) {
    deps.log.warn({ userId, err: e instanceof Error ? e.message : String(e) }, 'could not announce a device change');
  }
}
