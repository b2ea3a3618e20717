/**
 * Fan-out within one process: a publish is handed to the local subscriber
 * synchronously, so deliveries leave in the order they were published.
 *
 * @module
 */
import type { Delivery, FanOut } from './types.ts';

export class InProcessFanOut implements FanOut {
  readonly node = 'local';
  #handlers: ((d: Delivery) => void)[] = [];

  publish(delivery: Delivery): void {
    for (const h of this.#handlers) h(delivery);
  }

  subscribe(handler: (delivery: Delivery) => void): void {
    this.#handlers.push(handler);
  }

  /** Nothing between publisher and subscriber can fail. */
  readonly healthy = true;
  onHealth(): void {}
  onLost(): void {}

  async close(): Promise<void> {
    this.#handlers = [];
  }
}
