/**
 * The writer thread of the server's SQLite store (sqlite-threaded.ts): the
 * one connection that writes, a plain `SqliteStorage`, and the messages
 * between it and the event loop. The event loop sends the write calls of a
 * loop turn as one message, in call order; the thread runs each on its
 * storage (group commit included) and sends back the results that settled
 * in one of its turns as one message. An error crosses as its class name,
 * message and code, and is rebuilt on the other side; a new entry comes
 * back as its seq alone.
 *
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { SqliteStorage } from './sqlite.ts';
import type { AppendResult, Storage } from './types.ts';

/** Storage methods that write: only these are sent to the writer thread. */
export const WRITE_METHODS = [
  'migrate',
  'createUser',
  'addDevice',
  'addDeviceWithin',
  'removeDevice',
  'resetSessions',
  'setSignedPrekey',
  'addOneTimePrekeys',
  'replaceOneTimePrekeys',
  'claimOneTimePrekey',
  'setPqPrekey',
  'addKeyPackages',
  'claimKeyPackage',
  'createRoom',
  'setMember',
  'removeMember',
  'append',
  'enqueueMailbox',
  'ackMailbox',
  'putRefreshToken',
  'rotateRefreshToken',
  'deleteRefreshTokensOf',
  'putKeyBackup',
  'serverSecret',
  'changeMember',
  'setReceipt',
  'createBlob',
  'putBlobChunk',
  'completeBlob',
  'deleteBlob',
  'expireBlobs',
] as const satisfies readonly (keyof Storage)[];

/** Tells the writer thread apart from other Parley workers that import sqlite-threaded.ts: only the thread started with it runs the loop. */
export const WRITER_ROLE = 'parley-sqlite-writer';

export type WriteMethod = (typeof WRITE_METHODS)[number];

export interface Call {
  id: number;
  method: WriteMethod;
  args: unknown[];
}

export type Result = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { name: string; message: string; code?: unknown } };

export type ToWorker = { calls: Call[] } | { close: true };
export type FromWorker = { results: Result[] } | { closed: true };

/** An error from the thread, rebuilt with its class (Error, RangeError, TypeError), message and code. */
export function rebuild(e: { name: string; message: string; code?: unknown }): Error {
  const err = e.name === 'RangeError' ? new RangeError(e.message) : e.name === 'TypeError' ? new TypeError(e.message) : new Error(e.message);
  if (e.code !== undefined) (err as Error & { code?: unknown }).code = e.code;
  return err;
}

/** The thread's loop: run the calls that come in, send back their results. */
export function runWriter(dir: string): void {
  const storage = new SqliteStorage(dir, { role: 'writer' });
  const port = parentPort;
  if (port === null) return;
  let results: Result[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (results.length === 0) return;
    const out = results;
    results = [];
    port.postMessage({ results: out } satisfies FromWorker);
  };
  const settle = (r: Result): void => {
    results.push(r);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  port.on('message', (m: ToWorker) => {
    if ('close' in m) {
      void storage.close().finally(() => {
        flush();
        port.close();
      });
      return;
    }
    for (const c of m.calls) {
      let p: Promise<unknown>;
      try {
        p = (storage[c.method] as (...a: unknown[]) => Promise<unknown>).apply(storage, c.args);
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then(
        (value) => settle({ id: c.id, ok: true, value: c.method === 'append' && !(value as AppendResult).duplicate ? { seq: (value as AppendResult).entry.seq } : value }),
        (e: unknown) => {
          const err = e instanceof Error ? e : new Error(String(e));
          settle({ id: c.id, ok: false, error: { name: err.name, message: err.message, code: (err as { code?: unknown }).code } });
        },
      );
    }
  });
}
