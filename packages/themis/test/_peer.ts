/**
 * The real peer: `wasm-themis` 0.15.0 from npm (Themis Core + BoringSSL in
 * WebAssembly). Loading it on Node ≥ 18 needs the global `fetch` hidden while
 * it initialises (cossacklabs/themis#1062).
 *
 * Never print its errors whole: an uncaught wasm-themis exception dumps the
 * entire Emscripten module source.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// The peer's API is untyped here on purpose: tests call it exactly as
// applications written for wasm-themis do.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Peer = any;

let loaded: Promise<Peer> | undefined;

export function loadPeer(): Promise<Peer> {
  loaded ??= (async () => {
    const saved = globalThis.fetch;
    (globalThis as { fetch: unknown }).fetch = undefined;
    try {
      // While it initialises, its Emscripten glue installs process-wide handlers that rethrow every
      // uncaught error and unhandled rejection, killing the test process with
      // the module's whole source as the 'line' and hiding the real error;
      // removed so node:test reports such errors against the failing test.
      const before = new Set<unknown>([...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')]);
      const peer = require('wasm-themis');
      await peer.initialized;
      for (const l of process.listeners('uncaughtException')) if (!before.has(l)) process.removeListener('uncaughtException', l);
      for (const l of process.listeners('unhandledRejection')) if (!before.has(l)) process.removeListener('unhandledRejection', l);
      return peer;
    } finally {
      globalThis.fetch = saved;
    }
  })();
  return loaded;
}
