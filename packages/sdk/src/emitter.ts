/**
 * A small typed event emitter. A listener that throws never stops delivery
 * to the others, nor the message stream that emitted: its error goes to
 * `onListenerError` (the client reports it as an `error` event, and an
 * `error` listener that throws is ignored). Once closed it emits nothing
 * more, and every `next` still waiting rejects.
 *
 * @module
 */

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  readonly #onListenerError: (event: keyof Events, error: unknown) => void;
  /** The `next` calls still waiting: each rejects with the error `close` gets. */
  readonly #waiting = new Set<(error: unknown) => void>();
  #closed: { error: unknown } | null = null;

  constructor(onListenerError: (event: keyof Events, error: unknown) => void = () => undefined) {
    this.#onListenerError = onListenerError;
  }

  /** Add a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.#listeners.get(event)?.delete(listener as Listener<never>);
  }

  /** Resolve with the next value of `event` that satisfies `predicate`. */
  next<K extends keyof Events>(event: K, predicate: (value: Events[K]) => boolean = () => true): Promise<Events[K]> {
    if (this.#closed !== null) return Promise.reject(this.#closed.error);
    return new Promise<Events[K]>((resolve, reject) => {
      const fail = (error: unknown): void => {
        off();
        reject(error);
      };
      const off = this.on(event, (value) => {
        if (!predicate(value)) return;
        off();
        this.#waiting.delete(fail);
        resolve(value);
      });
      this.#waiting.add(fail);
    });
  }

  /** Emit nothing more; every `next` still waiting rejects with `error`. Listeners are let go. */
  close(error: unknown): void {
    if (this.#closed !== null) return;
    this.#closed = { error };
    for (const fail of [...this.#waiting]) fail(error);
    this.#waiting.clear();
    this.#listeners.clear();
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  emit<K extends keyof Events>(event: K, value: Events[K]): void {
    if (this.#closed !== null) return;
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(value);
      } catch (e) {
        try {
          this.#onListenerError(event, e);
        } catch {
          // An error handler that throws has nowhere left to report to.
        }
      }
    }
  }
}
