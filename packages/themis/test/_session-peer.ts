/**
 * The real peer (`wasm-themis` 0.15.0) for the Secure Session tests: its
 * sessions, created exactly as applications written for wasm-themis create
 * them, and a rejection check that never prints its exceptions.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { loadPeer, type Peer } from './_peer.ts';
import { type AnySession, type Party, describeError, ok, outcome, sameBytes } from './_session.ts';

export const peer: Peer = await loadPeer();

function shown(v: unknown): string {
  return v instanceof Uint8Array ? `${v.length} bytes` : typeof v;
}

/** The peer must throw its own ThemisError; returns its numeric errorCode. */
export function peerRejects(what: string, fn: () => unknown): number {
  const r = outcome(fn);
  if (r.ok) assert.fail(`${what}: the peer accepted it (returned ${shown(r.value)})`);
  if (!(r.error instanceof peer.ThemisError)) assert.fail(`${what}: the peer threw ${describeError(r.error)}, not its ThemisError`);
  return (r.error as { errorCode: number }).errorCode;
}

/** A wasm-themis session for `me`; destroyed when the test `t` ends. */
export function peerSession(t: Pick<TestContext, 'after'> | null, me: Party, known: readonly Party[]): AnySession & { destroy(): void } {
  const s = ok(`peer SecureSession(${me.name})`, () => {
    return new peer.SecureSession(me.id, new peer.PrivateKey(me.keys.privateKey), (id: Uint8Array) => {
      const p = known.find((k) => sameBytes(k.id, id));
      return p === undefined ? null : new peer.PublicKey(p.keys.publicKey);
    });
  });
  t?.after(() => s.destroy());
  return s;
}

