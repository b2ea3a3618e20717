/**
 * The Parley protocol v1 (docs/protocol.md) end to end: a real
 * `parley serve` process, real WebSockets, the test client in
 * `_v1-client.ts`. Limits come from `src/limits.ts`, so every edge follows
 * the constants.
 *
 * Three server processes: the main one (most tests), one configured with
 * PARLEY_TRUSTED_TOKEN_SECRET (host-minted tokens), and one that is
 * SIGKILLed and restarted on the same data directory (durability).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { startServerProcess, type ServerProcess } from './_server-process.ts';
import {
  V1Client,
  authed,
  b64,
  deviceKey,
  loggedIn,
  newDeviceKey,
  registered,
  signChallenge,
  unb64,
  type AckFrame,
  type Entry,
  type ErrorFrame,
  type Frame,
  type MsgFrame,
  type RoomInfo,
  type SessionFrame,
} from './_v1-client.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import * as limitsTs from '../src/limits.ts';
import {
  ACCESS_TOKEN_TTL_S,
  BLOB_RETENTION_DAYS_DEFAULT,
  BLOB_UPLOAD_TTL_S_DEFAULT,
  BODY_BYTES_MAX,
  CHALLENGE_BYTES,
  FRAME_BYTES_MAX,
  FRAMES_PER_SECOND,
  SYNC_FORMER_ROOMS_MAX,
  FRAMES_QUEUED_MAX,
  HISTORY_PAGE_MAX,
  INVALID_FRAMES_MAX,
  LOGIN_ATTEMPTS_MAX,
  LOGIN_FAILURES_PER_USER_PER_MINUTE,
  MESSAGES_PER_SECOND,
  PROTOCOL_VERSIONS,
  ROOM_MEMBERS_MAX,
  ROOMS_ADDED_BY_OTHERS_MAX,
  ROOMS_PER_USER_MAX,
  SEND_BUFFER_BYTES_MAX,
  SYNC_ENTRIES_PER_ROOM_MAX,
  SYNC_PAUSE_BYTES,
  UNAUTHENTICATED_LIFETIME_MS,
} from '../src/limits.ts';

// ---------------------------------------------------------------- helpers

function expectFrame<T extends Frame = Frame>(f: Frame, t: string, what = ''): T {
  assert.equal(f.t, t, `${what}: expected ${t}, got ${JSON.stringify(f).slice(0, 400)}`);
  return f as T;
}

function expectError(f: Frame, code: string, what = ''): ErrorFrame {
  assert.equal(f.t, 'error', `${what}: expected error ${code}, got ${JSON.stringify(f).slice(0, 400)}`);
  assert.equal(f['code'], code, `${what}: expected error ${code}, got ${JSON.stringify(f).slice(0, 400)}`);
  assert.equal(typeof f['message'], 'string');
  return f as ErrorFrame;
}

function roomOf(f: Frame, what = 'room.create'): RoomInfo {
  return expectFrame<Frame & { room: RoomInfo }>(f, 'room', what).room;
}

function at<T>(xs: readonly T[], i: number): T {
  assert.ok(i >= 0 && i < xs.length, `index ${i} out of 0..${xs.length - 1}`);
  return xs[i] as T;
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function eventBody(e: Entry): Record<string, unknown> {
  return JSON.parse(Buffer.from(e.body, 'base64').toString('utf8')) as Record<string, unknown>;
}

/** An entry as history returns it: the `msg` frame without `t`. */
function asEntry(m: Frame): Entry {
  const rest: Record<string, unknown> = { ...m };
  delete rest['t'];
  return rest as unknown as Entry;
}

let uniq = 0;
/** A fresh user id (users persist for the server's lifetime). */
function uid(prefix: string): string {
  return `${prefix}-${(uniq++).toString(36)}`;
}

/** Strings that must never show up in the server's logs. */
const secrets = new Set<string>();
/** Access and refresh tokens (also secrets): never in the logs, never in the database. */
const tokens = new Set<string>();

function rememberSession(s: Frame): void {
  for (const k of ['accessToken', 'refreshToken']) {
    const v = s[k];
    if (typeof v === 'string') {
      secrets.add(v);
      tokens.add(v);
    }
  }
}

/** A recognisable plaintext body; it and its base64 are registered as secrets. */
function marker(label: string): Buffer {
  const s = `PARLEY-PLAINTEXT-MARKER-${label}-${randomBytes(6).toString('hex')}`;
  secrets.add(s);
  secrets.add(b64(s));
  return Buffer.from(s, 'utf8');
}

/** Random "ciphertext"; its base64 is registered as a secret. */
function randomBody(n = 48): Buffer {
  const b = randomBytes(n);
  secrets.add(b64(b));
  return b;
}

// ================================================================ main server

describe('Parley v1 on /v1 (one server process)', () => {
  let server: ServerProcess;
  let url: string;
  let dataDir: string;
  const open: V1Client[] = [];
  // Connections opened at the start and left alone, for UNAUTHENTICATED_LIFETIME_MS; for each, when its connect began
  // (the server's timer cannot start before) and when it was open (the server's timer had started).
  const idle: { silent?: V1Client; helloOnly?: V1Client; authenticated?: V1Client; times: Map<V1Client, { connecting: number; open: number }> } = { times: new Map() };

  function track<T extends V1Client>(c: T): T {
    open.push(c);
    return c;
  }
  async function connect(label = 'c'): Promise<V1Client> {
    return track(await V1Client.connect(url, label));
  }
  async function hello(label = 'c'): Promise<V1Client> {
    const c = await connect(label);
    expectFrame(await c.hello(), 'welcome', 'hello');
    return c;
  }
  async function reg(userId: string, deviceId = 'dev1'): Promise<{ client: V1Client; session: SessionFrame }> {
    const r = await registered(url, userId, deviceId);
    track(r.client);
    rememberSession(r.session);
    return r;
  }
  async function login(userId: string, deviceId = 'dev1', label?: string): Promise<{ client: V1Client; session: SessionFrame }> {
    const r = await loggedIn(url, userId, deviceId, label);
    track(r.client);
    rememberSession(r.session);
    return r;
  }
  async function auth(token: string, label = 'authed'): Promise<V1Client> {
    const r = await authed(url, token, label);
    track(r.client);
    return r.client;
  }

  before(async () => {
    // A user with two devices. The protocol has no frame yet to add a second
    // device (device creation is *(next)*), so it is written through the
    // storage port before the server starts.
    dataDir = mkdtempSync(join(tmpdir(), 'parley-v1-'));
    const storage = new SqliteStorage(dataDir);
    await storage.migrate();
    await storage.createUser({ userId: 'dora', createdAt: Date.now() });
    for (const d of ['phone', 'laptop']) {
      assert.ok(await storage.addDevice({ userId: 'dora', deviceId: d, identityKey: newDeviceKey('dora', d).identityKey, createdAt: Date.now() }));
    }
    await storage.close();

    server = await startServerProcess([], { dataDir });
    url = `ws://127.0.0.1:${server.port}/v1`;

    for (const which of ['silent', 'helloOnly'] as const) {
      const connecting = Date.now();
      const c = await connect(which === 'silent' ? 'idle-silent' : 'idle-hello');
      idle.times.set(c, { connecting, open: Date.now() });
      if (which === 'helloOnly') expectFrame(await c.hello(), 'welcome', 'hello');
      idle[which] = c;
    }
    const { session } = await reg('idler');
    idle.authenticated = await auth(session.accessToken as string, 'idle-authenticated');
  });

  after(async () => {
    for (const c of open) c.close();
    await server.stop();
    server.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // -------------------------------------------------------------- version negotiation

  describe('version negotiation', () => {
    test('hello [1] → welcome with version 1 and the limits of limits.ts', async () => {
      const c = await connect();
      const w = expectFrame(await c.hello([1]), 'welcome');
      assert.equal(w['version'], 1);
      assert.deepEqual(PROTOCOL_VERSIONS, [1]);
      const limits = w['limits'] as Record<string, number>;
      // Every limit a client can run into, under its announced name.
      const announced: Record<string, number> = {
        frameBytes: FRAME_BYTES_MAX,
        bodyBytes: BODY_BYTES_MAX,
        messagesPerSecond: MESSAGES_PER_SECOND,
        framesPerSecond: FRAMES_PER_SECOND,
        historyPage: HISTORY_PAGE_MAX,
        historyPageBytes: limitsTs.HISTORY_PAGE_BYTES_MAX,
        syncEntriesPerRoom: SYNC_ENTRIES_PER_ROOM_MAX,
        syncFormerRooms: limitsTs.SYNC_FORMER_ROOMS_MAX,
        roomsPerUser: ROOMS_PER_USER_MAX,
        roomsAddedByOthers: limitsTs.ROOMS_ADDED_BY_OTHERS_MAX,
        roomMembers: ROOM_MEMBERS_MAX,
        devicesPerUser: limitsTs.DEVICES_PER_USER_MAX,
        mailbox: limitsTs.MAILBOX_MAX,
        mailboxFromSender: limitsTs.MAILBOX_FROM_SENDER_MAX,
        mailboxPayloadBytes: limitsTs.MAILBOX_PAYLOAD_BYTES_MAX,
        unauthenticatedLifetimeMs: UNAUTHENTICATED_LIFETIME_MS,
        invalidFrames: INVALID_FRAMES_MAX,
        loginAttempts: LOGIN_ATTEMPTS_MAX,
        loginFailuresPerUserPerMinute: LOGIN_FAILURES_PER_USER_PER_MINUTE,
        oneTimePrekeys: limitsTs.ONE_TIME_PREKEYS_MAX,
        oneTimePrekeysPerUpload: limitsTs.ONE_TIME_PREKEYS_PER_UPLOAD_MAX,
        pqPrekeyBytes: limitsTs.PQ_PREKEY_BYTES_MAX,
        keyPackages: limitsTs.KEY_PACKAGES_MAX,
        keyPackagesPerUpload: limitsTs.KEY_PACKAGES_PER_UPLOAD_MAX,
        keyPackageBytes: limitsTs.KEY_PACKAGE_BYTES_MAX,
        keyBackupBytes: limitsTs.KEY_BACKUP_BYTES_MAX,
        blobBytes: limitsTs.BLOB_BYTES_MAX,
        blobChunkBytes: limitsTs.BLOB_CHUNK_BYTES,
        blobBytesPerUser: limitsTs.BLOB_BYTES_PER_USER_MAX,
        blobCountPerUser: limitsTs.BLOB_COUNT_PER_USER_MAX,
        blobUploadsOpen: limitsTs.BLOB_UPLOADS_OPEN_MAX,
        prekeyBytes: limitsTs.PREKEY_BYTES,
        mailboxPage: limitsTs.MAILBOX_PAGE,
        refreshTokenTtlS: limitsTs.REFRESH_TOKEN_TTL_S,
        sendBufferBytes: limitsTs.SEND_BUFFER_BYTES_MAX,
        syncPauseBytes: limitsTs.SYNC_PAUSE_BYTES,
        syncDrainTimeoutMs: limitsTs.SYNC_DRAIN_TIMEOUT_MS,
        heartbeatMs: limitsTs.HEARTBEAT_MS,
      };
      for (const [name, value] of Object.entries(announced)) assert.equal(limits[name], value, name);
      // The blob lifetimes of this server (defaults: no environment set them).
      assert.equal(limits['blobUploadTtlS'], BLOB_UPLOAD_TTL_S_DEFAULT);
      assert.equal(limits['blobRetentionDays'], BLOB_RETENTION_DAYS_DEFAULT);
    });

    test('ping → pong in any phase after hello (before and after login), with the id echoed; before hello it is refused like any frame', async () => {
      const c = await connect();
      expectError(await c.request({ t: 'ping' }), 'bad_frame');
      expectFrame(await c.hello(), 'welcome');
      assert.equal(expectFrame(await c.request({ t: 'ping' }), 'pong')['t'], 'pong');
      const { client } = await reg('pinger');
      const pong = expectFrame(await client.request({ t: 'ping', id: 'hb-7' }), 'pong');
      assert.equal(pong['re'], 'hb-7');
    });

    test('/v1/ (a trailing slash) is the Parley protocol too; query strings are ignored', async () => {
      for (const path of ['/v1/', '/v1?client=x', '/v1/?client=x']) {
        const c = track(await V1Client.connect(url.replace(/\/v1$/, path), `path ${path}`));
        expectFrame(await c.hello([1]), 'welcome', path);
      }
    });

    test('the highest common version is picked: hello [99, 1] → version 1', async () => {
      const c = await connect();
      assert.equal(expectFrame(await c.hello([99, 1]), 'welcome')['version'], 1);
    });

    test('hello [99] → unsupported_version, then close 1002', async () => {
      const c = await connect();
      expectError(await c.hello([99]), 'unsupported_version');
      assert.equal((await within(c.closed, 3000, 'close')).code, 1002);
    });

    test('a first frame other than hello → bad_frame; hello afterwards still works', async () => {
      const c = await connect();
      expectError(await c.request({ t: 'challenge' }), 'bad_frame', 'challenge before hello');
      expectError(await c.request({ t: 'room.list' }), 'bad_frame', 'room.list before hello');
      expectError(await c.request({ t: 'auth', accessToken: 'x' }), 'bad_frame', 'auth before hello');
      expectFrame(await c.hello(), 'welcome');
      expectError(await c.hello(), 'bad_frame', 'second hello');
    });
  });

  // -------------------------------------------------------------- authentication

  describe('register, login, auth, refresh', () => {
    test('register → session with both tokens; the user id is then taken; ids are validated', async () => {
      const alice = uid('alice');
      const { client, session } = await reg(alice, 'laptop');
      assert.equal(session.userId, alice);
      assert.equal(session.deviceId, 'laptop');
      assert.equal(typeof session.accessToken, 'string');
      assert.equal(typeof session.refreshToken, 'string');
      assert.equal(session.expiresIn, ACCESS_TOKEN_TTL_S);
      expectError(await client.register(uid('x'), 'd'), 'bad_frame', 'register on an authenticated connection');

      const other = await hello();
      expectError(await other.register(alice, 'phone'), 'conflict', 'taken user id');
      expectError(await other.register('Upper', 'd'), 'bad_frame', 'upper-case user id');
      expectError(await other.register('-dash', 'd'), 'bad_frame', 'user id starting with -');
      expectError(await other.register('a'.repeat(65), 'd'), 'bad_frame', 'user id of 65 chars');
      expectError(await other.register(uid('ok'), 'bad device'), 'bad_frame', 'device id with a space');
      expectFrame(await other.register('a'.repeat(64), 'D'.repeat(64)), 'session', 'longest ids');
    });

    test('register with a wrong signature → invalid_credentials; no user is created', async () => {
      const c = await hello();
      const u = uid('sig');
      const key = newDeviceKey(u, 'd');
      const impostor = newDeviceKey(u, 'other');
      const tries: [string, (nonce: Uint8Array) => Record<string, unknown>][] = [
        ['signed by another key', (n) => ({ identityKey: b64(key.identityKey), signature: signChallenge(impostor.privateKey, 'parley-register-v1', n, u, 'd') })],
        ['login purpose', (n) => ({ identityKey: b64(key.identityKey), signature: signChallenge(key.privateKey, 'parley-login-v1', n, u, 'd') })],
        ['other device id signed', (n) => ({ identityKey: b64(key.identityKey), signature: signChallenge(key.privateKey, 'parley-register-v1', n, u, 'e') })],
        ['wrong nonce', () => ({ identityKey: b64(key.identityKey), signature: signChallenge(key.privateKey, 'parley-register-v1', randomBytes(32), u, 'd') })],
      ];
      for (const [what, make] of tries) {
        const nonce = await c.challenge();
        expectError(await c.request({ t: 'register', userId: u, deviceId: 'd', ...make(nonce) }), 'invalid_credentials', what);
      }
      // Without a challenge at all (this is the 5th failure on this connection: it closes).
      expectError(
        await c.request({ t: 'register', userId: u, deviceId: 'd', identityKey: b64(key.identityKey), signature: signChallenge(key.privateKey, 'parley-register-v1', randomBytes(32), u, 'd') }),
        'invalid_credentials',
        'no challenge',
      );
      assert.equal((await within(c.closed, 3000, 'close after LOGIN_ATTEMPTS_MAX failed registrations')).code, 1008);
      // The user does not exist: registering it properly works.
      expectFrame(await (await hello()).register(u, 'd', key), 'session');
    });

    test('login from a new connection with the kept key; wrong key, unknown device and wrong purpose → invalid_credentials', async () => {
      const u = uid('bob');
      await reg(u, 'phone');
      const { session } = await login(u, 'phone');
      assert.equal(session.userId, u);
      assert.equal(session.deviceId, 'phone');
      assert.equal(typeof session.accessToken, 'string');
      assert.equal(typeof session.refreshToken, 'string');

      const c = await hello();
      const stranger = newDeviceKey(u, 'phone-impostor');
      expectError(await c.login(u, 'phone', stranger), 'invalid_credentials', 'wrong key');
      expectError(await c.login(u, 'tablet', stranger), 'invalid_credentials', 'unknown device');
      expectError(await c.login(uid('nobody'), 'phone', stranger), 'invalid_credentials', 'unknown user');
      const nonce = await c.challenge();
      expectError(
        await c.request({ t: 'login', userId: u, deviceId: 'phone', signature: signChallenge(deviceKey(u, 'phone').privateKey, 'parley-register-v1', nonce, u, 'phone') }),
        'invalid_credentials',
        'register purpose',
      );
      expectFrame(await c.login(u, 'phone'), 'session', 'then the right key');
    });

    test('a nonce is single-use and bound to its connection: a replayed login fails', async () => {
      const u = uid('nonce');
      await reg(u);
      const key = deviceKey(u, 'dev1');

      // Same connection: each challenge replaces the nonce; a failed attempt spends it, and a correct signature over a
      // spent or replaced nonce is refused.
      const c = await hello();
      const replaced = await c.challenge();
      assert.equal(replaced.length, CHALLENGE_BYTES, 'CHALLENGE_BYTES');
      const n1 = await c.challenge();
      assert.notDeepEqual(n1, replaced, 'a fresh nonce per challenge');
      expectError(await c.request({ t: 'login', userId: u, deviceId: 'dev1', signature: signChallenge(key.privateKey, 'parley-login-v1', replaced, u, 'dev1') }), 'invalid_credentials', 'replaced nonce');
      expectError(await c.request({ t: 'login', userId: u, deviceId: 'dev1', signature: signChallenge(key.privateKey, 'parley-login-v1', n1, u, 'dev1') }), 'invalid_credentials', 'nonce spent by the failed attempt');
      const n2 = await c.challenge();
      expectError(await c.request({ t: 'login', userId: u, deviceId: 'dev1', signature: b64(randomBytes(64)) }), 'invalid_credentials', 'bad signature');
      expectError(await c.request({ t: 'login', userId: u, deviceId: 'dev1', signature: signChallenge(key.privateKey, 'parley-login-v1', n2, u, 'dev1') }), 'invalid_credentials', 'spent nonce');

      // A login frame that succeeded, replayed on another connection (which asked its own challenge).
      const a = await hello();
      const nA = await a.challenge();
      const frame = { t: 'login', userId: u, deviceId: 'dev1', signature: signChallenge(key.privateKey, 'parley-login-v1', nA, u, 'dev1') };
      expectFrame(await a.request({ ...frame }), 'session', 'original');
      const b = await hello();
      await b.challenge();
      expectError(await b.request({ ...frame }), 'invalid_credentials', 'replay with a fresh challenge');
      expectError(await b.request({ ...frame }), 'invalid_credentials', 'replay without a challenge');

      // A nonce issued to one connection, signed and used on another.
      const x = await hello();
      const y = await hello();
      const nX = await x.challenge();
      await y.challenge();
      expectError(await y.request({ t: 'login', userId: u, deviceId: 'dev1', signature: signChallenge(key.privateKey, 'parley-login-v1', nX, u, 'dev1') }), 'invalid_credentials', "another connection's nonce");
      // The nonce is still good where it was issued.
      expectFrame(await x.request({ t: 'login', userId: u, deviceId: 'dev1', signature: signChallenge(key.privateKey, 'parley-login-v1', nX, u, 'dev1') }), 'session');
    });

    test(`LOGIN_ATTEMPTS_MAX (${LOGIN_ATTEMPTS_MAX}) failures close the connection with 1008; per user, LOGIN_FAILURES_PER_USER_PER_MINUTE (${LOGIN_FAILURES_PER_USER_PER_MINUTE}) then rate_limited`, async () => {
      assert.ok(LOGIN_FAILURES_PER_USER_PER_MINUTE > LOGIN_ATTEMPTS_MAX, 'the per-user limit spans connections');
      const u = uid('brute');
      await reg(u);
      const wrong = newDeviceKey(u, 'wrong');
      let failures = 0;

      const c1 = await hello();
      for (let i = 1; i < LOGIN_ATTEMPTS_MAX; i++) {
        expectError(await c1.login(u, 'dev1', wrong), 'invalid_credentials', `attempt ${i}`);
        failures++;
        assert.ok(c1.isOpen, `open after ${i} failures`);
      }
      expectError(await c1.login(u, 'dev1', wrong), 'invalid_credentials', 'last attempt');
      failures++;
      assert.equal((await within(c1.closed, 3000, 'close after LOGIN_ATTEMPTS_MAX')).code, 1008);

      // Across connections, per user: up to LOGIN_FAILURES_PER_USER_PER_MINUTE - 1 failures a right login still works …
      let c = await hello();
      let onConn = 0;
      while (failures < LOGIN_FAILURES_PER_USER_PER_MINUTE - 1) {
        if (onConn === LOGIN_ATTEMPTS_MAX - 1) {
          c = await hello();
          onConn = 0;
        }
        expectError(await c.login(u, 'dev1', wrong), 'invalid_credentials');
        failures++;
        onConn++;
      }
      if (onConn === LOGIN_ATTEMPTS_MAX - 1) c = await hello();
      const ok = await c.login(u, 'dev1');
      expectFrame(ok, 'session', `right key after ${failures} failures`);
      rememberSession(ok);

      // … one more failure reaches the limit: even the right key is rate_limited for this user from this address.
      const d = await hello();
      expectError(await d.login(u, 'dev1', wrong), 'invalid_credentials');
      expectError(await d.login(u, 'dev1'), 'rate_limited', 'right key after the per-user limit');
      // A client cannot choose its address: without PARLEY_TRUST_PROXY, X-Forwarded-For is ignored.
      const spoofed = track(await V1Client.connect(url, 'spoofed', undefined, { 'X-Forwarded-For': '10.9.9.9' }));
      expectFrame(await spoofed.hello(), 'welcome');
      expectError(await spoofed.login(u, 'dev1'), 'rate_limited', 'the same socket address, whatever the header says');
      // From another address the user still logs in: bad signatures sent in someone's name cannot lock them out.
      const elsewhere = track(await V1Client.connect(url, 'elsewhere', '127.0.0.2'));
      expectFrame(await elsewhere.hello(), 'welcome');
      const there = await elsewhere.login(u, 'dev1');
      expectFrame(there, 'session', 'the same user from another address');
      rememberSession(there);
      // Other users are unaffected.
      const v = uid('bystander');
      await reg(v);
      await login(v);
    });

    test('auth with an access token from a new connection; garbage and foreign tokens → invalid_credentials', async () => {
      const u = uid('carol');
      const { session } = await reg(u, 'tab');
      const c = await hello();
      const s = expectFrame<SessionFrame>(await c.auth(session.accessToken as string), 'session', 'auth');
      assert.equal(s.userId, u);
      assert.equal(s.deviceId, 'tab');
      assert.equal(s.accessToken, undefined, 'auth issues no new access token');
      assert.equal(s.refreshToken, undefined, 'auth issues no new refresh token');
      assert.ok(s.expiresIn > ACCESS_TOKEN_TTL_S - 60 && s.expiresIn <= ACCESS_TOKEN_TTL_S, `expiresIn ${s.expiresIn}`);
      expectFrame(await c.roomList(), 'rooms', 'authenticated');
      expectError(await c.auth(session.accessToken as string), 'bad_frame', 'auth twice');

      const foreign = await new SignJWT({ did: 'tab' })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(u)
        .setIssuer('parley')
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(randomBytes(32));
      const header = b64url({ alg: 'none', typ: 'JWT' });
      const unsigned = `${header}.${b64url({ sub: u, did: 'tab', exp: Math.floor(Date.now() / 1000) + 600 })}.`;
      const [h, , sig] = (session.accessToken as string).split('.');
      const tampered = `${h}.${b64url({ sub: uid('mallory'), did: 'tab', exp: Math.floor(Date.now() / 1000) + 600, iss: 'parley' })}.${sig}`;
      const d = await hello();
      expectError(await d.auth('garbage'), 'invalid_credentials', 'garbage');
      expectError(await d.auth(foreign), 'invalid_credentials', 'signed with another secret');
      expectError(await d.auth(unsigned), 'invalid_credentials', 'alg none');
      expectError(await d.auth(tampered), 'invalid_credentials', 'tampered claims');
      expectError(await d.auth('a.b.c'), 'invalid_credentials', 'LOGIN_ATTEMPTS_MAX-th');
      assert.equal(LOGIN_ATTEMPTS_MAX, 5, 'this test spends exactly 5 attempts');
      assert.equal((await within(d.closed, 3000, 'close')).code, 1008);
    });

    test('refresh → new tokens; once the new token is used, the spent one is reuse and revokes the login', async () => {
      const u = uid('dave');
      const { session } = await reg(u);
      const c = await hello();
      const r1 = expectFrame<SessionFrame>(await c.refresh(session.refreshToken as string), 'session', 'refresh');
      rememberSession(r1);
      assert.equal(r1.userId, u);
      assert.equal(r1.deviceId, 'dev1');
      assert.equal(r1.expiresIn, ACCESS_TOKEN_TTL_S);
      assert.notEqual(r1.refreshToken, session.refreshToken);
      expectFrame(await c.roomList(), 'rooms', 'refresh authenticates the connection');
      await auth(r1.accessToken as string);

      const d = await hello();
      expectError(await d.refresh('x'.repeat(43)), 'invalid_credentials', 'unknown token');
      const r2 = expectFrame<SessionFrame>(await d.refresh(r1.refreshToken as string), 'session', 'the rotated token');
      rememberSession(r2);
      const e = await hello();
      expectError(await e.refresh(session.refreshToken as string), 'invalid_credentials', 'the first token again, after its successor was used');
      expectError(await e.refresh(r2.refreshToken as string), 'invalid_credentials', 'the whole login is revoked');
      // Another login of the same device is not.
      const { session: other } = await login(u);
      const f = await hello();
      rememberSession(expectFrame<SessionFrame>(await f.refresh(other.refreshToken as string), 'session', 'another login'));
    });

    test('a refresh whose answer was lost: the spent token renews again; the lost token is then reuse', async () => {
      const u = uid('lost');
      const { session } = await reg(u);
      const c = await hello();
      const lost = expectFrame<SessionFrame>(await c.refresh(session.refreshToken as string), 'session', 'first answer, taken as lost');
      const d = await hello();
      const again = expectFrame<SessionFrame>(await d.refresh(session.refreshToken as string), 'session', 'the same token, within the grace');
      rememberSession(again);
      assert.notEqual(again.refreshToken, lost.refreshToken);
      const e = await hello();
      rememberSession(expectFrame<SessionFrame>(await e.refresh(again.refreshToken as string), 'session', 'the replacement renews'));
      const f = await hello();
      expectError(await f.refresh(lost.refreshToken as string), 'invalid_credentials', 'the lost token turned up: reuse');
    });

    test('frames that need a session → unauthenticated before login, and the connection stays usable', async () => {
      const c = await hello();
      const frames: Record<string, unknown>[] = [
        { t: 'room.create', kind: 'group', members: [] },
        { t: 'room.add', roomId: 'r', userId: 'u' },
        { t: 'room.remove', roomId: 'r', userId: 'u' },
        { t: 'room.leave', roomId: 'r' },
        { t: 'room.list' },
        { t: 'room.members', roomId: 'r' },
        { t: 'publish', roomId: 'r', clientId: 'm', body: 'AAAA' },
        { t: 'sync', rooms: {} },
        { t: 'history', roomId: 'r', after: 0 },
        { t: 'mailbox.send', userId: 'u', deviceId: 'd', clientId: 'k', payload: 'AAAA' },
        { t: 'mailbox.ack', upTo: 1 },
        { t: 'keys.upload' },
        { t: 'keys.fetch', userId: 'u' },
        { t: 'keys.claimKeyPackage', userId: 'u', deviceId: 'd' },
        { t: 'typing', roomId: 'r' },
        { t: 'receipt', roomId: 'r', seq: 1, kind: 'read' },
      ];
      assert.ok(frames.length > INVALID_FRAMES_MAX, 'more than INVALID_FRAMES_MAX of them: they are not strikes');
      for (const f of frames) expectError(await c.request(f), 'unauthenticated', String(f['t']));
      assert.ok(c.isOpen, 'unauthenticated frames do not close the connection');
      const u = uid('late');
      expectFrame(await c.register(u, 'd'), 'session', 'then registering works');
      expectFrame(await c.roomList(), 'rooms');
    });
  });

  // -------------------------------------------------------------- rooms

  describe('rooms and membership', () => {
    test('a room.create with many members holds only those users’ room counts: another user’s room.add is not queued behind it', async () => {
      const helpers = range(1, 150).map((i) => uid(`crowd${i}`));
      for (let i = 0; i < helpers.length; i += 25) await Promise.all(helpers.slice(i, i + 25).map(async (u) => (await reg(u)).client.close()));
      // Three crowded creates at once, from three connections: each takes its place in the server's queues at once
      // (one connection's frames are handled one after another, so from one connection only the first would).
      const attackers = await Promise.all(range(1, 3).map(async () => (await reg(uid('crowder'))).client));
      const [owner, friend] = [uid('calm'), uid('calmfriend')];
      const O = (await reg(owner)).client;
      await reg(friend);
      const room = roomOf(await O.createRoom('group', [])).roomId;
      const order: string[] = [];
      const creates = attackers.map(async (attacker, i) => {
        expectFrame(await attacker.createRoom('group', helpers), 'room', `crowded room ${i + 1}`);
        order.push(`create ${i + 1}`);
      });
      // The creates are in the server first: one is under way (its member-added events reach its creator as it goes).
      const deadline = Date.now() + 15_000;
      while (!attackers.some((a) => a.inbox.some((f) => f.t === 'msg')) && Date.now() < deadline) await sleep(5);
      assert.ok(order.length < attackers.length, `the creates were under way: ${order.join(', ')}`);
      expectFrame(await O.roomAdd(room, friend), 'ok');
      order.push('add');
      await Promise.all(creates);
      // Queued behind the creates (one key for every room count), the add would be answered after all three; holding
      // only the friend's count, it is answered long before the last (which waits for the two before it to finish).
      assert.ok(order.indexOf('add') < order.length - 1, `answered in the order ${order.join(', ')}`);
    });

    test('create a group: owner role, members listed, every member sees the member-added events', async () => {
      const [a, b, c] = [uid('ga'), uid('gb'), uid('gc')];
      const A = (await reg(a)).client;
      const B = (await reg(b)).client;
      await reg(c);
      const room = roomOf(await A.createRoom('group', [b, c, a, b]));
      assert.equal(room.kind, 'group');
      assert.equal(room.role, 'owner');
      assert.equal(room.lastSeq, 3, 'one member-added event per member (creator included)');
      const members = expectFrame(await A.roomMembers(room.roomId), 'members');
      assert.equal(members['roomId'], room.roomId);
      assert.deepEqual(members['members'], [
        { userId: a, role: 'owner' },
        { userId: b, role: 'member' },
        { userId: c, role: 'member' },
      ].sort((x, y) => (x.userId < y.userId ? -1 : 1)));
      expectFrame(await B.roomMembers(room.roomId), 'members', 'a member lists members');

      const seen = await B.takeMsgs(room.roomId, 2);
      assert.deepEqual(seen.map((m) => [m.seq, m.kind, eventBody(m)['userId']]), [
        [2, 'member-added', b],
        [3, 'member-added', c],
      ]);
      assert.deepEqual(eventBody(at(seen, 0)), { userId: b, role: 'member', by: a });
      assert.deepEqual(at(seen, 0).from, { userId: a, deviceId: 'dev1' });

      const list = expectFrame(await B.roomList(), 'rooms');
      assert.deepEqual(list['rooms'], [{ roomId: room.roomId, kind: 'group', role: 'member', lastSeq: 3 }]);

      expectError(await A.createRoom('group', [uid('ghost')]), 'not_found', 'unknown member');
      expectError(await A.request({ t: 'room.create', kind: 'channel', members: [] }), 'bad_frame', 'unknown kind');
      const solo = roomOf(await A.createRoom('group', []));
      assert.equal(solo.lastSeq, 1, 'a group of one');
    });

    test('a direct room needs exactly one other member and has fixed members', async () => {
      const [a, b, c] = [uid('da'), uid('db'), uid('dc')];
      const A = (await reg(a)).client;
      const B = (await reg(b)).client;
      await reg(c);
      expectError(await A.createRoom('direct', []), 'bad_frame', 'no other member');
      expectError(await A.createRoom('direct', [a]), 'bad_frame', 'only oneself');
      expectError(await A.createRoom('direct', [b, c]), 'bad_frame', 'two others');
      const room = roomOf(await A.createRoom('direct', [b]));
      assert.equal(room.kind, 'direct');
      assert.deepEqual(expectFrame(await B.roomMembers(room.roomId), 'members')['members'], [
        { userId: a, role: 'owner' },
        { userId: b, role: 'member' },
      ].sort((x, y) => (x.userId < y.userId ? -1 : 1)));
      expectError(await A.roomAdd(room.roomId, c), 'forbidden', 'add to a direct room');
      expectError(await A.roomAdd(room.roomId, b, 'admin'), 'forbidden', 'change a role in a direct room');
      expectError(await A.roomRemove(room.roomId, b), 'forbidden', 'the owner removes the other member');
      expectFrame(await A.publish(room.roomId, 'd1', marker('direct')), 'ack');
      assert.equal((await B.takeMsgs(room.roomId, 2)).map((m) => m.kind).join(), 'member-added,message');
    });

    test('the last owner leaving hands the room on: the first admin by user id, else the first member, becomes owner', async () => {
      const [o, m, x, y] = [uid('ho'), uid('hm'), uid('hx'), uid('hy')];
      const O = (await reg(o)).client;
      const M = (await reg(m)).client;
      const X = (await reg(x)).client;
      await reg(y);
      const members = async (C: V1Client, r: string): Promise<{ userId: string; role: string }[]> => expectFrame(await C.roomMembers(r), 'members')['members'] as { userId: string; role: string }[];
      // With an admin: the admin inherits, logged as a role change.
      const r1 = roomOf(await O.createRoom('group', [m])).roomId;
      expectFrame(await O.roomAdd(r1, x, 'admin'), 'ok');
      expectFrame(await O.roomLeave(r1), 'ok');
      assert.deepEqual((await members(M, r1)).find((e) => e.userId === x)?.role, 'owner');
      assert.deepEqual((await members(M, r1)).find((e) => e.userId === m)?.role, 'member');
      const h = expectFrame(await M.history(r1, { after: 0 }), 'history')['entries'] as Entry[];
      assert.deepEqual(h.slice(-2).map((e) => e.kind), ['member-removed', 'role-changed']);
      // The new owner can run the room.
      expectFrame(await X.roomAdd(r1, y, 'admin'), 'ok', 'the heir makes an admin');
      // Members only: the first by user id inherits.
      const r2 = roomOf(await O.createRoom('group', [m, x])).roomId;
      expectFrame(await O.roomLeave(r2), 'ok');
      const heir = [m, x].sort()[0];
      assert.deepEqual(await members(M, r2), [m, x].sort().map((u) => ({ userId: u, role: u === heir ? 'owner' : 'member' })));
      // Alone: the room is simply left.
      const r3 = roomOf(await O.createRoom('group', [])).roomId;
      expectFrame(await O.roomLeave(r3), 'ok');
      expectError(await O.roomMembers(r3), 'not_found', 'after leaving');
    });

    test('racing membership requests from several connections: one removal, one addition and one event each; a promotion racing a leave never brings the member back', async () => {
      const [o, a, m, n] = [uid('ro'), uid('ra'), uid('rm'), uid('rn')];
      const O = (await reg(o)).client;
      const A = (await reg(a)).client;
      const M = (await reg(m)).client;
      await reg(n);
      const O2 = (await login(o, 'dev1', 'owner-second-connection')).client;
      const decode = (e: Entry): { userId: string } => JSON.parse(Buffer.from(e.body as string, 'base64').toString('utf8')) as { userId: string };
      for (let round = 0; round < 3; round++) {
        const r = roomOf(await O.createRoom('group', [m])).roomId;
        expectFrame(await O.roomAdd(r, a, 'admin'), 'ok');
        const removals = await Promise.all([O.roomRemove(r, m), A.roomRemove(r, m), O2.roomRemove(r, m)]);
        assert.equal(removals.filter((f) => f.t === 'ok').length, 1, JSON.stringify(removals));
        for (const f of removals) if (f.t !== 'ok') expectError(f, 'not_found', 'the later removals');
        const adds = await Promise.all([O.roomAdd(r, n), A.roomAdd(r, n), O2.roomAdd(r, n)]);
        for (const f of adds) expectFrame(f, 'ok');
        expectFrame(await O.roomAdd(r, m), 'ok');
        await Promise.all([O.roomAdd(r, m, 'admin'), M.roomLeave(r)]);
        const h = expectFrame(await O.history(r, { after: 0 }), 'history')['entries'] as Entry[];
        const events = h.filter((e) => e.kind !== 'message').map((e) => `${e.kind}:${decode(e).userId}`);
        assert.ok(events.filter((e) => e === `member-removed:${m}`).length >= 1, events.join(' '));
        assert.equal(events.slice(0, events.indexOf(`member-added:${n}`)).filter((e) => e === `member-removed:${m}`).length, 1, events.join(' '));
        assert.equal(events.filter((e) => e === `member-added:${n}`).length, 1, events.join(' '));
        // Replaying the events about m gives the table: a role change never follows its removal
        // (the promotion, if it came second, is an addition, logged as one).
        let inRoom = false;
        for (const e of events.filter((x) => x.endsWith(`:${m}`))) {
          if (e.startsWith('member-added')) inRoom = true;
          else if (e.startsWith('member-removed')) inRoom = false;
          else assert.ok(inRoom, `round ${round}: ${e} while not a member: ${events.join(' ')}`);
        }
        const table = expectFrame(await O.roomMembers(r), 'members')['members'] as { userId: string }[];
        assert.equal(table.some((x) => x.userId === m), inRoom, `round ${round}: table vs log for ${m}`);
      }
    });

    test('membership changes amid a stream of messages: every member gets the entries live in seq order, and a hand-over is logged right after the owner leaves', async () => {
      const [o, a, m, w, x] = [uid('so'), uid('sa'), uid('sm'), uid('sw'), uid('sx')];
      const O = (await reg(o)).client;
      const A = (await reg(a)).client;
      const M = (await reg(m)).client;
      const W = (await reg(w)).client;
      await reg(x);
      const decode = (e: Entry): { userId: string } => JSON.parse(Buffer.from(e.body as string, 'base64').toString('utf8')) as { userId: string };
      for (let round = 0; round < 4; round++) {
        const r = roomOf(await O.createRoom('group', [m, w])).roomId;
        expectFrame(await O.roomAdd(r, a, 'admin'), 'ok');
        await W.quiet(100);
        W.drainMsgs(r);
        const burst = Array.from({ length: 12 }, (_, i) => M.publish(r, `s${round}-${i}`, new Uint8Array([i])));
        const changes = [A.roomAdd(r, x), A.roomRemove(r, x), O.roomLeave(r)];
        await Promise.all([...burst, ...changes]);
        await W.quiet(300);
        const live = W.drainMsgs(r).map((e) => e.seq);
        assert.deepEqual(live, [...live].sort((p, q) => p - q), `round ${round}: live order ${live.join(',')}`);
        const h = expectFrame(await A.history(r, { after: 0 }), 'history')['entries'] as Entry[];
        const left = h.findIndex((e) => e.kind === 'member-removed' && decode(e).userId === o);
        assert.ok(left >= 0);
        assert.equal(h[left + 1]?.kind, 'role-changed', `round ${round}: the hand-over right after the owner left`);
        assert.equal(decode(h[left + 1] as Entry).userId, a);
      }
    });

    test('a member removed while offline gets, by sync, what it missed up to and including its removal, and nothing after', async () => {
      const [o, m] = [uid('fo'), uid('fm')];
      const O = (await reg(o)).client;
      const { client: M, session } = await reg(m);
      const r = roomOf(await O.createRoom('group', [m])).roomId;
      // Its own addition reaches it live: wait for that first entry, then take whatever else came.
      const live = [...(await M.takeMsgs(r, 1)), ...M.drainMsgs(r)];
      const cursor = Math.max(...live.map((e) => e.seq));
      M.close();
      for (let i = 0; i < 3; i++) expectFrame(await O.publish(r, `fm-${i}`, new Uint8Array([i])), 'ack');
      expectFrame(await O.roomRemove(r, m), 'ok');
      const after = expectFrame(await O.publish(r, 'fm-after', new Uint8Array([9])), 'ack');
      const back = (await authed(url, session.accessToken as string, 'fm-back')).client;
      track(back);
      const { entries, reply } = await back.sync({ [r]: cursor });
      const got = entries.filter((e) => e['roomId'] === r);
      assert.deepEqual(got.map((e) => e.seq), [cursor + 1, cursor + 2, cursor + 3, cursor + 4]);
      assert.equal(got.at(-1)?.kind, 'member-removed');
      assert.ok(got.every((e) => e.seq < (after['seq'] as number)));
      assert.equal((reply['rooms'] as Record<string, number>)[r], cursor + 4);
      // Caught up: nothing more, and a room it was never in gives nothing.
      const again = await back.sync({ [r]: cursor + 4, 'never-a-member-room': 0 });
      assert.equal(again.entries.length, 0);
      assert.deepEqual(again.reply['rooms'], {});
    });

    test(`SYNC_FORMER_ROOMS_MAX (${SYNC_FORMER_ROOMS_MAX}): rooms named beyond it are not read but come back in more (seq unchanged), and the next sync gives what they missed`, async () => {
      const [o, m] = [uid('xo'), uid('xm')];
      const O = (await reg(o)).client;
      const { client: M, session } = await reg(m);
      const n = SYNC_FORMER_ROOMS_MAX + 2;
      const rooms: string[] = [];
      for (let i = 0; i < n; i++) rooms.push(roomOf(await O.createRoom('group', [m])).roomId);
      M.close();
      // Each room: created with O and M (seqs 1, 2); then M is removed (3).
      for (const r of rooms) expectFrame(await O.roomRemove(r, m), 'ok');
      const back = (await authed(url, session.accessToken as string, 'xm-back')).client;
      track(back);
      const first = await back.sync(Object.fromEntries(rooms.map((r) => [r, 2])));
      const read = rooms.slice(0, SYNC_FORMER_ROOMS_MAX);
      const beyond = rooms.slice(SYNC_FORMER_ROOMS_MAX);
      assert.deepEqual(new Set(first.entries.map((e) => e['roomId'])), new Set(read));
      assert.deepEqual(first.reply['more'], beyond);
      assert.deepEqual(Object.fromEntries(beyond.map((r) => [r, (first.reply['rooms'] as Record<string, number>)[r]])), Object.fromEntries(beyond.map((r) => [r, 2])));
      const next = await back.sync(Object.fromEntries(beyond.map((r) => [r, 2])));
      assert.deepEqual(next.entries.map((e) => [e['roomId'], e.seq, e.kind]), beyond.map((r) => [r, 3, 'member-removed']));
      assert.deepEqual(next.reply['more'], []);
    });

    test('a non-member cannot publish (forbidden), read history, list members, add or remove (not_found), nor sync the room', async () => {
      const [a, m] = [uid('ma'), uid('mm')];
      const A = (await reg(a)).client;
      const M = (await reg(m)).client;
      const room = roomOf(await A.createRoom('group', []));
      expectFrame(await A.publish(room.roomId, 'secret', marker('members-only')), 'ack');

      expectError(await M.publish(room.roomId, 'x1', randomBody()), 'forbidden', 'publish');
      expectError(await M.history(room.roomId, { after: 0 }), 'not_found', 'history after');
      expectError(await M.history(room.roomId, { before: 100 }), 'not_found', 'history before');
      expectError(await M.roomMembers(room.roomId), 'not_found', 'members');
      expectError(await M.roomAdd(room.roomId, m), 'not_found', 'add oneself');
      expectError(await M.roomRemove(room.roomId, a), 'not_found', 'remove the owner');
      expectError(await M.roomLeave(room.roomId), 'not_found', 'leave');
      const s = await M.sync({ [room.roomId]: 0 });
      assert.deepEqual(s.entries, []);
      assert.deepEqual(expectFrame(s.reply, 'synced')['rooms'], {});
      assert.deepEqual(expectFrame(await M.roomList(), 'rooms')['rooms'], []);
      expectError(await M.publish('no-such-room', 'x2', randomBody()), 'forbidden', 'publish to an unknown room');
      expectError(await M.history('no-such-room', { after: 0 }), 'not_found', 'history of an unknown room');
      assert.deepEqual(await M.quiet(100), [], 'the non-member got nothing');
      const h = expectFrame(await A.history(room.roomId, { after: 0 }), 'history');
      assert.equal((h['entries'] as Entry[]).length, 2, 'nothing was stored by the refused publish');
    });

    test('roles: owners and admins add and remove below their own role; members cannot; anyone may leave', async () => {
      const [o, ad, m1, m2, m3, m4] = [uid('ro'), uid('rad'), uid('rm1'), uid('rm2'), uid('rm3'), uid('rm4')];
      const O = (await reg(o)).client;
      const AD = (await reg(ad)).client;
      const M1 = (await reg(m1)).client;
      const M2 = (await reg(m2)).client;
      await reg(m3);
      await reg(m4);
      const room = roomOf(await O.createRoom('group', [m1]));
      const r = room.roomId;
      const roleOf = async (u: string): Promise<string | undefined> =>
        (expectFrame(await O.roomMembers(r), 'members')['members'] as { userId: string; role: string }[]).find((x) => x.userId === u)?.role;

      // owner adds an admin and members
      expectFrame(await O.roomAdd(r, ad, 'admin'), 'ok', 'owner adds an admin');
      assert.equal(await roleOf(ad), 'admin');
      expectFrame(await O.roomAdd(r, m2), 'ok', 'owner adds a member (default role)');
      assert.equal(await roleOf(m2), 'member');
      expectError(await O.roomAdd(r, o, 'admin'), 'forbidden', 'owner changes an owner');
      expectError(await O.roomAdd(r, uid('ghost')), 'not_found', 'unknown user');
      expectError(await O.request({ t: 'room.add', roomId: r, userId: m3, role: 'owner' }), 'bad_frame', 'role owner cannot be granted');

      // admin
      expectFrame(await AD.roomAdd(r, m3), 'ok', 'admin adds a member');
      expectError(await AD.roomAdd(r, m4, 'admin'), 'forbidden', 'admin makes an admin');
      expectError(await AD.roomAdd(r, m2, 'admin'), 'forbidden', 'admin promotes a member to admin');
      expectError(await AD.roomRemove(r, o), 'forbidden', 'admin removes the owner');
      expectFrame(await AD.roomRemove(r, m3), 'ok', 'admin removes a member');
      assert.equal(await roleOf(m3), undefined);

      // member
      expectError(await M1.roomAdd(r, m4), 'forbidden', 'member adds');
      expectError(await M1.roomRemove(r, m2), 'forbidden', 'member removes a member');
      expectError(await M1.roomRemove(r, ad), 'forbidden', 'member removes an admin');
      expectError(await M1.roomRemove(r, o), 'forbidden', 'member removes the owner');
      expectError(await M1.roomRemove(r, m3), 'not_found', 'remove a non-member');

      // owner promotes, demotes and removes an admin
      expectFrame(await O.roomAdd(r, m1, 'admin'), 'ok', 'owner promotes');
      assert.equal(await roleOf(m1), 'admin');
      expectFrame(await O.roomAdd(r, m1, 'member'), 'ok', 'owner demotes');
      assert.equal(await roleOf(m1), 'member');
      expectFrame(await O.roomRemove(r, ad), 'ok', 'owner removes an admin');

      // anyone may leave
      expectFrame(await M2.roomLeave(r), 'ok', 'member leaves');
      assert.equal(await roleOf(m2), undefined);
      expectError(await M2.publish(r, 'after-leaving', randomBody()), 'forbidden', 'publish after leaving');
      expectError(await M2.roomLeave(r), 'not_found', 'leave twice');
      expectError(await AD.roomAdd(r, m2), 'not_found', 'a removed admin has no rights');
      expectFrame(await M1.roomLeave(r), 'ok');
      assert.deepEqual(expectFrame(await O.roomMembers(r), 'members')['members'], [{ userId: o, role: 'owner' }]);
    });

    test('an admin cannot change another admin\'s role ("change roles below their own")', async () => {
      const [o, a1, a2] = [uid('ao'), uid('aa'), uid('ab')];
      const O = (await reg(o)).client;
      const A1 = (await reg(a1)).client;
      await reg(a2);
      const r = roomOf(await O.createRoom('group', [])).roomId;
      expectFrame(await O.roomAdd(r, a1, 'admin'), 'ok');
      expectFrame(await O.roomAdd(r, a2, 'admin'), 'ok');
      const res = await A1.roomAdd(r, a2, 'member');
      const roles = expectFrame(await O.roomMembers(r), 'members')['members'] as { userId: string; role: string }[];
      assert.equal(roles.find((x) => x.userId === a2)?.role, 'admin', `an admin demoted another admin (answer ${JSON.stringify(res)})`);
      expectError(res, 'forbidden', 'admin demotes admin');
    });

    test('a member removed while messages are in flight still receives every message sequenced before its removal', async () => {
      const [o, a] = [uid('fo'), uid('fa')];
      const O = (await reg(o)).client;
      const A = (await reg(a)).client;
      const report: string[] = [];
      for (let round = 0; round < 3; round++) {
        const b = uid('fb');
        const B = (await reg(b)).client;
        const r = roomOf(await O.createRoom('group', [a, b])).roomId;
        await B.takeMsgs(r, 1);
        // Ten pipelined publishes, and the removal right behind them.
        const pubs = range(1, 10).map((k) => A.publish(r, `f${k}`, randomBody(16)));
        const removed = O.roomRemove(r, b);
        const acks = (await Promise.all(pubs)).map((f) => expectFrame<AckFrame>(f, 'ack'));
        expectFrame(await removed, 'ok');
        const removal = (await B.waitFor<Frame & Entry>((f) => f.t === 'msg' && f['roomId'] === r && f['kind'] === 'member-removed')).seq;
        await sleep(50);
        const before = acks.map((x) => x.seq).filter((q) => q < removal);
        const got = B.drainMsgs(r).map((m) => m.seq);
        if (JSON.stringify(got) !== JSON.stringify(before)) report.push(`round ${round}: removal at seq ${removal}; sequenced before it ${before.join(',')}; B received ${got.join(',') || 'none'}`);
      }
      assert.deepEqual(report, [], 'messages stored while B was a member never reached it (and B can no longer sync them)');
    });

    test('a member added while messages are in flight is not sent entries sequenced before its addition', async () => {
      const [o, a] = [uid('jo'), uid('ja')];
      const O = (await reg(o)).client;
      const A = (await reg(a)).client;
      const report: string[] = [];
      for (let round = 0; round < 3; round++) {
        const c = uid('jc');
        const C = (await reg(c)).client;
        const r = roomOf(await O.createRoom('group', [a])).roomId;
        const pubs = range(1, 10).map((k) => A.publish(r, `j${k}`, randomBody(16)));
        const added = O.roomAdd(r, c);
        await Promise.all(pubs);
        expectFrame(await added, 'ok');
        // Wait for C's first live entry of the room (its addition, unless something came before it), then take the rest.
        const first = await C.waitFor<MsgFrame>((f) => f.t === 'msg' && f['roomId'] === r);
        const got = [first, ...C.drainMsgs(r)].map((m) => `${m.seq}:${m.kind}`);
        const addedAt = got.findIndex((x) => x.endsWith(':member-added'));
        if (addedAt !== 0) report.push(`round ${round}: C received ${got.join(' ')}`);
      }
      assert.deepEqual(report, [], 'the first entry a new member receives live is its own addition');
    });

    test('membership events are in the room log, in order with messages, live and in history', async () => {
      const [a, b, c] = [uid('la'), uid('lb'), uid('lc')];
      const A = (await reg(a)).client;
      const B = (await reg(b)).client;
      const C = (await reg(c)).client;
      const r = roomOf(await A.createRoom('group', [b])).roomId;
      expectFrame(await A.publish(r, 'm1', marker('log1')), 'ack');
      expectFrame(await A.roomAdd(r, c), 'ok');
      expectFrame(await B.publish(r, 'm2', marker('log2')), 'ack');
      expectFrame(await A.roomAdd(r, c, 'admin'), 'ok');
      expectFrame(await A.roomRemove(r, b), 'ok');
      expectFrame(await C.publish(r, 'm3', marker('log3')), 'ack');
      expectFrame(await C.roomLeave(r), 'ok');

      const expected = [
        [1, 'member-added', { userId: a, role: 'owner', by: a }],
        [2, 'member-added', { userId: b, role: 'member', by: a }],
        [3, 'message', 'm1'],
        [4, 'member-added', { userId: c, role: 'member', by: a }],
        [5, 'message', 'm2'],
        [6, 'role-changed', { userId: c, role: 'admin', by: a }],
        [7, 'member-removed', { userId: b, by: a }],
        [8, 'message', 'm3'],
        [9, 'member-removed', { userId: c, by: c }],
      ];
      const view = (es: Entry[]): unknown[] => es.map((e) => [e.seq, e.kind, e.kind === 'message' ? e.clientId : eventBody(e)]);
      const h = expectFrame(await A.history(r, { after: 0 }), 'history');
      const entries = h['entries'] as Entry[];
      assert.deepEqual(view(entries), expected);
      assert.deepEqual(at(entries, 6).from, { userId: a, deviceId: 'dev1' });

      // Live: A saw everything but its own message (events reach their author too); B from its addition to its
      // removal, but not its own message; C from its addition to its leaving, but not its own message.
      const only = (seqs: number[]): unknown[] => expected.filter(([q]) => seqs.includes(q as number));
      assert.deepEqual(view(await A.takeMsgs(r, 8)), only([1, 2, 4, 5, 6, 7, 8, 9]));
      assert.deepEqual(view(await B.takeMsgs(r, 5)), only([2, 3, 4, 6, 7]));
      assert.deepEqual(view(await C.takeMsgs(r, 5)), only([4, 5, 6, 7, 9]));
      await sleep(100);
      for (const x of [A, B, C]) assert.deepEqual(x.drainMsgs(r), [], `${x.label}: nothing more`);
    });
  });

  // -------------------------------------------------------------- messages

  describe('messages', () => {
    test('publish → ack with consecutive seqs; delivered to every connected device of every member but the sending connection', async () => {
      const erin = uid('erin');
      const frank = uid('frank');
      const phone1 = (await login('dora', 'phone', 'dora/phone#1')).client;
      const phone2 = (await login('dora', 'phone', 'dora/phone#2')).client;
      const laptop = (await login('dora', 'laptop')).client;
      const E1 = (await reg(erin)).client;
      const E2 = (await login(erin, 'dev1', 'erin#2')).client;
      const F = (await reg(frank)).client;
      const room = roomOf(await phone1.createRoom('group', [erin]));
      const r = room.roomId;
      for (const c of [phone1, phone2, laptop, E1, E2]) await c.takeMsgs(r, c === E1 || c === E2 ? 1 : 2);

      const bodies = [marker('seq1'), randomBody(), marker('seq3')];
      const acks: AckFrame[] = [];
      for (let i = 0; i < bodies.length; i++) acks.push(expectFrame<AckFrame>(await phone1.publish(r, `c${i}`, at(bodies, i)), 'ack'));
      assert.deepEqual(acks.map((a) => a.seq), [room.lastSeq + 1, room.lastSeq + 2, room.lastSeq + 3]);
      for (const [i, a] of acks.entries()) {
        assert.equal(a.roomId, r);
        assert.equal(a.clientId, `c${i}`);
        assert.equal(typeof a.ts, 'number');
        assert.equal(a.duplicate, undefined);
      }
      for (const c of [phone2, laptop, E1, E2]) {
        const got = await c.takeMsgs(r, 3);
        assert.deepEqual(
          got.map((m) => [m.seq, m.kind, m.clientId, m.from, m.body, m.ts]),
          acks.map((a, i) => [a.seq, 'message', `c${i}`, { userId: 'dora', deviceId: 'phone' }, b64(at(bodies, i)), a.ts]),
          c.label,
        );
      }
      await sleep(150);
      assert.deepEqual(phone1.drainMsgs(), [], 'the sending connection gets only the ack');
      assert.deepEqual(F.drainMsgs(), [], 'a non-member gets nothing');
      for (const c of [phone2, laptop, E1, E2]) assert.deepEqual(c.drainMsgs(r), [], `${c.label}: exactly once`);

      // And the other way round: erin's message reaches both of dora's devices and erin's other connection.
      const ack = expectFrame<AckFrame>(await E2.publish(r, 'from-erin', marker('erin')), 'ack');
      for (const c of [phone1, phone2, laptop, E1]) assert.deepEqual((await c.takeMsgs(r, 1)).map((m) => [m.seq, m.from]), [[ack.seq, { userId: erin, deviceId: 'dev1' }]]);
    });

    test("a connection's answers come in the order of its frames, and a read after a publish includes it (pipelined: publish, history, room.list, garbage, publish, room.remove)", async () => {
      const [a, b] = [uid('oa'), uid('ob')];
      const A = (await reg(a)).client;
      await reg(b);
      const r = roomOf(await A.createRoom('group', [b])).roomId;
      await A.takeMsgs(r, 2);
      const from = A.received.length;
      A.send({ t: 'publish', id: 'p1', roomId: r, clientId: 'o1', body: b64(marker('o1')) });
      A.send({ t: 'history', id: 'h', roomId: r, before: 1_000_000, limit: 1 });
      A.send({ t: 'room.list', id: 'l' });
      A.sendRaw('{not json');
      A.send({ t: 'publish', id: 'p2', roomId: r, clientId: 'o2', body: b64(marker('o2')) });
      A.send({ t: 'room.remove', id: 'x', roomId: r, userId: b });
      const deadline = Date.now() + 15_000;
      while (!A.received.slice(from).some((f) => f['re'] === 'x')) {
        if (Date.now() > deadline) throw new Error(`no answer to room.remove: ${JSON.stringify(A.received.slice(from)).slice(0, 800)}`);
        await sleep(20);
      }
      await sleep(100);
      const got = A.received.slice(from);
      const label = (f: Frame): string => (typeof f['re'] === 'string' ? f['re'] : f.t === 'msg' ? `msg ${String(f['kind'])}` : f.t);
      const answers = got.map(label).filter((x) => !x.startsWith('msg'));
      assert.deepEqual(answers, ['p1', 'h', 'l', 'error', 'p2', 'x'], JSON.stringify(got).slice(0, 800));
      const ack1 = got.find((f) => f['re'] === 'p1') as AckFrame;
      const page = got.find((f) => f['re'] === 'h') as Frame & { entries: Entry[] };
      assert.equal(page.entries.at(-1)?.seq, ack1.seq, 'history sees the publish before it');
      const listed = (got.find((f) => f['re'] === 'l') as Frame & { rooms: RoomInfo[] }).rooms.find((x) => x.roomId === r);
      assert.equal(listed?.lastSeq, ack1.seq, 'room.list too');
      const ack2 = got.find((f) => f['re'] === 'p2') as AckFrame;
      const removed = got.findIndex((f) => f.t === 'msg' && f['kind'] === 'member-removed');
      assert.ok(removed > got.indexOf(ack2), 'the removal is logged (and delivered) after the publish before it was acknowledged');
      assert.equal((got[removed] as MsgFrame).seq, ack2.seq + 1);
    });

    test('answers stay in order past FRAMES_PER_SECOND: the refusals (rate_limited) come after the answers of the frames before them', async () => {
      const A = (await reg(uid('rl'))).client;
      const from = A.received.length;
      const n = FRAMES_PER_SECOND + 5;
      for (let i = 0; i < n; i++) A.send({ t: 'room.list', id: `q${i}` });
      const deadline = Date.now() + 15_000;
      while (A.received.length - from < n) {
        if (Date.now() > deadline) throw new Error(`${A.received.length - from} of ${n} answers`);
        await sleep(20);
      }
      const got = A.received.slice(from);
      assert.deepEqual(got.map((f) => f['re']), Array.from({ length: n }, (_, i) => `q${i}`));
      assert.ok(got.some((f) => f.t === 'error' && f['code'] === 'rate_limited'));
      assert.ok(got.slice(0, 100).every((f) => f.t === 'rooms'));
    });

    test('idempotent publish: the same clientId from the same device → same seq, duplicate: true, stored and delivered once', async () => {
      const [a, b] = [uid('ia'), uid('ib')];
      const A = (await reg(a)).client;
      const A2 = (await login(a, 'dev1', 'a#2')).client;
      const B = (await reg(b)).client;
      const r = roomOf(await A.createRoom('group', [b])).roomId;
      await B.takeMsgs(r, 1);
      await A2.takeMsgs(r, 2);
      A.drainMsgs(r);
      const body = marker('idem');
      const first = expectFrame<AckFrame>(await A.publish(r, 'same', body), 'ack');
      const again = expectFrame<AckFrame>(await A.publish(r, 'same', body), 'ack');
      assert.deepEqual(again, { ...first, re: again.re, duplicate: true });
      // From another connection of the same device, even with another body.
      const third = expectFrame<AckFrame>(await A2.publish(r, 'same', randomBody()), 'ack');
      assert.equal(third.seq, first.seq);
      assert.equal(third.ts, first.ts);
      assert.equal(third.duplicate, true);
      // The same clientId from another user is another message.
      const bs = expectFrame<AckFrame>(await B.publish(r, 'same', randomBody()), 'ack');
      assert.equal(bs.seq, first.seq + 1);
      assert.equal(bs.duplicate, undefined);
      // Pipelined: three copies sent without waiting, from two connections of the device.
      const piped = (await Promise.all([A.publish(r, 'piped', randomBody()), A.publish(r, 'piped', randomBody()), A2.publish(r, 'piped', randomBody())])).map((f) => expectFrame<AckFrame>(f, 'ack', 'pipelined copy'));
      assert.equal(new Set(piped.map((x) => x.seq)).size, 1, `one seq for the pipelined copies: ${JSON.stringify(piped)}`);
      assert.equal(piped.filter((x) => x.duplicate === undefined).length, 1, 'exactly one of them is the original');
      expectFrame(await A.publish(r, 'sentinel', randomBody()), 'ack');

      const got = await B.takeMsgs(r, 3);
      assert.deepEqual(got.map((m) => m.clientId), ['same', 'piped', 'sentinel'], 'one delivery of each to B');
      await A.takeMsgs(r, 1); // B's 'same'
      // A2 sent one of the copies: it gets 'piped' delivered only if A's copy was the one stored.
      const a2Stored = at(piped, 2).duplicate === undefined;
      const expectOnA2 = [['same', a], ['same', b], ...(a2Stored ? [] : [['piped', a]]), ['sentinel', a]];
      const onA2 = await A2.takeMsgs(r, expectOnA2.length);
      assert.deepEqual(onA2.map((m) => [m.clientId, m.from.userId]), expectOnA2, 'A2 gets each once (not the one it stored itself)');
      await sleep(50);
      for (const x of [A, A2, B]) assert.deepEqual(x.drainMsgs(r), [], `${x.label}: no second delivery`);
      const h = expectFrame(await A.history(r, { after: 0 }), 'history')['entries'] as Entry[];
      assert.deepEqual(h.map((e) => [e.seq, e.kind, e.clientId]).slice(2), [
        [first.seq, 'message', 'same'],
        [bs.seq, 'message', 'same'],
        [bs.seq + 1, 'message', 'piped'],
        [bs.seq + 2, 'message', 'sentinel'],
      ]);
      assert.equal(at(h, 2).body, b64(body), 'the first body is kept');
    });

    test('per-room order under concurrent publishes: 5 clients × 40 messages; every member sees seqs strictly increasing without gaps', async () => {
      const N = 5;
      const PER = 40;
      assert.ok(PER <= MESSAGES_PER_SECOND, 'within the burst');
      const users = range(0, N - 1).map((i) => uid(`p${i}`));
      const obs = uid('obs');
      const pubs: V1Client[] = [];
      for (const u of users) pubs.push((await reg(u)).client);
      const O = (await reg(obs)).client;
      const P0b = (await login(at(users, 0), 'dev1', 'p0#2')).client;
      const room = roomOf(await at(pubs, 0).createRoom('group', [...users.slice(1), obs]));
      const r = room.roomId;
      const first = room.lastSeq + 1;
      const last = room.lastSeq + N * PER;
      for (const c of [...pubs, O, P0b]) c.drainMsgs(r);
      await sleep(50);
      for (const c of [...pubs, O, P0b]) c.drainMsgs(r);

      const acks = await Promise.all(
        pubs.map((c, i) => Promise.all(range(0, PER - 1).map((k) => c.publish(r, `p${i}-m${k}`, Buffer.from(`p${i}-m${k}`))))),
      );
      const allSeqs: number[] = [];
      for (const [i, list] of acks.entries()) {
        const seqs = list.map((a) => expectFrame<AckFrame>(a, 'ack', `publisher ${i}`).seq);
        for (let k = 1; k < seqs.length; k++) assert.ok(at(seqs, k) > at(seqs, k - 1), `publisher ${i}: acks in sending order`);
        allSeqs.push(...seqs);
      }
      assert.deepEqual([...allSeqs].sort((x, y) => x - y), range(first, last), 'seqs without gaps or repeats');
      for (const [i, c] of pubs.entries()) {
        const order = c.received.filter((f) => f.t === 'ack').map((f) => f['clientId']);
        assert.deepEqual(order, range(0, PER - 1).map((k) => `p${i}-m${k}`), `publisher ${i}: acks arrive in sending order`);
      }

      const check = async (c: V1Client, ownSeqs: number[]): Promise<void> => {
        const got = await c.takeMsgs(r, N * PER - ownSeqs.length, 10_000);
        const seqs = got.map((m) => m.seq);
        for (let k = 1; k < seqs.length; k++) assert.ok(at(seqs, k) > at(seqs, k - 1), `${c.label}: ${at(seqs, k - 1)} then ${at(seqs, k)}`);
        assert.deepEqual([...seqs, ...ownSeqs].sort((x, y) => x - y), range(first, last), `${c.label}: everything exactly once`);
        for (const m of got) assert.equal(Buffer.from(m.body, 'base64').toString(), m.clientId);
      };
      await check(O, []);
      await check(P0b, []);
      for (const [i, c] of pubs.entries()) await check(c, (acks[i] as Frame[]).map((a) => (a as AckFrame).seq));
      const h = expectFrame(await O.history(r, { after: room.lastSeq, limit: HISTORY_PAGE_MAX }), 'history')['entries'] as Entry[];
      assert.deepEqual(h.map((e) => e.seq), range(first, last));
    });

    test('resume: a device misses messages while offline; sync with its last seq returns exactly those, in order, then synced', async () => {
      const [a, b] = [uid('sa'), uid('sb')];
      const A = (await reg(a)).client;
      const { client: B, session: bs } = await reg(b);
      const r1 = roomOf(await A.createRoom('group', [b])).roomId;
      const r2 = roomOf(await A.createRoom('group', [b])).roomId;
      expectFrame(await A.publish(r1, 'before', marker('before')), 'ack');
      const seen = await B.takeMsgs(r1, 2);
      const lastSeen = at(seen, seen.length - 1).seq;
      await B.takeMsgs(r2, 1);
      B.close();
      await B.closed;

      const missed: AckFrame[] = [];
      for (let i = 0; i < 6; i++) missed.push(expectFrame<AckFrame>(await A.publish(r1, `missed${i}`, marker(`missed${i}`)), 'ack'));
      const r2ack = expectFrame<AckFrame>(await A.publish(r2, 'other-room', randomBody()), 'ack');

      const B2 = await auth(bs.accessToken as string, 'b-again');
      const s = await B2.sync({ [r1]: lastSeen, [r2]: r2ack.seq });
      assert.deepEqual(s.entries.map((m) => [m.roomId, m.seq, m.clientId]), missed.map((m) => [r1, m.seq, m.clientId]));
      assert.deepEqual(expectFrame(s.reply, 'synced')['rooms'], { [r1]: at(missed, 5).seq, [r2]: r2ack.seq });
      // The entries are the same as history's.
      const h = expectFrame(await B2.history(r1, { after: lastSeen }), 'history')['entries'] as Entry[];
      assert.deepEqual(s.entries.map(asEntry), h);

      // An unlisted room is synced from 0; a listed room with nothing new returns nothing.
      const s2 = await B2.sync({ [r1]: at(missed, 5).seq });
      assert.deepEqual(s2.entries.map((m) => [m.roomId, m.seq]), [[r2, 1], [r2, 2], [r2, 3]]);
      assert.deepEqual(expectFrame(s2.reply, 'synced')['rooms'], { [r1]: at(missed, 5).seq, [r2]: r2ack.seq });
      // From 0: the whole log.
      const s3 = await B2.sync({ [r1]: 0, [r2]: 0 });
      assert.deepEqual(s3.entries.filter((m) => m.roomId === r1).map((m) => m.seq), range(1, at(missed, 5).seq));
    });

    test(`sync sends at most SYNC_ENTRIES_PER_ROOM_MAX (${SYNC_ENTRIES_PER_ROOM_MAX}) entries per room; asking again continues`, async () => {
      const u = uid('bulk');
      const { client: owner, session: ownerSession } = await reg(u);
      const r = roomOf(await owner.createRoom('group', [])).roomId; // seq 1
      const total = SYNC_ENTRIES_PER_ROOM_MAX + 1;
      const toPublish = total - 1;
      const conns = Math.ceil(toPublish / MESSAGES_PER_SECOND);
      const clients: V1Client[] = [];
      for (let i = 0; i < conns; i++) clients.push((await login(u, 'dev1', `bulk#${i}`)).client);
      let n = 0;
      await Promise.all(
        clients.map(async (c, i) => {
          const mine = Math.min(MESSAGES_PER_SECOND, toPublish - i * MESSAGES_PER_SECOND);
          const acks = await Promise.all(range(1, mine).map((k) => c.publish(r, `b${i}-${k}`, Buffer.from([i, k]))));
          for (const a of acks) expectFrame(a, 'ack');
          n += acks.length;
        }),
      );
      assert.equal(n, toPublish);
      for (const c of [owner, ...clients]) c.close();

      const reader = await auth(ownerSession.accessToken as string, 'bulk-reader');
      const s1 = await reader.sync({}, 20_000);
      assert.deepEqual(s1.entries.map((m) => m.seq), range(1, SYNC_ENTRIES_PER_ROOM_MAX));
      assert.deepEqual(expectFrame(s1.reply, 'synced')['rooms'], { [r]: SYNC_ENTRIES_PER_ROOM_MAX });
      const s2 = await reader.sync({ [r]: SYNC_ENTRIES_PER_ROOM_MAX });
      assert.deepEqual(s2.entries.map((m) => m.seq), [total]);
      assert.deepEqual(expectFrame(s2.reply, 'synced')['rooms'], { [r]: total });

      // HISTORY_PAGE_MAX at its edge on the same room.
      const page = expectFrame(await reader.history(r, { before: total + 1, limit: HISTORY_PAGE_MAX }), 'history')['entries'] as Entry[];
      assert.deepEqual(page.map((e) => e.seq), range(total - HISTORY_PAGE_MAX + 1, total).reverse());
      const page2 = expectFrame(await reader.history(r, { after: 0, limit: HISTORY_PAGE_MAX }), 'history')['entries'] as Entry[];
      assert.deepEqual(page2.map((e) => e.seq), range(1, HISTORY_PAGE_MAX));
      expectError(await reader.history(r, { after: 0, limit: HISTORY_PAGE_MAX + 1 }), 'bad_frame', 'HISTORY_PAGE_MAX + 1');
    });

    test(`a sync of more than SEND_BUFFER_BYTES_MAX (${SEND_BUFFER_BYTES_MAX} B) of full-size messages reaches a reader that keeps reading (it pauses at SYNC_PAUSE_BYTES)`, async () => {
      const u = uid('bigsync');
      const { client: owner, session: ownerSession } = await reg(u);
      const r = roomOf(await owner.createRoom('group', [])).roomId; // seq 1
      // More body bytes than the send buffer and a pause hold together (base64 makes them 4/3 more on the wire).
      const toPublish = Math.ceil((SEND_BUFFER_BYTES_MAX + SYNC_PAUSE_BYTES) / BODY_BYTES_MAX) + 16;
      assert.ok(toPublish <= SYNC_ENTRIES_PER_ROOM_MAX && toPublish * BODY_BYTES_MAX > SEND_BUFFER_BYTES_MAX + SYNC_PAUSE_BYTES);
      const body = b64(randomBytes(BODY_BYTES_MAX));
      // A few publishers, a burst of MESSAGES_PER_SECOND each per second: every publisher also receives the
      // others' messages live, and must not be made a slow reader by the test itself.
      const clients: V1Client[] = [];
      for (let i = 0; i < 4; i++) clients.push((await login(u, 'dev1', `bigsync#${i}`)).client);
      for (let published = 0, round = 0; published < toPublish; round++) {
        const batch = clients.map((c, i) => {
          const n = Math.max(0, Math.min(MESSAGES_PER_SECOND, toPublish - published - i * MESSAGES_PER_SECOND));
          return Promise.all(range(1, n).map((k) => c.publish(r, `s${round}-${i}-${k}`, body)));
        });
        for (const a of (await Promise.all(batch)).flat()) expectFrame(a, 'ack');
        published = Math.min(toPublish, published + clients.length * MESSAGES_PER_SECOND);
        if (published < toPublish) await sleep(1_000);
      }
      for (const c of [owner, ...clients]) c.close();
      const reader = await auth(ownerSession.accessToken as string, 'bigsync-reader');
      const synced = await reader.sync({}, 60_000);
      assert.deepEqual(expectFrame(synced.reply, 'synced')['rooms'], { [r]: toPublish + 1 });
      assert.deepEqual(synced.entries.map((m) => m.seq), range(1, toPublish + 1));
      assert.equal(reader.closeInfo, null, 'still connected');
      reader.close();
    });

    test('history pages before (newest first) and after (oldest first) with limits', async () => {
      const u = uid('hist');
      const A = (await reg(u)).client;
      const r = roomOf(await A.createRoom('group', [])).roomId;
      for (let i = 2; i <= 25; i++) expectFrame(await A.publish(r, `h${i}`, marker(`h${i}`)), 'ack');
      const page = async (p: { before?: number; after?: number; limit?: number }): Promise<number[]> =>
        (expectFrame(await A.history(r, p), 'history', JSON.stringify(p))['entries'] as Entry[]).map((e) => e.seq);

      assert.deepEqual(await page({ after: 0, limit: 10 }), range(1, 10));
      assert.deepEqual(await page({ after: 10, limit: 10 }), range(11, 20));
      assert.deepEqual(await page({ after: 20, limit: 10 }), range(21, 25));
      assert.deepEqual(await page({ after: 25, limit: 10 }), []);
      assert.deepEqual(await page({ before: 26, limit: 10 }), range(16, 25).reverse());
      assert.deepEqual(await page({ before: 16, limit: 10 }), range(6, 15).reverse());
      assert.deepEqual(await page({ before: 6, limit: 10 }), range(1, 5).reverse());
      assert.deepEqual(await page({ before: 1, limit: 10 }), []);
      assert.deepEqual(await page({ before: 1000, limit: 1 }), [25]);
      assert.deepEqual(await page({ after: 0, limit: 1 }), [1]);
      const dflt = await page({ after: 0 });
      assert.ok(dflt.length >= 1, 'a default limit');
      assert.deepEqual(dflt, range(1, dflt.length), 'without a limit: a page from the start');
      const h = expectFrame(await A.history(r, { after: 1, limit: 1 }), 'history');
      assert.equal(h['roomId'], r);
      const e = at(h['entries'] as Entry[], 0);
      assert.deepEqual(Object.keys(e).sort(), ['body', 'clientId', 'from', 'kind', 'roomId', 'seq', 'ts']);
      assert.equal(Buffer.from(e.body, 'base64').toString().startsWith('PARLEY-PLAINTEXT-MARKER-h2-'), true);

      expectError(await A.history(r, { after: 0, limit: 0 }), 'bad_frame', 'limit 0');
      expectError(await A.history(r, { after: 0, before: 5 }), 'bad_frame', 'both before and after');
      expectError(await A.history(r, {}), 'bad_frame', 'neither before nor after');
      expectError(await A.history(r, { after: -1 }), 'bad_frame', 'negative');
      expectError(await A.history(r, { after: 1.5 }), 'bad_frame', 'fractional');
    });
  });

  // -------------------------------------------------------------- limits

  describe('limits at their edges', () => {
    test(`BODY_BYTES_MAX (${BODY_BYTES_MAX}) bytes is accepted and delivered intact; one more → bad_frame`, async () => {
      const [a, b] = [uid('body'), uid('bodyb')];
      const A = (await reg(a)).client;
      const B = (await reg(b)).client;
      const r = roomOf(await A.createRoom('group', [b])).roomId;
      await B.takeMsgs(r, 1);
      const exact = randomBody(BODY_BYTES_MAX);
      const ack = expectFrame<AckFrame>(await A.publish(r, 'max', exact), 'ack', 'exactly BODY_BYTES_MAX');
      const got = at(await B.takeMsgs(r, 1), 0);
      assert.equal(got.seq, ack.seq);
      assert.ok(Buffer.from(unb64(got.body)).equals(exact), 'delivered byte for byte');
      expectError(await A.publish(r, 'over', randomBody(BODY_BYTES_MAX + 1)), 'bad_frame', 'BODY_BYTES_MAX + 1');
      expectError(await A.publish(r, 'over2', randomBody(BODY_BYTES_MAX + 3)), 'bad_frame', 'BODY_BYTES_MAX + 3');
      expectError(await A.publish(r, 'empty', ''), 'bad_frame', 'empty body');
      expectError(await A.publish(r, 'unpadded', 'YQ'), 'bad_frame', 'unpadded base64');
      expectError(await A.publish(r, 'url', '-_-_'), 'bad_frame', 'base64url');
      expectFrame(await A.publish(r, 'one', Buffer.from([0])), 'ack', 'one byte');
      assert.deepEqual((await B.takeMsgs(r, 1)).map((m) => m.clientId), ['one'], 'refused bodies were not delivered');
    });

    test(`a history page ends at the entry that takes its bodies to HISTORY_PAGE_BYTES_MAX (${limitsTs.HISTORY_PAGE_BYTES_MAX} B) and says more: true`, async () => {
      const max = limitsTs.HISTORY_PAGE_BYTES_MAX;
      const perPage = max / BODY_BYTES_MAX;
      assert.ok(Number.isSafeInteger(perPage) && perPage < HISTORY_PAGE_MAX, 'full-size bodies fill a page exactly, before HISTORY_PAGE_MAX');
      const A = (await reg(uid('histbytes'))).client;
      const r = roomOf(await A.createRoom('group', [])).roomId; // seq 1, a small event
      const total = perPage + 5; // messages at seq 2..total + 1
      for (const a of await Promise.all(range(1, total).map((i) => A.publish(r, `big${i}`, randomBody(BODY_BYTES_MAX))))) expectFrame(a, 'ack');
      const last = total + 1;
      const page = async (p: { before?: number; after?: number; limit?: number }): Promise<{ seqs: number[]; more: unknown }> => {
        const f = expectFrame(await A.history(r, p), 'history', JSON.stringify(p));
        return { seqs: (f['entries'] as Entry[]).map((e) => e.seq), more: f['more'] };
      };
      // The perPage-th full body reaches the bound exactly: the page ends there.
      assert.deepEqual(await page({ after: 1, limit: HISTORY_PAGE_MAX }), { seqs: range(2, perPage + 1), more: true });
      assert.deepEqual(await page({ after: perPage + 1, limit: HISTORY_PAGE_MAX }), { seqs: range(perPage + 2, last), more: undefined });
      assert.deepEqual(await page({ before: last + 1, limit: HISTORY_PAGE_MAX }), { seqs: range(last - perPage + 1, last).reverse(), more: true });
      assert.deepEqual(await page({ before: last - perPage + 1, limit: HISTORY_PAGE_MAX }), { seqs: range(1, last - perPage).reverse(), more: undefined });
      // Cut by `limit` at the same entry: not cut short.
      assert.deepEqual(await page({ after: 1, limit: perPage }), { seqs: range(2, perPage + 1), more: undefined });
      // With the small event first the page holds one entry more and ends at the same one.
      assert.deepEqual(await page({ after: 0, limit: HISTORY_PAGE_MAX }), { seqs: range(1, perPage + 1), more: true });
      // A single full-size entry still pages.
      assert.deepEqual(await page({ before: last + 1, limit: 1 }), { seqs: [last], more: undefined });
    });

    test(`a frame of exactly FRAME_BYTES_MAX (${FRAME_BYTES_MAX}) bytes is read; one byte more closes with 1009, and only that connection`, async () => {
      const u = uid('frame');
      const { client: A, session } = await reg(u);
      const head = '{"t":"room.list","id":"big"';
      const exact = head + ' '.repeat(FRAME_BYTES_MAX - head.length - 1) + '}';
      assert.equal(Buffer.byteLength(exact), FRAME_BYTES_MAX);
      A.sendRaw(exact);
      // Sent raw, the answer is no pending request of the client's: it lands in the inbox.
      expectFrame(await A.waitFor((f) => f.re === 'big', 5000), 'rooms', 'exact FRAME_BYTES_MAX');

      const B = await auth(session.accessToken as string, 'frame-bystander');
      const over = head + ' '.repeat(FRAME_BYTES_MAX - head.length) + '}';
      assert.equal(Buffer.byteLength(over), FRAME_BYTES_MAX + 1);
      A.sendRaw(over);
      assert.equal((await within(A.closed, 3000, 'close')).code, 1009);
      expectFrame(await B.roomList(), 'rooms', 'another connection of the same device is fine');

      // Also before hello, and as a binary frame.
      const C = await connect();
      C.sendRaw(Buffer.alloc(FRAME_BYTES_MAX + 1), true);
      assert.equal((await within(C.closed, 3000, 'close')).code, 1009);
    });

    test(`MESSAGES_PER_SECOND (${MESSAGES_PER_SECOND}): a burst of that many is accepted, more → rate_limited, and the bucket refills`, async () => {
      const u = uid('rate');
      const A = (await reg(u)).client;
      const r = roomOf(await A.createRoom('group', [])).roomId;
      const extra = 15;
      const t0 = Date.now();
      const answers = await Promise.all(A.burst(() => range(1, MESSAGES_PER_SECOND + extra).map((k) => A.publish(r, `r${k}`, Buffer.from([k])))));
      const elapsed = Date.now() - t0;
      const burst = answers.slice(0, MESSAGES_PER_SECOND);
      for (const [i, f] of burst.entries()) expectFrame(f, 'ack', `message ${i + 1} of the burst`);
      const rest = answers.slice(MESSAGES_PER_SECOND);
      const limited = rest.filter((f) => f.t === 'error');
      for (const f of limited) expectError(f, 'rate_limited');
      const refill = Math.ceil((elapsed / 1000) * MESSAGES_PER_SECOND) + 1;
      assert.ok(limited.length >= 1, `at least one of ${extra} over the burst is refused (elapsed ${elapsed} ms)`);
      assert.ok(extra - limited.length <= refill, `${extra - limited.length} accepted over the burst in ${elapsed} ms (bucket refill ≤ ${refill})`);
      assert.ok(A.isOpen, 'rate limiting messages does not close the connection');
      const stored = expectFrame(await A.history(r, { after: 1, limit: HISTORY_PAGE_MAX }), 'history')['entries'] as Entry[];
      assert.equal(stored.length, MESSAGES_PER_SECOND + extra - limited.length, 'refused messages were not stored');
      await sleep(1000);
      const again = await Promise.all(range(1, MESSAGES_PER_SECOND).map((k) => A.publish(r, `again${k}`, Buffer.from([k]))));
      for (const f of again) expectFrame(f, 'ack', 'after a second the full burst is available again');
    });

    test(`FRAMES_PER_SECOND (${FRAMES_PER_SECOND}): frames beyond the burst → rate_limited`, async () => {
      const u = uid('frames');
      const { session } = await reg(u);
      const A = await auth(session.accessToken as string, 'frames'); // hello + auth: 2 frames spent
      const allowed = FRAMES_PER_SECOND - 2;
      // Each refused frame is a strike: as many over the burst as can all be refused without the close.
      const extra = INVALID_FRAMES_MAX - 1;
      // The bucket holds at most FRAMES_PER_SECOND (2 more than `allowed`, refilled since the auth) and refills by one
      // every 1000 / FRAMES_PER_SECOND ms while the server reads the burst: a server stalled mid-burst may take every
      // frame. Such a try refused nothing (no strike) and proves nothing: it is made again once the bucket is full.
      const tries: string[] = [];
      let refused = 0;
      for (let attempt = 1; attempt <= 5 && refused === 0; attempt++) {
        if (attempt > 1) await sleep(1100);
        const id = (k: number): string => `f${attempt}-${k}`;
        const t0 = Date.now();
        const replies = A.burst(() => range(1, allowed + extra).map((k) => A.request({ t: 'room.list', id: id(k) }).catch((e: Error) => ({ t: 'no-answer', message: e.message }) as Frame)));
        // Every request is answered, a refused one too: the error carries its `re`.
        const all = await Promise.all(replies);
        const elapsed = Date.now() - t0;
        for (const f of all.slice(0, allowed)) expectFrame(f, 'rooms', 'within the burst');
        const over = all.slice(allowed);
        for (const f of over) if (f.t !== 'rooms') expectError(f, 'rate_limited');
        assert.deepEqual(over.map((f) => f.re), range(allowed + 1, allowed + extra).map(id), 'each answer pairs with its request');
        refused = over.filter((f) => f.t === 'error').length;
        // The server read the burst within `elapsed`: it can have taken no more than the bucket held and what it refilled meanwhile.
        const refill = 2 + Math.ceil((elapsed / 1000) * FRAMES_PER_SECOND) + 1;
        assert.ok(extra - refused <= refill, `${extra - refused} accepted over the burst in ${elapsed} ms (bucket ≤ ${refill})`);
        tries.push(`${refused} of ${extra} refused in ${elapsed} ms`);
      }
      assert.ok(refused >= 1, `at least one frame over the burst is refused (${tries.join('; ')})`);
      assert.ok(A.isOpen);
      await sleep(1100);
      expectFrame(await A.roomList(), 'rooms', 'after a second');
    });

    test(`INVALID_FRAMES_MAX (${INVALID_FRAMES_MAX}): one fewer is tolerated, the last closes with 1008`, async () => {
      const u = uid('invalid');
      const { client: A } = await reg(u);
      for (let i = 1; i < INVALID_FRAMES_MAX; i++) {
        A.sendRaw(i % 2 === 0 ? 'not json' : JSON.stringify({ t: 'publish', roomId: 5 }));
      }
      expectFrame(await A.roomList(), 'rooms', `after ${INVALID_FRAMES_MAX - 1} invalid frames`);
      assert.equal(A.inbox.filter((f) => f.t === 'error' && f['code'] === 'bad_frame').length, INVALID_FRAMES_MAX - 1, 'each answered bad_frame');
      A.sendRaw('{');
      assert.equal((await within(A.closed, 3000, 'close')).code, 1008);

      // In the hello phase too (binary frames count).
      const B = await connect();
      for (let i = 0; i < INVALID_FRAMES_MAX; i++) B.sendRaw(Buffer.from('x'), true);
      assert.equal((await within(B.closed, 3000, 'close')).code, 1008);

      // Well-formed frames refused as bad_frame by a later check count the same: a second hello, a login once authenticated.
      const C = (await reg(uid('invalid2'))).client;
      for (let i = 1; i < INVALID_FRAMES_MAX; i++) C.sendRaw(JSON.stringify(i % 2 === 0 ? { t: 'hello', versions: [1] } : { t: 'refresh', refreshToken: 'x'.repeat(43) }));
      expectFrame(await C.roomList(), 'rooms', `after ${INVALID_FRAMES_MAX - 1} refused frames`);
      C.sendRaw(JSON.stringify({ t: 'hello', versions: [1] }));
      assert.equal((await within(C.closed, 3000, 'close')).code, 1008);
    });

    /** `count` rooms created over connections of `accessToken` (paced under the frame rate), each naming `members`. */
    async function manyRooms(accessToken: string, label: string, count: number, members: string[]): Promise<V1Client[]> {
      const perConn = FRAMES_PER_SECOND - 10;
      const conns: V1Client[] = [];
      for (let i = 0; i < Math.ceil(count / perConn); i++) conns.push(await auth(accessToken, `${label}#${i}`));
      let made = 0;
      await Promise.all(
        conns.map(async (c, i) => {
          const mine = Math.min(perConn, count - i * perConn);
          const rs = await Promise.all(range(1, mine).map(() => c.createRoom('group', members)));
          for (const f of rs) roomOf(f);
          made += rs.length;
        }),
      );
      assert.equal(made, count);
      return conns;
    }

    test(`a backlog of requests that read storage holds only its own connection: each waiting frame starts on a later turn (past FRAMES_QUEUED_MAX, ${FRAMES_QUEUED_MAX}, its socket is not read)`, async () => {
      // SQLite reads settle at once: a burst of room lists used to run as one
      // chain of microtasks, and another member's message (or any other
      // connection's frame) waited behind all of it.
      const x = uid('backlog');
      const { session } = await reg(x);
      const P = (await reg(uid('backlog-peer'))).client;
      const shared = roomOf(await P.createRoom('group', [x])).roomId;
      const conns = await manyRooms(session.accessToken as string, 'backlog', 2 * (FRAMES_PER_SECOND - 10), []);
      for (const c of conns) c.close();
      const X = await auth(session.accessToken as string, 'backlog-lists');
      const K = 2 * FRAMES_QUEUED_MAX + 20;
      assert.ok(K < FRAMES_PER_SECOND, 'the burst is within the rate limit');
      const start = X.received.length;
      const lists = X.burst(() => range(1, K).map(() => X.request({ t: 'room.list' }, 60_000)));
      // Sent right behind the burst, so it reaches the server while the burst waits.
      const ack = P.publish(shared, 'while-x-waits', 'aGk=');
      expectFrame(await ack, 'ack', 'the bystander');
      for (const f of await Promise.all(lists)) assert.equal((expectFrame(f, 'rooms')['rooms'] as RoomInfo[]).length, 2 * (FRAMES_PER_SECOND - 10) + 1);
      await X.waitFor((f) => f.t === 'msg' && f['roomId'] === shared);
      const order = X.received.slice(start).filter((f) => f.t === 'rooms' || (f.t === 'msg' && f['roomId'] === shared));
      const position = order.findIndex((f) => f.t === 'msg');
      assert.ok(position >= 0 && position < K / 2, `the message reached X after ${position} of its ${K} room lists`);
      X.close();
    });

    test(`ROOMS_PER_USER_MAX (${ROOMS_PER_USER_MAX}): the last room is allowed, one more → limit_exceeded`, async () => {
      const u = uid('roomy');
      const other = uid('roomy-friend');
      const { session } = await reg(u);
      const F = (await reg(other)).client;
      // One room another user made with u, early (later, at the limit, others can no longer add u).
      const lastRoom = roomOf(await F.createRoom('group', [u]), 'a room made by another user');
      const conns = await manyRooms(session.accessToken as string, 'roomy', ROOMS_PER_USER_MAX - 2, []);
      const A = at(conns, 0);
      roomOf(await A.createRoom('group', []), 'the ROOMS_PER_USER_MAX-th room');
      expectError(await A.createRoom('group', []), 'limit_exceeded', 'one room more');
      expectError(await F.createRoom('group', [u]), 'limit_exceeded', 'added at creation');
      const fr = roomOf(await F.createRoom('group', [])).roomId;
      expectError(await F.roomAdd(fr, u), 'limit_exceeded', 'room.add');
      const list = expectFrame(await A.request({ t: 'room.list' }, 20_000), 'rooms')['rooms'] as RoomInfo[];
      assert.equal(list.length, ROOMS_PER_USER_MAX);
      // A role change adds no room: allowed at the limit, and a repeat of it changes nothing (no event).
      const lastSeq = async (): Promise<number> => ((expectFrame(await F.request({ t: 'room.list' }), 'rooms')['rooms'] as RoomInfo[]).find((r) => r.roomId === lastRoom.roomId) as RoomInfo).lastSeq;
      expectFrame(await F.roomAdd(lastRoom.roomId, u, 'admin'), 'ok', 'promotion at the limit');
      const seqAfterPromotion = await lastSeq();
      expectFrame(await F.roomAdd(lastRoom.roomId, u, 'admin'), 'ok', 'the same role again');
      assert.equal(await lastSeq(), seqAfterPromotion, 'no role-changed event for no change');
      expectFrame(await A.roomLeave(lastRoom.roomId), 'ok');
      // One room free, five connections of the user create at once: exactly one gets it.
      const racers = conns.length >= 5 ? conns.slice(0, 5) : [...conns, ...(await Promise.all(range(conns.length, 4).map((i) => auth(session.accessToken as string, `roomy#${i}`))))];
      const raced = await Promise.all(racers.map((c) => c.createRoom('group', [])));
      assert.equal(raced.filter((f) => f.t === 'room').length, 1, 'one creation fits');
      for (const f of raced) if (f.t !== 'room') expectError(f, 'limit_exceeded', 'the others');
      for (const c of [...conns, ...racers]) c.close();
    });

    test(`ROOMS_ADDED_BY_OTHERS_MAX (${ROOMS_ADDED_BY_OTHERS_MAX}): others fill a user's rooms up to it, no further; the rest is the user's own`, async () => {
      const v = uid('crowded');
      const g = uid('crowder');
      const { client: V } = await reg(v);
      const { session: gs } = await reg(g);
      const conns = await manyRooms(gs.accessToken as string, 'crowder', ROOMS_ADDED_BY_OTHERS_MAX - 1, [v]);
      const G = at(conns, 0);
      roomOf(await G.createRoom('group', [v]), `the ${ROOMS_ADDED_BY_OTHERS_MAX}-th room another user puts v in`);
      expectError(await G.createRoom('group', [v]), 'limit_exceeded', 'one more at creation');
      const own = roomOf(await G.createRoom('group', [])).roomId;
      expectError(await G.roomAdd(own, v), 'limit_exceeded', 'one more by room.add');
      // v's own quota is untouched: it still creates rooms (and starts conversations) of its own.
      const friend = uid('crowded-friend');
      await reg(friend);
      const mine = roomOf(await V.createRoom('direct', [friend]), 'a conversation v starts').roomId;
      expectFrame(await V.roomLeave(mine), 'ok');
      // (The crowder, in more rooms than others may fill, cannot be named by v either.)
      expectError(await V.createRoom('direct', [g]), 'limit_exceeded', 'naming a user past the bound');
      // Below the bound again, others may add v again.
      const someRoom = (expectFrame(await V.request({ t: 'room.list' }, 20_000), 'rooms')['rooms'] as RoomInfo[])[0] as RoomInfo;
      expectFrame(await V.roomLeave(someRoom.roomId), 'ok');
      expectFrame(await G.roomAdd(own, v), 'ok', 'added again below the bound');
      for (const c of conns) c.close();
    });

    test('huge arrays and over-long fields → bad_frame', async () => {
      const { client: A } = await reg(uid('arrays'));
      const many = range(0, ROOM_MEMBERS_MAX).map((i) => `u${i}`);
      assert.equal(many.length, ROOM_MEMBERS_MAX + 1);
      expectError(await A.createRoom('group', many), 'bad_frame', 'ROOM_MEMBERS_MAX + 1 members');
      expectError(await A.createRoom('group', many.slice(0, ROOM_MEMBERS_MAX)), 'limit_exceeded', 'ROOM_MEMBERS_MAX others + the creator');
      expectError(await A.createRoom('group', many.slice(0, ROOM_MEMBERS_MAX - 1)), 'not_found', 'ROOM_MEMBERS_MAX members in all: checked, unknown users');
      const rooms: Record<string, number> = {};
      for (let i = 0; i <= 10_000; i++) rooms[`r${i}`] = 0;
      expectError(await A.request({ t: 'sync', rooms }), 'bad_frame', '10 001 rooms in a sync');
      expectError(await A.request({ t: 'publish', roomId: 'r'.repeat(65), clientId: 'c', body: 'AAAA' }), 'bad_frame', 'room id of 65 chars');
      expectError(await A.request({ t: 'publish', roomId: 'r', clientId: 'c'.repeat(65), body: 'AAAA' }), 'bad_frame', 'client id of 65 chars');
      expectError(await A.request({ t: 'auth', accessToken: 'x'.repeat(4097) }), 'bad_frame', 'token of 4097 chars');
      const B = await connect();
      expectError(await B.request({ t: 'hello', versions: range(1, 17) }), 'bad_frame', '17 versions');
      expectError(await B.request({ t: 'hello', versions: new Array<number>(60_000).fill(1) }), 'bad_frame', '60 000 versions');
      expectFrame(await B.hello(range(1, 16)), 'welcome', '16 versions');
    });

    test('malformed frames never crash the server or disturb another session', async () => {
      const [a, b, m] = [uid('calm-a'), uid('calm-b'), uid('mallory')];
      const A = (await reg(a)).client;
      const B = (await reg(b)).client;
      const { session: ms } = await reg(m);
      const r = roomOf(await A.createRoom('group', [b])).roomId;
      await B.takeMsgs(r, 1);
      expectFrame(await A.publish(r, 'pre', marker('pre')), 'ack');
      await B.takeMsgs(r, 1);

      let nested = '1';
      for (let i = 0; i < 20_000; i++) nested = `[${nested}]`;
      let nestedObj = '1';
      for (let i = 0; i < 10_000; i++) nestedObj = `{"a":${nestedObj}}`;
      const bad: (string | Buffer)[] = [
        'not json', '', '{', 'null', '[]', '42', '"hello"', 'true', '{}', '{"t":"nope"}', '{"t":5}', '{"t":null}', '{"t":["publish"]}',
        JSON.stringify({ t: 'publish', roomId: 5, clientId: 'c', body: 'AAAA' }),
        JSON.stringify({ t: 'publish', roomId: r, clientId: 'has space', body: 'AAAA' }),
        JSON.stringify({ t: 'publish', roomId: r, clientId: 'c', body: 123 }),
        JSON.stringify({ t: 'publish', roomId: r, clientId: 'c', body: '!!!!' }),
        JSON.stringify({ t: 'publish', roomId: r, clientId: 'c', body: { length: 1 } }),
        JSON.stringify({ t: 'publish', roomId: r, clientId: 'c' }),
        JSON.stringify({ t: 'history', roomId: r, before: '10' }),
        JSON.stringify({ t: 'history', roomId: r, before: 1e300 }),
        JSON.stringify({ t: 'history', roomId: r, after: Number.MAX_SAFE_INTEGER + 2 }),
        JSON.stringify({ t: 'sync', rooms: [] }),
        JSON.stringify({ t: 'sync', rooms: { [r]: -1 } }),
        JSON.stringify({ t: 'sync', rooms: { [r]: '1' } }),
        JSON.stringify({ t: 'sync', rooms: { 'bad id!': 1 } }),
        JSON.stringify({ t: 'sync', rooms: null }),
        JSON.stringify({ t: 'room.create', kind: 'group', members: 'bob' }),
        JSON.stringify({ t: 'room.create', kind: 'group', members: [1, 2] }),
        JSON.stringify({ t: 'room.create', kind: 'group', members: [{}] }),
        JSON.stringify({ t: 'room.add', roomId: r, userId: b, role: 'owner' }),
        JSON.stringify({ t: 'room.list', id: 7 }),
        JSON.stringify({ t: 'room.list', id: 'i'.repeat(65) }),
        JSON.stringify({ t: 'auth', accessToken: '' }),
        JSON.stringify({ t: 'login', userId: b, deviceId: 'dev1', signature: 'AAAA' }),
        JSON.stringify({ t: 'register', userId: 'x', deviceId: 'd', identityKey: b64(randomBytes(31)), signature: b64(randomBytes(64)) }),
        nested,
        `{"t":"sync","rooms":{"a":${nestedObj}}}`,
        '{"t":"room.list","id":"\\ud800"}x',
        Buffer.from([0x7b, 0x22, 0x74, 0x22]),
        '\u0000\u0001\u0002',
        '{"t":"publish","roomId":"' + r + '","clientId":"c","body":"' + 'A'.repeat(200_000) + '"}',
      ];
      const binaryIdx = bad.length;
      bad.push(Buffer.from('{"t":"room.list"}'));

      let sent = 0;
      const perConn = INVALID_FRAMES_MAX - 1;
      for (let i = 0; i < bad.length; i += perConn) {
        const M = await auth(ms.accessToken as string, `mallory#${i}`);
        const chunk = bad.slice(i, i + perConn);
        chunk.forEach((x, k) => M.sendRaw(x, i + k === binaryIdx));
        sent += chunk.length;
        const ok = await M.roomList();
        expectFrame(ok, 'rooms', `mallory#${i} still served after ${chunk.length} malformed frames`);
        await sleep(20);
        const errors = M.inbox.filter((f) => f.t === 'error');
        assert.equal(errors.length, chunk.length, `mallory#${i}: one error per malformed frame: ${JSON.stringify(M.inbox).slice(0, 600)}`);
        for (const e of errors) assert.equal(e['code'], 'bad_frame');
        M.close();
      }
      assert.equal(sent, bad.length);

      // Before hello as well.
      for (let i = 0; i < bad.length; i += perConn) {
        const M = await connect(`pre-hello#${i}`);
        bad.slice(i, i + perConn).forEach((x, k) => M.sendRaw(x, i + k === binaryIdx));
        expectFrame(await M.hello(), 'welcome', `hello after ${perConn} malformed frames`);
        M.close();
      }

      // Invalid UTF-8 in a text frame: ws closes that connection (1007) and only that one.
      const U = await auth(ms.accessToken as string, 'bad-utf8');
      U.sendRaw(Buffer.from([0x22, 0xff, 0xfe, 0x22]));
      assert.equal((await within(U.closed, 3000, 'close')).code, 1007);

      // Keys that name Object.prototype's members: "constructor" is a room id like any other (not one of
      // this user's), an own "__proto__" key (which a schema's record would drop unchecked) is refused.
      const P = await auth(ms.accessToken as string, 'proto');
      const ps = await P.sync(JSON.parse('{"constructor": 1}') as Record<string, number>);
      assert.deepEqual(expectFrame(ps.reply, 'synced')['rooms'], {});
      for (const [id, rooms] of [['pp', '{"__proto__":{"polluted":1}}'], ['p0', '{"__proto__":0}']]) {
        P.sendRaw(`{"t":"sync","id":"${id}","rooms":${rooms}}`);
        expectError(await P.waitFor((f) => f.re === id), 'bad_frame', rooms);
      }
      expectFrame(await P.roomList(), 'rooms');
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);

      // The bystanders never noticed.
      expectFrame(await A.publish(r, 'post', marker('post')), 'ack');
      assert.deepEqual((await B.takeMsgs(r, 1)).map((x) => x.clientId), ['post']);
      assert.equal(server.child.exitCode, null, 'the server is running');
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status, 200);
      assert.deepEqual(B.inbox.filter((f) => f.t === 'error'), []);
      assert.deepEqual(A.inbox.filter((f) => f.t === 'error'), []);
    });

    test(`UNAUTHENTICATED_LIFETIME_MS (${UNAUTHENTICATED_LIFETIME_MS}): connections that never authenticate are closed with 1008; authenticated ones stay`, async () => {
      const { silent, helloOnly, authenticated } = idle;
      assert.ok(silent && helloOnly && authenticated);
      const opened = (c: V1Client): { connecting: number; open: number } => {
        const t = idle.times.get(c);
        assert.ok(t !== undefined, `${c.label}: open time recorded`);
        return t;
      };
      const slack = 8000;
      const deadline = Math.max(100, Math.max(opened(silent).open, opened(helloOnly).open) + UNAUTHENTICATED_LIFETIME_MS + slack + 2000 - Date.now());
      const [s, h] = await Promise.all([within(silent.closed, deadline, 'silent'), within(helloOnly.closed, deadline, 'hello only')]);
      assert.equal(s.code, 1008);
      assert.equal(h.code, 1008);
      for (const c of [silent, helloOnly]) {
        const closedAt = c.closedAt ?? 0;
        // Not before the lifetime (counted from before its connect began), and not long after it (counted from its open).
        const sinceConnecting = closedAt - opened(c).connecting;
        const sinceOpen = closedAt - opened(c).open;
        assert.ok(sinceConnecting >= UNAUTHENTICATED_LIFETIME_MS - 50 && sinceOpen <= UNAUTHENTICATED_LIFETIME_MS + slack, `${c.label} closed ${sinceConnecting} ms after its connect began, ${sinceOpen} ms after it was open`);
      }
      assert.ok(authenticated.isOpen, 'the authenticated connection is still open');
      expectFrame(await authenticated.roomList(), 'rooms');
    });
  });

  // -------------------------------------------------------------- secrecy (last: it reads the whole run's logs)

  test('the logs never contain message bodies, markers or tokens; the database never holds a token', async () => {
    await sleep(200);
    assert.ok(secrets.size > 50, `checked ${secrets.size} secrets`);
    const logText = JSON.stringify(server.logs) + '\n' + server.stderr.join('');
    assert.ok(server.logs.length > 5, 'the server logged something');
    for (const s of secrets) assert.ok(!logText.includes(s), `the logs contain ${s.slice(0, 24)}…`);
    assert.ok(!logText.includes('PARLEY-PLAINTEXT-MARKER'), 'no marker prefix in the logs');
    assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(logText), 'no JWT-shaped string in the logs');
    const errors = server.logs.filter((l) => l.level >= 50);
    assert.deepEqual(errors, [], 'no error-level log lines (no handler crashed)');

    const dbFiles = readdirSync(dataDir).filter((f) => f.includes('.db'));
    assert.ok(dbFiles.length > 0, `database files in ${readdirSync(dataDir).join(', ')}`);
    const db = Buffer.concat(dbFiles.map((f) => readFileSync(join(dataDir, f))));
    assert.ok(tokens.size > 20, `checked ${tokens.size} tokens`);
    for (const t of tokens) assert.equal(db.indexOf(t), -1, `a token is stored in the database: ${t.slice(0, 12)}…`);
  });
});

function b64url(obj: unknown): string {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

// ================================================================ short access tokens

describe('access-token expiry (server started with PARLEY_ACCESS_TOKEN_TTL_S=5)', () => {
  let server: ServerProcess;
  let url: string;
  const open: V1Client[] = [];
  // Seconds: long enough for connect, hello, register and a second connection's auth to run before expiry on a slow machine.
  const TTL = 5;

  before(async () => {
    server = await startServerProcess([], { env: { PARLEY_ACCESS_TOKEN_TTL_S: String(TTL) } });
    url = `ws://127.0.0.1:${server.port}/v1`;
  });
  after(async () => {
    for (const c of open) c.close();
    await server.stop();
    server.cleanup();
  });

  test('connections close with 4001 when their token expires; the token is then refused with token_expired; refresh still works', async () => {
    const { client: A, session } = await registered(url, 'shorty');
    open.push(A);
    rememberSession(session);
    assert.equal(session.expiresIn, TTL);
    const { client: B } = await authed(url, session.accessToken as string, 'shorty-auth');
    open.push(B);
    const [ca, cb] = await Promise.all([within(A.closed, TTL * 1000 + 5000, 'registering connection'), within(B.closed, TTL * 1000 + 5000, 'auth connection')]);
    assert.equal(ca.code, 4001);
    assert.equal(cb.code, 4001);
    for (const c of [A, B]) assert.ok(c.inbox.some((f) => f.t === 'error' && f['code'] === 'token_expired' && f.re === undefined), `${c.label} told why`);

    const C = await V1Client.connect(url, 'late');
    open.push(C);
    await C.hello();
    expectError(await C.auth(session.accessToken as string), 'token_expired', 'an expired access token');
    const r = expectFrame<SessionFrame>(await C.refresh(session.refreshToken as string), 'session', 'refresh after expiry');
    rememberSession(r);
    assert.equal(r.expiresIn, TTL);
    expectFrame(await C.roomList(), 'rooms');
  });
});

// ================================================================ host-minted tokens

describe('behind a reverse proxy (PARLEY_TRUST_PROXY=1)', () => {
  let server: ServerProcess;
  let url: string;
  const clients: V1Client[] = [];
  before(async () => {
    server = await startServerProcess([], { env: { PARLEY_TRUST_PROXY: '1' } });
    url = `ws://127.0.0.1:${server.port}/v1`;
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.stop();
    server.cleanup();
  });

  test('failed logins count per user and the address the proxy appended to X-Forwarded-For (its last entry)', async () => {
    const u = `proxied-${randomBytes(4).toString('hex')}`;
    clients.push((await registered(url, u)).client);
    const wrong = newDeviceKey(u, 'wrong');
    const via = async (forwardedFor: string): Promise<V1Client> => {
      const c = await V1Client.connect(url, forwardedFor, undefined, { 'X-Forwarded-For': forwardedFor });
      clients.push(c);
      expectFrame(await c.hello(), 'welcome');
      return c;
    };
    // An attacker behind the proxy: its own first entry is whatever it wrote; the last is the proxy's.
    let failures = 0;
    while (failures < LOGIN_FAILURES_PER_USER_PER_MINUTE) {
      const c = await via('203.0.113.9, 198.51.100.7');
      for (let i = 0; i < LOGIN_ATTEMPTS_MAX - 1 && failures < LOGIN_FAILURES_PER_USER_PER_MINUTE; i++, failures++) expectError(await c.login(u, 'dev1', wrong), 'invalid_credentials');
    }
    expectError(await (await via('192.0.2.1, 198.51.100.7')).login(u, 'dev1'), 'rate_limited', 'the attacker’s address (the last entry) is locked out, whatever it put first');
    // The user, from its own address behind the same proxy, is not.
    expectFrame(await (await via('198.51.100.8')).login(u, 'dev1'), 'session', 'the user from another address');
  });
});

describe('host-minted access tokens (PARLEY_TRUSTED_TOKEN_SECRET)', () => {
  let server: ServerProcess;
  let url: string;
  const trusted = randomBytes(32);
  const open: V1Client[] = [];
  const u = 'hosted';

  before(async () => {
    server = await startServerProcess([], { env: { PARLEY_TRUSTED_TOKEN_SECRET: trusted.toString('base64') } });
    url = `ws://127.0.0.1:${server.port}/v1`;
    const r = await registered(url, u, 'web');
    open.push(r.client);
    rememberSession(r.session);
  });
  after(async () => {
    for (const c of open) c.close();
    await server.stop();
    server.cleanup();
  });

  function mint(claims: { sub?: string; did?: string; exp?: number }, secret: Uint8Array = trusted, alg = 'HS256'): Promise<string> {
    const jwt = new SignJWT(claims.did !== undefined ? { did: claims.did } : {}).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt();
    if (claims.sub !== undefined) jwt.setSubject(claims.sub);
    if (claims.exp !== undefined) jwt.setExpirationTime(claims.exp);
    return jwt.sign(secret).then((t) => {
      secrets.add(t);
      return t;
    });
  }
  async function tryAuth(token: string): Promise<{ c: V1Client; f: Frame }> {
    const c = await V1Client.connect(url, 'host');
    open.push(c);
    expectFrame(await c.hello(), 'welcome');
    return { c, f: await c.auth(token) };
  }
  const inMinutes = (m: number): number => Math.floor(Date.now() / 1000) + m * 60;

  test('a token minted with the trusted secret for a registered device is accepted', async () => {
    const { c, f } = await tryAuth(await mint({ sub: u, did: 'web', exp: inMinutes(5) }));
    const s = expectFrame<SessionFrame>(f, 'session');
    assert.equal(s.userId, u);
    assert.equal(s.deviceId, 'web');
    assert.ok(s.expiresIn > 240 && s.expiresIn <= 300, `expiresIn ${s.expiresIn}`);
    const room = roomOf(await c.createRoom('group', []));
    expectFrame(await c.publish(room.roomId, 'hosted-1', marker('hosted')), 'ack');
  });

  test('the server keeps accepting its own tokens', async () => {
    const c = await V1Client.connect(url, 'own');
    open.push(c);
    await c.hello();
    const s = await c.login(u, 'web');
    rememberSession(s);
    const { f } = await tryAuth((s as SessionFrame).accessToken as string);
    expectFrame(f, 'session');
  });

  test('refused: another secret, no exp, no did, an unknown device, another algorithm', async () => {
    expectError((await tryAuth(await mint({ sub: u, did: 'web', exp: inMinutes(5) }, randomBytes(32)))).f, 'invalid_credentials', 'another secret');
    expectError((await tryAuth(await mint({ sub: u, did: 'web' }))).f, 'invalid_credentials', 'no exp');
    expectError((await tryAuth(await mint({ sub: u, exp: inMinutes(5) }))).f, 'invalid_credentials', 'no did');
    expectError((await tryAuth(await mint({ did: 'web', exp: inMinutes(5) }))).f, 'invalid_credentials', 'no sub');
    expectError((await tryAuth(await mint({ sub: u, did: 'phone', exp: inMinutes(5) }))).f, 'invalid_credentials', 'device not registered');
    expectError((await tryAuth(await mint({ sub: 'nobody', did: 'web', exp: inMinutes(5) }))).f, 'invalid_credentials', 'user not registered');
    expectError((await tryAuth(await mint({ sub: u, did: 'web', exp: inMinutes(5) }, trusted, 'HS512'))).f, 'invalid_credentials', 'HS512');
  });

  test(`host tokens live at most HOST_TOKEN_LIFETIME_MAX_S (iat required, not ahead of the clock by more than HOST_TOKEN_CLOCK_SKEW_S)`, async () => {
    const { HOST_TOKEN_CLOCK_SKEW_S, HOST_TOKEN_LIFETIME_MAX_S } = await import('../src/limits.ts');
    const now = Math.floor(Date.now() / 1000);
    const raw = (iat: number | undefined, exp: number): Promise<string> => {
      const jwt = new SignJWT({ did: 'web' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(u).setExpirationTime(exp);
      if (iat !== undefined) jwt.setIssuedAt(iat);
      return jwt.sign(trusted).then((t) => {
        secrets.add(t);
        return t;
      });
    };
    expectFrame((await tryAuth(await raw(now, now + HOST_TOKEN_LIFETIME_MAX_S))).f, 'session', 'exactly the longest lifetime');
    expectError((await tryAuth(await raw(now, now + HOST_TOKEN_LIFETIME_MAX_S + 1))).f, 'invalid_credentials', 'a second longer');
    expectError((await tryAuth(await raw(undefined, now + 300))).f, 'invalid_credentials', 'no iat');
    // Issued "later" to pass the lifetime check: refused beyond the allowed clock skew.
    expectFrame((await tryAuth(await raw(now + HOST_TOKEN_CLOCK_SKEW_S - 5, now + 600))).f, 'session', 'within the skew');
    expectError((await tryAuth(await raw(now + HOST_TOKEN_CLOCK_SKEW_S + 60, now + HOST_TOKEN_LIFETIME_MAX_S + 120))).f, 'invalid_credentials', 'ahead of the clock');
  });

  test('an expired host token → token_expired; a connection is closed with 4001 when its token expires', async () => {
    expectError((await tryAuth(await mint({ sub: u, did: 'web', exp: Math.floor(Date.now() / 1000) - 5 }))).f, 'token_expired', 'already expired');
    const exp = Math.floor(Date.now() / 1000) + 5;
    const { c, f } = await tryAuth(await mint({ sub: u, did: 'web', exp }));
    expectFrame(f, 'session', 'valid for ~5 s');
    expectFrame(await c.roomList(), 'rooms');
    const closed = await within(c.closed, Math.max(0, exp * 1000 - Date.now()) + 5000, 'close at expiry');
    assert.equal(closed.code, 4001);
    assert.ok(Date.now() >= exp * 1000 - 50, 'not before the expiry');
    assert.ok(c.inbox.some((x) => x.t === 'error' && x['code'] === 'token_expired'), 'told why');
  });

  test('the logs hold none of the host tokens', () => {
    const logText = JSON.stringify(server.logs) + server.stderr.join('');
    for (const s of secrets) assert.ok(!logText.includes(s), `the logs contain ${s.slice(0, 24)}…`);
  });
});

// ================================================================ host tokens, public key

describe('host-minted access tokens (PARLEY_TRUSTED_TOKEN_PUBLIC_KEY)', () => {
  let server: ServerProcess;
  let url: string;
  // Encoded by the keygen job (exporting a fresh KeyObject can deadlock Node 20; see _v1-client.ts).
  const hostPem = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const host = { privateKey: createPrivateKey(hostPem.privateKey) };
  const pem = hostPem.publicKey;
  const open: V1Client[] = [];
  const u = 'hosted-pk';

  before(async () => {
    server = await startServerProcess([], { env: { PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: pem } });
    url = `ws://127.0.0.1:${server.port}/v1`;
    const r = await registered(url, u, 'web');
    open.push(r.client);
    rememberSession(r.session);
  });
  after(async () => {
    for (const c of open) c.close();
    await server.stop();
    server.cleanup();
  });

  const inMinutes = (m: number): number => Math.floor(Date.now() / 1000) + m * 60;
  function mint(key: KeyObject | Uint8Array, alg: string, exp = inMinutes(5), did = 'web'): Promise<string> {
    return new SignJWT({ did }).setProtectedHeader({ alg, typ: 'JWT' }).setSubject(u).setIssuedAt().setExpirationTime(exp).sign(key).then((t) => {
      secrets.add(t);
      return t;
    });
  }
  async function tryAuth(token: string): Promise<{ c: V1Client; f: Frame }> {
    const c = await V1Client.connect(url, 'host-pk');
    open.push(c);
    expectFrame(await c.hello(), 'welcome');
    return { c, f: await c.auth(token) };
  }

  test('an ES256 token signed by the host key is accepted and usable', async () => {
    const { c, f } = await tryAuth(await mint(host.privateKey, 'ES256'));
    const s = expectFrame<SessionFrame>(f, 'session');
    assert.equal(s.userId, u);
    assert.equal(s.deviceId, 'web');
    const room = roomOf(await c.createRoom('group', []));
    expectFrame(await c.publish(room.roomId, 'hosted-pk-1', marker('hosted-pk')), 'ack');
  });

  test('refused: another key, HS256 keyed with the public key (algorithm confusion), alg none, an unknown device', async () => {
    const other = createPrivateKey(generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).privateKey);
    expectError((await tryAuth(await mint(other, 'ES256'))).f, 'invalid_credentials', 'another key');
    expectError((await tryAuth(await mint(new TextEncoder().encode(pem), 'HS256'))).f, 'invalid_credentials', 'HS256 with the public key as secret');
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: u, did: 'web', exp: inMinutes(5) })).toString('base64url')}.`;
    expectError((await tryAuth(none)).f, 'invalid_credentials', 'alg none');
    expectError((await tryAuth(await mint(host.privateKey, 'ES256', inMinutes(5), 'phone'))).f, 'invalid_credentials', 'device not registered');
  });

  test('an expired host token → token_expired', async () => {
    expectError((await tryAuth(await mint(host.privateKey, 'ES256', Math.floor(Date.now() / 1000) - 5))).f, 'token_expired', 'expired');
  });
});

// ================================================================ crash and restart

describe('durability: SIGKILL mid-conversation, restart on the same data directory', () => {
  let server: ServerProcess | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-crash-'));
  const open: V1Client[] = [];
  after(async () => {
    for (const c of open) c.close();
    if (server !== undefined && server.child.exitCode === null) await server.stop('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('every acknowledged message survives; sequence, idempotency and tokens carry over; SIGTERM closes with 1001', async () => {
    const first = await startServerProcess([], { dataDir });
    server = first;
    let url = `ws://127.0.0.1:${first.port}/v1`;
    const users = ['crash-a', 'crash-b', 'crash-c'];
    const sessions: SessionFrame[] = [];
    const clients: V1Client[] = [];
    for (const u of users) {
      const r = await registered(url, u);
      open.push(r.client);
      clients.push(r.client);
      sessions.push(r.session);
      rememberSession(r.session);
    }
    const room = roomOf(await at(clients, 0).createRoom('group', users.slice(1)));
    const r = room.roomId;

    // Publish continuously from three clients; SIGKILL the server once enough are acknowledged.
    const acked = new Map<number, { clientId: string; body: string; from: string }>();
    const target = 60;
    let killed = false;
    const pump = async (c: V1Client, who: string): Promise<void> => {
      // At most one burst per client (MESSAGES_PER_SECOND): three clients reach the target well within it.
      for (let k = 0; k < MESSAGES_PER_SECOND && !killed && c.isOpen; k++) {
        const body = b64(randomBytes(32 + k));
        const clientId = `${who}-${k}`;
        const f = await c.publish(r, clientId, body).catch(() => null);
        if (f === null) return;
        const a = expectFrame<AckFrame>(f, 'ack', clientId);
        acked.set(a.seq, { clientId, body, from: who });
        if (acked.size >= target && !killed) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      }
    };
    await within(Promise.all(clients.map((c, i) => pump(c, at(users, i)))), 20_000, 'publishers');
    await first.exited;
    for (const c of clients) await within(c.closed, 5000, 'client sees the crash');
    assert.ok(acked.size >= target, `${acked.size} acknowledged before the kill`);

    const second = await startServerProcess([], { dataDir });
    server = second;
    url = `ws://127.0.0.1:${second.port}/v1`;
    const A = (await authed(url, at(sessions, 0).accessToken as string, 'after-restart')).client;
    open.push(A);
    const s = await A.sync({}, 20_000);
    expectFrame(s.reply, 'synced');
    const last = (s.reply['rooms'] as Record<string, number>)[r] as number;
    const msgs = s.entries.filter((m) => m.roomId === r);
    assert.deepEqual(msgs.map((m) => m.seq), range(1, last), 'no gaps after the crash');
    const bySeq = new Map(msgs.map((m) => [m.seq, m]));
    for (const [seq, a] of acked) {
      const m = bySeq.get(seq);
      assert.ok(m !== undefined, `acknowledged seq ${seq} (${a.clientId}) is gone`);
      assert.equal(m.clientId, a.clientId);
      assert.equal(m.body, a.body);
      assert.equal(m.from.userId, a.from);
    }
    assert.ok(last >= room.lastSeq + acked.size);

    // Idempotency survives: re-publishing an acknowledged clientId is a duplicate with its old seq.
    const [someSeq, some] = [...acked.entries()].find(([, v]) => v.from === 'crash-a') ?? [0, { clientId: '', body: '' }];
    const dup = expectFrame<AckFrame>(await A.publish(r, some.clientId, some.body), 'ack', 'republish after restart');
    assert.equal(dup.seq, someSeq);
    assert.equal(dup.duplicate, true);
    const next = expectFrame<AckFrame>(await A.publish(r, 'after-restart', marker('after-restart')), 'ack');
    assert.equal(next.seq, last + 1, 'the sequence continues');
    // Refresh tokens survive too.
    const B = await V1Client.connect(url, 'refresh-after-restart');
    open.push(B);
    await B.hello();
    rememberSession(expectFrame(await B.refresh(at(sessions, 1).refreshToken as string), 'session', 'refresh after restart'));

    // Graceful stop under load: SIGTERM while publishes are in flight. Clients are told 1001 (going away), the
    // exit code is 0, and whatever was acknowledged is there after the next start.
    const D = (await authed(url, at(sessions, 0).accessToken as string, 'publishing-at-sigterm')).client;
    open.push(D);
    const inFlight = range(1, MESSAGES_PER_SECOND).map((k) => D.publish(r, `term-${k}`, b64(randomBytes(20))).catch(() => null));
    const code = await second.stop('SIGTERM');
    assert.equal((await within(A.closed, 5000, 'close on SIGTERM')).code, 1001);
    assert.equal((await within(D.closed, 5000, 'close on SIGTERM')).code, 1001);
    assert.equal(code, 0);
    const answers = await Promise.all(inFlight);
    const termAcks = answers.filter((f): f is Frame => f !== null).map((f) => expectFrame<AckFrame>(f, 'ack', 'answer during shutdown'));
    const third = await startServerProcess([], { dataDir });
    server = third;
    const C = (await authed(`ws://127.0.0.1:${third.port}/v1`, at(sessions, 2).accessToken as string, 'after-sigterm')).client;
    open.push(C);
    const after = await C.history(r, { after: last + 1, limit: HISTORY_PAGE_MAX });
    const stored = new Map((expectFrame(after, 'history')['entries'] as Entry[]).map((e) => [e.seq, e.clientId]));
    for (const a of termAcks) assert.equal(stored.get(a.seq), a.clientId, `acknowledged during shutdown: ${a.clientId}`);
    await third.stop();
    assert.deepEqual([...first.logs, ...second.logs, ...third.logs].filter((l) => l.level >= 50), [], 'no error-level log lines');
    const logText = JSON.stringify([...first.logs, ...second.logs, ...third.logs]) + first.stderr.join('') + second.stderr.join('') + third.stderr.join('');
    for (const sec of secrets) assert.ok(!logText.includes(sec), `the logs contain ${sec.slice(0, 24)}…`);
  });
});
