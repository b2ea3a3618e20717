/**
 * The conformance cases for refresh tokens (refresh-rotation.ts): rotation,
 * the grace for a lost answer at its edge, reuse revoking the family, the
 * bounds on spent tokens and on logins per device, and atomicity under
 * concurrent presentation. Registered by `storageConformance` in
 * `conformance.ts`.
 *
 * @module
 */

import { deepStrictEqual, equal, rejects } from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RefreshPolicy, RefreshRotation, Storage } from './types.ts';

type Run = (fn: (s: Storage) => Promise<void>) => () => Promise<void>;

const DAY = 86_400_000;
const GRACE = 1000;
const POLICY: RefreshPolicy = { graceMs: GRACE, spentKept: 8 };

/** A login's first token `hash` for device `deviceId`, issued at `at`. */
async function login(s: Storage, hash: string, at: number, deviceId = 'd1', familiesMax = 16): Promise<void> {
  equal(await s.putRefreshToken({ tokenHash: hash, userId: 'u', deviceId, issuedAt: at, expiresAt: at + DAY }, familiesMax), true);
}

/** Present `hash` at `at`, receiving `next` if accepted. */
function present(s: Storage, hash: string, next: string, at: number, policy = POLICY): Promise<RefreshRotation> {
  return s.rotateRefreshToken(hash, { tokenHash: next, issuedAt: at, expiresAt: at + DAY }, policy);
}

const OK = (deviceId = 'd1'): RefreshRotation => ({ ok: true, userId: 'u', deviceId, epoch: '' });
const REFUSED = (reason: 'unknown' | 'expired'): RefreshRotation => ({ ok: false, reason });
const REVOKED = (reason: 'reused' | 'exhausted' = 'reused', deviceId = 'd1'): RefreshRotation => ({ ok: false, reason, userId: 'u', deviceId });

export function refreshTokenConformance(runBare: Run): void {
  // User u with devices d1 and d2: tokens are stored for existing devices only.
  const run: Run = (fn) =>
    runBare(async (s) => {
      await s.createUser({ userId: 'u', createdAt: 0 }, { userId: 'u', deviceId: 'd1', identityKey: new Uint8Array(32), createdAt: 0 });
      await s.addDevice({ userId: 'u', deviceId: 'd2', identityKey: new Uint8Array(32), createdAt: 0 });
      await fn(s);
    });
  describe('refresh tokens', () => {
    test('no token is stored for a device that does not exist (or was removed)', run(async (s) => {
      const token = (tokenHash: string, deviceId: string) => ({ tokenHash, userId: 'u', deviceId, issuedAt: 1, expiresAt: DAY });
      equal(await s.putRefreshToken(token('x1', 'd9'), 16), false);
      equal(await s.removeDevice('u', 'd2', 1), 'removed');
      equal(await s.putRefreshToken(token('x2', 'd2'), 16), false);
      deepStrictEqual(await present(s, 'x1', 'y1', 2), REFUSED('unknown'));
      deepStrictEqual(await present(s, 'x2', 'y2', 2), REFUSED('unknown'));
      equal(await s.putRefreshToken(token('x3', 'd1'), 16), true);
    }));

    test('a renewal racing a sign-out or a removal leaves no token that renews afterwards', run(async (s) => {
      for (let i = 0; i < 20; i++) {
        await login(s, `s${i}`, 10);
        await Promise.all([present(s, `s${i}`, `s${i}+`, 20), s.resetSessions('u', `epoch${i}`)]);
        equal((await present(s, `s${i}+`, `s${i}++`, 30)).ok, false, `sign-out round ${i}`);
      }
      for (let i = 0; i < 20; i++) {
        const deviceId = `r${i}`;
        await s.addDevice({ userId: 'u', deviceId, identityKey: new Uint8Array(32), createdAt: 0 });
        await login(s, `q${i}`, 10, deviceId);
        await Promise.all([present(s, `q${i}`, `q${i}+`, 20), s.removeDevice('u', deviceId, 20), s.putRefreshToken({ tokenHash: `p${i}`, userId: 'u', deviceId, issuedAt: 20, expiresAt: DAY }, 16)]);
        equal((await present(s, `q${i}+`, `q${i}++`, 30)).ok, false, `removal round ${i}: the successor`);
        equal((await present(s, `p${i}`, `p${i}+`, 30)).ok, false, `removal round ${i}: a login's token`);
      }
    }));

    test('a token renews once into its successor, which renews in turn; unknown is refused', run(async (s) => {
      await login(s, 't1', 100);
      await rejects(login(s, 't1', 100, 'd2')); // a repeated hash is a bug, never rebound
      deepStrictEqual(await present(s, 't1', 't2', 200), OK());
      deepStrictEqual(await present(s, 't2', 't3', 300), OK());
      deepStrictEqual(await present(s, 'never', 'x', 300), REFUSED('unknown'));
    }));

    test('expiry is refused at its edge', run(async (s) => {
      await s.putRefreshToken({ tokenHash: 'e', userId: 'u', deviceId: 'd1', issuedAt: 0, expiresAt: 500 }, 16);
      deepStrictEqual(await present(s, 'e', 'x', 500), REFUSED('expired'));
      await s.putRefreshToken({ tokenHash: 'f', userId: 'u', deviceId: 'd1', issuedAt: 0, expiresAt: 500 }, 16);
      deepStrictEqual(await present(s, 'f', 'y', 499), OK());
    }));

    test('a lost answer: within the grace the spent token renews again and the unused successor is revoked', run(async (s) => {
      await login(s, 't1', 100);
      deepStrictEqual(await present(s, 't1', 't2', 1000), OK());
      // Exactly at the edge of the grace.
      deepStrictEqual(await present(s, 't1', 't2b', 1000 + GRACE), OK());
      deepStrictEqual(await present(s, 't2b', 't3', 1000 + GRACE + 1), OK(), 'the replacement is live');
      // The revoked t2 was delivered after all: presenting it is reuse.
      deepStrictEqual(await present(s, 't2', 'x', 1000 + GRACE + 2), REVOKED());
      deepStrictEqual(await present(s, 't3', 'y', 1000 + GRACE + 3), REFUSED('unknown'), 'the whole family is revoked');
    }));

    test('a spent token one ms past the grace is reuse: the family is revoked, other logins are not', run(async (s) => {
      await login(s, 'a1', 100);
      await login(s, 'b1', 100);
      deepStrictEqual(await present(s, 'a1', 'a2', 1000), OK());
      deepStrictEqual(await present(s, 'a1', 'x', 1000 + GRACE + 1), REVOKED());
      deepStrictEqual(await present(s, 'a2', 'a3', 1000 + GRACE + 2), REFUSED('unknown'));
      deepStrictEqual(await present(s, 'b1', 'b2', 1000 + GRACE + 3), OK());
    }));

    test('a spent token whose successor was used is reuse, even within the grace', run(async (s) => {
      await login(s, 't1', 100);
      deepStrictEqual(await present(s, 't1', 't2', 1000), OK());
      deepStrictEqual(await present(s, 't2', 't3', 1001), OK());
      deepStrictEqual(await present(s, 't1', 'x', 1002), REVOKED());
      deepStrictEqual(await present(s, 't3', 't4', 1003), REFUSED('unknown'));
    }));

    test('repeated retries do not stretch the grace: it counts from the first spend', run(async (s) => {
      await login(s, 't1', 100);
      deepStrictEqual(await present(s, 't1', 'r1', 1000), OK());
      deepStrictEqual(await present(s, 't1', 'r2', 1000 + GRACE / 2), OK());
      deepStrictEqual(await present(s, 't1', 'r3', 1000 + GRACE + 1), REVOKED());
    }));

    test('a family keeps every spent token until it would have expired: one renewed more than spentKept times meanwhile is revoked', run(async (s) => {
      const policy = { graceMs: 10, spentKept: 3 };
      await login(s, 't0', 0);
      for (let i = 0; i < 3; i++) deepStrictEqual(await present(s, `t${i}`, `t${i + 1}`, (i + 1) * 1000, policy), OK());
      // t0…t2 spent and kept: the next renewal would keep a fourth.
      deepStrictEqual(await present(s, 't3', 't4', 4000, policy), REVOKED('exhausted'));
      deepStrictEqual(await present(s, 't3', 'x', 4001, policy), REFUSED('unknown'), 'the family is gone');
    }));

    test("spent tokens past their expiry are dropped and do not count; until then the oldest still reveals a copy", run(async (s) => {
      const policy = { graceMs: 10, spentKept: 3 };
      const at = (hash: string, next: string, when: number) => s.rotateRefreshToken(hash, { tokenHash: next, issuedAt: when, expiresAt: when + 10_000 }, policy);
      await s.putRefreshToken({ tokenHash: 'a0', userId: 'u', deviceId: 'd1', issuedAt: 0, expiresAt: 10_000 }, 16);
      for (let i = 0; i < 3; i++) deepStrictEqual(await at(`a${i}`, `a${i + 1}`, (i + 1) * 1000), OK());
      // a0 (expiring at 10 000) is dropped by the renewal at 10 000; a1 and a2 still count.
      deepStrictEqual(await at('a3', 'a4', 10_000), OK());
      deepStrictEqual(await at('a0', 'x', 10_001), REFUSED('unknown'));
      deepStrictEqual(await at('a1', 'x', 10_002), REVOKED(), 'a kept spent token: reuse');
      // The same in a family that renews quickly: its first token is not pushed out, so a copy is caught.
      await login(s, 'b0', 20_000);
      for (let i = 0; i < 2; i++) deepStrictEqual(await at(`b${i}`, `b${i + 1}`, 20_001 + i), OK());
      deepStrictEqual(await at('b0', 'x', 20_100), REVOKED());
    }));

    test('a device keeps familiesMax logins: a new one drops the one renewed least recently; other devices are untouched', run(async (s) => {
      await login(s, 'a1', 1, 'd1', 2);
      await login(s, 'b1', 2, 'd1', 2);
      await login(s, 'z1', 2, 'd2', 2);
      deepStrictEqual(await present(s, 'a1', 'a2', 3), OK(), 'a is renewed after b logged in');
      await login(s, 'c1', 4, 'd1', 2);
      deepStrictEqual(await present(s, 'b1', 'x', 5), REFUSED('unknown'), 'b was renewed least recently');
      deepStrictEqual(await present(s, 'a2', 'a3', 6), OK());
      deepStrictEqual(await present(s, 'c1', 'c2', 7), OK());
      deepStrictEqual(await present(s, 'z1', 'z2', 8), OK('d2'));
    }));

    test('40 concurrent logins of one device keep familiesMax of them', run(async (s) => {
      await Promise.all(Array.from({ length: 40 }, (_, i) => login(s, `c${i}`, 100 + i, 'd1', 16)));
      let live = 0;
      for (let i = 0; i < 40; i++) if ((await present(s, `c${i}`, `d${i}`, 1000 + i)).ok) live++;
      equal(live, 16);
    }));

    test("a login drops the device's expired tokens", run(async (s) => {
      await s.putRefreshToken({ tokenHash: 'old', userId: 'u', deviceId: 'd1', issuedAt: 0, expiresAt: 50 }, 16);
      await login(s, 'new', 50);
      deepStrictEqual(await present(s, 'old', 'x', 60), REFUSED('unknown'));
    }));

    test('20 concurrent presentations of one token with no grace: exactly one renews', run(async (s) => {
      await login(s, 'h', 100);
      const policy = { graceMs: -1, spentKept: 8 };
      const all = await Promise.all(Array.from({ length: 20 }, (_, i) => present(s, 'h', `n${i}`, 200, policy)));
      equal(all.filter((r) => r.ok).length, 1);
    }));

    test('20 concurrent presentations within the grace: spentKept of them renew, then the family is revoked', run(async (s) => {
      await login(s, 'h', 100);
      const all = await Promise.all(Array.from({ length: 20 }, (_, i) => present(s, 'h', `n${i}`, 200)));
      equal(all.filter((r) => r.ok).length, POLICY.spentKept, 'each replacement leaves one more spent token');
      equal(all.filter((r) => !r.ok && r.reason === 'exhausted').length, 1);
      for (let i = 0; i < 20; i++) deepStrictEqual(await present(s, `n${i}`, `m${i}`, 300 + i), REFUSED('unknown'), 'nothing of the family is left');
    }));

    test('deleteRefreshTokensOf removes only that device', run(async (s) => {
      await login(s, 'a', 1, 'd1');
      await login(s, 'b', 1, 'd1');
      await login(s, 'c', 1, 'd2');
      equal(await s.deleteRefreshTokensOf('u', 'd1'), 2);
      equal(await s.deleteRefreshTokensOf('u', 'd1'), 0);
      deepStrictEqual(await present(s, 'a', 'x', 2), REFUSED('unknown'));
      deepStrictEqual(await present(s, 'c', 'y', 2), OK('d2'));
    }));
  });
}
