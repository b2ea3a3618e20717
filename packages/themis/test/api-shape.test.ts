/**
 * The wasm-themis API shape, side by side with the real peer: the parts that
 * are not bytes on the wire (argument handling, class relations, error
 * objects), found by running wasm-themis's own test suite against ours.
 * Differences we keep on purpose are asserted in the tests of each
 * cryptosystem and listed in the README.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyPair, SecureCellSeal, SecureCellTokenProtect, SecureComparator, SecureMessage, SecureSession, ThemisError, ThemisErrorCode } from '../src/index.ts';
import { peer, utf8 } from './_interop.ts';

type Outcome = { ok: true } | { ok: false; errorCode: unknown };
function outcome(fn: () => unknown): Outcome {
  try {
    fn();
    return { ok: true };
  } catch (e) {
    return { ok: false, errorCode: (e as { errorCode?: unknown } | null)?.errorCode };
  }
}

test('ThemisErrorCode is the same object as the peer’s enum: names by number and numbers by name', () => {
  assert.deepEqual({ ...ThemisErrorCode }, { ...(peer.ThemisErrorCode as Record<string, unknown>) });
  assert.equal(ThemisErrorCode[12], 'INVALID_PARAMETER');
  assert.equal(ThemisErrorCode.INVALID_PARAMETER, 12);
});

test('new ThemisError(subsystem, errorCode, ...messages) and ThemisError.description read as in the peer', () => {
  const subsystems = ['SecureCellSeal', 'SecureSession', 'SecureComparator', 'SomethingElse'];
  const numbers = [0, 1, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 99];
  for (const subsystem of subsystems) {
    for (const n of numbers) {
      const what = `${subsystem} ${n}`;
      assert.equal(ThemisError.description(n, subsystem), peer.ThemisError.description(n, subsystem), `description ${what}`);
      const ours = new ThemisError(subsystem, n);
      const theirs = new peer.ThemisError(subsystem, n);
      assert.equal(ours.message, theirs.message, `message ${what}`);
      assert.equal(ours.errorCode, n, `errorCode ${what}`);
      assert.equal(ours.subsystem, subsystem);
      assert.ok(ours instanceof Error && ThemisError.is(ours));
      assert.equal(typeof ours.code, 'string', `a string code too, ${what}`);
    }
  }
  assert.equal(ThemisError.description(12), peer.ThemisError.description(12));
  assert.equal(new ThemisError('X', 12, 'a', 'b').message, new peer.ThemisError('X', 12, 'a', 'b').message);
  assert.equal(new ThemisError('SecureSession', 21).code, 'UNKNOWN_PEER');
  assert.equal(new ThemisError('SecureComparator', 22).code, 'INVALID_STATE');
  // Our own form is unchanged.
  const e = new ThemisError('SecureCellSeal', 'DECRYPT_FAILED', 'failed to decrypt');
  assert.deepEqual([e.code, e.errorCode, e.message], ['DECRYPT_FAILED', 11, 'Themis: SecureCellSeal: failed to decrypt']);
});

test('a passphrase cell is a SecureCellSeal, as in the peer', () => {
  // Typed as wasm-themis types it (its passphrase cell class extends SecureCellSeal): this line is
  // checked by tsc when the tests build, so the declarations cannot drift from the prototype chain.
  const cell: SecureCellSeal = SecureCellSeal.withPassphrase('pass');
  assert.equal(cell instanceof SecureCellSeal, peer.SecureCellSeal.withPassphrase('pass') instanceof peer.SecureCellSeal);
  assert.ok(cell instanceof SecureCellSeal);
  assert.ok(!(SecureCellSeal.withKey(utf8('key')) instanceof cell.constructor));
  assert.equal(String(cell), 'SecureCellSeal(passphrase redacted)');
});

test('SecureSession.keyCallback is the callback it was made with, and assigning another one takes effect at the next lookup, as in the peer', () => {
  const cb = (): null => null;
  const ours = new SecureSession(utf8('id'), new KeyPair().privateKey, cb);
  const theirs = new peer.SecureSession(utf8('id'), new peer.KeyPair().privateKey, cb);
  try {
    assert.equal(ours.keyCallback, cb);
    assert.equal(theirs.keyCallback, cb);
  } finally {
    theirs.destroy();
  }
  // A server whose callback is replaced after construction finds the client with the new one.
  for (const [name, T] of [['ours', { KeyPair, SecureSession }], ['peer', { KeyPair: peer.KeyPair, SecureSession: peer.SecureSession }]] as const) {
    const ck = new T.KeyPair();
    const sk = new T.KeyPair();
    const client = new T.SecureSession(utf8('client'), ck.privateKey, () => sk.publicKey);
    const server = new T.SecureSession(utf8('server'), sk.privateKey, () => null);
    server.keyCallback = (): unknown => ck.publicKey;
    const m2 = server.negotiateReply(client.connectionRequest());
    server.negotiateReply(client.negotiateReply(m2));
    assert.ok(server.established(), `${name}: the assigned callback was used`);
    if (name === 'peer') {
      client.destroy();
      server.destroy();
    }
  }
  const s = new SecureSession(utf8('id'), new KeyPair().privateKey, cb);
  assert.throws(() => {
    (s as unknown as { keyCallback: unknown }).keyCallback = 'not a function';
  }, (e: unknown) => e instanceof ThemisError && e.code === 'INVALID_ARGUMENT');
  assert.equal(s.keyCallback, cb);
});

test('extra arguments are ignored, as in the peer: keys.map(SecureCellSeal.withKey) passes the index as a second argument', () => {
  const keys = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
  type Seal = { encrypt(m: Uint8Array): Uint8Array; decrypt(c: Uint8Array): Uint8Array };
  type Token = { encrypt(m: Uint8Array): { data: Uint8Array; token: Uint8Array }; decrypt(d: Uint8Array, t: Uint8Array): Uint8Array };
  type Factory<T> = { withKey: (key: Uint8Array, ...rest: unknown[]) => T };
  const impls: [string, Factory<Seal>, Factory<Token>][] = [
    ['ours', SecureCellSeal as unknown as Factory<Seal>, SecureCellTokenProtect as unknown as Factory<Token>],
    ['peer', peer.SecureCellSeal as Factory<Seal>, peer.SecureCellTokenProtect as Factory<Token>],
  ];
  for (const [name, SealClass, TokenClass] of impls) {
    const cell = keys.map(SealClass.withKey)[1] as Seal;
    assert.deepEqual([...cell.decrypt(cell.encrypt(utf8('m')))], [...utf8('m')], `${name}: Seal`);
    const tp = keys.map(TokenClass.withKey)[1] as Token;
    const { data, token } = tp.encrypt(utf8('m'));
    assert.deepEqual([...tp.decrypt(data, token)], [...utf8('m')], `${name}: Token Protect`);
  }
  const kp = new KeyPair();
  const extra = 'x' as unknown as null;
  const session = new SecureSession(utf8('id'), kp.privateKey, () => null, extra);
  assert.equal(session.state, 'idle');
});

test('every output owns exactly its bytes (offset 0, a buffer of its own length), as the peer’s copies out of wasm memory do', () => {
  const key = new Uint8Array(32).fill(9);
  const m = utf8('some message');
  const ctx = utf8('ctx');
  const outputs: Record<string, Uint8Array> = {};
  const seal = SecureCellSeal.withKey(key);
  outputs['Seal.encrypt'] = seal.encrypt(m, ctx);
  outputs['Seal.decrypt'] = seal.decrypt(outputs['Seal.encrypt'], ctx);
  const tp = SecureCellTokenProtect.withKey(key);
  const r = tp.encrypt(m, ctx);
  outputs['TokenProtect.encrypt data'] = r.data;
  outputs['TokenProtect.encrypt token'] = r.token;
  outputs['TokenProtect.decrypt'] = tp.decrypt(r.data, r.token, ctx);
  const kp = new KeyPair();
  const sm = new SecureMessage(kp);
  outputs['SecureMessage.encrypt'] = sm.encrypt(m);
  outputs['SecureMessage.decrypt'] = sm.decrypt(outputs['SecureMessage.encrypt']);
  const a = new SecureComparator(m);
  const b = new SecureComparator(m);
  outputs['SecureComparator.begin'] = a.begin();
  outputs['SecureComparator.proceed'] = b.proceed(outputs['SecureComparator.begin']);
  for (const [name, out] of Object.entries(outputs)) {
    assert.ok(out.byteOffset === 0 && out.buffer.byteLength === out.length, `${name}: ${out.length} bytes in a buffer of ${out.buffer.byteLength} at ${out.byteOffset}`);
  }
});

test('argument counts: KeyPair takes none or two, SecureMessage one KeyPair or two keys; errorCodes as the peer', () => {
  const o = new KeyPair();
  const p = new peer.KeyPair();
  const construct = (C: unknown, args: unknown[]): (() => unknown) => () => Reflect.construct(C as new (...a: unknown[]) => unknown, args);
  const cases: [string, unknown[], unknown[]][] = [
    ['KeyPair(priv, pub, extra)', [o.privateKey, o.publicKey, o.publicKey], [p.privateKey, p.publicKey, p.publicKey]],
    ['KeyPair(priv)', [o.privateKey], [p.privateKey]],
  ];
  for (const [what, ours, theirs] of cases) {
    assert.deepEqual(outcome(construct(KeyPair, ours)), outcome(construct(peer.KeyPair, theirs)), what);
  }
  const messageCases: [string, unknown[], unknown[]][] = [
    ['SecureMessage()', [], []],
    ['SecureMessage(keyPair, undefined)', [o, undefined], [p, undefined]],
    ['SecureMessage(priv, pub, extra)', [o.privateKey, o.publicKey, 1], [p.privateKey, p.publicKey, 1]],
    ['SecureMessage(priv)', [o.privateKey], [p.privateKey]],
    ['SecureMessage(pub, priv)', [o.publicKey, o.privateKey], [p.publicKey, p.privateKey]],
    ['SecureMessage(keyPair)', [o], [p]],
  ];
  for (const [what, ours, theirs] of messageCases) {
    assert.deepEqual(outcome(construct(SecureMessage, ours)), outcome(construct(peer.SecureMessage, theirs)), what);
  }
});

test('unwrap() before the handshake and compareEqual() before the end give the peer’s errorCodes', () => {
  const idA = utf8('alice');
  const a = new KeyPair();
  const b = new KeyPair();
  const cb = (id: Uint8Array): Uint8Array | null => (id[0] === 0x61 ? a.publicKey : null);
  const client = new SecureSession(idA, a.privateKey, cb);
  const server = new SecureSession(utf8('bob'), b.privateKey, () => a.publicKey);
  server.negotiateReply(client.connectionRequest());
  const data = new Uint8Array(40);
  const fresh = new peer.SecureSession(idA, new peer.KeyPair().privateKey, () => null);
  try {
    assert.deepEqual(outcome(() => server.unwrap(data)), outcome(() => fresh.unwrap(data)));
  } finally {
    fresh.destroy();
  }
  const pc = new peer.SecureComparator(utf8('secret'));
  try {
    assert.deepEqual(outcome(() => new SecureComparator(utf8('secret')).compareEqual()), outcome(() => pc.compareEqual()));
  } finally {
    pc.destroy();
  }
});

test('an argument that is not bytes throws an error that is both a TypeError (as the peer’s) and a ThemisError (INVALID_ARGUMENT)', () => {
  const key = utf8('key');
  const tp = SecureCellTokenProtect.withKey(key);
  const ptp = peer.SecureCellTokenProtect.withKey(key);
  const sealed = tp.encrypt(utf8('m'));
  const cases: [string, () => unknown, () => unknown][] = [
    ['Seal.withKey(string)', () => SecureCellSeal.withKey('k' as never), () => peer.SecureCellSeal.withKey('k')],
    ['Seal#encrypt(array)', () => SecureCellSeal.withKey(key).encrypt([1, 2] as never), () => peer.SecureCellSeal.withKey(key).encrypt([1, 2])],
    ['Seal#encrypt(m, number)', () => SecureCellSeal.withKey(key).encrypt(utf8('m'), 5 as never), () => peer.SecureCellSeal.withKey(key).encrypt(utf8('m'), 5)],
    ['TokenProtect#encrypt(m, undefined)', () => tp.encrypt(utf8('m'), undefined), () => ptp.encrypt(utf8('m'), undefined)],
    ['TokenProtect#decrypt(d, t, undefined)', () => tp.decrypt(sealed.data, sealed.token, undefined), () => ptp.decrypt(sealed.data, sealed.token, undefined)],
    ['withPassphrase(number)', () => SecureCellSeal.withPassphrase(5 as never), () => peer.SecureCellSeal.withPassphrase(5)],
  ];
  for (const [what, ours, theirs] of cases) {
    assert.throws(theirs, TypeError, `peer: ${what}`);
    assert.throws(ours, (e) => e instanceof TypeError && e instanceof ThemisError && e.code === 'INVALID_ARGUMENT' && e.errorCode === 12, what);
  }
  // Omitted or null context is fine in both; Seal takes an explicit undefined in both.
  assert.deepEqual(tp.decrypt(sealed.data, sealed.token, null), utf8('m'));
  assert.deepEqual(tp.decrypt(sealed.data, sealed.token), utf8('m'));
  assert.ok(SecureCellSeal.withKey(key).encrypt(utf8('m'), undefined).length > 0);
  // Other failures are not TypeErrors.
  assert.throws(() => tp.decrypt(sealed.data, sealed.token, utf8('other')), (e) => e instanceof ThemisError && !(e instanceof TypeError));
});
