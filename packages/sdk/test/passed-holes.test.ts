/**
 * The passed-holes record as a store keeps it: it round-trips, and anything
 * else read back is dropped (null), never trusted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PASSED_HOLES_MAX } from '../src/limits.ts';
import { passedHolesFromJson, passedHolesToJson } from '../src/passed-holes.ts';

describe('passed holes record', () => {
  it('round-trips through JSON', () => {
    const seq = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
    const hole = fc.tuple(fc.string(), seq, seq).map(([roomId, a, b]) => ({ roomId, first: Math.min(a, b), last: Math.max(a, b) }));
    const at = fc.tuple(fc.string(), seq, fc.string()).map(([roomId, s, identity]) => ({ roomId, seq: s, identity }));
    fc.assert(
      fc.property(fc.array(hole, { maxLength: 20 }), fc.array(at, { maxLength: 20 }), (holes, ats) => {
        assert.deepEqual(passedHolesFromJson(passedHolesToJson({ holes, at: ats })), { holes, at: ats });
      }),
    );
  });

  it('anything that is not a record reads as null', () => {
    for (const bad of [undefined, 5, '', 'not json', '[]', '{}', '{"holes":[],"at":{}}', '{"holes":[["r",0,1]],"at":[]}', '{"holes":[["r",5,4]],"at":[]}', '{"holes":[["r",1.5,2]],"at":[]}', '{"holes":[],"at":[["r",1]]}', '{"holes":[[1,1,1]],"at":[]}']) {
      assert.equal(passedHolesFromJson(bad), null, String(bad));
    }
  });

  it(`keeps at most PASSED_HOLES_MAX (${PASSED_HOLES_MAX}) of each, the newest`, () => {
    const holes = Array.from({ length: PASSED_HOLES_MAX + 5 }, (_, i) => ({ roomId: 'r', first: i + 1, last: i + 1 }));
    const read = passedHolesFromJson(passedHolesToJson({ holes, at: [] }));
    assert.equal(read?.holes.length, PASSED_HOLES_MAX);
    assert.equal(read?.holes[0]?.first, 6);
  });
});
