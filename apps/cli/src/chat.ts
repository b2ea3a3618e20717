/**
 * `parley chat <user>`: a direct conversation in the terminal.
 *
 * It logs in, catches up, shows the last messages (decrypted here), then
 * live messages as they arrive, and sends every line typed. Two modes:
 *
 * - **Terminal** (stdin and stdout are TTYs): a `> ` prompt that incoming
 *   messages never break (they are printed above it, the line being typed
 *   is kept), your own lines rewritten as chat lines, "bob is typing…" in
 *   the prompt while typing frames arrive (and typing frames sent, at most
 *   one every 3 s, while you type). `/quit`, Ctrl-D or Ctrl-C leave.
 * - **Lines** (anything else, e.g. a script or a test): every input line is
 *   sent, in order; the conversation (history, incoming and sent messages)
 *   goes to stdout, notes (typing, connection) to stderr; at the end of the
 *   input (or `/quit`) it waits for the messages to be stored by the server
 *   and exits — 0 if all were, 1 otherwise.
 *
 * Lost connections are re-established by the SDK without a word; only one
 * that stays down more than a few seconds is mentioned. Messages typed
 * meanwhile are queued in the store and sent when the connection returns —
 * even on a later run, if you quit first.
 *
 * The conversation on screen and the input loop: chat-view.ts.
 *
 * @module
 */
import { constants as osConstants } from 'node:os';
import type { SdkError } from '@parley/sdk';
import { closeSession, explain, openSession, type StoreOptions } from './account.ts';
import { EXIT_FAILED, usageError } from './cli-error.ts';
import { lastMessages } from './history.ts';
import { checkUserId } from './profile.ts';
import { keysChangedNotice, timeLeft } from './render.ts';
import { View, type Early } from './chat-view.ts';

export interface ChatOptions extends StoreOptions {
  limit?: number;
}

/** Messages of history shown when the chat starts, without --limit. */
export const CHAT_HISTORY_DEFAULT = 20;

export async function chat(peerArg: string, options: ChatOptions): Promise<void> {
  const peer = checkUserId(peerArg);
  const limit = options.limit ?? CHAT_HISTORY_DEFAULT;
  const terminal = process.stdin.isTTY === true && process.stdout.isTTY === true;

  // Everything the client reports before the conversation is on screen waits here.
  let view: View | null = null;
  const early: Early[] = [];
  const notices: string[] = [];
  const notice = (text: string): void => (view === null ? void notices.push(text) : view.notice(text));
  const session = await openSession(options, {
    keysChanged: (c) => notice(keysChangedNotice(c)),
    verificationRequest: (r) => notice(`${r.userId} asks to verify with a secret you both know: leave (/quit) and run 'parley verify ${r.userId} --secret' within ${timeLeft(r.expiresAt)}.`),
    verification: (o) => {
      if (o.state !== 'verified' && o.reason === 'answered-elsewhere') notice(`${o.userId}'s verification request was answered on another of your devices.`);
      if (o.state !== 'verified' && o.reason === 'crowded-out') notice(`${o.userId}'s verification request was not kept (too many were open at once): ask them to start again.`);
      if (o.state === 'aborted' && o.reason === 'peer-aborted') notice(`${o.userId} gave up the verification request.`);
    },
    message: (m) => (view === null ? early.push({ kind: 'message', m }) : view.message(m)),
    decryptionError: (f) => (view === null ? early.push({ kind: 'failure', f }) : view.failure(f)),
    typing: (t) => view?.typingFrame(t),
    presence: (p) => view?.presence(p),
    connection: (c) => view?.connection(c),
    // Background errors (a reconnect attempt that failed, …) are the SDK's to retry; shown only with PARLEY_DEBUG.
    error: (e: SdkError) => {
      if (process.env['PARLEY_DEBUG'] !== undefined) process.stderr.write(`parley: (debug) ${e.code}: ${e.message}\n`);
    },
  });
  try {
    if (peer === session.user) throw usageError(`${peer} is you: give the user to chat with`);
    session.ctx.peer = peer;
    await session.client.synced();
    const roomId = await session.client.startDirect(peer);
    const history = limit > 0 ? await lastMessages(session.client, roomId, limit) : [];
    // Whether the peer is online now; not worth failing the chat over.
    const online = await session.client.presence(roomId).then((m) => m.get(peer) ?? null, () => null);
    view = new View(session, peer, roomId, terminal);
    await view.run(history, early, notices, online);
    // Lines not sent, or the chat ended under the user (this device was removed): a failure.
    if (view.failedSends > 0 || view.endedFor !== null) process.exitCode = EXIT_FAILED;
    // Stopped by a signal (a supervisor, a piped chat's Ctrl-C), after sending what was typed: say so, as the other commands do.
    if (view.endedBy !== null) process.exitCode = 128 + (osConstants.signals[view.endedBy] ?? 0);
  } catch (e) {
    throw explain(e, session.ctx);
  } finally {
    view?.dispose();
    await closeSession(session);
    // Stop reading, so that nothing keeps the process alive.
    process.stdin.pause();
    if (!terminal) process.stdin.destroy();
  }
  if (view?.hungUp === true) {
    // The terminal is gone, and Node 20 aborts at exit when it cannot restore
    // a vanished terminal's mode (nodejs/node#51519). Everything is saved and
    // closed: end as a hung-up process does, by the signal itself (129).
    process.removeAllListeners('SIGHUP');
    process.kill(process.pid, 'SIGHUP');
  }
}
