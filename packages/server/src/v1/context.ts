/**
 * What a v1 request handler gets: who is asking, the server's parts, and
 * how to answer. Keeps handler files free of connection plumbing.
 *
 * @module
 */
import type { BlobPolicy } from './blobs.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Storage } from '../storage/types.ts';
import type { TokenIssuer } from './auth.ts';
import type { ErrorCode } from './frames.ts';
import type { Hub } from './hub.ts';
import type { FailureCounter } from '../rate-limit.ts';
import type { Presence } from '../presence/types.ts';
import type { PresenceAnnouncer } from './presence.ts';

export interface V1Deps {
  storage: Storage;
  hub: Hub;
  tokens: TokenIssuer;
  log: Logger;
  metrics: Metrics;
  /** Failed logins per user, shared by all connections. */
  loginFailures: FailureCounter;
  /** How long blobs live. */
  blobs: BlobPolicy;
  /** Who is online on any process. */
  presence: Presence;
  /** Announces presence changes in order, per user. */
  announcer: PresenceAnnouncer;
}

export interface Me {
  userId: string;
  deviceId: string;
}

export interface HandlerContext {
  me: Me;
  deps: V1Deps;
  /** Answer the request (adds `re`). */
  reply(re: string | undefined, frame: Record<string, unknown>): void;
  /** Send a frame as it is (a handler that places `re` itself, after `t`). */
  send(frame: Record<string, unknown>): void;
  error(re: string | undefined, code: ErrorCode, message: string): void;
}

/** Resolves on a later event-loop turn, after the sockets that are ready have been read (SQLite reads settle at once). */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
