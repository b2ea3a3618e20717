/**
 * The reference peer: `wasm-themis` 0.15.0 from npm (Themis Core + BoringSSL
 * in WebAssembly). On Node ≥ 18 it only initialises with the global `fetch`
 * hidden (cossacklabs/themis#1062).
 *
 * Never let its errors print whole: an uncaught wasm-themis exception drags
 * the entire Emscripten module source along. {@link peerCall} reduces them to
 * one short line.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// Untyped on purpose: tests call it exactly as applications written for wasm-themis do.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Peer = any;

async function load(): Promise<Peer> {
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
}

export const peer: Peer = await load();

/** Runs a wasm-themis call; a failure is re-thrown as a short Error (name, code, first 200 characters). */
export function peerCall<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const code = (e as { errorCode?: unknown } | null)?.errorCode;
    const text = e instanceof Error ? `${e.name}${code === undefined ? '' : ` [${String(code)}]`}: ${e.message.slice(0, 200)}` : typeof e;
    throw new Error(`wasm-themis ${what}: ${text}`);
  }
}
