/**
 * Keeping this device reachable: its signed prekey, its post-quantum prekey
 * and a stock of one-time prekeys in the server's key directory
 * (docs/protocol.md, "Key directory"; the signed messages are built by
 * `@parley/protocol`, byte for byte what the server verifies).
 *
 * Private halves go to the store BEFORE the public halves are uploaded: the
 * server may hand a key out the moment it has it, and a first message using
 * a key this device forgot could never be read.
 *
 * The server's count of one-time prekeys is learned from `keys.uploaded`
 * (an upload with no keys just reports it). It drops when peers fetch
 * bundles, whether or not they then write; the client checks it on every
 * connection and after every first message of a new session, and tops it up
 * to ONE_TIME_PREKEYS_TARGET when it falls below ONE_TIME_PREKEYS_LOW_WATER,
 * keeping the private halves of the newest ONE_TIME_PREKEYS_KEPT_MAX only.
 *
 * @module
 */
import { OneTimePrekey, PqPrekey, SignedPrekey } from '@parley/protocol';
import { toBase64 } from './_bytes.ts';
import type { ClientStore } from './client-store.ts';
import { intField, type ServerFrame } from './frames.ts';
import { ONE_TIME_PREKEYS_KEPT_MAX, ONE_TIME_PREKEYS_LOW_WATER, ONE_TIME_PREKEYS_PER_UPLOAD_MAX, ONE_TIME_PREKEYS_TARGET } from './limits.ts';

/** Ids of the signed and PQ prekeys (rotation, with new ids, is a later slice). */
const SIGNED_PREKEY_ID = 1;
const PQ_PREKEY_ID = 1;

/** Sends one `keys.upload` and resolves with the `keys.uploaded` answer. */
export type KeyUploader = (frame: { t: 'keys.upload'; [field: string]: unknown }) => Promise<ServerFrame>;

function uploadedCount(f: ServerFrame): number {
  return intField(f, 'oneTimePrekeys', 'keys.uploaded');
}

function newOneTimePrekeys(store: ClientStore, count: number): OneTimePrekey[] {
  const first = store.reserveOneTimePrekeyIds(count);
  const keys = OneTimePrekey.generate(first, count);
  store.addOneTimePrekeys(keys);
  // Only the newest ONE_TIME_PREKEYS_KEPT_MAX stay (see there).
  store.discardOneTimePrekeysBelow(first + count - ONE_TIME_PREKEYS_KEPT_MAX);
  return keys;
}

function batchOf(keys: readonly OneTimePrekey[]): { keyId: number; publicKey: string }[] {
  return keys.map((k) => ({ keyId: k.keyId, publicKey: toBase64(k.publicKey) }));
}

async function uploadOneTimePrekeys(upload: KeyUploader, keys: readonly OneTimePrekey[], first: Record<string, unknown> = {}): Promise<number> {
  let count = 0;
  let extra = first;
  for (let i = 0; i < keys.length || i === 0; i += ONE_TIME_PREKEYS_PER_UPLOAD_MAX) {
    const batch = batchOf(keys.slice(i, i + ONE_TIME_PREKEYS_PER_UPLOAD_MAX));
    count = uploadedCount(await upload({ t: 'keys.upload', ...extra, ...(batch.length > 0 && { oneTimePrekeys: batch }) }));
    extra = {};
  }
  return count;
}

/**
 * A device restored from a key backup: replace every one-time prekey the
 * key directory holds for it (its earlier copies', whose private halves no
 * backup holds — and whose ids another copy restored from the same backup
 * shares) with a fresh stock of this store's. Resolves with how many were
 * dropped.
 */
export async function replaceOneTimePrekeys(store: ClientStore, upload: KeyUploader): Promise<number> {
  const keys = newOneTimePrekeys(store, ONE_TIME_PREKEYS_TARGET);
  const first = await upload({ t: 'keys.upload', replaceOneTimePrekeys: true, oneTimePrekeys: batchOf(keys.slice(0, ONE_TIME_PREKEYS_PER_UPLOAD_MAX)) });
  const replaced = intField(first, 'replaced', 'keys.uploaded');
  if (keys.length > ONE_TIME_PREKEYS_PER_UPLOAD_MAX) await uploadOneTimePrekeys(upload, keys.slice(ONE_TIME_PREKEYS_PER_UPLOAD_MAX));
  return replaced;
}

/**
 * Publish this device's keys if it never has, else top up its one-time
 * prekeys. Resolves with the number the server holds afterwards.
 */
export async function maintainPrekeys(store: ClientStore, upload: KeyUploader): Promise<number> {
  if (!store.prekeysPublished()) {
    const identity = store.identity.identityKeyPair();
    const spk = SignedPrekey.generate(identity, SIGNED_PREKEY_ID);
    const pq = PqPrekey.generate(identity, PQ_PREKEY_ID);
    store.addSignedPrekey(spk);
    store.addPqPrekey(pq);
    const otks = newOneTimePrekeys(store, ONE_TIME_PREKEYS_TARGET);
    const count = await uploadOneTimePrekeys(upload, otks, {
      signedPrekey: { keyId: spk.keyId, publicKey: toBase64(spk.publicKey), signature: toBase64(spk.signature) },
      pqPrekey: { keyId: pq.keyId, publicKey: toBase64(pq.publicKey), signature: toBase64(pq.signature) },
    });
    store.setPrekeysPublished(true);
    return count;
  }
  const held = uploadedCount(await upload({ t: 'keys.upload' }));
  if (held >= ONE_TIME_PREKEYS_LOW_WATER) return held;
  return uploadOneTimePrekeys(upload, newOneTimePrekeys(store, ONE_TIME_PREKEYS_TARGET - held));
}
