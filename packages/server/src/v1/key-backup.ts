/**
 * Key backup: a user's device keys, sealed by the client under a passphrase
 * (Secure Cell), kept here as opaque bytes — one per user.
 *
 * A device that has lost its keys cannot log in, so it cannot ask for its
 * backup as an authenticated device. The client therefore derives, besides
 * the sealing key, a *fetch secret* from the passphrase and hands the server
 * its SHA-256 with the backup; `backup.fetch` (allowed before login) returns
 * the backup to whoever presents the secret. Wrong secrets count as failed
 * logins of that user (the same rate limit), so an outsider cannot download
 * the sealed backup to guess the passphrase offline. The server itself can
 * (it holds the backup and the hash): the passphrase's strength is what
 * protects a backup against its host — docs/security.md.
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { z } from 'zod';
import type { HandlerContext, V1Deps } from './context.ts';
import type { BackupFetch, BackupGet, BackupPut, ErrorCode } from './frames.ts';
import { b64 } from './context.ts';

const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

export async function onBackupPut(ctx: HandlerContext, f: z.infer<typeof BackupPut>): Promise<void> {
  const updatedAt = Date.now();
  await ctx.deps.storage.putKeyBackup(ctx.me.userId, { backup: f.backup, authHash: f.fetchSecret === undefined ? null : sha256(f.fetchSecret), updatedAt });
  ctx.deps.log.info({ userId: ctx.me.userId, deviceId: ctx.me.deviceId, bytes: f.backup.length }, 'key backup stored');
  ctx.reply(f.id, { t: 'backup.stored', updatedAt });
}

export async function onBackupGet(ctx: HandlerContext, f: z.infer<typeof BackupGet>): Promise<void> {
  const r = await ctx.deps.storage.getKeyBackup(ctx.me.userId);
  ctx.reply(f.id, { t: 'backup', backup: r === null ? null : b64(r.backup), ...(r !== null && { updatedAt: r.updatedAt }) });
}

/**
 * Before login: the backup of `userId` for the holder of its fetch secret.
 * Unknown user, no backup, no secret set and a wrong secret all answer the
 * same `invalid_credentials` (and count as a failed login of that user).
 */
export async function onBackupFetch(
  deps: V1Deps,
  f: z.infer<typeof BackupFetch>,
  reply: (frame: Record<string, unknown>) => void,
  fail: (re: string | undefined, code: ErrorCode, message: string) => void,
): Promise<void> {
  // The try counts as a failure from here until it succeeds: guesses made at once cannot pass the limit together.
  const attempt = await deps.loginFailures.begin(f.userId);
  if (attempt === null) return fail(f.id, 'rate_limited', 'too many failed attempts for this user; wait a minute');
  const r = await deps.storage.getKeyBackup(f.userId);
  const presented = sha256(f.fetchSecret);
  const ok = r !== null && r.authHash !== null && r.authHash.length === presented.length && timingSafeEqual(r.authHash, presented);
  if (!ok || r === null) return fail(f.id, 'invalid_credentials', 'no backup for this user and secret');
  await attempt.succeeded();
  reply({ t: 'backup', ...(f.id !== undefined && { re: f.id }), backup: b64(r.backup), updatedAt: r.updatedAt });
}
