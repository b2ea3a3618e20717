/**
 * The tutorial endpoint's close codes and limits, in one place: a
 * TutorialChat enforces TUTORIAL_LIMITS (the constants of limits.ts, where
 * each is explained) unless a test gives it smaller ones.
 *
 * @module
 */
import {
  INVALID_FRAMES_MAX,
  TUTORIAL_CLIENTS_MAX,
  TUTORIAL_CLIENTS_PER_ADDRESS_MAX,
  TUTORIAL_FRAMES_PER_SECOND_MAX,
  TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX,
  TUTORIAL_LINE_BYTES_MAX,
  TUTORIAL_LINES_PER_SECOND,
  TUTORIAL_PING_INTERVAL_MS,
  TUTORIAL_PONG_TIMEOUT_MS,
  TUTORIAL_RELAY_UNIT_BYTES,
  TUTORIAL_RELAY_UNITS_PER_SECOND,
  TUTORIAL_SEND_BUFFER_BYTES_MAX,
  TUTORIAL_SEND_BUFFER_BYTES_TOTAL_MAX,
  TUTORIAL_SEND_STALL_MS,
  UNAUTHENTICATED_LIFETIME_MS,
} from '../limits.ts';

/** WebSocket close codes used here (RFC 6455 §7.4.1, 4000+ private). */
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  POLICY: 1008,
  TRY_AGAIN_LATER: 1013,
  REPLACED: 4000,
});

/** The limits a TutorialChat enforces: those of limits.ts (TUTORIAL_LIMITS) unless a test gives smaller ones. */
export interface TutorialLimits {
  /** TUTORIAL_CLIENTS_MAX */
  clients: number;
  /** TUTORIAL_CLIENTS_PER_ADDRESS_MAX */
  clientsPerAddress: number;
  /** TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX */
  handshakesPerAddress: number;
  /** UNAUTHENTICATED_LIFETIME_MS */
  handshakeMs: number;
  /** TUTORIAL_LINES_PER_SECOND */
  linesPerSecond: number;
  /** TUTORIAL_FRAMES_PER_SECOND_MAX */
  framesPerSecond: number;
  /** TUTORIAL_LINE_BYTES_MAX */
  lineBytes: number;
  /** INVALID_FRAMES_MAX */
  invalidFrames: number;
  /** TUTORIAL_RELAY_UNITS_PER_SECOND */
  relayUnitsPerSecond: number;
  /** TUTORIAL_RELAY_UNIT_BYTES */
  relayUnitBytes: number;
  /** TUTORIAL_SEND_BUFFER_BYTES_MAX */
  sendBufferBytes: number;
  /** TUTORIAL_SEND_BUFFER_BYTES_TOTAL_MAX */
  sendBufferBytesTotal: number;
  /** TUTORIAL_SEND_STALL_MS */
  sendStallMs: number;
  /** TUTORIAL_PING_INTERVAL_MS */
  pingIntervalMs: number;
  /** TUTORIAL_PONG_TIMEOUT_MS */
  pongTimeoutMs: number;
}

export const TUTORIAL_LIMITS: Readonly<TutorialLimits> = Object.freeze({
  clients: TUTORIAL_CLIENTS_MAX,
  clientsPerAddress: TUTORIAL_CLIENTS_PER_ADDRESS_MAX,
  handshakesPerAddress: TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX,
  handshakeMs: UNAUTHENTICATED_LIFETIME_MS,
  linesPerSecond: TUTORIAL_LINES_PER_SECOND,
  framesPerSecond: TUTORIAL_FRAMES_PER_SECOND_MAX,
  lineBytes: TUTORIAL_LINE_BYTES_MAX,
  invalidFrames: INVALID_FRAMES_MAX,
  relayUnitsPerSecond: TUTORIAL_RELAY_UNITS_PER_SECOND,
  relayUnitBytes: TUTORIAL_RELAY_UNIT_BYTES,
  sendBufferBytes: TUTORIAL_SEND_BUFFER_BYTES_MAX,
  sendBufferBytesTotal: TUTORIAL_SEND_BUFFER_BYTES_TOTAL_MAX,
  sendStallMs: TUTORIAL_SEND_STALL_MS,
  pingIntervalMs: TUTORIAL_PING_INTERVAL_MS,
  pongTimeoutMs: TUTORIAL_PONG_TIMEOUT_MS,
});
