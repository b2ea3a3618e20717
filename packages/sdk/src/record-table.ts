/**
 * `RecordTable`: what a storage engine provides under SealedClientStore —
 * a few synchronous operations on rows `(kind, id, ord, cell)`: SQLite in
 * Node (sqlite-store.ts), memory written through to IndexedDB in browsers
 * (indexeddb-store.ts). The engines know nothing of what a row holds; the
 * store seals and opens (sealed-client-store.ts, sealed-records.ts).
 *
 * `kind` is the record kind in clear, `id` the HMAC row id, `cell` the
 * sealed record; `ord` orders the kinds that need it (kept messages, oldest
 * evicted first; the outbound queue) and is 0 for the others.
 *
 * @module
 */
import type { RecordKind } from './sealed-records.ts';

/** One row of a record table. */
export interface RecordRow {
  readonly kind: RecordKind;
  readonly id: Uint8Array;
  readonly ord: number;
  readonly cell: Uint8Array;
}

/** What a storage engine provides. Failures are `SdkError` `STORE`. */
export interface RecordTable {
  get(kind: RecordKind, id: Uint8Array): Uint8Array | undefined;
  /** Insert or replace the row with this kind and id. */
  put(row: RecordRow): void;
  /** Delete a row; true iff it was there. */
  remove(kind: RecordKind, id: Uint8Array): boolean;
  /** Every row of a kind, by `ord`, then id. */
  all(kind: RecordKind): readonly RecordRow[];
  /** One more than the kind's highest `ord` (1 when it has none). */
  nextOrd(kind: RecordKind): number;
  count(kind: RecordKind): number;
  /** Delete the kind's first `n` rows in (`ord`, id) order. */
  evict(kind: RecordKind, n: number): void;
  /** Every row of every kind (to re-seal them all). */
  rows(): readonly RecordRow[];
  /** Replace every row (inside a transaction). */
  replaceAll(rows: readonly RecordRow[]): void;
  /** Run `fn` so its writes take effect together or not at all; nested calls join the outer one; `fn`'s errors pass through. */
  transaction<T>(fn: () => T): T;
}
