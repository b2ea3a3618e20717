/**
 * The tutorial's connections per address (as address.ts counts them):
 * those still before the end of their handshake and those established,
 * what TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX and
 * TUTORIAL_CLIENTS_PER_ADDRESS_MAX are checked against (tutorial-chat.ts).
 * An address is kept only while it has a connection.
 *
 * @module
 */

/** The connections of one address. */
export interface Counts {
  /** Connections before the end of their handshake. */
  pending: number;
  /** Connections with a completed handshake. */
  established: number;
}

export class AddressCounts {
  readonly #byAddress = new Map<string, Counts>();

  /** The counts of `address` as they stand (zeros, not kept, for one with no connection). */
  peek(address: string): Counts {
    return this.#byAddress.get(address) ?? { pending: 0, established: 0 };
  }

  /** A connection from `address` begins its handshake. */
  pend(address: string): void {
    this.of(address).pending++;
  }

  /** The counts of `address`, kept from now on (until `release` finds it has none). */
  of(address: string): Counts {
    let counts = this.#byAddress.get(address);
    if (counts === undefined) {
      counts = { pending: 0, established: 0 };
      this.#byAddress.set(address, counts);
    }
    return counts;
  }

  /** A connection of `address` ended: `established` if its handshake had completed, else it was pending. */
  release(address: string, established: boolean): void {
    const counts = this.of(address);
    if (established) counts.established--;
    else counts.pending--;
    if (counts.pending <= 0 && counts.established <= 0) this.#byAddress.delete(address);
  }
}
