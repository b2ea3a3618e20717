/** What the client keeps of presence: by version, snapshots against events, bounded. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PRESENCE_KNOWN_MAX } from '../src/limits.ts';
import { PresenceView } from '../src/presence-view.ts';

describe('PresenceView', () => {
  it('takes the newest version; an event repeating a version is old, an answer repeating it is not', () => {
    const v = new PresenceView();
    assert.equal(v.get('bob'), null);
    assert.equal(v.note('bob', true, 3), true);
    assert.equal(v.note('bob', false, 2), false, 'older');
    assert.equal(v.note('bob', false, 3), false, 'the same version again, as an event');
    assert.equal(v.note('bob', true, 3, true), true, 'an answer naming the version heard');
    assert.equal(v.get('bob'), true);
    assert.equal(v.note('bob', false, 4), true);
    assert.equal(v.get('bob'), false);
    // Without a version (the server could not tell): taken; the version heard stays the bar.
    assert.equal(v.note('bob', true, null), true);
    assert.equal(v.note('bob', false, 4), false);
    assert.equal(v.get('bob'), true);
    v.clear();
    assert.equal(v.get('bob'), null);
    assert.equal(v.note('bob', true, 1), true, 'a new connection counts anew');
  });

  it(`keeps PRESENCE_KNOWN_MAX (${PRESENCE_KNOWN_MAX}) users, forgetting the longest unheard-of`, () => {
    const v = new PresenceView();
    for (let i = 0; i < PRESENCE_KNOWN_MAX; i++) v.note(`u${i}`, true, 1);
    v.note('u0', false, 2); // heard again: now the newest
    v.note('extra', true, 1);
    assert.equal(v.get('u0'), false);
    assert.equal(v.get('u1'), null, 'the longest unheard-of went');
    assert.equal(v.get(`u${PRESENCE_KNOWN_MAX - 1}`), true);
    assert.equal(v.get('extra'), true);
  });
});
