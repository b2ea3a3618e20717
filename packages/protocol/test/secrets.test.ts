/**
 * Secrets hygiene: no ordinary way of turning a key-holding object into text
 * (String, template literals, JSON, util.inspect with hidden properties,
 * util.format) shows any 8 consecutive bytes of its secrets, in hex, decimal
 * or base64. The detector is first shown to find leaks that are there.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import util from 'node:util';
import { backend } from '@parley/themis/hazmat';
import { IdentityKeyPair } from '../src/identity.ts';
import { kemKeyPair } from '../src/kem.ts';
import { OneTimePrekey, PqPrekey, SignedPrekey } from '../src/prekeys.ts';
import { Session } from '../src/session.ts';
import { deserializeSessionRecord } from '../src/session-state.ts';
import { InMemoryIdentityStore, InMemoryPrekeyStore, InMemorySessionStore } from '../src/stores.ts';
import { makeDevice, text } from './_helpers.ts';

const WINDOW = 8;

const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const base64 = (b: Uint8Array): string => btoa(String.fromCharCode(...b));

function needlesFor(secret: Uint8Array): string[] {
  const needles = new Set<string>();
  for (let i = 0; i + WINDOW <= secret.length; i++) {
    const w = secret.subarray(i, i + WINDOW);
    needles.add(hexOf(w));
    needles.add(Array.from(w).join(','));
    if (i + 6 <= secret.length) {
      const b = base64(secret.subarray(i, i + 6));
      needles.add(b.toLowerCase());
      needles.add(b.replace(/\+/g, '-').replace(/\//g, '_').toLowerCase());
    }
  }
  return [...needles];
}

const normalise = (s: string): string => s.replace(/\s+/g, '').toLowerCase();

function renderings(x: unknown): [string, string][] {
  const attempt = (f: () => unknown): string => {
    try {
      return String(f());
    } catch (e) {
      return `<threw ${(e as Error).name}>`;
    }
  };
  return [
    ['String(x)', attempt(() => String(x))],
    ['`${x}`', attempt(() => `${x as string}`)],
    ['JSON.stringify(x)', attempt(() => JSON.stringify(x))],
    ['JSON.stringify({x})', attempt(() => JSON.stringify({ x }))],
    ['util.inspect(x, showHidden)', util.inspect(x, { showHidden: true, depth: 8 })],
    ['util.inspect({x}, showHidden)', util.inspect({ x }, { showHidden: true, depth: 8, maxArrayLength: Infinity })],
    ["util.format('%o', x)", util.format('%o', x)],
    ["util.format('%j', x)", util.format('%j', x)],
    ['Object spread', util.inspect({ ...(x as object) }, { showHidden: true, depth: 8 })],
  ];
}

function leaks(x: unknown, secrets: readonly Uint8Array[]): string[] {
  const needles = secrets.flatMap(needlesFor);
  const found: string[] = [];
  for (const [how, rendered] of renderings(x)) {
    const n = normalise(rendered);
    const hit = needles.find((needle) => n.includes(needle));
    if (hit !== undefined) found.push(`${how} shows "${hit}"`);
  }
  return found;
}

test('the leak detector finds secrets that are shown', () => {
  const secret = backend.randomBytes(32);
  assert.ok(leaks({ key: Uint8Array.from(secret) }, [secret]).length >= 3);
  assert.ok(leaks({ toString: () => hexOf(secret.subarray(5, 5 + WINDOW)) }, [secret]).length > 0);
  assert.ok(leaks({ toString: () => `key=${base64(secret)}` }, [secret]).length > 0);
  assert.deepEqual(leaks(backend.randomBytes(64), [secret]), []);
});

describe('no rendering shows secret bytes', () => {
  test('IdentityKeyPair (seed and its X25519 scalar)', () => {
    const id = IdentityKeyPair.generate();
    const seed = id.exportSeed();
    assert.deepEqual(leaks(id, [seed, backend.ed25519SeedToX25519(seed)]), []);
  });

  test('prekeys (X25519 private keys, ML-KEM seed and expanded key)', () => {
    const identity = IdentityKeyPair.generate();
    const spk = SignedPrekey.generate(identity, 1);
    assert.deepEqual(leaks(spk, [spk.exportPrivateKey()]), []);
    const [otk] = OneTimePrekey.generate(1, 1);
    assert.ok(otk !== undefined);
    assert.deepEqual(leaks(otk, [otk.exportPrivateKey()]), []);
    const pq = PqPrekey.generate(identity, 1);
    pq.decapsulate(new Uint8Array(1568)); // expands and caches the secret key
    const seed = pq.toBytes().subarray(6, 70);
    assert.deepEqual(leaks(pq, [seed, kemKeyPair(seed).secretKey.subarray(0, 1536)]), []);
  });

  test('Session mid-conversation (root, chain, header, ratchet and skipped message keys) and the stores', () => {
    const alice = makeDevice('alice', 'laptop');
    const bob = makeDevice('bob', 'phone');
    const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
    const b = Session.create(bob.address, alice.address);
    const m = [a.encrypt(text('0')), a.encrypt(text('1')), a.encrypt(text('2'))];
    b.decrypt(m[2] as Uint8Array, { identity: bob.identity, prekeys: bob.prekeys });
    a.decrypt(b.encrypt(text('reply')));
    const secretsOf = (s: Session): Uint8Array[] =>
      deserializeSessionRecord(s.serialize()).states.flatMap((st) => {
        const r = st.ratchet;
        return [
          r.rootKey,
          r.ratchetPrivate,
          ...(r.sending === null ? [] : [r.sending.chainKey, r.sending.headerKey]),
          ...(r.receiving === null ? [] : [r.receiving.chainKey, r.receiving.headerKey]),
          ...r.closedChains.map((c) => c.headerKey),
          ...[...r.skipped.values()].map((k) => k.messageKey),
        ];
      });
    const bSecrets = secretsOf(b);
    assert.ok(bSecrets.length >= 8, `${bSecrets.length}`);
    assert.deepEqual(leaks(a, secretsOf(a)), []);
    assert.deepEqual(leaks(b, bSecrets), []);

    const sessions = new InMemorySessionStore();
    sessions.storeSession(b);
    assert.deepEqual(leaks(sessions, bSecrets), []);
    const prekeys = new InMemoryPrekeyStore();
    prekeys.addSignedPrekey(bob.signedPrekey);
    assert.deepEqual(leaks(prekeys, [bob.signedPrekey.exportPrivateKey()]), []);
    assert.deepEqual(leaks(new InMemoryIdentityStore(bob.identity), [bob.identity.exportSeed()]), []);
  });

  test('errors do not carry secrets either', () => {
    const alice = makeDevice('alice', 'laptop');
    const bob = makeDevice('bob', 'phone');
    const a = Session.initiate(alice.identity, bob.bundle(), alice.address, bob.address);
    const secrets = deserializeSessionRecord(a.serialize()).states.flatMap((s) => [s.ratchet.rootKey, s.ratchet.ratchetPrivate]);
    let error: unknown;
    try {
      a.decrypt(a.encrypt(text('to myself')));
    } catch (e) {
      error = e;
    }
    assert.ok(error !== undefined);
    assert.deepEqual(leaks(error, secrets), []);
  });
});
