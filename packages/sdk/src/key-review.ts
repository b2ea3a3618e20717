/**
 * The peer records (peer-keys.ts) kept up to date on this device: every
 * device list the key directory gives is reviewed against the record
 * before it is used (`keysChanged` for what changed, refused keys never
 * used); a device that writes without being recorded joins the record at
 * once; verified keys, the devices this device added and a new user's
 * own first device are recorded; and the safety number and a
 * verification's key sets come from freshly reviewed lists.
 *
 * Separate from the client because every write of a peer record goes
 * through here, so what the record says — the basis of key-change warnings
 * and of the verified state — has one author; the state of its own is the
 * background reviews under way.
 *
 * @module
 */
import { equalBytes } from '@parley/themis/hazmat';
import type { ClientStore } from './client-store.ts';
import { SdkError } from './errors.ts';
import { readKeys, USER_ID, type DeviceRef, type DirectoryEntry } from './frames.ts';
import { PEER_DEVICES_MAX } from './limits.ts';
import type { Link } from './link.ts';
import { matchesVerified, reviewPeerKeys, type DeviceKey, type KeysChange, type PeerRecord } from './peer-keys.ts';
import { formatSafetyNumber, safetyNumber } from './safety-number.ts';

/** One device in a safety number: its id and its Ed25519 identity key from the key directory. */
export interface SafetyNumberDevice {
  readonly deviceId: string;
  readonly identityKey: Uint8Array;
  /**
   * False when this device already trusts another identity key for that
   * device (a key changed since first contact: messages to it are refused).
   */
  readonly trusted: boolean;
}

/** What `client.safetyNumber` returns: the number, and the key sets it covers. */
export interface SafetyNumberReport {
  /** 60 digits. */
  readonly digits: string;
  /** The same as 12 groups of 5 digits. */
  readonly formatted: string;
  /** This user and every one of its devices in the key directory. */
  readonly local: { readonly userId: string; readonly devices: readonly SafetyNumberDevice[] };
  /** The other user and every one of its devices. */
  readonly remote: { readonly userId: string; readonly devices: readonly SafetyNumberDevice[] };
}

export interface KeyReviewHooks {
  /** The client's link: requests, and whether the client closed. */
  readonly link: Pick<Link, 'request' | 'ended' | 'endError' | 'assertOpen'>;
  /** `fn` in one store transaction, when the store has them. */
  atomically<T>(fn: () => T): T;
  keysChanged(change: KeysChange): void;
  error(e: unknown): void;
}

export class KeyReview {
  readonly #me: DeviceRef;
  readonly #store: ClientStore;
  readonly #hooks: KeyReviewHooks;
  /** Users whose keys are being reviewed in the background. */
  readonly #reviewing = new Set<string>();

  constructor(me: DeviceRef, store: ClientStore, hooks: KeyReviewHooks) {
    this.#me = me;
    this.#store = store;
    this.#hooks = hooks;
  }

  /** `ParleyClient.safetyNumber`: over every device key of both users as the key directory lists them now. */
  async safetyNumber(userId: string): Promise<SafetyNumberReport> {
    this.#hooks.link.assertOpen();
    if (typeof userId !== 'string' || !USER_ID.test(userId) || userId === this.#me.userId) throw new SdkError('INVALID_ARGUMENT', 'safetyNumber needs another user id');
    const [local, remote] = await Promise.all([this.#directoryKeys(this.#me.userId), this.#directoryKeys(userId)]);
    const own = this.#store.identity.identityKeyPair().publicKey;
    const listed = local.find((d) => d.deviceId === this.#me.deviceId);
    if (listed === undefined || listed.identityKey.length !== own.length || listed.identityKey.some((b, i) => b !== own[i])) {
      throw new SdkError('BAD_RESPONSE', 'the key directory does not list this device with its identity key');
    }
    if (remote.length === 0) throw new SdkError('SERVER', `${userId} has no devices`, { serverCode: 'not_found' });
    const digits = safetyNumber({ userId: this.#me.userId, identityKeys: local.map((d) => d.identityKey) }, { userId, identityKeys: remote.map((d) => d.identityKey) });
    return { digits, formatted: formatSafetyNumber(digits), local: { userId: this.#me.userId, devices: local }, remote: { userId, devices: remote } };
  }

  async #directoryKeys(userId: string): Promise<SafetyNumberDevice[]> {
    // claimFor [] : list the devices without spending their one-time prekeys.
    const entries = readKeys(await this.#hooks.link.request({ t: 'keys.fetch', userId, claimFor: [] }, ['keys']), userId);
    const refused = this.review(userId, entries);
    return entries
      .map((e) => ({ deviceId: e.deviceId, identityKey: e.identityKey, trusted: !refused.has(e.deviceId) }))
      .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  }

  /** `ParleyClient.verificationStatus`: what this device knows of `userId`'s device keys (local, no request). */
  verificationStatus(userId: string): { readonly verified: boolean; readonly verifiedAt: number | null; readonly devices: readonly DeviceKey[] } {
    if (typeof userId !== 'string' || !USER_ID.test(userId)) throw new SdkError('INVALID_ARGUMENT', 'userId is not a user id');
    const record = this.#store.peerRecord(userId);
    if (record === undefined) return { verified: false, verifiedAt: null, devices: [] };
    const verified = matchesVerified(record.verified, record.devices);
    return { verified, verifiedAt: verified ? (record.verified?.at ?? null) : null, devices: record.devices };
  }

  /** Review a fresh device list of `userId` against the store (peer-keys.ts); the ids of refused devices. */
  review(userId: string, entries: readonly DirectoryEntry[]): ReadonlySet<string> {
    if (entries.length > PEER_DEVICES_MAX) throw new SdkError('BAD_RESPONSE', `the key directory lists more than ${PEER_DEVICES_MAX} devices for ${userId}`);
    const identity = this.#store.identity;
    const { record, change } = this.#hooks.atomically(() => {
      const own = identity.identityKeyPair().publicKey;
      const isTrusted = (deviceId: string, key: Uint8Array): boolean =>
        // This device's own key is known for certain; any other listed for it is a lie.
        userId === this.#me.userId && deviceId === this.#me.deviceId ? equalBytes(key, own) : identity.isTrustedIdentity({ userId, deviceId }, key);
      const r = reviewPeerKeys(userId, this.#store.peerRecord(userId), entries, isTrusted);
      this.#store.setPeerRecord(userId, r.record);
      // Pin every accepted key now, so a first message claiming another key for the device is refused too.
      for (const d of r.record.devices) {
        if (!(userId === this.#me.userId && d.deviceId === this.#me.deviceId)) identity.saveIdentity({ userId, deviceId: d.deviceId }, d.identityKey);
      }
      return r;
    });
    if (change !== null) this.#hooks.keysChanged(change);
    // Refused: listed with a key other than the one the record accepted for the device (or none).
    const accepted = new Map(record.devices.map((d) => [d.deviceId, d.identityKey]));
    const refused = new Set<string>();
    for (const e of entries) {
      const key = accepted.get(e.deviceId);
      if (key === undefined || !equalBytes(key, e.identityKey)) refused.add(e.deviceId);
    }
    return refused;
  }

  /** A message decrypted from `from`: a device this store has not recorded is taken in, and the user's list reviewed. */
  messageFrom(from: DeviceRef): void {
    const record = this.#store.peerRecord(from.userId);
    if (record?.devices.some((d) => d.deviceId === from.deviceId) === true) return;
    // A device of a known user that this store has not seen wrote: recorded and reported now,
    // whatever the directory says (a server could leave it out of the list).
    if (record !== undefined) this.#unlistedDeviceWrote(from, record);
    // Look at the user's keys now, so the list is reviewed when a new device first writes.
    this.#reviewSoon(from.userId);
  }

  /**
   * A message decrypted from a device of `from.userId` that the peer record
   * does not have: its key (pinned by the session) joins the record, a
   * verification ends — the verified set is no longer the whole — and
   * `keysChanged` reports it, before the message itself is delivered.
   */
  #unlistedDeviceWrote(from: DeviceRef, record: PeerRecord): void {
    const session = this.#store.sessions.loadSession(from);
    const key = session?.remoteIdentityKey ?? null;
    session?.destroy();
    if (key === null) return;
    // A device that left the list, with the key it had: a message it wrote before it went, read late. Not a new device.
    if (record.former.some((d) => d.deviceId === from.deviceId && equalBytes(d.identityKey, key))) return;
    const device = { deviceId: from.deviceId, identityKey: key.slice() };
    const next: PeerRecord = {
      devices: [...record.devices, device],
      verified: null,
      refused: record.refused,
      former: record.former.filter((d) => d.deviceId !== from.deviceId),
    };
    this.#store.setPeerRecord(from.userId, next);
    this.#hooks.keysChanged({ userId: from.userId, added: [device], removed: [], changed: [], wasVerified: record.verified !== null, verified: false });
  }

  /**
   * The server says `userId`'s device list changed (`devices.changed`): a
   * user this device knows is reviewed now, so an added or removed device
   * is reported (`keysChanged`) before anything is sent — not at the next send.
   */
  listChanged(userId: string): void {
    if (this.#store.peerRecord(userId) !== undefined) this.#reviewSoon(userId);
  }

  /**
   * A device that never saw its own user's list (one linked or restored)
   * looks at it once, so a message it writes while offline is encrypted for
   * the user's other devices it has sessions with, and lists the rest as
   * skipped, instead of leaving them out unsaid.
   */
  knowOwnDevices(): void {
    if (this.#store.peerRecord(this.#me.userId) === undefined) this.#reviewSoon(this.#me.userId);
  }

  /** Review `userId`'s keys in the background (once at a time per user). */
  #reviewSoon(userId: string): void {
    if (this.#reviewing.has(userId) || this.#hooks.link.ended) return;
    this.#reviewing.add(userId);
    this.#directoryKeys(userId)
      .catch((e: unknown) => {
        if (!SdkError.is(e, 'CLOSED')) this.#hooks.error(e);
      })
      .finally(() => this.#reviewing.delete(userId));
  }

  /** Both users' device keys for a verification, fresh from the directory; refused keys make it impossible. */
  async verificationParties(userId: string) {
    const [local, remote] = await Promise.all([this.#directoryKeys(this.#me.userId), this.#directoryKeys(userId)]);
    const refused = [...local, ...remote].filter((d) => !d.trusted);
    if (refused.length > 0) throw new SdkError('IDENTITY_CHANGED', `the key directory lists refused identity keys (${refused.map((d) => d.deviceId).join(', ')}): not verifying`);
    if (remote.length === 0) throw new SdkError('SERVER', `${userId} has no devices`, { serverCode: 'not_found' });
    const keys = (ds: readonly SafetyNumberDevice[]) => ds.map((d) => d.identityKey);
    return {
      parties: { local: { userId: this.#me.userId, identityKeys: keys(local) }, remote: { userId, identityKeys: keys(remote) } },
      remote: remote.map((d) => ({ deviceId: d.deviceId, identityKey: d.identityKey })),
    };
  }

  /** A verification with `userId` succeeded: `remote`, the key set it was bound to, is recorded as verified. */
  verified(userId: string, remote: readonly DeviceKey[], at: number): void {
    const record = this.#store.peerRecord(userId);
    if (record !== undefined) this.#store.setPeerRecord(userId, { ...record, verified: { at, devices: remote } });
  }

  /** The device this one added (`addDevice`), with the key it proved: recorded, so its appearance in the list is no surprise. */
  deviceAdded(deviceId: string, identityKey: Uint8Array): void {
    const record = this.#store.peerRecord(this.#me.userId);
    if (record !== undefined && !record.devices.some((d) => d.deviceId === deviceId)) {
      const device = { deviceId, identityKey: identityKey.slice() };
      const verified = record.verified === null ? null : { ...record.verified, devices: [...record.verified.devices, device] };
      this.#store.setPeerRecord(this.#me.userId, { ...record, devices: [...record.devices, device], verified, former: record.former.filter((d) => d.deviceId !== deviceId) });
    }
  }

  /**
   * The device this one removed (`removeDevice`): gone from the record now,
   * so its absence from the next list is no surprise. Kept among the former
   * devices, like any that left: should its id come back with another key,
   * that is a key change.
   */
  deviceRemoved(deviceId: string): void {
    const record = this.#store.peerRecord(this.#me.userId);
    const gone = record?.devices.find((d) => d.deviceId === deviceId);
    if (record === undefined || gone === undefined) return;
    const verified = record.verified === null ? null : { ...record.verified, devices: record.verified.devices.filter((d) => d.deviceId !== deviceId) };
    const former = [...record.former.filter((d) => d.deviceId !== deviceId), gone].slice(-PEER_DEVICES_MAX);
    this.#store.setPeerRecord(this.#me.userId, { ...record, devices: record.devices.filter((d) => d.deviceId !== deviceId), verified, former });
  }

  /**
   * This device registered its user: the user's device list is this device
   * and nothing else, known for certain — recorded now, so a device the
   * server later lists beside it is reported (keysChanged), not trusted on
   * first sight.
   */
  registered(): void {
    if (this.#store.peerRecord(this.#me.userId) !== undefined) return;
    const identityKey = this.#store.identity.identityKeyPair().publicKey.slice();
    this.#store.setPeerRecord(this.#me.userId, { devices: [{ deviceId: this.#me.deviceId, identityKey }], verified: null, refused: [], former: [] });
  }
}
