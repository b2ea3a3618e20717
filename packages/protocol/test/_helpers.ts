/**
 * Shared test fixtures: devices with identities and prekeys, error
 * assertions that say what went wrong, and byte surgery.
 */
import assert from 'node:assert/strict';
import { ProtocolError, type ProtocolErrorCode } from '../src/errors.ts';
import type { DeviceAddress } from '../src/address.ts';
import { IdentityKeyPair } from '../src/identity.ts';
import { makePrekeyBundle, OneTimePrekey, PqPrekey, SignedPrekey, type PrekeyBundle } from '../src/prekeys.ts';
import { InMemoryIdentityStore, InMemoryPrekeyStore, InMemorySessionStore } from '../src/stores.ts';
import type { ProtocolStores } from '../src/multi-device.ts';

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);
export const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** A device with an identity, a signed prekey, a PQ prekey and a batch of one-time prekeys, all in its stores. */
export interface Device {
  readonly address: DeviceAddress;
  readonly identity: IdentityKeyPair;
  readonly signedPrekey: SignedPrekey;
  readonly pqPrekey: PqPrekey;
  readonly oneTimePrekeys: OneTimePrekey[];
  readonly prekeys: InMemoryPrekeyStore;
  readonly stores: ProtocolStores;
  /** A bundle as the server would hand it out: the next one-time prekey, or none. */
  bundle(withOneTimePrekey?: boolean): PrekeyBundle;
}

export function makeDevice(userId: string, deviceId: string, oneTimePrekeyCount = 4): Device {
  const identity = IdentityKeyPair.generate();
  const signedPrekey = SignedPrekey.generate(identity, 1);
  const pqPrekey = PqPrekey.generate(identity, 1);
  const oneTimePrekeys = OneTimePrekey.generate(100, oneTimePrekeyCount);
  const prekeys = new InMemoryPrekeyStore();
  prekeys.addSignedPrekey(signedPrekey);
  prekeys.addPqPrekey(pqPrekey);
  prekeys.addOneTimePrekeys(oneTimePrekeys);
  const handedOut = [...oneTimePrekeys];
  return {
    address: { userId, deviceId },
    identity,
    signedPrekey,
    pqPrekey,
    oneTimePrekeys,
    prekeys,
    stores: { identity: new InMemoryIdentityStore(identity), prekeys, sessions: new InMemorySessionStore() },
    bundle(withOneTimePrekey = true) {
      const otk = withOneTimePrekey ? handedOut.shift() : undefined;
      if (withOneTimePrekey && otk === undefined) throw new Error('test device ran out of one-time prekeys');
      return makePrekeyBundle(identity, signedPrekey, otk ?? null, pqPrekey);
    },
  };
}

function describeError(e: unknown): string {
  if (e instanceof ProtocolError) return `ProtocolError(${e.code}): ${e.message}`;
  if (e instanceof Error) return `${e.constructor.name}: ${e.message.slice(0, 200)}`;
  return `non-Error ${typeof e}`;
}

/** `fn` must throw a ProtocolError with `code`, and nothing else. */
export function expectCode(fn: () => unknown, code: ProtocolErrorCode, what = 'call'): void {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    if (!(e instanceof ProtocolError) || e.code !== code) assert.fail(`${what}: expected ProtocolError(${code}), got ${describeError(e)}`);
    return;
  }
  assert.fail(`${what}: expected ProtocolError(${code}), but it returned ${result instanceof Uint8Array ? `${result.length} bytes` : typeof result}`);
}

/** The error code `fn` throws, or 'ok' when it returns. */
export function outcome(fn: () => unknown): ProtocolErrorCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof ProtocolError) return e.code;
    throw e;
  }
}

export function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(b);
  out[bit >>> 3] = (out[bit >>> 3] as number) ^ (1 << (bit & 7));
  return out;
}
