/**
 * The presence conformance suite: node:test cases every `Presence` must
 * pass. A backend's test file calls `presenceConformance` with a factory
 * that makes `n` nodes sharing one view (one per server process; the
 * in-process implementation can only make one).
 *
 * What the hub relies on, and so what is checked here:
 * - `arrive` reports a change (a version > 0) only for a user on no node
 *   before, `leave` only for a user now on no node, whichever node they are
 *   called on, and a user's versions grow with its changes everywhere;
 * - `online` answers for every node, for exactly the users asked about,
 *   with the version of each one's last change;
 * - after `close()` a node's users are offline for the others.
 *
 * @module
 */
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Presence, PresenceState } from './types.ts';

export interface PresenceFixture {
  nodes: Presence[];
  cleanup(): Promise<void>;
}

/** Makes `n` nodes of one fresh deployment (isolated from other tests). */
export type PresenceFactory = (n: number) => Promise<PresenceFixture>;

/** The users of an answer that are online, sorted. */
const onlineOf = (m: Map<string, PresenceState>): string[] => [...m].filter(([, st]) => st.online).map(([u]) => u).sort();

export function presenceConformance(name: string, make: PresenceFactory, maxNodes: number): void {
  const withNodes = (n: number, fn: (nodes: Presence[]) => Promise<void>) => async () => {
    const f = await make(n);
    try {
      await fn(f.nodes);
    } finally {
      await f.cleanup();
    }
  };
  const one = (nodes: Presence[], i: number): Presence => {
    const n = nodes[i];
    if (n === undefined) throw new Error(`no node ${i}`);
    return n;
  };

  describe(`presence conformance: ${name}`, () => {
    test('a user arrives once and leaves once, each change with a higher version; online answers for the users asked about', withNodes(1, async (nodes) => {
      const a = one(nodes, 0);
      deepStrictEqual([...(await a.online([]))], []);
      const v1 = await a.arrive('alice');
      ok(v1 > 0, 'a change has a version');
      ok((await a.arrive('bob')) > 0);
      const answer = await a.online(['alice', 'carol', 'bob']);
      deepStrictEqual([...answer.keys()].sort(), ['alice', 'bob', 'carol'], 'every user asked about, and only those');
      deepStrictEqual(onlineOf(answer), ['alice', 'bob']);
      deepStrictEqual(answer.get('alice'), { online: true, version: v1 });
      deepStrictEqual(answer.get('carol'), { online: false, version: 0 }, 'never seen');
      const v2 = await a.leave('alice');
      ok(v2 > v1, 'the next change of alice has a higher version');
      equal(await a.leave('alice'), 0, 'a second leave is not a change');
      equal(await a.leave('nobody'), 0, 'a user never seen is not a change');
      deepStrictEqual((await a.online(['alice'])).get('alice'), { online: false, version: v2 });
      ok((await a.arrive('alice')) > v2, 'back again, higher still');
    }));

    test('user ids are opaque strings (unicode, separators, Lua and glob characters)', withNodes(1, async (nodes) => {
      const a = one(nodes, 0);
      const odd = ['é€😀', 'a:b:node:c', '*', '[x]', '%s', "'); --"];
      for (const u of odd) ok((await a.arrive(u)) > 0, u);
      deepStrictEqual(onlineOf(await a.online([...odd, 'a'])), [...odd].sort());
    }));

    test('after close() the node forgets its users; close() twice is harmless', withNodes(Math.min(maxNodes, 2), async (nodes) => {
      const a = one(nodes, 0);
      await a.arrive('alice');
      const other = nodes[1];
      await a.close();
      await a.close();
      if (other !== undefined) deepStrictEqual(onlineOf(await other.online(['alice'])), []);
    }));

    if (maxNodes >= 2) {
      test('a user on two nodes: online from either, arrives and leaves once overall, versions growing across nodes', withNodes(Math.min(maxNodes, 3), async (nodes) => {
        const [a, b] = [one(nodes, 0), one(nodes, 1)];
        const v1 = await a.arrive('alice');
        ok(v1 > 0);
        equal(await b.arrive('alice'), 0, 'already online on another node');
        for (const n of nodes) deepStrictEqual((await n.online(['alice'])).get('alice'), { online: true, version: v1 });
        equal(await a.leave('alice'), 0, 'still online on the other node');
        for (const n of nodes) deepStrictEqual(onlineOf(await n.online(['alice'])), ['alice']);
        const v2 = await b.leave('alice');
        ok(v2 > v1, 'the node that saw the last connection leave reports a newer change');
        for (const n of nodes) deepStrictEqual((await n.online(['alice'])).get('alice'), { online: false, version: v2 });
      }));

      test('arrivals and departures racing on every node: exactly one arrival and one departure reported per round, versions strictly growing', withNodes(Math.min(maxNodes, 3), async (nodes) => {
        let last = 0;
        for (let round = 0; round < 20; round++) {
          const arrived = (await Promise.all(nodes.map((n) => n.arrive('racer')))).filter((v) => v > 0);
          equal(arrived.length, 1, `round ${round}: one arrival`);
          const left = (await Promise.all(nodes.map((n) => n.leave('racer')))).filter((v) => v > 0);
          equal(left.length, 1, `round ${round}: one departure`);
          ok((arrived[0] as number) > last && (left[0] as number) > (arrived[0] as number), `round ${round}: versions grow`);
          last = left[0] as number;
        }
      }));
    }
  });
}
