/**
 * Holes the receive pipeline passed over (inbound.ts, "Gaps"), kept so
 * that what was missing there is still processed when it comes — after a
 * restart too, where the store keeps them (`ClientStore.passedHoles`).
 *
 * The server numbers a room's entries without gaps, so a hole that several
 * syncs did not fill is a server that lost entries, or sent a false seq far
 * ahead. The pipeline then processes the entry past the hole and moves the
 * cursor; this remembers, per hole, the seqs `[first, last]` not processed,
 * and the entry processed past it (a false seq would make another entry
 * the real one there). A catch-up syncs such a room from the hole's start
 * until one finds nothing more (`settle`).
 *
 * Bounded (PASSED_HOLES_MAX, oldest forgotten first): a forgotten hole
 * costs the entries in it, which a server that kept them back would have
 * to send again to a device that asks for them (`history` still reads them).
 *
 * @module
 */
import type { ClientStore } from './client-store.ts';
import type { RoomEntry } from './frames.ts';
import { PASSED_HOLES_MAX } from './limits.ts';

/** A range of seqs of a room not processed. */
export interface PassedHole {
  readonly roomId: string;
  readonly first: number;
  readonly last: number;
}

/** The entry processed past a hole: its seq and who sent it (sender, device, client id). */
export interface PassedAt {
  readonly roomId: string;
  readonly seq: number;
  readonly identity: string;
}

/** What a store keeps (`ClientStore.passedHoles`). */
export interface PassedHolesRecord {
  readonly holes: readonly PassedHole[];
  readonly at: readonly PassedAt[];
}

export class PassedHoles {
  readonly #store: ClientStore;
  #holes: PassedHole[];
  #at: PassedAt[];

  constructor(store: ClientStore) {
    this.#store = store;
    const kept = store.passedHoles?.() ?? null;
    this.#holes = kept === null ? [] : kept.holes.slice(-PASSED_HOLES_MAX);
    this.#at = kept === null ? [] : kept.at.slice(-PASSED_HOLES_MAX);
  }

  /** Where a catch-up should sync `roomId` from: its cursor, or below it where a hole was passed over. */
  syncFrom(roomId: string, cursor: number): number {
    let from = cursor;
    for (const h of this.#holes) if (h.roomId === roomId && h.first - 1 < from) from = h.first - 1;
    for (const p of this.#at) if (p.roomId === roomId && p.seq - 1 < from) from = p.seq - 1;
    return from;
  }

  /**
   * Whether `entry`, at or below its room's cursor, was never processed:
   * it lies in a hole passed over (taken out of it), or it is another entry
   * than the one processed past a hole at that seq (which came with a false
   * seq). Either way it is processed now, once.
   */
  take(entry: RoomEntry): boolean {
    if (this.#holes.length === 0 && this.#at.length === 0) return false;
    const taken = this.#fillsHole(entry.roomId, entry.seq) || this.#replacesPassedOver(entry);
    if (taken) this.#save();
    return taken;
  }

  /** `entry` is processed past the hole `cursor + 1 … entry.seq - 1`. */
  passOver(entry: RoomEntry, cursor: number): void {
    this.#holes.push({ roomId: entry.roomId, first: cursor + 1, last: entry.seq - 1 });
    if (this.#holes.length > PASSED_HOLES_MAX) this.#holes.shift();
    this.#at.push({ roomId: entry.roomId, seq: entry.seq, identity: entryIdentity(entry) });
    if (this.#at.length > PASSED_HOLES_MAX) this.#at.shift();
    this.#save();
  }

  /** A catch-up synced these rooms from their holes' start: what it did not fill, the server does not have. */
  settle(roomIds: ReadonlySet<string>): void {
    const holes = this.#holes.filter((h) => !roomIds.has(h.roomId));
    const at = this.#at.filter((p) => !roomIds.has(p.roomId));
    if (holes.length === this.#holes.length && at.length === this.#at.length) return;
    this.#holes = holes;
    this.#at = at;
    this.#save();
  }

  #replacesPassedOver(entry: RoomEntry): boolean {
    const i = this.#at.findIndex((p) => p.roomId === entry.roomId && p.seq === entry.seq);
    if (i < 0 || this.#at[i]?.identity === entryIdentity(entry)) return false;
    this.#at.splice(i, 1);
    return true;
  }

  #fillsHole(roomId: string, seq: number): boolean {
    const i = this.#holes.findIndex((h) => h.roomId === roomId && h.first <= seq && seq <= h.last);
    if (i < 0) return false;
    const h = this.#holes[i] as PassedHole;
    const parts = [...(seq > h.first ? [{ roomId, first: h.first, last: seq - 1 }] : []), ...(seq < h.last ? [{ roomId, first: seq + 1, last: h.last }] : [])];
    this.#holes.splice(i, 1, ...parts);
    return true;
  }

  #save(): void {
    this.#store.setPassedHoles?.({ holes: this.#holes.slice(), at: this.#at.slice() });
  }
}

/** Which entry this is, beyond its seq: sender, device and client id. */
function entryIdentity(e: RoomEntry): string {
  return JSON.stringify([e.from.userId, e.from.deviceId, e.clientId]);
}

/** The record as JSON (for stores that keep it sealed). */
export function passedHolesToJson(r: PassedHolesRecord): string {
  return JSON.stringify({ holes: r.holes.map((h) => [h.roomId, h.first, h.last]), at: r.at.map((p) => [p.roomId, p.seq, p.identity]) });
}

/** The record back from JSON; null for anything that is not one (a damaged or foreign record is dropped, not trusted). */
export function passedHolesFromJson(text: unknown): PassedHolesRecord | null {
  if (typeof text !== 'string') return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const { holes, at } = o;
  if (!Array.isArray(holes) || !Array.isArray(at)) return null;
  const seq = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 1;
  const out = { holes: [] as PassedHole[], at: [] as PassedAt[] };
  for (const h of holes.slice(-PASSED_HOLES_MAX)) {
    if (!Array.isArray(h) || typeof h[0] !== 'string' || !seq(h[1]) || !seq(h[2]) || h[1] > h[2]) return null;
    out.holes.push({ roomId: h[0], first: h[1], last: h[2] });
  }
  for (const p of at.slice(-PASSED_HOLES_MAX)) {
    if (!Array.isArray(p) || typeof p[0] !== 'string' || !seq(p[1]) || typeof p[2] !== 'string') return null;
    out.at.push({ roomId: p[0], seq: p[1], identity: p[2] });
  }
  return out;
}
