/**
 * The fan-out port: how a delivery made on one server process reaches the
 * recipients' connections on every process. One process uses the in-process
 * implementation; several processes sharing rooms use a broker (Redis or
 * NATS, next) behind the same interface.
 *
 * A delivery carries the frame already serialised, so every node writes the
 * same bytes to each socket without rebuilding it.
 *
 * @module
 */

export interface Delivery {
  /** Users whose connected devices receive the frame (a broker serialises it as an array). */
  users: Iterable<string>;
  /** Only this device of the (single) user, for mailbox deliveries. */
  device?: string;
  /** The serialised outgoing frame. */
  frame: string;
  /** A connection to skip (the publisher's own), identified across nodes. */
  skip?: { node: string; connId: number };
  /** Close every connection the frame was written to, with this WebSocket close code (its session was ended). */
  close?: number;
}

export interface FanOut {
  /** This node's id (to recognise its own connections in `skip`). */
  readonly node: string;
  publish(delivery: Delivery): void;
  /** Register the local handler that writes deliveries to this node's sockets. */
  subscribe(handler: (delivery: Delivery) => void): void;
  /**
   * False while deliveries from other nodes cannot arrive (a broker
   * connection is down). Deliveries made meanwhile are lost to this node's
   * sockets (they are in the store); `onHealth` tells when it changes.
   */
  readonly healthy: boolean;
  onHealth(handler: (healthy: boolean) => void): void;
  /**
   * Another node's deliveries to these users (null: to anyone) were lost on
   * the way: their connections here should reconnect and sync.
   */
  onLost(handler: (users: ReadonlySet<string> | null) => void): void;
  close(): Promise<void>;
}
