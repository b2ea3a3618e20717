/**
 * The dedupe digest of SQLite's room log (`room_log.dedupe`, migration 9).
 *
 * A room deduplicates publishes by (sender user, sender device, client id).
 * Indexing those three text ids per room made every append write a long
 * key into a second B-tree, and in a group commit of thousands of appends
 * across rooms each one dirties its own index page: the append cost ~2x
 * what it does with integer keys (bench/room-log.bench.mjs). So the index
 * holds (room number, digest) and the append probes it and compares the
 * three ids of any row it finds: a digest match is never taken as a
 * duplicate on its own, so a collision costs one extra comparison, never
 * a lost message.
 *
 * Why SHA-256 and not a cheap string hash: client ids are chosen by
 * clients. With a hash whose collisions are easy to make, a member could
 * pile up thousands of its own entries under one digest and make every
 * later probe of that digest walk them. With 48 bits of SHA-256, each
 * further entry under a chosen digest costs ~2^48 hashes.
 *
 * 48 bits so the digest is a JavaScript number (exact below 2^53) and an
 * SQLite INTEGER without BigInt on either side.
 *
 * @module
 */
import { hash } from 'node:crypto';

/** The digest, as an integer in [0, 2^48). The same function backs the SQL `parley_dedupe()`. */
export function dedupeDigest(senderUserId: string, senderDeviceId: string, clientId: string): number {
  // NUL is not in the ids' alphabets (v1/frames.ts); were it there, an ambiguous join would cost a comparison, not a message.
  return hash('sha256', `${senderUserId}\u0000${senderDeviceId}\u0000${clientId}`, 'buffer').readUIntBE(0, 6);
}
