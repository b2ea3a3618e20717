/**
 * WAL checkpoints for the SQLite store, run off the event loop.
 *
 * In WAL mode every commit appends to `parley.db-wal`; a checkpoint copies
 * those pages back into the database file and fsyncs it. By default SQLite
 * runs one inside whichever commit pushes the WAL past 1000 pages — on the
 * server's event loop, where copying and fsyncing megabytes stalls every
 * connection for tens of milliseconds (the p99 spikes in
 * bench/SERVER-RESULTS.md). The server's connection turns that off
 * (`wal_autocheckpoint = 0`) and this worker thread, on its own connection,
 * runs PASSIVE checkpoints instead: they never take the write lock, so
 * commits go on while pages are copied, and SQLite restarts the WAL from the
 * beginning at the next commit once a checkpoint has copied everything.
 *
 * Run as a worker (`workerData: { file }`); exits when the parent closes its
 * port or posts 'stop'. The parent-side handle is `Checkpointer`.
 *
 * @module
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** How often the worker checkpoints while the server writes (ms). */
export const CHECKPOINT_INTERVAL_MS = 250;

interface CheckpointerData {
  /** Tells this worker apart from other Parley workers that import this module. */
  role: 'parley-sqlite-checkpointer';
  file: string;
}

/** Parent side: starts the worker; `stop()` ends it after a last checkpoint. */
export class Checkpointer {
  readonly #worker: Worker;
  #stopped: Promise<void> | null = null;
  #exited = false;

  constructor(file: string) {
    this.#worker = new Worker(new URL(import.meta.url), { workerData: { role: 'parley-sqlite-checkpointer', file } satisfies CheckpointerData });
    // A failing checkpointer must never take the server down: the WAL then
    // grows until the next start, when SQLite checkpoints it on open.
    this.#worker.on('error', () => undefined);
    this.#worker.once('exit', () => {
      this.#exited = true;
    });
    this.#worker.unref();
  }

  stop(): Promise<void> {
    if (this.#exited) return Promise.resolve();
    this.#stopped ??= new Promise<void>((resolve) => {
      // Held referenced while it finishes, so the process waits for it.
      this.#worker.ref();
      this.#worker.once('exit', () => resolve());
      this.#worker.postMessage('stop');
    });
    return this.#stopped;
  }
}

function runWorker(data: CheckpointerData): void {
  const db = new Database(data.file);
  db.pragma('busy_timeout = 5000');
  db.pragma('wal_autocheckpoint = 0');
  // With nothing new in the WAL a PASSIVE checkpoint only reads the WAL
  // index, so a fixed interval costs nothing when the server is idle.
  const checkpoint = (): void => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // SQLITE_BUSY (another checkpoint is running): try again next tick.
    }
  };
  const timer = setInterval(checkpoint, CHECKPOINT_INTERVAL_MS);
  parentPort?.on('message', (m) => {
    if (m !== 'stop') return;
    clearInterval(timer);
    checkpoint();
    db.close();
    parentPort?.close();
  });
}

if (!isMainThread && (workerData as Partial<CheckpointerData> | null)?.role === 'parley-sqlite-checkpointer') runWorker(workerData as CheckpointerData);
