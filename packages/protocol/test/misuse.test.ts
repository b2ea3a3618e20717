/**
 * What a caller can get wrong at the public API (plain JavaScript, or a cast
 * in TypeScript): each is INVALID_ARGUMENT naming the argument, never a
 * TypeError from inside, and the same on both backends (node:crypto takes a
 * string or an array where noble throws, so a check at the seam alone would
 * give two answers). Nothing is consumed by a refused call.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdentityKeyPair, verifyIdentitySignature } from '../src/identity.ts';
import { isPrekeyMessage } from '../src/envelope.ts';
import { encryptForDevices, decryptFromDevice } from '../src/multi-device.ts';
import { makePrekeyBundle, OneTimePrekey, PqPrekey, pqPrekeyMessage, SignedPrekey, signedPrekeyMessage } from '../src/prekeys.ts';
import { Session } from '../src/session.ts';
import { InMemoryIdentityStore, InMemoryPrekeyStore, InMemorySessionStore } from '../src/stores.ts';
import { expectCode, makeDevice, text } from './_helpers.ts';

const bad = (v: unknown): never => v as never;

test('bytes arguments: a string, an array or null is INVALID_ARGUMENT, on every backend alike', () => {
  const id = IdentityKeyPair.generate();
  const sig = id.sign(text('str'));
  for (const m of ['str', [115, 116, 114], null, undefined, 42]) {
    expectCode(() => verifyIdentitySignature(id.publicKey, bad(m), sig), 'INVALID_ARGUMENT', `message ${JSON.stringify(m)}`);
    expectCode(() => id.sign(bad(m)), 'INVALID_ARGUMENT', `sign ${JSON.stringify(m)}`);
    expectCode(() => isPrekeyMessage(bad(m)), 'INVALID_ARGUMENT', `isPrekeyMessage ${JSON.stringify(m)}`);
  }
  expectCode(() => verifyIdentitySignature(bad(null), text('str'), sig), 'INVALID_ARGUMENT');
  expectCode(() => verifyIdentitySignature(id.publicKey, text('str'), bad([...sig])), 'INVALID_ARGUMENT');
  assert.equal(verifyIdentitySignature(id.publicKey, text('str'), sig), true);
  expectCode(() => signedPrekeyMessage(1, bad(null)), 'INVALID_ARGUMENT');
  expectCode(() => signedPrekeyMessage(-1, new Uint8Array(32)), 'INVALID_ARGUMENT');
  expectCode(() => pqPrekeyMessage(2 ** 32, new Uint8Array(32)), 'INVALID_ARGUMENT');
  expectCode(() => PqPrekey.generate(id, 1).decapsulate(bad(null)), 'INVALID_ARGUMENT');
});

test('keys and prekeys of the wrong kind are refused where they are given, not when first used', () => {
  const id = IdentityKeyPair.generate();
  const spk = SignedPrekey.generate(id, 1);
  const pq = PqPrekey.generate(id, 1);
  const [otk] = OneTimePrekey.generate(1, 1);
  expectCode(() => SignedPrekey.generate(bad(null), 1), 'INVALID_ARGUMENT');
  expectCode(() => PqPrekey.generate(bad({}), 1), 'INVALID_ARGUMENT');
  expectCode(() => makePrekeyBundle(bad(null), spk, null, pq), 'INVALID_ARGUMENT');
  expectCode(() => makePrekeyBundle(id, bad(pq), null, pq), 'INVALID_ARGUMENT');
  expectCode(() => makePrekeyBundle(id, spk, bad(spk), pq), 'INVALID_ARGUMENT');
  expectCode(() => makePrekeyBundle(id, spk, null, bad(spk)), 'INVALID_ARGUMENT');
  assert.ok(makePrekeyBundle(id, spk, otk ?? null, pq));
  const store = new InMemoryPrekeyStore();
  expectCode(() => store.addPqPrekey(bad(spk)), 'INVALID_ARGUMENT');
  expectCode(() => store.addSignedPrekey(bad(null)), 'INVALID_ARGUMENT');
  expectCode(() => store.addOneTimePrekeys(bad(null)), 'INVALID_ARGUMENT');
  expectCode(() => store.addOneTimePrekeys(bad([otk, spk])), 'INVALID_ARGUMENT');
  assert.equal(store.oneTimePrekeyCount, 0, 'a refused batch adds nothing');
  expectCode(() => new InMemorySessionStore().storeSession(bad({})), 'INVALID_ARGUMENT');
});

test('decrypt options and stores: missing methods or a non-function callback are refused before anything is consumed', () => {
  const alice = makeDevice('alice', 'laptop');
  const bob = makeDevice('bob', 'phone');
  const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
  const first = a.encrypt(text('hello'));
  const b = Session.create(bob.address, alice.address);
  expectCode(() => b.decrypt(first, { identity: bob.identity, prekeys: bad({}) }), 'INVALID_ARGUMENT');
  expectCode(() => b.decrypt(first, { identity: bob.identity, prekeys: bob.prekeys, isTrustedIdentity: bad(42) }), 'INVALID_ARGUMENT');
  assert.equal(b.established, false);
  // Nothing was spent: the message still opens.
  assert.equal(new TextDecoder().decode(b.decrypt(first, { identity: bob.identity, prekeys: bob.prekeys })), 'hello');
  expectCode(() => new (Session as unknown as new () => Session)(), 'INVALID_ARGUMENT');

  const stores = { identity: new InMemoryIdentityStore(alice.identity), prekeys: alice.prekeys, sessions: new InMemorySessionStore() };
  expectCode(() => encryptForDevices(bad(null), alice.address, [], text('x')), 'INVALID_ARGUMENT');
  expectCode(() => encryptForDevices({ ...stores, sessions: bad({}) }, alice.address, [], text('x')), 'INVALID_ARGUMENT');
  expectCode(() => encryptForDevices(stores, alice.address, bad(null), text('x')), 'INVALID_ARGUMENT');
  expectCode(() => decryptFromDevice({ ...stores, identity: bad({}) }, alice.address, bob.address, first), 'INVALID_ARGUMENT');
});
