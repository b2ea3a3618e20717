// In-memory stores for @signalapp/libsignal-client, used only by
// ratchet.bench.mjs. Plain Maps holding libsignal's own record objects: no
// serialization, no I/O, so a store call costs one Map operation plus the
// promise libsignal's async store API requires. That is the least an
// application can pay for libsignal's store interfaces, as our in-memory
// `Session` objects are the least it can pay for ours.
//
// The module receives the loaded libsignal (see loadLibsignal in
// ratchet.bench.mjs) instead of importing it, because libsignal lives in
// bench/libsignal/node_modules, outside the workspace's resolution.

/** Key for a ProtocolAddress in a Map: "name.deviceId". */
const addressKey = (address) => `${address.name()}.${address.deviceId()}`;

export function makeStores(signal) {
  class MemorySessionStore extends signal.SessionStore {
    #sessions = new Map();
    async saveSession(address, record) {
      this.#sessions.set(addressKey(address), record);
    }
    async getSession(address) {
      return this.#sessions.get(addressKey(address)) ?? null;
    }
    async getExistingSessions(addresses) {
      return addresses.map((a) => {
        const record = this.#sessions.get(addressKey(a));
        if (record === undefined) throw new Error(`no session for ${addressKey(a)}`);
        return record;
      });
    }
    get size() {
      return this.#sessions.size;
    }
  }

  /**
   * Trust on first use, like our InMemoryIdentityStore: any key for an
   * address never seen, afterwards only the same key.
   */
  class MemoryIdentityStore extends signal.IdentityKeyStore {
    #identity;
    #registrationId;
    #trusted = new Map();
    constructor(identityKeyPair, registrationId) {
      super();
      this.#identity = identityKeyPair;
      this.#registrationId = registrationId;
    }
    async getIdentityKey() {
      return this.#identity.privateKey;
    }
    // The base class derives the pair from getIdentityKey() (a native call); the pair is at hand.
    async getIdentityKeyPair() {
      return this.#identity;
    }
    async getLocalRegistrationId() {
      return this.#registrationId;
    }
    async saveIdentity(address, key) {
      const k = addressKey(address);
      const known = this.#trusted.get(k);
      this.#trusted.set(k, key);
      return known === undefined || known.equals(key) ? signal.IdentityChange.NewOrUnchanged : signal.IdentityChange.ReplacedExisting;
    }
    // The direction (sending/receiving) does not matter to trust on first use.
    async isTrustedIdentity(address, key) {
      const known = this.#trusted.get(addressKey(address));
      return known === undefined || known.equals(key);
    }
    async getIdentity(address) {
      return this.#trusted.get(addressKey(address)) ?? null;
    }
  }

  class MemoryPreKeyStore extends signal.PreKeyStore {
    #keys = new Map();
    async savePreKey(id, record) {
      this.#keys.set(id, record);
    }
    async getPreKey(id) {
      const record = this.#keys.get(id);
      if (record === undefined) throw new Error(`no prekey ${id}`);
      return record;
    }
    async removePreKey(id) {
      this.#keys.delete(id);
    }
    /** Synchronous bulk load, outside any timed part. */
    add(record) {
      this.#keys.set(record.id(), record);
    }
    get size() {
      return this.#keys.size;
    }
  }

  class MemorySignedPreKeyStore extends signal.SignedPreKeyStore {
    #keys = new Map();
    async saveSignedPreKey(id, record) {
      this.#keys.set(id, record);
    }
    async getSignedPreKey(id) {
      const record = this.#keys.get(id);
      if (record === undefined) throw new Error(`no signed prekey ${id}`);
      return record;
    }
  }

  /**
   * The Kyber prekey is a last-resort key, reused by every session (as our PQ
   * prekey is). markKyberPreKeyUsed only counts: a client that keeps
   * last-resort keys remembers (key id, signed prekey id, base key) to refuse
   * a replayed first message; that bookkeeping is the application's storage
   * cost, not libsignal's, and ours has no counterpart, so it is left out.
   */
  class MemoryKyberPreKeyStore extends signal.KyberPreKeyStore {
    #keys = new Map();
    used = 0;
    async saveKyberPreKey(id, record) {
      this.#keys.set(id, record);
    }
    async getKyberPreKey(id) {
      const record = this.#keys.get(id);
      if (record === undefined) throw new Error(`no kyber prekey ${id}`);
      return record;
    }
    async markKyberPreKeyUsed() {
      this.used++;
    }
  }

  return { MemorySessionStore, MemoryIdentityStore, MemoryPreKeyStore, MemorySignedPreKeyStore, MemoryKyberPreKeyStore };
}
