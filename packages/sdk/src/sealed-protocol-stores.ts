/**
 * The protocol's three stores — identity, prekeys, sessions: what
 * `@parley/protocol` reads and writes while it encrypts and decrypts — over
 * a SealedClientStore's sealed records (sealed-client-store.ts). Trusted
 * identities and sessions are kept per device address, prekeys per key id,
 * each as one record whose first part is the key or session bytes; the
 * bytes taken out of a record are wiped once the object is made.
 *
 * @module
 */
import { OneTimePrekey, PqPrekey, Session, SignedPrekey, type DeviceAddress, type IdentityKeyPair, type IdentityStore, type PrekeyStore, type SessionStore } from '@parley/protocol';
import { equalBytes, wipe } from '@parley/themis/hazmat';
import { SdkError } from './errors.ts';
import { recordPart, type PlainRecord, type RecordKind } from './sealed-records.ts';

/** One record by kind and logical key: what these stores need of the sealed store (each call throws `CLOSED` once it is closed). */
export interface SealedRecordAccess {
  get(kind: RecordKind, key: string): PlainRecord | undefined;
  put(kind: RecordKind, key: string, record: PlainRecord): void;
  /** Delete a record; true iff it was there. */
  remove(kind: RecordKind, key: string): boolean;
}

function addressKey(a: DeviceAddress): string {
  return JSON.stringify([a.userId, a.deviceId]);
}

/** `identityKeyPair` returns this device's key pair (and throws `CLOSED` once the store is closed). */
export function sealedIdentityStore(records: SealedRecordAccess, identityKeyPair: () => IdentityKeyPair): IdentityStore {
  return {
    identityKeyPair,
    isTrustedIdentity: (address, identityKey) => {
      const known = records.get('trusted-identity', addressKey(address));
      return known === undefined || equalBytes(recordPart(known, 0, 'trusted-identity'), identityKey);
    },
    saveIdentity: (address, identityKey) => {
      records.put('trusted-identity', addressKey(address), { header: {}, parts: [identityKey] });
    },
  };
}

export function sealedPrekeyStore(records: SealedRecordAccess): PrekeyStore {
  const load = <T>(kind: RecordKind, keyId: number, fromBytes: (b: Uint8Array) => T): T | undefined => {
    const r = records.get(kind, String(keyId));
    if (r === undefined) return undefined;
    const bytes = recordPart(r, 0, kind);
    try {
      return fromBytes(bytes);
    } catch {
      throw new SdkError('STORE', `a ${kind} record does not hold a prekey`);
    } finally {
      wipe(bytes);
    }
  };
  return {
    loadSignedPrekey: (keyId) => load('signed-prekey', keyId, (b) => SignedPrekey.fromBytes(b)),
    loadPqPrekey: (keyId) => load('pq-prekey', keyId, (b) => PqPrekey.fromBytes(b)),
    loadOneTimePrekey: (keyId) => load('one-time-prekey', keyId, (b) => OneTimePrekey.fromBytes(b)),
    removeOneTimePrekey: (keyId) => records.remove('one-time-prekey', String(keyId)),
  };
}

export function sealedSessionStore(records: SealedRecordAccess): SessionStore {
  return {
    loadSession: (address) => {
      const r = records.get('session', addressKey(address));
      if (r === undefined) return undefined;
      const bytes = recordPart(r, 0, 'session');
      try {
        return Session.deserialize(bytes);
      } catch {
        throw new SdkError('STORE', 'a session record does not hold a session');
      } finally {
        wipe(bytes);
      }
    },
    storeSession: (session) => {
      const bytes = session.serialize();
      try {
        records.put('session', addressKey(session.remoteAddress), { header: {}, parts: [bytes] });
      } finally {
        wipe(bytes);
      }
    },
  };
}
