/**
 * Helpers for the known-answer tests (kat-*.test.ts): loading the JSON
 * vectors in `test/vectors/` (see its README), decoding their hex fields, and
 * asserting outcomes on our implementation and on the real peer.
 *
 * The JSON stays in `packages/themis/test/vectors/`; compiled tests run from
 * `packages/themis/dist/test/`, hence the `../../test/vectors/` path.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ThemisError } from '../src/index.ts';

/** Fields every vector file has at its top level. */
export interface Provenance {
  repository: string;
  commit: string;
  paths: string[];
  madeBy: string;
  transcribed: string;
}

/** The outcome fields shared by vectors that can fail. */
export interface Outcome {
  id: string;
  expect: 'ok' | 'fail' | 'garbage';
  /** `ok`: the expected output. */
  plaintext?: string;
  /** `fail`: our stable error code. */
  error?: string;
  /** `fail`: the legacy Themis number wasm-themis reports for this input. */
  legacyErrorCode?: number;
  /** `fail`: our legacy number where it deliberately differs from the peer's (see `legacyDifference`). */
  oursLegacyErrorCode?: number;
  legacyDifference?: string;
  /** `garbage`: the exact bytes the peer outputs. */
  output?: string;
  /** `garbage`: what the output must not be. */
  notPlaintext?: string;
}

export function loadVectors<T>(name: string): T & { provenance: Provenance } {
  const url = new URL(`../../test/vectors/${name}`, import.meta.url);
  const data = JSON.parse(readFileSync(url, 'utf8')) as T & { provenance: Provenance };
  assert.equal(data.provenance.commit.length, 40, `${name}: provenance must name a commit`);
  return data;
}

/** Decode lower-case hex (the vectors' only byte encoding). */
export function hex(s: string): Uint8Array {
  assert.match(s, /^(?:[0-9a-f]{2})*$/, 'vector field is not lower-case hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** An optional hex field: null/undefined stays undefined (no context). */
export function optHex(s: string | null | undefined): Uint8Array | undefined {
  return s === null || s === undefined ? undefined : hex(s);
}

export function assertBytes(actual: Uint8Array, expectedHex: string, what: string): void {
  assert.equal(toHex(actual), expectedHex, what);
}

/**
 * Legacy numbers our implementation reported for failure vectors, keyed by
 * `file:id`, filled as vectors run and compared with the peer's at the end.
 */
export const ourLegacyCodes: Map<string, number> = new Map();

/** Assert that `f` throws a ThemisError with code `v.error`; record its legacy number. */
export function assertFailsLike(file: string, v: Outcome, f: () => unknown): void {
  assert.throws(f, (e: unknown) => checkError(file, v, e));
}

export async function assertRejectsLike(file: string, v: Outcome, f: () => Promise<unknown>): Promise<void> {
  await assert.rejects(f, (e: unknown) => checkError(file, v, e));
}

function checkError(file: string, v: Outcome, e: unknown): true {
  assert.ok(e instanceof ThemisError, `${v.id}: expected a ThemisError, got ${String(e)}`);
  assert.equal(e.code, v.error, `${v.id}: error code (message: ${e.message})`);
  ourLegacyCodes.set(`${file}:${v.id}`, e.errorCode);
  return true;
}

/** Compare the legacy numbers we reported with those the peer reports (recorded in the JSON). */
export function legacyMismatches(file: string, vectors: readonly Outcome[]): string[] {
  const out: string[] = [];
  for (const v of vectors) {
    if (v.expect !== 'fail') continue;
    const ours = ourLegacyCodes.get(`${file}:${v.id}`);
    // A vector may record a deliberate difference: we keep decryption failure
    // opaque (DECRYPT_FAILED, 11) where Themis reports a bad header as 12.
    const expected = v.oursLegacyErrorCode ?? v.legacyErrorCode;
    if (ours !== expected) out.push(`${v.id}: ours ${String(ours)}, expected ${String(expected)} (wasm-themis ${String(v.legacyErrorCode)})`);
  }
  return out;
}

/**
 * Run a peer call without ever letting its exception escape (a wasm-themis
 * exception can dump the whole Emscripten module when printed).
 */
export type PeerResult = { ok: true; value: Uint8Array } | { ok: false; errorCode: number | undefined; themisError: boolean };

export function peerCall(peer: { ThemisError: abstract new (...args: never[]) => unknown }, f: () => unknown): PeerResult {
  try {
    const value = f();
    assert.ok(value instanceof Uint8Array, 'peer returned a non-byte value');
    return { ok: true, value };
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    const code = (e as { errorCode?: unknown } | null)?.errorCode;
    return { ok: false, errorCode: typeof code === 'number' ? code : undefined, themisError: e instanceof peer.ThemisError };
  }
}

/** Assert the peer's outcome matches the vector's expectation. */
export function assertPeerLike(v: Outcome, r: PeerResult): void {
  if (v.expect === 'fail') {
    assert.ok(!r.ok, `${v.id}: wasm-themis accepted it and returned ${r.ok ? toHex(r.value) : ''}`);
    assert.ok(r.themisError, `${v.id}: wasm-themis failed with something other than a ThemisError`);
    assert.equal(r.errorCode, v.legacyErrorCode, `${v.id}: wasm-themis errorCode`);
    return;
  }
  assert.ok(r.ok, `${v.id}: wasm-themis failed with errorCode ${r.ok ? '' : String(r.errorCode)}`);
  if (v.expect === 'ok') assertBytes(r.value, v.plaintext ?? '', `${v.id}: wasm-themis output`);
  else {
    assertBytes(r.value, v.output ?? '', `${v.id}: wasm-themis garbage output`);
    assert.notEqual(toHex(r.value), v.notPlaintext, `${v.id}: wasm-themis output equals the plaintext`);
  }
}

/** Assert our successful result matches the vector (`ok` or `garbage`). */
export function assertOursLike(v: Outcome, value: Uint8Array): void {
  if (v.expect === 'ok') assertBytes(value, v.plaintext ?? '', `${v.id}: output`);
  else if (v.expect === 'garbage') {
    assertBytes(value, v.output ?? '', `${v.id}: garbage output (byte-equal to wasm-themis)`);
    assert.notEqual(toHex(value), v.notPlaintext, `${v.id}: output equals the plaintext`);
  } else assert.fail(`${v.id}: expected failure, got ${toHex(value)}`);
}
