/**
 * `@parley/sdk`: a Parley device in a few calls — register or log in,
 * start a direct conversation, send and receive end-to-end encrypted
 * messages through a Parley server that only ever relays ciphertext.
 *
 * @example
 * ```ts
 * import { ParleyClient } from '@parley/sdk';
 * const alice = await ParleyClient.register('ws://localhost:8080', 'alice', 'laptop');
 * alice.on('message', (m) => console.log(m.sender.userId, m.kind === 'text' ? m.text : m.bytes));
 * const room = await alice.startDirect('bob');
 * await alice.send(room, 'hi bob');
 * ```
 *
 * @module
 */
export { ParleyClient, type ClientOptions, type DeviceLinkRequest, type RestoredClient } from './client.ts';
export type { SendResult } from './outbound.ts';
export type { SafetyNumberReport, SafetyNumberDevice } from './key-review.ts';
export { restoredDeviceIds, type StoredKeyBackup } from './device-restore.ts';
export { MemoryClientStore, type ClientStore } from './client-store.ts';
export type { QueuedMessage } from './outbound-queue.ts';
export { SdkError, type SdkErrorCode, type DecryptionFailureReason } from './errors.ts';
export type { ReceiptEvent, PresenceEvent, ReadMarker } from './events.ts';
export type { ChatMessage, KeptMessage, MessageMeta, DecryptionFailure, MembershipEvent, HistoryEntry, ConnectionEvent, ClientEvents, TypingEvent } from './events.ts';
export type { KeysChange, ChangedKey, DeviceKey, PeerRecord, VerifiedKeys } from './peer-keys.ts';
export type { KeptVerification, VerificationOutcome, VerificationRequest, VerificationEndReason } from './peer-verification.ts';
export type { Listener } from './emitter.ts';
export type { Account } from './auth.ts';
export type { DeviceRef, RoomSummary } from './frames.ts';
export type { SkippedDevice } from './room-cipher.ts';
export type { Transport, TransportEvents, TransportFactory } from './transport.ts';
export { browserWebSocketTransport } from './transport-browser.ts';
export { CONTENT_BYTES_MAX } from './payload.ts';
export { FILE_BYTES_MAX, SEAL_OVERHEAD_BYTES, type FileRef } from './file-transfer.ts';
export * as limits from './limits.ts';
export { safetyNumber, formatSafetyNumber, safetyNumberBinding, type SafetyNumberParty } from './safety-number.ts';
export { VerificationSession, type VerificationState, type VerificationUpdate, type VerificationIgnored, type VerificationAbortReason } from './verification.ts';
export { decodeVerificationMessage, type VerificationMessage, type PeerAbortReason } from './verification-message.ts';
export type { VerificationParties } from './verification-secret.ts';
export { exportKeyBackup, importKeyBackup, keyBackupDeviceId, openKeyBackup, readKeyBackupOwner, readKeyBackupReplaces, backupFetchSecret, type KeyBackupOwner, type KeyBackupReplaced, type RestoredKeys } from './key-backup.ts';
export {
  searchMessages,
  newestFirst,
  matchesQuery,
  parseSearchQuery,
  normaliseForSearch,
  SEARCH_RESULTS_DEFAULT,
  SEARCH_RESULTS_MAX,
  SEARCH_WORDS_MAX,
  type SearchQuery,
  type SearchOptions,
} from './search.ts';
export { IndexedDbClientStore, INDEXEDDB_STORE_FORMAT, STORE_NAME_MAX, type IndexedDbStoreOptions } from './indexeddb-store.ts';
export type { Passphrase } from './sealed-records.ts';
