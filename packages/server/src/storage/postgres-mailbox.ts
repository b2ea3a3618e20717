/**
 * The per-device mailbox in the PostgreSQL store (v1/mailbox.ts): messages
 * addressed to one device, numbered by the device's `mailbox_counters` row
 * (locked for the enqueue's transaction, so concurrent enqueues of one
 * device take turns), a repeat (same sender device and client id) answered
 * with the stored one, at most `max` held, deleted when acknowledged. Apart
 * from the storage: tables and rules of its own, beside the room log. An
 * enqueue holds the device's row in its transaction
 * (`PostgresConnection.deviceTx`): no entry outlives a removal.
 *
 * @module
 */
import { MAILBOX_COLUMNS, assertNonNegative, assertPage, bytes, toMailboxEntry, type MailboxRow } from './_shared.ts';
import { MailboxSenderFullError, type MailboxEnqueued, type MailboxEntry, type MailboxInput } from './types.ts';
import { Rollback, type PostgresConnection } from './postgres-connection.ts';
import type { MailboxPart } from './_composed.ts';

export class PostgresMailbox implements MailboxPart {
  readonly #sql: PostgresConnection;

  constructor(sql: PostgresConnection) {
    this.#sql = sql;
  }

  async enqueueMailbox(userId: string, deviceId: string, input: MailboxInput, max: number, maxFromSender = max): Promise<MailboxEnqueued | null> {
    assertNonNegative(max, 'max');
    assertNonNegative(maxFromSender, 'maxFromSender');
    const payload = bytes(input.payload);
    return this.#sql.deviceTx(userId, deviceId, async (c): Promise<MailboxEnqueued | null | Rollback<MailboxEnqueued | null>> => {
      // Create-or-lock the device's counter row: concurrent enqueues for one
      // device queue here, so the checks below and the insert see each other.
      const counter = await this.#sql.one<{ last: number }>(
        `INSERT INTO mailbox_counters (user_id, device_id, last_id) VALUES ($1, $2, 0)
         ON CONFLICT (user_id, device_id) DO UPDATE SET last_id = mailbox_counters.last_id
         RETURNING last_id AS last`,
        [userId, deviceId],
        c,
      );
      if (!counter) throw new Error('storage: mailbox counter upsert returned nothing');
      const existing = await this.#sql.one<MailboxRow>(
        `SELECT ${MAILBOX_COLUMNS} FROM mailbox
         WHERE user_id = $1 AND device_id = $2 AND from_user_id = $3 AND from_device_id = $4 AND client_id = $5`,
        [userId, deviceId, input.fromUserId, input.fromDeviceId, input.clientId],
        c,
      );
      if (existing) return new Rollback({ entry: toMailboxEntry(existing), duplicate: true });
      const held = await this.#sql.count('SELECT count(*) AS n FROM mailbox WHERE user_id = $1 AND device_id = $2', [userId, deviceId], c);
      if (held >= max) return new Rollback(null);
      const fromSender = await this.#sql.count(
        'SELECT count(*) AS n FROM mailbox WHERE user_id = $1 AND device_id = $2 AND from_user_id = $3',
        [userId, deviceId, input.fromUserId],
        c,
      );
      if (fromSender >= maxFromSender) throw new MailboxSenderFullError(userId, deviceId, input.fromUserId);
      const entry: MailboxEntry = {
        id: counter.last + 1,
        fromUserId: input.fromUserId,
        fromDeviceId: input.fromDeviceId,
        clientId: input.clientId,
        payload,
        createdAt: input.createdAt,
      };
      await this.#sql.query(
        'UPDATE mailbox_counters SET last_id = $3 WHERE user_id = $1 AND device_id = $2',
        [userId, deviceId, entry.id],
        c,
      );
      await this.#sql.query(
        `INSERT INTO mailbox (user_id, device_id, id, from_user_id, from_device_id, client_id, payload, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [userId, deviceId, entry.id, entry.fromUserId, entry.fromDeviceId, entry.clientId, payload, entry.createdAt],
        c,
      );
      return { entry, duplicate: false };
    });
  }

  async readMailbox(userId: string, deviceId: string, afterId: number, limit: number): Promise<MailboxEntry[]> {
    assertNonNegative(afterId, 'afterId');
    assertPage(limit);
    const sql = `SELECT ${MAILBOX_COLUMNS} FROM mailbox
      WHERE user_id = $1 AND device_id = $2 AND id > $3 ORDER BY id LIMIT $4`;
    return (await this.#sql.query<MailboxRow>(sql, [userId, deviceId, afterId, limit])).rows.map(toMailboxEntry);
  }

  async ackMailbox(userId: string, deviceId: string, upToId: number): Promise<number> {
    assertNonNegative(upToId, 'upToId');
    const sql = 'DELETE FROM mailbox WHERE user_id = $1 AND device_id = $2 AND id <= $3';
    return this.#sql.changed(sql, [userId, deviceId, upToId]);
  }
}
