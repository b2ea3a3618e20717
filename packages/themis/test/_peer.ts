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
      const peer = require('wasm-themis');
      await peer.initialized;
      return peer;
    } finally {
      globalThis.fetch = saved;
    }
  })();
  return loaded;
}
