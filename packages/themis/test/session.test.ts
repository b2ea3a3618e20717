/**
 * Secure Session, ours on both ends (wire-format spec §5): the state machine,
 * errors and their legacy numbers, the replay window (strict and lenient),
 * timestamps with injected clocks (exact edges, no real time), tampering,
 * save()/restore() in Themis's TSSC layout, and receive().
 *
 * Interop with the real peer is in interop-session.test.ts; the randomized
 * network model is in session-model.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PrivateKey, type PublicKey, SecureSession, ThemisError, type SecureSessionOptions, type SessionState } from '../src/index.ts';
import { readContainer, writeContainer } from '../src/hazmat.ts';
import { SESSION_ID_LENGTH_MAX } from '../src/limits.ts';
import { assertSameBytes, flipByte, handshake, IV_TAIL, numbered, ourSession, OVERHEAD, party, readU32BE, oursRejects, type Party, withU32BE, Rng, utf8 } from './_session.ts';

const client = party('client');
const server = party('server');

function pair(options: { client?: SecureSessionOptions; server?: SecureSessionOptions } = {}): { c: SecureSession; s: SecureSession } {
  const c = ourSession(client, [server], options.client);
  const s = ourSession(server, [client], options.server);
  handshake(c, s, 'ours ↔ ours');
  return { c, s };
}

/** Static keys from the Themis repository (test/vectors/keys.json, StaticKeys.h). */
const staticKeys = JSON.parse(readFileSync(new URL('../../test/vectors/keys.json', import.meta.url), 'utf8')) as {
  keyPairs: Array<{ id: string; privateKey: string; publicKey: string }>;
};
function staticKey(id: string, which: 'privateKey' | 'publicKey'): Uint8Array {
  const k = staticKeys.keyPairs.find((p) => p.id === id);
  assert.ok(k, `static key ${id}`);
  return Uint8Array.from(Buffer.from(k[which], 'hex'));
}

// ---------------------------------------------------------------------------
// State machine and API errors
// ---------------------------------------------------------------------------

test('handshake: states idle → wait-m2 → wait-m4 → established (client) and idle → wait-m3 → established (server); peerId learnt from M1/M2', () => {
  const c = ourSession(client, [server]);
  const s = ourSession(server, [client]);
  const seen: Array<[SessionState, SessionState]> = [[c.state, s.state]];
  assert.equal(c.peerId, null);
  const m1 = c.connectionRequest();
  seen.push([c.state, s.state]);
  const m2 = s.negotiateReply(m1);
  assert.deepEqual(s.peerId, Uint8Array.from(client.id));
  seen.push([c.state, s.state]);
  const m3 = c.negotiateReply(m2);
  assert.deepEqual(c.peerId, Uint8Array.from(server.id));
  seen.push([c.state, s.state]);
  const m4 = s.negotiateReply(m3);
  seen.push([c.state, s.state]);
  assert.equal(c.negotiateReply(m4).length, 0);
  seen.push([c.state, s.state]);
  assert.deepEqual(seen, [
    ['idle', 'idle'],
    ['wait-m2', 'idle'],
    ['wait-m2', 'wait-m3'],
    ['wait-m4', 'wait-m3'],
    ['wait-m4', 'established'],
    ['established', 'established'],
  ]);
  assert.ok(c.established() && s.established());
  assert.equal(m4.length, 44);
});

test('data both ways, sizes 1 B to 64 KiB: wrapped = n + 52, both directions carry the same session id, which save() reports too', () => {
  const { c, s } = pair();
  const sids = new Set<number>();
  for (const n of [1, 2, 15, 16, 17, 255, 256, 4096, 65535, 65536]) {
    const m = new Rng(n).bytes(n);
    const a = c.wrap(m);
    const b = s.wrap(m);
    assert.equal(a.length, n + OVERHEAD);
    assert.equal(b.length, n + OVERHEAD);
    sids.add(readU32BE(a, 0)).add(readU32BE(b, 0));
    assertSameBytes(s.unwrap(a), m, `client → server ${n}`);
    assertSameBytes(c.unwrap(b), m, `server → client ${n}`);
  }
  assert.equal(sids.size, 1);
  const [sid] = sids;
  for (const side of [c, s]) {
    const saved = readContainer(side.save(), true);
    assert.ok(saved !== null);
    assert.equal(readU32BE(saved.payload, 0), sid);
  }
  oursRejects('empty message', () => c.wrap(new Uint8Array(0)), 'EMPTY_INPUT');
});

test('NOT_ESTABLISHED for wrap, unwrap and save in every handshake state (errorCode 19; unwrap 12, the peer\'s number); INVALID_STATE after destroy()', () => {
  const c = ourSession(client, [server]);
  const s = ourSession(server, [client]);
  const data = (() => {
    const p = pair();
    return p.s.wrap(numbered(0));
  })();
  const check = (x: SecureSession): void => {
    const st = x.state;
    assert.equal(oursRejects(`wrap in ${st}`, () => x.wrap(numbered(0)), 'NOT_ESTABLISHED').errorCode, 19);
    assert.equal(oursRejects(`unwrap in ${st}`, () => x.unwrap(data), 'NOT_ESTABLISHED').errorCode, 12);
    oursRejects(`save in ${st}`, () => x.save(), 'NOT_ESTABLISHED');
    assert.equal(x.state, st);
  };
  check(c);
  check(s);
  const m1 = c.connectionRequest();
  check(c);
  const m2 = s.negotiateReply(m1);
  check(s);
  const m3 = c.negotiateReply(m2);
  check(c);
  c.negotiateReply(s.negotiateReply(m3));
  assert.ok(c.established() && s.established());
  c.destroy();
  for (const [what, fn] of [
    ['wrap', () => c.wrap(numbered(0))],
    ['unwrap', () => c.unwrap(data)],
    ['save', () => c.save()],
    ['negotiateReply', () => c.negotiateReply(m2)],
    ['receive', () => c.receive(data)],
    ['connectionRequest', () => c.connectionRequest()],
  ] as const) {
    oursRejects(`${what} after destroy`, fn, 'INVALID_STATE');
  }
  assert.equal(c.state, 'destroyed');
  assert.equal(c.established(), false);
});

test('unknown peers: UNKNOWN_PEER when the callback returns null (errorCode 21) or something other than an EC public key (12, as the peer); a callback that throws has its own error come back (as the peer); state unchanged', () => {
  const rsaPublic = staticKey('static-rsa-1024', 'publicKey');
  const callbacks: Array<[string, (id: Uint8Array) => Uint8Array | null, ThemisError['code'][], number]> = [
    ['null', () => null, ['UNKNOWN_PEER'], 21],
    ['an EC private key', () => client.keys.privateKey, ['UNKNOWN_PEER'], 12],
    ['an RSA public key (static, from the Themis repository)', () => rsaPublic, ['UNKNOWN_PEER'], 12],
    ['a corrupted EC public key', () => flipByte(client.keys.publicKey, 20), ['UNKNOWN_PEER', 'INVALID_KEY'], 12],
  ];
  for (const [what, cb, codes, legacy] of callbacks) {
    const c = ourSession(client, [server]);
    const s = new SecureSession(server.id, server.keys.privateKey, cb);
    const m1 = c.connectionRequest();
    const e = oursRejects(`server, callback ${what}`, () => s.negotiateReply(m1), codes);
    assert.equal(e.errorCode, legacy, `server, callback ${what}`);
    assert.equal(s.state, 'idle');

    const c2 = new SecureSession(client.id, client.keys.privateKey, cb);
    const s2 = ourSession(server, [client]);
    const m2 = s2.negotiateReply(c2.connectionRequest());
    const e2 = oursRejects(`client, callback ${what}`, () => c2.negotiateReply(m2), codes);
    assert.equal(e2.errorCode, legacy, `client, callback ${what}`);
    assert.equal(c2.state, 'wait-m2');
  }
  const failure = new Error('lookup failed');
  const throwing = (): never => {
    throw failure;
  };
  const s = new SecureSession(server.id, server.keys.privateKey, throwing);
  assert.throws(() => s.negotiateReply(ourSession(client, [server]).connectionRequest()), (e) => e === failure);
  assert.equal(s.state, 'idle');
  const c2 = new SecureSession(client.id, client.keys.privateKey, throwing);
  const m2 = ourSession(server, [client]).negotiateReply(c2.connectionRequest());
  assert.throws(() => c2.negotiateReply(m2), (e) => e === failure);
  assert.equal(c2.state, 'wait-m2');
});

test('the callback sees exactly the peer\'s id; a wrong key for a known id fails the signature', () => {
  const asked: string[] = [];
  const s = new SecureSession(server.id, server.keys.privateKey, (id) => {
    asked.push(new TextDecoder().decode(id));
    return server.keys.publicKey;
  });
  oursRejects('wrong key for the id', () => s.negotiateReply(ourSession(client, [server]).connectionRequest()), 'INVALID_SIGNATURE');
  assert.deepEqual(asked, ['client']);
});

test(`construction: EC private key only (static RSA key from the Themis repository → WRONG_KEY_KIND), non-empty id up to SESSION_ID_LENGTH_MAX (${SESSION_ID_LENGTH_MAX}) bytes`, () => {
  const rsaPrivate = staticKey('static-rsa-1024', 'privateKey');
  const cb = (): null => null;
  const wrongKind = (): SecureSession => new SecureSession(client.id, new PrivateKey(rsaPrivate), cb);
  oursRejects('RSA private key', wrongKind, 'WRONG_KEY_KIND');
  oursRejects('EC public key', () => new SecureSession(client.id, client.keys.publicKey as unknown as PrivateKey, cb), 'WRONG_KEY_KIND');
  oursRejects('raw bytes of an EC private key (wasm-themis wants a PrivateKey too)', () => new SecureSession(client.id, Uint8Array.from(client.keys.privateKey) as PrivateKey, cb), 'INVALID_ARGUMENT');
  oursRejects('empty id', () => new SecureSession(new Uint8Array(0), client.keys.privateKey, cb), 'EMPTY_INPUT');
  oursRejects('an id one byte over the limit', () => new SecureSession(new Uint8Array(SESSION_ID_LENGTH_MAX + 1), client.keys.privateKey, cb), 'LIMIT_EXCEEDED');
  // 1-byte and limit-length binary ids work end to end.
  for (const n of [1, SESSION_ID_LENGTH_MAX]) {
    const a: Party = { name: `a${n}`, id: new Rng(n).bytes(n), keys: client.keys };
    const b: Party = { name: `b${n}`, id: new Uint8Array(n), keys: server.keys };
    const c = ourSession(a, [b]);
    const s = ourSession(b, [a]);
    handshake(c, s, `${n}-byte ids`);
    assertSameBytes(s.unwrap(c.wrap(numbered(n))), numbered(n), `${n}-byte ids`);
  }
});

test('negotiateReply out of order, in every state and with every wrong message (own, reflected, another session\'s), is refused and leaves the state unchanged; the handshake then completes', () => {
  const refC = ourSession(client, [server]);
  const refS = ourSession(server, [client]);
  const ref = handshake(refC, refS, 'reference');
  let cases = 0;
  const refuse = (x: SecureSession, what: string, m: Uint8Array): void => {
    const st = x.state;
    const peerId = x.peerId;
    oursRejects(`${st}: ${what}`, () => x.negotiateReply(m), ['MALFORMED', 'INVALID_SIGNATURE', 'UNKNOWN_PEER', 'INVALID_STATE']);
    assert.equal(x.state, st, `${st}: ${what}: state changed`);
    assert.deepEqual(x.peerId, peerId, `${st}: ${what}: peerId changed`);
    cases++;
  };
  const c = ourSession(client, [server]);
  const s = ourSession(server, [client]);
  for (const [w, m] of [['M2', ref.m2], ['M3', ref.m3], ['M4', ref.m4]] as const) refuse(s, `${w} of another session`, m);
  const m1 = c.connectionRequest();
  for (const [w, m] of [['own M1', m1], ['M1', ref.m1], ['M2', ref.m2], ['M3', ref.m3], ['M4', ref.m4]] as const) refuse(c, w, m);
  const m2 = s.negotiateReply(m1);
  for (const [w, m] of [['M1 again', m1], ['M1', ref.m1], ['own M2', m2], ['M2', ref.m2], ['M3', ref.m3], ['M4', ref.m4]] as const) refuse(s, w, m);
  const m3 = c.negotiateReply(m2);
  for (const [w, m] of [['M1', m1], ['M2 again', m2], ['M2', ref.m2], ['own M3', m3], ['M3', ref.m3], ['M4', ref.m4]] as const) refuse(c, w, m);
  const m4 = s.negotiateReply(m3);
  for (const [w, m] of [['M1', m1], ['M3 again', m3], ['M4 own', m4]] as const) refuse(s, w, m);
  assert.equal(c.negotiateReply(m4).length, 0);
  for (const [w, m] of [['M2', m2], ['M4 again', m4]] as const) refuse(c, w, m);
  oursRejects('connectionRequest when established', () => c.connectionRequest(), 'INVALID_STATE');
  const answered = ourSession(server, [client]);
  answered.negotiateReply(ourSession(client, [server]).connectionRequest());
  oursRejects('connectionRequest on a server that answered an M1', () => answered.connectionRequest(), 'INVALID_STATE');
  assert.equal(answered.state, 'wait-m3');
  assertSameBytes(s.unwrap(c.wrap(numbered(1))), numbered(1), 'works');
  assertSameBytes(c.unwrap(s.wrap(numbered(2))), numbered(2), 'works');
  assert.equal(cases, 3 + 5 + 6 + 6 + 3 + 2);
});

test('a server never given M3 and a client never given M4 stay unestablished: a data message from the other end is NOT_ESTABLISHED', () => {
  const c = ourSession(client, [server]);
  const s = ourSession(server, [client]);
  const m3 = c.negotiateReply(s.negotiateReply(c.connectionRequest()));
  assert.equal(s.state, 'wait-m3');
  assert.equal(c.state, 'wait-m4');
  const m4 = s.negotiateReply(m3);
  const fromServer = s.wrap(numbered(0));
  oursRejects('client without M4', () => c.unwrap(fromServer), 'NOT_ESTABLISHED');
  c.negotiateReply(m4);
  assertSameBytes(c.unwrap(fromServer), numbered(0), 'after M4');
});

// ---------------------------------------------------------------------------
// Replay window
// ---------------------------------------------------------------------------

test('strict (default): an exact replay is REPLAY, at any distance; lenient: accepted like Themis while within ±8 of the last accepted', () => {
  const { c, s } = pair();
  const sent = Array.from({ length: 20 }, (_, i) => c.wrap(numbered(i)));
  for (const [i, w] of sent.entries()) assertSameBytes(s.unwrap(w), numbered(i), `first delivery ${i}`);
  for (const [i, w] of sent.entries()) oursRejects(`strict replay ${i}`, () => s.unwrap(w), 'REPLAY');

  const l = pair({ server: { replay: 'lenient' } });
  const lsent = Array.from({ length: 20 }, (_, i) => l.c.wrap(numbered(i)));
  for (const [i, w] of lsent.entries()) assertSameBytes(l.s.unwrap(w), numbered(i), `lenient first delivery ${i}`);
  // last accepted = 19: 11..19 replay fine (and move `last` back), anything ≤ last − 9 is out of the window.
  assertSameBytes(l.s.unwrap(lsent[19] as Uint8Array), numbered(19), 'lenient replay of 19');
  assertSameBytes(l.s.unwrap(lsent[11] as Uint8Array), numbered(11), 'lenient replay of 11 (last := 11)');
  assertSameBytes(l.s.unwrap(lsent[3] as Uint8Array), numbered(3), 'lenient replay of 3 (11 − 8)');
  oursRejects('lenient: 19 is now 16 ahead of the last accepted', () => l.s.unwrap(lsent[19] as Uint8Array), 'REPLAY');
});

test('sequence numbers across 2^32 (states crafted through save()): strict accepts the wrap, in order and reordered; lenient refuses as Themis does (bounds computed without wrap, spec §5.7)', () => {
  const { c, s } = pair();
  const cs = readContainer(c.save(), true);
  const ss = readContainer(s.save(), true);
  assert.ok(cs !== null && ss !== null);
  const START = 0xffff_fffc;
  // Client out_seq := START; server in_seq := START − 1 (everything up to it counts as received).
  const cSaved = writeContainer('TSSC', withU32BE(cs.payload, 40, START));
  const sSaved = writeContainer('TSSC', withU32BE(ss.payload, 44, START - 1));
  const restore = (saved: Uint8Array, me: Party, other: Party, options?: SecureSessionOptions): SecureSession =>
    SecureSession.restore(saved, me.id, me.keys.privateKey, (id) => (Buffer.from(id).equals(Buffer.from(other.id)) ? other.keys.publicKey : null), options);

  const sender = restore(cSaved, client, server);
  const strict = restore(sSaved, server, client);
  const sent = Array.from({ length: 12 }, (_, i) => sender.wrap(numbered(i))); // seqs fffffffc … 00000007
  const order = [0, 1, 2, 3, 4, 6, 5, 8, 7, 11, 10, 9];
  for (const i of order) assertSameBytes(strict.unwrap(sent[i] as Uint8Array), numbered(i), `strict, message ${i} (seq ${((START + i) >>> 0).toString(16)})`);
  for (const [i, w] of sent.entries()) oursRejects(`strict replay ${i}`, () => strict.unwrap(w), 'REPLAY');

  const lenient = restore(sSaved, server, client, { replay: 'lenient' });
  oursRejects('lenient, seq fffffffc after fffffffb', () => lenient.unwrap(sent[0] as Uint8Array), 'REPLAY');
});

test('the window edge, strict and lenient alike: first message S0+8 accepted, S0+9 refused; after S, S+8 and S−8 accepted, S+9 and S−9 refused; strict refuses 64 or more below the highest', () => {
  for (const mode of ['strict', 'lenient'] as const) {
    const { c, s } = pair({ server: { replay: mode } });
    const sent = Array.from({ length: 40 }, (_, i) => c.wrap(numbered(i)));
    const got = (i: number): boolean => {
      try {
        assertSameBytes(s.unwrap(sent[i] as Uint8Array), numbered(i), `${mode} ${i}`);
        return true;
      } catch (e) {
        if (ThemisError.is(e, 'REPLAY')) return false;
        throw e;
      }
    };
    // Themis's `last` starts at S0 = the seq of message 0 (not yet received).
    const decisions = [9, 8, 0, 9, 7, 16, 15, 6, 23, 14].map((i) => [i, got(i)]);
    assert.deepEqual(
      decisions,
      [
        [9, false], // S0 + 9
        [8, true], // S0 + 8
        [0, true], // 8 − 8
        [9, false], // 0 + 9
        [7, true], // 0 + 7
        [16, false], // 7 + 9
        [15, true], // 7 + 8
        [6, false], // 15 − 9
        [23, true], // 15 + 8
        [14, false], // 23 − 9
      ],
      mode,
    );
  }
  // Strict refuses anything 64 or more below the highest accepted, even if never received.
  const { c, s } = pair();
  const sent = Array.from({ length: 80 }, (_, i) => c.wrap(numbered(i)));
  for (let i = 0; i <= 72; i += 8) assertSameBytes(s.unwrap(sent[i] as Uint8Array), numbered(i), `step ${i}`);
  // highest = 72; walk back down within ±8 of the last accepted: 65, 57, 49, 41, 33, 25, 17, 9 (63 below), then 1 (71 below).
  for (const i of [65, 57, 49, 41, 33, 25, 17, 9]) assertSameBytes(s.unwrap(sent[i] as Uint8Array), numbered(i), `back to ${i}`);
  oursRejects('71 below the highest', () => s.unwrap(sent[1] as Uint8Array), 'REPLAY');
});

// ---------------------------------------------------------------------------
// Timestamps (injected clocks: exact, no real time)
// ---------------------------------------------------------------------------

test('timestamps: a receiver clock within ±86400 s of the sender\'s accepts, ±86401 s refuses (REPLAY), in both directions; refusals change nothing', () => {
  const T = 1_800_000_000;
  const clientNow = T;
  let serverNow = T;
  const { c, s } = pair({ client: { clock: () => clientNow }, server: { clock: () => serverNow } });
  let i = 0;
  for (const [delta, ok] of [
    [0, true],
    [86_400, true],
    [-86_400, true],
    [86_401, false],
    [-86_401, false],
    [10 * 86_400, false],
    [3_600, true],
  ] as const) {
    // The server's clock is off by `delta`: first as the receiver, then as the sender.
    serverNow = T + delta;
    const m = numbered(i++);
    const w = c.wrap(m);
    if (ok) assertSameBytes(s.unwrap(w), m, `receiver at ${delta}`);
    else oursRejects(`receiver at ${delta}`, () => s.unwrap(w), 'REPLAY');
    const v = s.wrap(m);
    if (ok) assertSameBytes(c.unwrap(v), m, `sender at ${delta}`);
    else oursRejects(`sender at ${delta}`, () => c.unwrap(v), 'REPLAY');
  }
  // A refused (stale) message is refused again later: refusals do not consume the sequence number either way.
  serverNow = T + 86_401;
  const late = c.wrap(numbered(99));
  oursRejects('stale', () => s.unwrap(late), 'REPLAY');
  serverNow = T;
  assertSameBytes(s.unwrap(late), numbered(99), 'the same message, clocks agreeing again');
});

// ---------------------------------------------------------------------------
// Tampering
// ---------------------------------------------------------------------------

test('every flipped byte of a data message is refused (DECRYPT_FAILED; the unused IV tail → REPLAY once the original was accepted); the session keeps working', () => {
  const { c, s } = pair();
  const m = numbered(5, 30);
  const w = c.wrap(m);
  for (let i = 0; i < w.length; i++) {
    if ((IV_TAIL as readonly number[]).includes(i)) continue;
    oursRejects(`byte ${i}`, () => s.unwrap(flipByte(w, i, 0x10)), 'DECRYPT_FAILED');
  }
  assertSameBytes(s.unwrap(w), m, 'original');
  for (const i of IV_TAIL) oursRejects(`IV tail byte ${i} after the original`, () => s.unwrap(flipByte(w, i, 0x10)), 'REPLAY');
  for (let k = 0; k < 5; k++) {
    assertSameBytes(s.unwrap(c.wrap(numbered(k))), numbered(k), `after tampering ${k}`);
    assertSameBytes(c.unwrap(s.wrap(numbered(k))), numbered(k), `after tampering ${k}`);
  }
  // A message wrapped in one direction is not accepted in the other (different keys).
  oursRejects('reflected to its sender', () => c.unwrap(c.wrap(numbered(9))), 'DECRYPT_FAILED');
});

// ---------------------------------------------------------------------------
// save() / restore()
// ---------------------------------------------------------------------------

test('save()/restore() of both ends mid-conversation: TSSC layout consistent across the two ends, traffic continues, nothing received before the save can be replayed', () => {
  const { c, s } = pair();
  const toServer: Uint8Array[] = [];
  const toClient: Uint8Array[] = [];
  for (let i = 0; i < 12; i++) {
    const a = c.wrap(numbered(i));
    assertSameBytes(s.unwrap(a), numbered(i), `c→s ${i}`);
    toServer.push(a);
    const b = s.wrap(numbered(100 + i));
    assertSameBytes(c.unwrap(b), numbered(100 + i), `s→c ${i}`);
    toClient.push(b);
  }
  const cSaved = c.save();
  const sSaved = s.save();
  const cs = readContainer(cSaved, true);
  const ss = readContainer(sSaved, true);
  assert.ok(cs !== null && ss !== null, 'valid containers');
  assert.equal(cs.tag, 'TSSC');
  assert.equal(cSaved.length, 60);
  assert.equal(readU32BE(cs.payload, 0), readU32BE(toServer[0] as Uint8Array, 0), 'client: session id as on the wire');
  assert.equal(readU32BE(ss.payload, 0), readU32BE(toClient[0] as Uint8Array, 0), 'server: session id as on the wire');
  assert.equal(readU32BE(cs.payload, 4), 1, 'client is_client');
  assert.equal(readU32BE(ss.payload, 4), 0, 'server is_client');
  assertSameBytes(cs.payload.subarray(8, 40), ss.payload.subarray(8, 40), 'same master key');
  // Every message was delivered: each side's next out_seq is one past what the other last received.
  assert.equal(readU32BE(cs.payload, 40), (readU32BE(ss.payload, 44) + 1) >>> 0, 'client out_seq = server in_seq + 1');
  assert.equal(readU32BE(ss.payload, 40), (readU32BE(cs.payload, 44) + 1) >>> 0, 'server out_seq = client in_seq + 1');
  c.destroy();
  s.destroy();

  const c2 = SecureSession.restore(cSaved, client.id, client.keys.privateKey, () => server.keys.publicKey);
  const s2 = SecureSession.restore(sSaved, server.id, server.keys.privateKey, () => client.keys.publicKey);
  assert.ok(c2.established() && s2.established());
  for (const [i, w] of toServer.entries()) oursRejects(`server: replay of pre-save ${i}`, () => s2.unwrap(w), 'REPLAY');
  for (const [i, w] of toClient.entries()) oursRejects(`client: replay of pre-save ${i}`, () => c2.unwrap(w), 'REPLAY');
  for (let i = 12; i < 30; i++) {
    assertSameBytes(s2.unwrap(c2.wrap(numbered(i))), numbered(i), `after restore c→s ${i}`);
    assertSameBytes(c2.unwrap(s2.wrap(numbered(100 + i))), numbered(100 + i), `after restore s→c ${i}`);
  }
  // A second save/restore cycle of a restored session.
  const s3 = SecureSession.restore(s2.save(), server.id, server.keys.privateKey, () => client.keys.publicKey);
  assertSameBytes(s3.unwrap(c2.wrap(numbered(31))), numbered(31), 'second cycle');
});

test('restore(): messages received out of order before the save — the highest counts, so skipped lower ones are refused afterwards (no replay possible, at the cost of those)', () => {
  const { c, s } = pair();
  const sent = Array.from({ length: 8 }, (_, i) => c.wrap(numbered(i)));
  for (const i of [0, 1, 2, 5]) assertSameBytes(s.unwrap(sent[i] as Uint8Array), numbered(i), `before save ${i}`);
  const s2 = SecureSession.restore(s.save(), server.id, server.keys.privateKey, () => client.keys.publicKey);
  for (const i of [0, 1, 2, 3, 4, 5]) oursRejects(`after restore ${i}`, () => s2.unwrap(sent[i] as Uint8Array), 'REPLAY');
  for (const i of [7, 6]) assertSameBytes(s2.unwrap(sent[i] as Uint8Array), numbered(i), `after restore ${i}`);
});

test('restore() refuses malformed saved state: bad CRC, wrong tag, wrong length, truncated, is_client ∉ {0,1}', () => {
  const { c } = pair();
  const saved = c.save();
  const payload = readContainer(saved, true)?.payload;
  assert.ok(payload);
  const bad: Array<[string, Uint8Array]> = [
    ['flipped master key byte (CRC)', flipByte(saved, 20)],
    ['flipped CRC', flipByte(saved, 9)],
    ['tag TSPM', writeContainer('TSPM', payload)],
    ['47-byte payload', writeContainer('TSSC', payload.subarray(0, 47))],
    ['49-byte payload', writeContainer('TSSC', Uint8Array.from([...payload, 0]))],
    ['truncated', saved.subarray(0, 59)],
    ['trailing byte', Uint8Array.from([...saved, 0])],
    ['is_client = 2', writeContainer('TSSC', withU32BE(payload, 4, 2))],
  ];
  for (const [what, b] of bad) oursRejects(what, () => SecureSession.restore(b, client.id, client.keys.privateKey, () => null), 'MALFORMED');
  oursRejects('empty', () => SecureSession.restore(new Uint8Array(0), client.id, client.keys.privateKey, () => null), ['EMPTY_INPUT', 'MALFORMED']);
});

// ---------------------------------------------------------------------------
// receive()
// ---------------------------------------------------------------------------

test('receive() drives the whole handshake and the data exchange, ours ↔ ours', () => {
  const c = ourSession(client, [server]);
  const s = ourSession(server, [client]);
  let inbound = c.connectionRequest();
  let to: 'server' | 'client' = 'server';
  const events: string[] = [];
  for (let step = 0; step < 4; step++) {
    const r = (to === 'server' ? s : c).receive(inbound);
    events.push(`${to}:${r.kind}`);
    if (r.kind !== 'send') break;
    inbound = r.message;
    to = to === 'server' ? 'client' : 'server';
  }
  assert.deepEqual(events, ['server:send', 'client:send', 'server:send', 'client:established']);
  assert.ok(c.established() && s.established());
  for (let i = 0; i < 10; i++) {
    const w = c.wrap(numbered(i, i));
    assert.deepEqual(s.receive(w), { kind: 'data', data: numbered(i, i) });
    oursRejects(`receive replay ${i}`, () => s.receive(w), 'REPLAY');
    const r = c.receive(s.wrap(numbered(50 + i)));
    assert.equal(r.kind, 'data');
    assertSameBytes((r as { data: Uint8Array }).data, numbered(50 + i), `server → client ${i}`);
  }
  oursRejects('receive a tampered message', () => s.receive(flipByte(c.wrap(numbered(1)), 30)), 'DECRYPT_FAILED');
  oursRejects('receive an empty message', () => s.receive(new Uint8Array(0)), 'EMPTY_INPUT');
});

test('receive() before establishment: a data message is NOT_ESTABLISHED, a malformed handshake message is refused with the state unchanged', () => {
  const { c: other, s: otherServer } = pair();
  void otherServer;
  const c = ourSession(client, [server]);
  const s = ourSession(server, [client]);
  oursRejects('data to a fresh server', () => s.receive(other.wrap(numbered(0))), 'NOT_ESTABLISHED');
  const m1 = c.connectionRequest();
  oursRejects('truncated M1', () => s.receive(m1.subarray(0, m1.length - 1)), 'MALFORMED');
  assert.equal(s.state, 'idle');
  const r = s.receive(m1);
  assert.equal(r.kind, 'send');
});

test('the random IV differs for every message, and equal plaintexts never give equal ciphertexts', () => {
  const { c } = pair();
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) seen.add(Buffer.from(c.wrap(numbered(0)).subarray(4)).toString('hex'));
  assert.equal(seen.size, 50);
});

// ---------------------------------------------------------------------------
// Regressions from the independent review
// ---------------------------------------------------------------------------

test('a state saved as Themis writes it (lenient) cannot tell "nothing received" from "the first message received": restored strict it refuses the first message (no replay), restored lenient it accepts it', () => {
  const { c, s } = pair({ server: { replay: 'lenient' } });
  const saved = s.save();
  const keyOf = (id: Uint8Array): PublicKey | null => (new TextDecoder().decode(id) === 'client' ? client.keys.publicKey : null);
  const first = c.wrap(numbered(0));
  oursRejects('first message, restored strict', () => SecureSession.restore(saved, utf8('server'), server.keys.privateKey, keyOf).unwrap(first), 'REPLAY');
  const lenient = SecureSession.restore(saved, utf8('server'), server.keys.privateKey, keyOf, { replay: 'lenient' });
  assertSameBytes(lenient.unwrap(first), numbered(0), 'first message, restored lenient');
  const strict = SecureSession.restore(saved, utf8('server'), server.keys.privateKey, keyOf);
  assertSameBytes(strict.unwrap(c.wrap(numbered(1))), numbered(1), 'the second message, restored strict');
});

test('a state saved in strict mode before any data arrived restores and accepts the first message', () => {
  const { c, s } = pair();
  const restored = SecureSession.restore(s.save(), utf8('server'), server.keys.privateKey, (id) => (new TextDecoder().decode(id) === 'client' ? client.keys.publicKey : null));
  const first = c.wrap(numbered(0));
  assertSameBytes(restored.unwrap(first), numbered(0), 'first message after restore');
  oursRejects('replay of the first message', () => restored.unwrap(first), 'REPLAY');
});

test('strict: a state saved after exactly one message (the peer\'s initial seq) refuses its replay after restore; so after two', () => {
  for (const n of [1, 2]) {
    const { c, s } = pair();
    const sent = Array.from({ length: n }, (_, i) => c.wrap(numbered(i)));
    for (const w of sent) s.unwrap(w);
    const restored = SecureSession.restore(s.save(), utf8('server'), server.keys.privateKey, (id) => (new TextDecoder().decode(id) === 'client' ? client.keys.publicKey : null));
    for (const w of sent) oursRejects(`replay after restore (${n} received)`, () => restored.unwrap(w), 'REPLAY');
    assertSameBytes(restored.unwrap(c.wrap(numbered(9))), numbered(9), `the next message (${n} received)`);
  }
});

test('a key callback that destroys its own session cannot revive it', () => {
  const victim: { session?: SecureSession } = {};
  const c = ourSession(client, [server]);
  const s = new SecureSession(utf8('server'), server.keys.privateKey, (id) => {
    victim.session?.destroy();
    return new TextDecoder().decode(id) === 'client' ? client.keys.publicKey : null;
  });
  victim.session = s;
  oursRejects('M1 to a session destroyed by its callback', () => s.negotiateReply(c.connectionRequest()), 'INVALID_STATE');
  assert.equal(s.state, 'destroyed');
  assert.equal(s.established(), false);
});

test('a broken clock is refused, never treated as "any timestamp is fine"', () => {
  const { c } = pair();
  const s2 = pair({ server: { clock: () => Number.NaN } });
  oursRejects('unwrap with a NaN clock', () => s2.s.unwrap(s2.c.wrap(numbered(0))), 'INVALID_STATE');
  oursRejects('wrap with a NaN clock', () => s2.s.wrap(numbered(0)), 'INVALID_STATE');
  assert.ok(c.wrap(numbered(1)).length > 0);
  for (const bad of [5, 'x', {}] as unknown[]) {
    oursRejects(`clock ${String(bad)}`, () => new SecureSession(utf8('server'), server.keys.privateKey, () => null, { clock: bad as () => number }), 'INVALID_ARGUMENT');
  }
  oursRejects("replay: 'bogus'", () => new SecureSession(utf8('server'), server.keys.privateKey, () => null, { replay: 'bogus' as 'strict' }), 'INVALID_ARGUMENT');
  // null options mean defaults, as undefined does.
  assert.equal(new SecureSession(utf8('server'), server.keys.privateKey, () => null, null).state, 'idle');
});
