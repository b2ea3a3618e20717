/**
 * The readers of server frames: what a server controls is bounded, and
 * anything malformed is BAD_RESPONSE.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SdkError } from '../src/errors.ts';
import { readRooms } from '../src/frames.ts';
import { ROOMS_LISTED_MAX } from '../src/limits.ts';

describe('server frame readers', () => {
  it(`room.list: up to ROOMS_LISTED_MAX (${ROOMS_LISTED_MAX}) rooms are read; one more, or a malformed room, is BAD_RESPONSE`, () => {
    const room = (i: number) => ({ roomId: `r_${String(i).padStart(20, '0')}`, kind: 'group', lastSeq: i });
    const at = Array.from({ length: ROOMS_LISTED_MAX }, (_, i) => room(i));
    assert.equal(readRooms({ t: 'rooms', rooms: at }).length, ROOMS_LISTED_MAX);
    const bad = (f: Record<string, unknown>) => assert.throws(() => readRooms({ t: 'rooms', ...f }), (e: unknown) => SdkError.is(e, 'BAD_RESPONSE'));
    bad({ rooms: [...at, room(ROOMS_LISTED_MAX)] });
    bad({ rooms: 'x' });
    bad({ rooms: [{ roomId: 'no spaces allowed', kind: 'group', lastSeq: 1 }] });
    bad({ rooms: [{ roomId: 'r_1', kind: 'group', lastSeq: -1 }] });
  });
});
