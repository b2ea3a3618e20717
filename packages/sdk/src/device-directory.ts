/**
 * Which devices a user has, and how to start a session with each: the key
 * directory's answer to `keys.fetch`, verified and cached.
 *
 * Every bundle is re-verified here (`verifyPrekeyBundle`: both prekey
 * signatures under the device's identity key), so a server cannot
 * substitute a prekey. Whether the identity key itself belongs to the user
 * is the identity store's call (trust on first use in the memory store).
 *
 * Caching: `keys.fetch` hands out one of each device's one-time prekeys
 * every time it is called, so fetching per message would drain them. A
 * user's list is reused for DEVICE_LIST_TTL_MS, and dropped earlier when a
 * message arrives from a device of that user the list does not have.
 * Concurrent lookups of one user share one request.
 *
 * @module
 */
import { verifyPrekeyBundle, type DeviceAddress, type PrekeyBundle } from '@parley/protocol';
import { readKeys, type DirectoryEntry, type ServerFrame } from './frames.ts';
import { DEVICE_LIST_TTL_MS } from './limits.ts';

/** One device of a user: a verified bundle, or why there is none. */
export interface DirectoryDevice extends DeviceAddress {
  /** Null when the device published no usable keys; sessions that already exist still work. */
  readonly bundle: PrekeyBundle | null;
  readonly problem: string | null;
}

interface CachedList {
  readonly devices: readonly DirectoryDevice[];
  readonly fetchedAt: number;
}

/** Looks at each fresh list: returns the ids of devices whose listed identity key is refused (peer-keys.ts). */
export type DirectoryReview = (userId: string, entries: readonly DirectoryEntry[]) => ReadonlySet<string>;

export class DeviceDirectory {
  readonly #fetch: (userId: string) => Promise<ServerFrame>;
  readonly #review: DirectoryReview;
  readonly #now: () => number;
  readonly #cache = new Map<string, CachedList>();
  readonly #inFlight = new Map<string, Promise<readonly DirectoryDevice[]>>();

  /** `fetch` sends `keys.fetch` for a user and resolves with the `keys` answer. */
  constructor(fetch: (userId: string) => Promise<ServerFrame>, review: DirectoryReview = () => new Set(), now: () => number = Date.now) {
    this.#fetch = fetch;
    this.#review = review;
    this.#now = now;
  }

  /** The user's devices, from the cache while it is fresh. */
  devices(userId: string): Promise<readonly DirectoryDevice[]> {
    const cached = this.#cache.get(userId);
    if (cached !== undefined && this.#now() - cached.fetchedAt < DEVICE_LIST_TTL_MS) return Promise.resolve(cached.devices);
    let p = this.#inFlight.get(userId);
    if (p === undefined) {
      p = this.#load(userId).finally(() => this.#inFlight.delete(userId));
      this.#inFlight.set(userId, p);
    }
    return p;
  }

  /** Whether the cached list of `address.userId` includes this device (false when nothing is cached). */
  knows(address: DeviceAddress): boolean {
    return this.#cache.get(address.userId)?.devices.some((d) => d.deviceId === address.deviceId) ?? false;
  }

  /** Forget a user's list (fetched again on next use). */
  invalidate(userId: string): void {
    this.#cache.delete(userId);
  }

  /** Forget every list: after a connection loss, during which `devices.changed` hints may have been missed. */
  invalidateAll(): void {
    this.#cache.clear();
  }

  async #load(userId: string): Promise<readonly DirectoryDevice[]> {
    const fetchedAt = this.#now();
    const answer = await this.#fetch(userId);
    const entries = readKeys(answer, userId);
    const refused = this.#review(userId, entries);
    const devices = entries.map((entry): DirectoryDevice => {
      const address = { userId, deviceId: entry.deviceId };
      // Existing sessions (with the key trusted before) still work; no new one with the listed key.
      if (refused.has(entry.deviceId)) return { ...address, bundle: null, problem: 'identity key changed (refused)' };
      if (entry.signedPrekey === null || entry.pqPrekey === null) return { ...address, bundle: null, problem: 'no prekeys published' };
      try {
        const bundle = verifyPrekeyBundle({
          identityKey: entry.identityKey,
          signedPrekey: entry.signedPrekey,
          oneTimePrekey: entry.oneTimePrekey,
          pqPrekey: entry.pqPrekey,
        });
        return { ...address, bundle, problem: null };
      } catch (e) {
        return { ...address, bundle: null, problem: `prekey bundle rejected: ${e instanceof Error ? e.message : String(e)}` };
      }
    });
    this.#cache.set(userId, { devices, fetchedAt });
    return devices;
  }
}
