/**
 * The tutorial server's record of one connection (tutorial-chat.ts): where
 * it is in the protocol (`hello` → `handshake` → `chat`, then `closed`),
 * the name and key it announced, its Secure Session, its rate limits, the
 * lines not relayed that it has yet to be told about, and its timers.
 *
 * @module
 */
import type { WebSocket } from 'ws';
import type { PublicKey, SecureSession } from '@parley/themis';
import { TokenBucket } from '../rate-limit.ts';
import type { RelayVerdict } from './relay-budget.ts';
import type { TutorialLimits } from './settings.ts';

export type Phase = 'hello' | 'handshake' | 'chat' | 'closed';

/** Why lines were not relayed, as the sender is told. */
export type DropReason = 'rate' | 'too-long' | Exclude<RelayVerdict, 'relay'>;

export interface Client {
  ws: WebSocket;
  /** The peer's address as the per-address limits count it (address.ts). */
  address: string;
  phase: Phase;
  name: string;
  /** The name's skeleton (names.ts): names alike have the same. */
  skeleton: string;
  publicKey: PublicKey | null;
  session: SecureSession | null;
  invalid: number;
  lines: TokenBucket;
  /** Frames once chatting (TUTORIAL_FRAMES_PER_SECOND_MAX). */
  frames: TokenBucket;
  /** Lines not relayed since the sender was last told, and why. */
  dropped: number;
  droppedWhy: Set<DropReason>;
  /** When the sender was last told about dropped lines (ms), or 0. */
  toldAt: number;
  /** The handshake deadline, then (chat phase) the next dropped-lines notice. */
  timer: NodeJS.Timeout | null;
  /** The next ping, or (awaitingPong) the deadline for its pong. */
  heartbeat: NodeJS.Timeout | null;
  awaitingPong: boolean;
}

/** A connection from `address` (as addressKey counts it), waiting for its hello. */
export function newClient(ws: WebSocket, address: string, limits: Readonly<TutorialLimits>, now: () => number): Client {
  return {
    ws,
    address,
    phase: 'hello',
    name: '',
    skeleton: '',
    publicKey: null,
    session: null,
    invalid: 0,
    lines: new TokenBucket(limits.linesPerSecond, now),
    frames: new TokenBucket(limits.framesPerSecond, now),
    dropped: 0,
    droppedWhy: new Set(),
    toldAt: 0,
    timer: null,
    heartbeat: null,
    awaitingPong: false,
  };
}

const OPEN = 1;
/** Whether the connection is open: its close has not begun (close frame sent or received, or the peer hung up). */
export const live = (c: Client): boolean => c.ws.readyState === OPEN;
