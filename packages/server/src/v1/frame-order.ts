/**
 * The order of one connection's frames and answers (docs/protocol.md): a
 * connection's frames are handled one after another, in arrival order, and
 * answered in that order — refusals included.
 *
 * ```
 *  frames ──▶ handled at once (nothing unfinished before it, a handler that does not await)
 *         └─▶ queued: each on a later event-loop turn, after the one before it
 *  publish ──▶ starts at once, even behind unacknowledged publishes (they share one commit);
 *              its ack waits for the answers before it
 *  any other frame behind an unacknowledged publish ──▶ waits for that ack
 *              (its answer follows it, and what it reads includes the publish)
 * ```
 *
 * A queued frame starts on a later turn: SQLite reads settle at once, so
 * without that hop a backlog of expensive requests (each within the rate
 * limit) would run as one chain of microtasks and hold every other
 * connection for its whole length. When a frame makes FRAMES_QUEUED_MAX
 * unfinished (the one being handled and those behind it) the socket stops
 * being read until no more than half of that are left.
 *
 * @module
 */
import { FRAMES_QUEUED_MAX } from '../limits.ts';
import { nextTurn } from './context.ts';

/** What FrameOrder needs of its connection. */
export interface FrameOrderHooks<F> {
  /** Handle one frame; a promise when it awaits (the frames behind it wait too). */
  handle(frame: F): void | Promise<void>;
  /** Whether the frame is a publish (it may start behind unacknowledged publishes). */
  isPublish(frame: F): boolean;
  /** A handler threw: the connection cannot go on. */
  failed(err: unknown): void;
  /** Stop reading the socket (TCP pushes back); false if it was not paused (closed). */
  pause(): boolean;
  resume(): void;
  readonly paused: boolean;
}

export class FrameOrder<F> {
  readonly #hooks: FrameOrderHooks<F>;
  /** Frames are handled one at a time, in arrival order. */
  #queue: Promise<void> = Promise.resolve();
  /** Frames whose handling has not finished (0: the next one runs at once). */
  #queued = 0;
  /** Answers held back behind a publish still committing; `#answered` settles once all are sent. */
  #unanswered = 0;
  #answered: Promise<void> = Promise.resolve();
  /** Publishes accepted but not yet answered. */
  readonly #inFlight = new Set<Promise<void>>();

  constructor(hooks: FrameOrderHooks<F>) {
    this.#hooks = hooks;
  }

  /** A frame has arrived. Returns true when it made the connection stop being read (count the pause). */
  enqueue(frame: F): boolean {
    if (this.#queued === 0 && (this.#unanswered === 0 || this.#hooks.isPublish(frame))) {
      let r: void | Promise<void>;
      try {
        r = this.#hooks.handle(frame);
      } catch (err) {
        this.#hooks.failed(err);
        return false;
      }
      if (r === undefined) return false;
      this.#queued++;
      this.#queue = r.catch((err: unknown) => this.#hooks.failed(err)).finally(() => void this.#queued--);
      return false;
    }
    this.#queued++;
    // Frames of a chunk already read still join the queue: one pause, counted once.
    const paused = this.#queued >= FRAMES_QUEUED_MAX && !this.#hooks.paused && this.#hooks.pause();
    this.#queue = this.#queue
      .then(nextTurn)
      .then(() => (this.#unanswered === 0 || this.#hooks.isPublish(frame) ? this.#hooks.handle(frame) : this.#answered.then(() => this.#hooks.handle(frame))))
      .catch((err: unknown) => this.#hooks.failed(err))
      .finally(() => {
        this.#queued--;
        if (this.#hooks.paused && this.#queued <= FRAMES_QUEUED_MAX / 2) this.#hooks.resume();
      });
    return paused;
  }

  /** Send an answer once the answers held back before it are out (at once when none is). */
  answer(send: () => void): void {
    if (this.#unanswered === 0) {
      send();
      return;
    }
    this.#unanswered++;
    this.#answered = this.#answered
      .then(send)
      .catch((err: unknown) => this.#hooks.failed(err))
      .finally(() => void this.#unanswered--);
  }

  /** The answer to a frame refused before it was queued (over the frame rate), in its place among the others. */
  refuse(send: () => void): void {
    if (this.#queued === 0) this.answer(send);
    else this.#queue = this.#queue.then(() => this.answer(send));
  }

  /**
   * A publish whose append has started: `answer` runs once it settles and
   * every answer before it is out; the frames after it wait for that.
   */
  publish<R>(appended: Promise<R>, answer: (r: PromiseSettledResult<R>) => void): void {
    const before = this.#answered;
    this.#unanswered++;
    const done = appended
      .then(
        (value): PromiseSettledResult<R> => ({ status: 'fulfilled', value }),
        (reason: unknown): PromiseSettledResult<R> => ({ status: 'rejected', reason }),
      )
      .then((settled) => before.then(() => answer(settled)))
      .finally(() => void this.#unanswered--);
    this.#answered = done.catch((err: unknown) => this.#hooks.failed(err));
    this.#inFlight.add(done);
    void done.finally(() => this.#inFlight.delete(done));
  }

  /** Resolves when every frame received so far has been handled and every accepted publish answered. */
  async drain(): Promise<void> {
    await this.#queue;
    await Promise.all([...this.#inFlight]);
  }
}
