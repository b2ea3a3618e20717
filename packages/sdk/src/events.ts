/**
 * What a client reports: decrypted messages, messages it could not decrypt,
 * room membership changes, and its connection's ups and downs. These are
 * also the items `history` returns.
 *
 * @module
 */
import type { DecryptionFailureReason, SdkError } from './errors.ts';
import type { DeviceRef } from './frames.ts';
import type { PayloadContent } from './payload.ts';
import type { KeysChange } from './peer-keys.ts';
import type { VerificationOutcome, VerificationRequest } from './peer-verification.ts';

/** A message this device decrypted (or sent). */
export type ChatMessage = PayloadContent & MessageMeta;

/** What the store keeps of a room message: a ChatMessage, or the trace of a control message (verification), without its content. */
export type KeptMessage = ChatMessage | ({ readonly kind: 'control'; readonly controlType?: number } & MessageMeta);

export interface MessageMeta {
  readonly roomId: string;
  /** Position in the room's log (server-assigned, gapless per room). */
  readonly seq: number;
  /** The sender's message id (from inside the encrypted payload). */
  readonly id: string;
  /** The sending device, as authenticated by the envelope. */
  readonly sender: DeviceRef;
  /** True when the sender is this user (this device or another of the user's devices). */
  readonly outgoing: boolean;
  /** The sender's clock, ms since the epoch (authenticated, but only as honest as the sender). */
  readonly sentAt: number;
  /** The server's clock when it stored the message, ms since the epoch. */
  readonly serverTs: number;
}

/** A room message this device cannot show. The stream goes on. */
export interface DecryptionFailure {
  readonly roomId: string;
  readonly seq: number;
  /** The sending device as the server names it (not authenticated: the envelope did not open). */
  readonly from: DeviceRef;
  readonly clientId: string;
  readonly serverTs: number;
  readonly reason: DecryptionFailureReason;
}

/** A membership change in a room's log (`member-added`, `member-removed`, `role-changed`). */
export interface MembershipEvent {
  readonly roomId: string;
  readonly seq: number;
  readonly kind: string;
  /** The member concerned. */
  readonly userId: string;
  readonly role: string | null;
  /** Who made the change. */
  readonly by: string | null;
  readonly serverTs: number;
}

export type HistoryEntry =
  | ({ readonly type: 'message' } & ChatMessage)
  /** A step of an identity verification (its content is the client's, and not kept). */
  | ({ readonly type: 'verification' } & MessageMeta)
  | ({ readonly type: 'undecryptable' } & DecryptionFailure)
  | ({ readonly type: 'membership' } & MembershipEvent);

/** Someone in a room is typing (ephemeral: sent by `client.typing`, relayed to connected devices only, never stored). */
export interface TypingEvent {
  readonly roomId: string;
  /** The typing device, as the server names it (not end-to-end authenticated). */
  readonly from: DeviceRef;
}

/** A room member's device reported messages up to `seq` delivered to it, or read (not end-to-end authenticated: the server relays it). */
export interface ReceiptEvent {
  readonly roomId: string;
  readonly seq: number;
  readonly kind: 'delivered' | 'read';
  readonly from: DeviceRef;
}

/** A user who shares a room with this one came online (its first connection) or went offline (its last one closed). */
export interface PresenceEvent {
  readonly userId: string;
  readonly online: boolean;
}

/** A member's read marker in a room (`client.receipts`): the highest seq delivered to and read by any of its devices. */
export interface ReadMarker {
  readonly userId: string;
  readonly delivered: number;
  readonly read: number;
}

export type ConnectionEvent =
  /** Authenticated (first time, after a reconnect, or after renewing the access token). */
  | { readonly state: 'connected'; readonly renewal: boolean }
  /** The initial sync after connecting is done: everything stored while away has been delivered. */
  | { readonly state: 'synced' }
  /** The connection was lost. */
  | { readonly state: 'disconnected'; readonly code: number; readonly reason: string }
  /** The next connection attempt is scheduled. */
  | { readonly state: 'reconnecting'; readonly attempt: number; readonly delayMs: number }
  /**
   * The client stopped for good without `close()` being called: this device
   * was removed (`DEVICE_REMOVED`), or the server speaks no common protocol
   * version, or reconnecting is off. Everything waiting fails with `error`.
   */
  | { readonly state: 'ended'; readonly error: SdkError };

export interface ClientEvents {
  message: ChatMessage;
  decryptionError: DecryptionFailure;
  membership: MembershipEvent;
  /** Another member's device (or another device of this user) is typing in a room. */
  typing: TypingEvent;
  /** Another member's delivery or read receipt. */
  receipt: ReceiptEvent;
  /** A user sharing a room came online or went offline. */
  presence: PresenceEvent;
  connection: ConnectionEvent;
  /**
   * A user's device keys (this user's too) are not what they were: devices
   * added or removed, or — never accepted — a device listed with another
   * identity key. Show it: an added device the user does not expect may be
   * someone reading along.
   */
  keysChanged: KeysChange;
  /** Another user asks to verify with a shared secret: answer with `verify` / `acceptVerification`, or `cancelVerification`. */
  verificationRequest: VerificationRequest;
  /** A verification ended (started here or answered here). */
  verification: VerificationOutcome;
  /** Background failures (a reconnect attempt, prekey upkeep, a listener that threw): reported, never fatal. */
  error: SdkError;
}
