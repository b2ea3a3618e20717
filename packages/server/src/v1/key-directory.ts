/**
 * The public-key directory: per device, the identity key (from
 * registration), a signed prekey, one-time prekeys (each handed out once),
 * a post-quantum prekey and MLS KeyPackages (each handed out once).
 *
 * Every uploaded key is checked against the device's Ed25519 identity key,
 * so the server cannot be tricked into serving a key the device did not
 * sign — and a client fetching keys re-verifies the same signatures, so a
 * malicious server cannot substitute them either. Signed messages:
 * ```
 * signed prekey  UTF-8("parley-signed-prekey-v1\n") ‖ u32be(keyId) ‖ publicKey
 * PQ prekey      UTF-8("parley-pq-prekey-v1\n")     ‖ u32be(keyId) ‖ publicKey
 * KeyPackage     UTF-8("parley-key-package-v1\n")   ‖ data
 * ```
 *
 * @module
 */
import { KEY_PACKAGES_MAX, ONE_TIME_PREKEYS_MAX } from '../limits.ts';
import { isUnknownDevice } from '../storage/types.ts';
import { verifyEd25519 } from './auth.ts';
import { announceDevicesChanged } from './devices.ts';
import { b64, type HandlerContext } from './context.ts';
import type { KeysClaimKeyPackage, KeysFetch, KeysUpload } from './frames.ts';
import type { z } from 'zod';

export function prekeySignedMessage(purpose: 'parley-signed-prekey-v1' | 'parley-pq-prekey-v1', keyId: number, publicKey: Uint8Array): Uint8Array {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(keyId);
  return Buffer.concat([Buffer.from(purpose + '\n', 'utf8'), id, publicKey]);
}

export function keyPackageSignedMessage(data: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from('parley-key-package-v1\n', 'utf8'), data]);
}

/** Whether `incoming` items, some perhaps stored already (`stored` counts those, asked only near the limit), take `held` over `max`. */
async function wouldExceed(held: number, incoming: number, max: number, stored: () => Promise<number>): Promise<boolean> {
  return held + incoming > max && held + incoming - (await stored()) > max;
}

export async function onKeysUpload(ctx: HandlerContext, f: z.infer<typeof KeysUpload>): Promise<void> {
  const { storage } = ctx.deps;
  const { userId, deviceId } = ctx.me;
  const device = await storage.getDevice(userId, deviceId);
  if (device === null) return ctx.error(f.id, 'not_found', 'device not registered');
  const idKey = device.identityKey;
  if (f.signedPrekey !== undefined && !verifyEd25519(idKey, prekeySignedMessage('parley-signed-prekey-v1', f.signedPrekey.keyId, f.signedPrekey.publicKey), f.signedPrekey.signature)) {
    return ctx.error(f.id, 'invalid_credentials', 'signed prekey signature does not verify');
  }
  if (f.pqPrekey !== undefined && !verifyEd25519(idKey, prekeySignedMessage('parley-pq-prekey-v1', f.pqPrekey.keyId, f.pqPrekey.publicKey), f.pqPrekey.signature)) {
    return ctx.error(f.id, 'invalid_credentials', 'PQ prekey signature does not verify');
  }
  for (const kp of f.keyPackages ?? []) {
    if (!verifyEd25519(idKey, keyPackageSignedMessage(kp.data), kp.signature)) return ctx.error(f.id, 'invalid_credentials', `KeyPackage ${kp.ref} signature does not verify`);
  }
  const otks = f.oneTimePrekeys ?? [];
  const kps = f.keyPackages ?? [];
  // Counted and written under one key per device: two connections of the
  // device cannot both pass the count before either writes.
  const counts = await ctx.deps.hub.inOrder(`keys:${userId}/${deviceId}`, async () => {
    // Only what is new counts — a retried upload adds nothing (its ids are kept as they were) — so the ids
    // already stored are looked up when the upload would otherwise go over. A replacing upload holds only its own.
    if (otks.length > 0 && f.replaceOneTimePrekeys !== true && (await wouldExceed(await storage.countOneTimePrekeys(userId, deviceId), otks.length, ONE_TIME_PREKEYS_MAX, () => storage.countStoredOneTimePrekeys(userId, deviceId, otks.map((k) => k.keyId))))) {
      ctx.error(f.id, 'limit_exceeded', `at most ${ONE_TIME_PREKEYS_MAX} one-time prekeys per device`);
      return null;
    }
    if (kps.length > 0 && (await wouldExceed(await storage.countKeyPackages(userId, deviceId), kps.length, KEY_PACKAGES_MAX, () => storage.countStoredKeyPackages(userId, deviceId, kps.map((k) => k.ref))))) {
      ctx.error(f.id, 'limit_exceeded', `at most ${KEY_PACKAGES_MAX} KeyPackages per device`);
      return null;
    }
    try {
      if (f.signedPrekey !== undefined) await storage.setSignedPrekey(userId, deviceId, f.signedPrekey);
      if (f.pqPrekey !== undefined) await storage.setPqPrekey(userId, deviceId, f.pqPrekey);
      let oneTimePrekeys: number;
      let replaced: number | undefined;
      if (f.replaceOneTimePrekeys === true) ({ dropped: replaced, held: oneTimePrekeys } = await storage.replaceOneTimePrekeys(userId, deviceId, otks));
      else oneTimePrekeys = otks.length > 0 ? await storage.addOneTimePrekeys(userId, deviceId, otks) : await storage.countOneTimePrekeys(userId, deviceId);
      const keyPackages = kps.length > 0 ? await storage.addKeyPackages(userId, deviceId, kps.map((k) => ({ ref: k.ref, data: k.data, signature: k.signature }))) : await storage.countKeyPackages(userId, deviceId);
      return { oneTimePrekeys, keyPackages, replaced };
    } catch (e) {
      // Removed since the check above: each write checks again with itself, so none of them outlives the removal.
      if (!isUnknownDevice(e)) throw e;
      ctx.error(f.id, 'not_found', 'device not registered');
      return null;
    }
  });
  if (counts === null) return;
  const { oneTimePrekeys, keyPackages, replaced } = counts;
  ctx.reply(f.id, { t: 'keys.uploaded', oneTimePrekeys, keyPackages, ...(replaced !== undefined && { replaced }) });
  // A device's first signed prekey makes it reachable: whoever listed it without one (while it was being
  // linked) and skipped it fetches the list again now, instead of when its cache expires.
  if (f.signedPrekey !== undefined) await announceDevicesChanged(ctx.deps, userId);
}

/** Every device of a user, each with one freshly claimed one-time prekey (or null when they ran out). */
export async function onKeysFetch(ctx: HandlerContext, f: z.infer<typeof KeysFetch>): Promise<void> {
  const { storage } = ctx.deps;
  if ((await storage.getUser(f.userId)) === null) return ctx.error(f.id, 'not_found', 'no such user');
  const devices = [];
  // A client that already has sessions with some devices (refreshing a
  // device list) names the ones it needs prekeys for, so the others' one-time
  // prekeys are not spent for nothing.
  const claimFor = f.claimFor === undefined ? null : new Set(f.claimFor);
  for (const d of await storage.listDevices(f.userId)) {
    const spk = await storage.getSignedPrekey(f.userId, d.deviceId);
    const pq = await storage.getPqPrekey(f.userId, d.deviceId);
    const otk = claimFor === null || claimFor.has(d.deviceId) ? await storage.claimOneTimePrekey(f.userId, d.deviceId) : null;
    devices.push({
      deviceId: d.deviceId,
      identityKey: b64(d.identityKey),
      signedPrekey: spk === null ? null : { keyId: spk.keyId, publicKey: b64(spk.publicKey), signature: b64(spk.signature) },
      oneTimePrekey: otk === null ? null : { keyId: otk.keyId, publicKey: b64(otk.publicKey) },
      pqPrekey: pq === null ? null : { keyId: pq.keyId, publicKey: b64(pq.publicKey), signature: b64(pq.signature) },
    });
  }
  ctx.reply(f.id, { t: 'keys', userId: f.userId, devices });
}

export async function onClaimKeyPackage(ctx: HandlerContext, f: z.infer<typeof KeysClaimKeyPackage>): Promise<void> {
  const { storage } = ctx.deps;
  if ((await storage.getDevice(f.userId, f.deviceId)) === null) return ctx.error(f.id, 'not_found', 'no such device');
  const kp = await storage.claimKeyPackage(f.userId, f.deviceId);
  ctx.reply(f.id, { t: 'keyPackage', userId: f.userId, deviceId: f.deviceId, keyPackage: kp === null ? null : { ref: kp.ref, data: b64(kp.data), ...(kp.signature !== undefined && { signature: b64(kp.signature) }) } });
}
