/**
 * The in-memory table under IndexedDbClientStore (the store itself runs in
 * Chromium: scripts/browser-sdk-test.mjs): what it hands IndexedDB after
 * each commit must be exactly the rows' final state — also after a nested
 * transaction failed and was undone, and after everything was replaced.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MemoryTable, type Changes } from '../src/indexeddb-store.ts';
import type { RecordRow } from '../src/record-table.ts';

const row = (n: number, ord = 0, cell = n): RecordRow => ({ kind: 'message', id: Uint8Array.of(n), ord, cell: Uint8Array.of(cell) });

/** A table, and a mirror of "IndexedDB" that applies its change sets. */
function setup(initial: RecordRow[] = []) {
  const disk = new Map<string, number>();
  for (const r of initial) disk.set(`message:${r.id[0]?.toString(16).padStart(2, '0')}`, r.cell[0] ?? -1);
  const commits: Changes[] = [];
  const table = new MemoryTable(initial, (c) => {
    commits.push(c);
    if (c.cleared) disk.clear();
    for (const [k, v] of c.puts) {
      if (v === null) disk.delete(k);
      else disk.set(k, v.cell[0] ?? -1);
    }
  });
  const memory = (): Map<string, number> => new Map(table.rows().map((r) => [`message:${r.id[0]?.toString(16).padStart(2, '0')}`, r.cell[0] ?? -1]));
  return { table, disk, commits, memory };
}

describe('IndexedDB store: the memory table', () => {
  it('one commit per top-level write or transaction', () => {
    const { table, commits } = setup();
    table.put(row(1));
    table.transaction(() => {
      table.put(row(2));
      table.put(row(3));
      table.transaction(() => table.remove('message', Uint8Array.of(1)));
    });
    assert.equal(commits.length, 2);
    assert.deepEqual([...(commits[1]?.puts.keys() ?? [])].sort(), ['message:01', 'message:02', 'message:03']);
  });

  it('a nested transaction that throws is undone; the outer one commits the final state', () => {
    const { table, disk, memory } = setup([row(1)]);
    table.transaction(() => {
      table.put(row(2));
      assert.throws(() =>
        table.transaction(() => {
          table.put(row(3));
          table.remove('message', Uint8Array.of(1));
          table.put(row(2, 0, 99));
          throw new Error('inner');
        }),
      );
    });
    assert.deepEqual(memory(), new Map([['message:01', 1], ['message:02', 2]]));
    assert.deepEqual(disk, memory());
  });

  it('property: after any mix of writes, nested failures and replaceAll, IndexedDB mirrors memory', () => {
    type Op = { t: 'put'; n: number; c: number } | { t: 'remove'; n: number } | { t: 'nest'; ops: Op[]; fail: boolean } | { t: 'replace'; ns: number[] } | { t: 'evict'; k: number };
    const op: fc.Arbitrary<Op> = fc.letrec<{ op: Op }>((tie) => ({
      op: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.record({ t: fc.constant('put' as const), n: fc.integer({ min: 0, max: 6 }), c: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ t: fc.constant('remove' as const), n: fc.integer({ min: 0, max: 6 }) }),
        fc.record({ t: fc.constant('replace' as const), ns: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 4 }) }),
        fc.record({ t: fc.constant('evict' as const), k: fc.integer({ min: 0, max: 3 }) }),
        fc.record({ t: fc.constant('nest' as const), ops: fc.array(tie('op'), { maxLength: 4 }), fail: fc.boolean() }),
      ),
    })).op;
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), (ops) => {
        const { table, disk, memory } = setup([row(0)]);
        const apply = (o: Op): void => {
          if (o.t === 'put') table.put(row(o.n, o.n, o.c));
          else if (o.t === 'remove') table.remove('message', Uint8Array.of(o.n));
          else if (o.t === 'replace') table.replaceAll([...new Set(o.ns)].map((n) => row(n)));
          else if (o.t === 'evict') table.evict('message', o.k);
          else {
            try {
              table.transaction(() => {
                for (const inner of o.ops) apply(inner);
                if (o.fail) throw new Error('rolled back');
              });
            } catch {
              // undone
            }
          }
        };
        for (const o of ops) apply(o);
        assert.deepEqual(disk, memory());
      }),
      { numRuns: 300 },
    );
  });
});
