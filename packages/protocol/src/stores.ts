/**
 * What the protocol needs from persistent storage, as three small
 * synchronous interfaces, plus in-memory implementations for tests and tools.
 *
 * Persistent implementations should keep sessions sealed (`Session.seal`)
 * and prekey records encrypted; the in-memory ones hold plain objects.
 *
 * @module
 */
import { equalBytes } from '@parley/themis/hazmat';
import { copyBytes } from './_bytes.ts';
import { addressKey, deviceAddress, type DeviceAddress } from './address.ts';
import type { IdentityKeyPair } from './identity.ts';
import { ProtocolError } from './errors.ts';
import { OneTimePrekey, PqPrekey, SignedPrekey } from './prekeys.ts';
import { Session } from './session.ts';
import { instanceArgument } from './_args.ts';

/** This device's identity, and the identity keys it trusts for other devices. */
export interface IdentityStore {
  identityKeyPair(): IdentityKeyPair;
  /**
   * Whether `identityKey` is acceptable for `address`. The in-memory store
   * trusts on first use: any key for a device it has never seen, afterwards
   * only the same key. A changed key should be shown to the user, never
   * accepted silently.
   */
  isTrustedIdentity(address: DeviceAddress, identityKey: Uint8Array): boolean;
  /** Record `identityKey` as the one trusted for `address`. */
  saveIdentity(address: DeviceAddress, identityKey: Uint8Array): void;
}

/** This device's private prekeys, by key id. */
export interface PrekeyStore {
  loadSignedPrekey(keyId: number): SignedPrekey | undefined;
  loadPqPrekey(keyId: number): PqPrekey | undefined;
  loadOneTimePrekey(keyId: number): OneTimePrekey | undefined;
  /**
   * Delete a one-time prekey; true iff it was there. This is the claim that
   * makes it one-time: of two sessions racing for the same key, exactly one
   * must see true (a database implementation deletes and checks the row
   * count in one statement).
   */
  removeOneTimePrekey(keyId: number): boolean;
}

/** One session per peer device. */
export interface SessionStore {
  loadSession(address: DeviceAddress): Session | undefined;
  storeSession(session: Session): void;
}

export class InMemoryIdentityStore implements IdentityStore {
  readonly #identity: IdentityKeyPair;
  readonly #trusted = new Map<string, Uint8Array>();

  constructor(identity: IdentityKeyPair) {
    this.#identity = identity;
  }
  identityKeyPair(): IdentityKeyPair {
    return this.#identity;
  }
  isTrustedIdentity(address: DeviceAddress, identityKey: Uint8Array): boolean {
    const known = this.#trusted.get(addressKey(deviceAddress(address)));
    return known === undefined || equalBytes(known, identityKey);
  }
  saveIdentity(address: DeviceAddress, identityKey: Uint8Array): void {
    this.#trusted.set(addressKey(deviceAddress(address)), copyBytes(identityKey));
  }
}

export class InMemoryPrekeyStore implements PrekeyStore {
  readonly #signed = new Map<number, SignedPrekey>();
  readonly #pq = new Map<number, PqPrekey>();
  readonly #oneTime = new Map<number, OneTimePrekey>();

  addSignedPrekey(key: SignedPrekey): void {
    instanceArgument(key, SignedPrekey, 'key', 'SignedPrekey');
    this.#signed.set(key.keyId, key);
  }
  addPqPrekey(key: PqPrekey): void {
    instanceArgument(key, PqPrekey, 'key', 'PqPrekey');
    this.#pq.set(key.keyId, key);
  }
  addOneTimePrekeys(keys: readonly OneTimePrekey[]): void {
    if (!Array.isArray(keys)) throw new ProtocolError('INVALID_ARGUMENT', 'keys must be an array of OneTimePrekey');
    for (const k of keys) instanceArgument(k, OneTimePrekey, 'keys[]', 'OneTimePrekey');
    for (const k of keys) this.#oneTime.set(k.keyId, k);
  }
  /** Forget a rotated-out signed prekey. */
  removeSignedPrekey(keyId: number): boolean {
    return this.#signed.delete(keyId);
  }
  get oneTimePrekeyCount(): number {
    return this.#oneTime.size;
  }

  loadSignedPrekey(keyId: number): SignedPrekey | undefined {
    return this.#signed.get(keyId);
  }
  loadPqPrekey(keyId: number): PqPrekey | undefined {
    return this.#pq.get(keyId);
  }
  loadOneTimePrekey(keyId: number): OneTimePrekey | undefined {
    return this.#oneTime.get(keyId);
  }
  removeOneTimePrekey(keyId: number): boolean {
    const key = this.#oneTime.get(keyId);
    if (key === undefined) return false;
    this.#oneTime.delete(keyId);
    key.destroy();
    return true;
  }
}

/**
 * Keeps each session as its serialized bytes, so every load is a fresh,
 * independent object (as from a database) and serialization is exercised on
 * every use.
 */
export class InMemorySessionStore implements SessionStore {
  readonly #records = new Map<string, Uint8Array>();

  loadSession(address: DeviceAddress): Session | undefined {
    const bytes = this.#records.get(addressKey(deviceAddress(address)));
    return bytes === undefined ? undefined : Session.deserialize(bytes);
  }
  storeSession(session: Session): void {
    instanceArgument(session, Session, 'session', 'Session');
    this.#records.set(addressKey(session.remoteAddress), session.serialize());
  }
  get size(): number {
    return this.#records.size;
  }
}
