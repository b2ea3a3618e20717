/**
 * A small typed event emitter. A listener that throws never stops delivery
 * to the others, nor the message stream that emitted: its error goes to
 * `onListenerError` (the client reports it as an `error` event, and an
 * `error` listener that throws is ignored).
 *
 * @module
 */

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  readonly #onListenerError: (event: keyof Events, error: unknown) => void;

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
    return new Promise<Events[K]>((resolve) => {
      const off = this.on(event, (value) => {
        if (!predicate(value)) return;
        off();
        resolve(value);
      });
    });
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  emit<K extends keyof Events>(event: K, value: Events[K]): void {
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
