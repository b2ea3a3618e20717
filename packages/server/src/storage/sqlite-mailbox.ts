/**
 * The per-device mailbox in the SQLite store (v1/mailbox.ts): messages
 * addressed to one device, numbered by the device's `mailbox_counters` row,
 * a repeat (same sender device and client id) answered with the stored
 * one, at most `max` held, deleted when acknowledged. Apart from the
 * storage: tables and rules of its own, beside the room log. An enqueue
 * checks, in its transaction, that the device exists
 * (`SqliteConnection.deviceTx`): no entry outlives a removal.
 *
 * @module
 */
import { MAILBOX_COLUMNS, assertNonNegative, assertPage, bytes, toMailboxEntry, type MailboxRow } from './_shared.ts';
import { MailboxSenderFullError, type MailboxEnqueued, type MailboxEntry, type MailboxInput } from './types.ts';
import type { SqliteConnection } from './sqlite-connection.ts';
import type { MailboxPart } from './_composed.ts';

export class SqliteMailbox implements MailboxPart {
  readonly #sql: SqliteConnection;

  constructor(sql: SqliteConnection) {
    this.#sql = sql;
  }

  async enqueueMailbox(userId: string, deviceId: string, input: MailboxInput, max: number, maxFromSender = max): Promise<MailboxEnqueued | null> {
    assertNonNegative(max, 'max');
    assertNonNegative(maxFromSender, 'maxFromSender');
    return this.#sql.deviceTx(userId, deviceId, (): MailboxEnqueued | null => {
      const existing = this.#sql.get<MailboxRow>(
        `SELECT ${MAILBOX_COLUMNS} FROM mailbox
         WHERE user_id = ? AND device_id = ? AND from_user_id = ? AND from_device_id = ? AND client_id = ?`,
        userId, deviceId, input.fromUserId, input.fromDeviceId, input.clientId,
      );
      if (existing) return { entry: toMailboxEntry(existing), duplicate: true };
      const held = this.#sql.count('SELECT count(*) AS n FROM mailbox WHERE user_id = ? AND device_id = ?', userId, deviceId);
      if (held >= max) return null;
      const fromSender = this.#sql.count('SELECT count(*) AS n FROM mailbox WHERE user_id = ? AND device_id = ? AND from_user_id = ?', userId, deviceId, input.fromUserId);
      if (fromSender >= maxFromSender) throw new MailboxSenderFullError(userId, deviceId, input.fromUserId);
      const next = this.#sql.get<{ id: number }>(
        `INSERT INTO mailbox_counters (user_id, device_id, last_id) VALUES (?, ?, 1)
         ON CONFLICT (user_id, device_id) DO UPDATE SET last_id = last_id + 1
         RETURNING last_id AS id`,
        userId, deviceId,
      );
      if (!next) throw new Error('storage: mailbox counter upsert returned nothing');
      const entry: MailboxEntry = {
        id: next.id,
        fromUserId: input.fromUserId,
        fromDeviceId: input.fromDeviceId,
        clientId: input.clientId,
        payload: bytes(input.payload),
        createdAt: input.createdAt,
      };
      this.#sql.run(
        `INSERT INTO mailbox (user_id, device_id, id, from_user_id, from_device_id, client_id, payload, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        userId, deviceId, entry.id, entry.fromUserId, entry.fromDeviceId, entry.clientId, entry.payload,
        entry.createdAt,
      );
      return { entry, duplicate: false };
    });
  }

  async readMailbox(userId: string, deviceId: string, afterId: number, limit: number): Promise<MailboxEntry[]> {
    assertNonNegative(afterId, 'afterId');
    assertPage(limit);
    const sql = `SELECT ${MAILBOX_COLUMNS} FROM mailbox
      WHERE user_id = ? AND device_id = ? AND id > ? ORDER BY id LIMIT ?`;
    return this.#sql.all<MailboxRow>(sql, userId, deviceId, afterId, limit).map(toMailboxEntry);
  }

  async ackMailbox(userId: string, deviceId: string, upToId: number): Promise<number> {
    assertNonNegative(upToId, 'upToId');
    return this.#sql.run('DELETE FROM mailbox WHERE user_id = ? AND device_id = ? AND id <= ?', userId, deviceId, upToId);
  }
}
