// Browser entry for scripts/browser-sdk-test.mjs: `@parley/sdk` bundled by
// Vite as an application would bundle it (default transport: the browser's
// WebSocket; themis on its pure-JS backend), exposed to the test, which
// drives it with page.evaluate against a real `parley serve`.
import * as sdk from '@parley/sdk';

/** Every event of the current client, for the test to read. */
const events = { message: [], decryptionError: [], verificationRequest: [], verification: [], keysChanged: [], error: [] };

function record(name) {
  return (value) => events[name].push(JSON.parse(JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? `bytes:${v.length}` : v))));
}

globalThis.parleyTest = {
  sdk,
  events,
  /** The `on` option recording every event above. */
  on() {
    return Object.fromEntries(Object.keys(events).map((name) => [name, record(name)]));
  },
  /** Every raw record cell and meta value of a store's IndexedDB database, concatenated (to search for plaintext). */
  async rawBytes(name) {
    const db = await new Promise((resolve, reject) => {
      const r = globalThis.indexedDB.open(`parley-store:${name}`);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const all = (store) =>
      new Promise((resolve, reject) => {
        const r = db.transaction(store, 'readonly').objectStore(store).getAll();
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
    const [records, meta] = [await all('records'), await all('meta')];
    db.close();
    const parts = [];
    for (const r of records) parts.push(new TextEncoder().encode(r.kind), r.id, r.cell);
    for (const m of meta) if (m instanceof Uint8Array) parts.push(m);
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return { bytes: Array.from(out), records: records.length, kinds: [...new Set(records.map((r) => r.kind))].sort() };
  },
};
globalThis.__sdkReady = true;
