/**
 * The v1 endpoint's close codes and the limits it tells a client in
 * `welcome` (docs/protocol.md, "Version negotiation" and "Limits"), in one
 * place: what a client may rely on, apart from the connection that
 * enforces it. Each limit is explained in limits.ts.
 *
 * @module
 */
import {
  BLOB_BYTES_MAX,
  BLOB_CHUNK_BYTES,
  BODY_BYTES_MAX,
  DEVICES_PER_USER_MAX,
  FRAME_BYTES_MAX,
  FRAMES_PER_SECOND,
  HISTORY_PAGE_BYTES_MAX,
  HISTORY_PAGE_MAX,
  INVALID_FRAMES_MAX,
  LOGIN_ATTEMPTS_MAX,
  MESSAGES_PER_SECOND,
  REFRESH_TOKEN_TTL_S,
  ROOM_MEMBERS_MAX,
  SEND_BUFFER_BYTES_MAX,
  ROOMS_ADDED_BY_OTHERS_MAX,
  ROOMS_PER_USER_MAX,
  SYNC_ENTRIES_PER_ROOM_MAX,
  SYNC_FORMER_ROOMS_MAX,
  SYNC_DRAIN_TIMEOUT_MS,
  SYNC_PAUSE_BYTES,
  MAILBOX_PAGE,
  UNAUTHENTICATED_LIFETIME_MS,
  HEARTBEAT_MS,
  MAILBOX_FROM_SENDER_MAX,
  MAILBOX_MAX,
  MAILBOX_PAYLOAD_BYTES_MAX,
  LOGIN_FAILURES_PER_USER_PER_MINUTE,
  ONE_TIME_PREKEYS_MAX,
  ONE_TIME_PREKEYS_PER_UPLOAD_MAX,
  PQ_PREKEY_BYTES_MAX,
  PREKEY_BYTES,
  KEY_PACKAGES_MAX,
  KEY_PACKAGES_PER_UPLOAD_MAX,
  KEY_PACKAGE_BYTES_MAX,
  KEY_BACKUP_BYTES_MAX,
  BLOB_BYTES_PER_USER_MAX,
  BLOB_COUNT_PER_USER_MAX,
  BLOB_UPLOADS_OPEN_MAX,
} from '../limits.ts';
import type { BlobPolicy } from './blobs.ts';

export const CLOSE_V1 = Object.freeze({ GOING_AWAY: 1001, PROTOCOL_ERROR: 1002, POLICY: 1008, INTERNAL: 1011, RESYNC: 1012, TOKEN_EXPIRED: 4001, SIGNED_OUT: 4002, DEVICE_REMOVED: 4003 });

/** `welcome.limits`: every limit a client is held to, under its wire name (blob lifetimes from the server's configuration). */
export function welcomeLimits(blobs: BlobPolicy): Record<string, number> {
  return {
    frameBytes: FRAME_BYTES_MAX,
    bodyBytes: BODY_BYTES_MAX,
    messagesPerSecond: MESSAGES_PER_SECOND,
    framesPerSecond: FRAMES_PER_SECOND,
    historyPage: HISTORY_PAGE_MAX,
    historyPageBytes: HISTORY_PAGE_BYTES_MAX,
    syncEntriesPerRoom: SYNC_ENTRIES_PER_ROOM_MAX,
    roomsPerUser: ROOMS_PER_USER_MAX,
    roomsAddedByOthers: ROOMS_ADDED_BY_OTHERS_MAX,
    roomMembers: ROOM_MEMBERS_MAX,
    devicesPerUser: DEVICES_PER_USER_MAX,
    mailbox: MAILBOX_MAX,
    mailboxFromSender: MAILBOX_FROM_SENDER_MAX,
    mailboxPayloadBytes: MAILBOX_PAYLOAD_BYTES_MAX,
    blobBytes: BLOB_BYTES_MAX,
    blobChunkBytes: BLOB_CHUNK_BYTES,
    blobUploadTtlS: blobs.uploadTtlMs / 1000,
    blobRetentionDays: blobs.retentionMs === null ? 0 : blobs.retentionMs / 86_400_000,
    unauthenticatedLifetimeMs: UNAUTHENTICATED_LIFETIME_MS,
    heartbeatMs: HEARTBEAT_MS,
    invalidFrames: INVALID_FRAMES_MAX,
    loginAttempts: LOGIN_ATTEMPTS_MAX,
    loginFailuresPerUserPerMinute: LOGIN_FAILURES_PER_USER_PER_MINUTE,
    syncFormerRooms: SYNC_FORMER_ROOMS_MAX,
    oneTimePrekeys: ONE_TIME_PREKEYS_MAX,
    oneTimePrekeysPerUpload: ONE_TIME_PREKEYS_PER_UPLOAD_MAX,
    pqPrekeyBytes: PQ_PREKEY_BYTES_MAX,
    keyPackages: KEY_PACKAGES_MAX,
    keyPackagesPerUpload: KEY_PACKAGES_PER_UPLOAD_MAX,
    keyPackageBytes: KEY_PACKAGE_BYTES_MAX,
    keyBackupBytes: KEY_BACKUP_BYTES_MAX,
    blobBytesPerUser: BLOB_BYTES_PER_USER_MAX,
    blobCountPerUser: BLOB_COUNT_PER_USER_MAX,
    blobUploadsOpen: BLOB_UPLOADS_OPEN_MAX,
    prekeyBytes: PREKEY_BYTES,
    mailboxPage: MAILBOX_PAGE,
    refreshTokenTtlS: REFRESH_TOKEN_TTL_S,
    sendBufferBytes: SEND_BUFFER_BYTES_MAX,
    syncPauseBytes: SYNC_PAUSE_BYTES,
    syncDrainTimeoutMs: SYNC_DRAIN_TIMEOUT_MS,
  };
}
