/**
 * The fan-out conformance suite: node:test cases every `FanOut` must pass.
 * A backend's test file calls `fanOutConformance` with a factory that makes
 * `n` connected nodes (one per server process sharing rooms; the in-process
 * implementation can only make one). Deliveries may arrive asynchronously
 * (a broker), so every check waits for what it expects, with a deadline.
 *
 * What the hub relies on, and so what is checked here:
 * - every node's subscriber receives every delivery, the publisher's own
 *   node included, with users, device, frame and skip intact;
 * - deliveries published by one node arrive at each node in publish order
 *   (per-room order on the wire depends on it);
 * - after `close()` a node delivers nothing more, and closing twice is fine.
 *
 * @module
 */
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Delivery, FanOut } from './types.ts';

export interface FanOutFixture {
  nodes: FanOut[];
  cleanup(): Promise<void>;
}

/** Makes `n` connected nodes (fresh, isolated from other tests). */
export type FanOutFactory = (n: number) => Promise<FanOutFixture>;

interface Seen {
  users: string[];
  device?: string;
  frame: string;
  skip?: { node: string; connId: number };
  close?: number;
}

const DEADLINE_MS = 5000;

function record(node: FanOut): Seen[] {
  const seen: Seen[] = [];
  node.subscribe((d: Delivery) => {
    seen.push({ users: [...d.users], frame: d.frame, ...(d.device !== undefined && { device: d.device }), ...(d.skip !== undefined && { skip: { ...d.skip } }), ...(d.close !== undefined && { close: d.close }) });
  });
  return seen;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > DEADLINE_MS) throw new Error(`fan-out: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function fanOutConformance(name: string, make: FanOutFactory, maxNodes: number): void {
  const withNodes = (n: number, fn: (nodes: FanOut[]) => Promise<void>) => async () => {
    const f = await make(n);
    try {
      await fn(f.nodes);
    } finally {
      await f.cleanup();
    }
  };

  describe(`fan-out conformance: ${name}`, () => {
    test('a delivery reaches the subscriber intact (users as a Set or an array, unicode frame, device, skip)', withNodes(1, async ([a]) => {
      if (a === undefined) throw new Error('no node');
      const seen = record(a);
      a.publish({ users: new Set(['alice', 'bob']), frame: '{"t":"msg","body":"é€😀"}', skip: { node: a.node, connId: 7 } });
      a.publish({ users: ['carol'], device: 'phone', frame: 'x' });
      await until(() => seen.length === 2, 'two deliveries');
      deepStrictEqual(seen[0], { users: ['alice', 'bob'], frame: '{"t":"msg","body":"é€😀"}', skip: { node: a.node, connId: 7 } });
      deepStrictEqual(seen[1], { users: ['carol'], device: 'phone', frame: 'x' });
    }));

    if (maxNodes >= 2) {
      test('a session-ending delivery reaches the other node with its close code, device and skip', withNodes(2, async ([a, b]) => {
        if (a === undefined || b === undefined) throw new Error('no node');
        const seen = record(b);
        a.publish({ users: ['alice'], device: 'phone', frame: '{"t":"session.ended"}', close: 4003 });
        a.publish({ users: ['alice'], frame: '{"t":"session.ended"}', close: 4002, skip: { node: a.node, connId: 3 } });
        await until(() => seen.length === 2, 'two deliveries');
        deepStrictEqual(seen[0], { users: ['alice'], device: 'phone', frame: '{"t":"session.ended"}', close: 4003 });
        deepStrictEqual(seen[1], { users: ['alice'], frame: '{"t":"session.ended"}', close: 4002, skip: { node: a.node, connId: 3 } });
      }));
    }

    test('deliveries from one node arrive in publish order', withNodes(1, async ([a]) => {
      if (a === undefined) throw new Error('no node');
      const seen = record(a);
      for (let i = 0; i < 2000; i++) a.publish({ users: ['u'], frame: String(i) });
      await until(() => seen.length === 2000, '2000 deliveries');
      deepStrictEqual(seen.map((s) => Number(s.frame)), Array.from({ length: 2000 }, (_, i) => i));
    }));

    test('node ids are non-empty and distinct across nodes', withNodes(Math.min(maxNodes, 3), async (nodes) => {
      const ids = nodes.map((n) => n.node);
      ok(ids.every((id) => id.length > 0));
      equal(new Set(ids).size, ids.length);
    }));

    if (maxNodes >= 2) {
      test('every node receives every node\'s deliveries, each publisher\'s in order', withNodes(Math.min(maxNodes, 3), async (nodes) => {
        const seen = nodes.map(record);
        nodes.forEach((n, k) => {
          for (let i = 0; i < 200; i++) n.publish({ users: ['u'], frame: `${k}:${i}` });
        });
        const total = nodes.length * 200;
        await until(() => seen.every((s) => s.length === total), 'every delivery on every node');
        for (const s of seen) {
          for (let k = 0; k < nodes.length; k++) {
            deepStrictEqual(s.filter((d) => d.frame.startsWith(`${k}:`)).map((d) => d.frame), Array.from({ length: 200 }, (_, i) => `${k}:${i}`));
          }
        }
      }));
    }

    test('after close() nothing more is delivered; close() twice is harmless', withNodes(1, async ([a]) => {
      if (a === undefined) throw new Error('no node');
      const seen = record(a);
      a.publish({ users: ['u'], frame: 'before' });
      await until(() => seen.length === 1, 'the first delivery');
      await a.close();
      await a.close();
      a.publish({ users: ['u'], frame: 'after' });
      await new Promise((r) => setTimeout(r, 50));
      deepStrictEqual(seen.map((s) => s.frame), ['before']);
    }));
  });
}
