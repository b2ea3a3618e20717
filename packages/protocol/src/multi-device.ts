/**
 * Messages between users with several devices: one plaintext becomes one
 * envelope per device — every device of the recipient and every other device
 * of the sender (so they see what was sent) — each under its own pairwise
 * session. A device seen for the first time gets a session from its prekey
 * bundle (PQXDH); later messages reuse the stored session.
 *
 * Both operations are all-or-nothing with respect to the stores, provided
 * the stores' own writes do not fail: on any throw from the protocol, no
 * session, trusted identity or prekey has changed.
 *
 * @module
 */
import { wipe } from '@parley/themis/hazmat';
import { addressKey, deviceAddress, formatAddress, sameAddress, type DeviceAddress } from './address.ts';
import { ProtocolError } from './errors.ts';
import type { PrekeyBundle } from './prekeys.ts';
import { Session } from './session.ts';
import type { IdentityStore, PrekeyStore, SessionStore } from './stores.ts';
import { storeArgument } from './_args.ts';

export interface ProtocolStores {
  readonly identity: IdentityStore;
  readonly prekeys: PrekeyStore;
  readonly sessions: SessionStore;
}

/** The three stores, each with the methods this module calls. */
function checkStores(stores: unknown): void {
  const s = storeArgument<Record<string, unknown>>(stores, [], 'stores');
  storeArgument(s['identity'], ['identityKeyPair', 'isTrustedIdentity', 'saveIdentity'], 'stores.identity');
  storeArgument(s['prekeys'], ['loadSignedPrekey', 'loadPqPrekey', 'loadOneTimePrekey', 'removeOneTimePrekey'], 'stores.prekeys');
  storeArgument(s['sessions'], ['loadSession', 'storeSession'], 'stores.sessions');
}

/** A device to encrypt to, with its bundle from the key directory when we may have no session yet. */
export interface DeviceTarget extends DeviceAddress {
  readonly bundle?: PrekeyBundle | null;
}

export interface DeviceEnvelope extends DeviceAddress {
  readonly envelope: Uint8Array;
}

/**
 * Encrypt `plaintext` for every device in `devices` (the recipient's devices
 * and the sender's own others; `self` is skipped if listed, duplicates once).
 * A device without a stored session needs its `bundle`, whose identity key
 * must be trusted by the identity store: else `NO_SESSION` or
 * `UNTRUSTED_IDENTITY`, and nothing is stored.
 */
export function encryptForDevices(stores: ProtocolStores, self: DeviceAddress, devices: readonly DeviceTarget[], plaintext: Uint8Array, ad?: Uint8Array): DeviceEnvelope[] {
  checkStores(stores);
  if (!Array.isArray(devices)) throw new ProtocolError('INVALID_ARGUMENT', 'devices must be an array');
  const me = deviceAddress(self, 'self');
  const identity = stores.identity.identityKeyPair();
  const seen = new Set<string>([addressKey(me)]);
  const results: { session: Session; envelope: DeviceEnvelope; newIdentity: Uint8Array | null }[] = [];
  try {
    for (const target of devices) {
      const address = deviceAddress(target, 'device');
      if (seen.has(addressKey(address))) continue;
      seen.add(addressKey(address));
      let session = stores.sessions.loadSession(address);
      let newIdentity: Uint8Array | null = null;
      if (session === undefined || !session.established) {
        const bundle = target.bundle;
        if (bundle === undefined || bundle === null) throw new ProtocolError('NO_SESSION', `no session with ${formatAddress(address)} and no prekey bundle to start one`);
        session ??= Session.create(me, address);
        // initiate() verifies the bundle first; only a verified identity key is put to the store.
        session.initiate(identity, bundle);
        newIdentity = session.remoteIdentityKey;
        if (newIdentity === null || !stores.identity.isTrustedIdentity(address, newIdentity)) {
          session.destroy();
          throw new ProtocolError('UNTRUSTED_IDENTITY', `identity key of ${formatAddress(address)} is not trusted`);
        }
      }
      const envelope = session.encrypt(plaintext, ad);
      results.push({ session, envelope: { userId: address.userId, deviceId: address.deviceId, envelope }, newIdentity });
    }
  } catch (e) {
    for (const r of results) r.session.destroy();
    throw e;
  }
  // Everything encrypted: now commit.
  for (const r of results) {
    if (r.newIdentity !== null) stores.identity.saveIdentity(r.session.remoteAddress, r.newIdentity);
    stores.sessions.storeSession(r.session);
    r.session.destroy();
  }
  return results.map((r) => r.envelope);
}

/**
 * Decrypt an envelope that the relay says came from `from`. A prekey message
 * from an unknown sender (or a new session of a known one) runs PQXDH as the
 * responder; the sender's identity key must be trusted by the identity store.
 */
export function decryptFromDevice(stores: ProtocolStores, self: DeviceAddress, from: DeviceAddress, envelope: Uint8Array, ad?: Uint8Array): Uint8Array {
  checkStores(stores);
  const me = deviceAddress(self, 'self');
  const sender = deviceAddress(from, 'from');
  if (sameAddress(me, sender)) throw new ProtocolError('INVALID_ARGUMENT', 'a device does not have a session with itself');
  const session = stores.sessions.loadSession(sender) ?? Session.create(me, sender);
  let plaintext: Uint8Array;
  try {
    plaintext = session.decrypt(envelope, {
      ...(ad === undefined ? {} : { ad }),
      identity: stores.identity.identityKeyPair(),
      prekeys: stores.prekeys,
      isTrustedIdentity: (key) => stores.identity.isTrustedIdentity(sender, key),
    });
  } catch (e) {
    session.destroy();
    throw e;
  }
  // Each state's identity was trusted when the state was made; the current one is now the device's.
  const identityKey = session.remoteIdentityKey;
  try {
    if (identityKey !== null) stores.identity.saveIdentity(sender, identityKey);
    stores.sessions.storeSession(session);
  } catch (e) {
    wipe(plaintext);
    throw e;
  } finally {
    session.destroy();
  }
  return plaintext;
}

