// Parley v1 protocol pieces for the server benchmark: registration with a
// signed challenge, host-minted access tokens, and a small request/response
// layer over the raw client of _server-wire.mjs. Used only outside the timed
// windows (setup and connecting); the timed paths look at raw bytes.
import { Buffer } from 'node:buffer';
import { clearTimeout } from 'node:timers';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { openWs, pool } from './_server-wire.mjs';

export const DEVICE_ID = 'd';

/** Benchmark user number i → user id ("u00042"). */
export const userId = (i) => `u${String(i).padStart(5, '0')}`;

/**
 * A JSON-frame session on one raw WebSocket. Answers (frames with `re`)
 * resolve `request`s; every other frame goes to `onOther` (ignored by default).
 */
export class JsonSession {
  #next = 1;
  #waiting = new Map();
  onOther = () => {};

  constructor(ws) {
    this.ws = ws;
    ws.onFrame = (op, buf, start, end) => {
      if (op !== 1) return;
      const f = JSON.parse(buf.toString('utf8', start, end));
      const w = f.re !== undefined ? this.#waiting.get(f.re) : undefined;
      if (w) {
        this.#waiting.delete(f.re);
        clearTimeout(w.timer);
        w.resolve(f);
      } else this.onOther(f);
    };
    ws.onClose = (code) => {
      for (const w of this.#waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new Error(`connection closed (${code}) while waiting for an answer`));
      }
      this.#waiting.clear();
    };
  }

  /** Sends `frame` with a fresh `id`; resolves to the answer. Rejects on an `error` answer unless `allowError`. */
  request(frame, { timeoutMs = 120_000, allowError = false } = {}) {
    const id = String(this.#next++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`no answer to ${frame.t} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, {
        timer,
        resolve: (f) => (f.t === 'error' && !allowError ? reject(new Error(`${frame.t}: ${f.code}: ${f.message}`)) : resolve(f)),
        reject,
      });
      this.ws.sendText(JSON.stringify({ ...frame, id }));
    });
  }

  close() {
    this.ws.destroy();
  }
}

/** HS256 JWT the server accepts through PARLEY_TRUSTED_TOKEN_SECRET (docs/protocol.md, host-minted tokens). */
export function mintToken(secret, user, device, ttlSeconds = 24 * 3600) {
  const key = typeof secret === 'string' ? Buffer.from(secret, 'base64') : secret;
  const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  const input = `${b64u({ alg: 'HS256', typ: 'JWT' })}.${b64u({ sub: user, did: device, iss: 'bench', iat, exp: iat + ttlSeconds })}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

/** hello + register a new user with one device (Ed25519 proof of possession). Leaves the session open. */
export async function register(port, user, device = DEVICE_ID) {
  const ws = await openWs(port, '/v1');
  const s = new JsonSession(ws);
  await s.request({ t: 'hello', versions: [1] });
  // Node 20 can deadlock exporting a freshly generated key as JWK (the export holds the key's mutex while allocating; a GC then finalises the keygen job, which takes the same mutex) — so the public key is encoded by the keygen job itself.
  const { privateKey, publicKey } = generateKeyPairSync('ed25519', { publicKeyEncoding: { format: 'jwk' } });
  const identityKey = Buffer.from(publicKey.x, 'base64url');
  const { nonce } = await s.request({ t: 'challenge' });
  const msg = Buffer.concat([Buffer.from('parley-register-v1\n'), Buffer.from(nonce, 'base64'), Buffer.from(`${user}\n${device}`)]);
  await s.request({
    t: 'register',
    userId: user,
    deviceId: device,
    identityKey: identityKey.toString('base64'),
    signature: sign(null, msg, privateKey).toString('base64'),
  });
  return s;
}

/** hello + auth with a token, pipelined. Resolves to the open session once `session` arrived. */
export async function authConnect(port, token) {
  const ws = await openWs(port, '/v1');
  const s = new JsonSession(ws);
  const hello = s.request({ t: 'hello', versions: [1] });
  const session = s.request({ t: 'auth', accessToken: token });
  await hello;
  await session;
  return s;
}

/**
 * Populates a fresh Parley data directory through the protocol:
 * `users` registered users u00000…; group rooms of the sizes in `roomSizes`
 * (members u00000…u{n-1}, created by u00000); and `pairs` direct rooms
 * between u{pairBase+2k} and u{pairBase+2k+1}. Returns the manifest.
 */
export async function setupParley({ port, secret, users, roomSizes, pairs, pairBase, log }) {
  const t0 = performance.now();
  let done = 0;
  await pool(users, 32, async (i) => {
    const s = await register(port, userId(i));
    s.close();
    if (++done % 1000 === 0) log(`  registered ${done}/${users} users`);
  });
  log(`  registered ${users} users in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const rooms = {};
  const owner = await authConnect(port, mintToken(secret, userId(0), DEVICE_ID));
  for (const n of roomSizes) {
    const members = Array.from({ length: n - 1 }, (_, k) => userId(k + 1));
    const t = performance.now();
    const r = await owner.request({ t: 'room.create', kind: 'group', members }, { timeoutMs: 600_000 });
    rooms[n] = r.room.roomId;
    log(`  room of ${n} members created in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  owner.close();
  const t1 = performance.now();
  const pairRooms = await pool(pairs, 16, async (k) => {
    const a = pairBase + 2 * k;
    const s = await authConnect(port, mintToken(secret, userId(a), DEVICE_ID));
    const r = await s.request({ t: 'room.create', kind: 'direct', members: [userId(a + 1)] });
    s.close();
    return { a, b: a + 1, roomId: r.room.roomId };
  });
  log(`  ${pairs} direct rooms created in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  return { users, rooms, pairs: pairRooms };
}
