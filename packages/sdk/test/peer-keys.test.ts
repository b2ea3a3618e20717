/**
 * The review of a user's device keys (peer-keys.ts): first sight, added,
 * removed and changed devices, when a verification ends, each refused key
 * reported once, and the record's storage form refusing what it is not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SdkError } from '../src/errors.ts';
import { PEER_REFUSED_KEYS_MAX } from '../src/limits.ts';
import { matchesVerified, peerRecordFromJson, peerRecordToJson, reviewPeerKeys, type DeviceKey, type PeerRecord } from '../src/peer-keys.ts';

const key = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const dev = (deviceId: string, n: number): DeviceKey => ({ deviceId, identityKey: key(n) });
const trustAll = (): boolean => true;

describe('peer key review', () => {
  it('first sight records the devices and reports nothing', () => {
    const { record, change } = reviewPeerKeys('bob', undefined, [dev('phone', 1), dev('tablet', 2)], trustAll);
    assert.equal(change, null);
    assert.deepEqual(record, { devices: [dev('phone', 1), dev('tablet', 2)], verified: null, refused: [], former: [] });
  });

  it('at first sight, a key the identity store pins otherwise is refused and reported', () => {
    const pinned = (deviceId: string, k: Uint8Array): boolean => deviceId !== 'phone' || k[0] === 1;
    const { record, change } = reviewPeerKeys('bob', undefined, [dev('phone', 9), dev('tablet', 2)], pinned);
    assert.deepEqual(record.devices, [dev('tablet', 2)]);
    assert.deepEqual(change?.changed, [{ deviceId: 'phone', trustedKey: null, listedKey: key(9) }]);
  });

  it('added and removed devices are reported; a removal keeps a verification, an addition ends it', () => {
    const verified: PeerRecord = { devices: [dev('phone', 1), dev('tablet', 2)], verified: { at: 5, devices: [dev('phone', 1), dev('tablet', 2)] }, refused: [], former: [] };
    const removed = reviewPeerKeys('bob', verified, [dev('phone', 1)], trustAll);
    assert.deepEqual(removed.change, { userId: 'bob', added: [], removed: [dev('tablet', 2)], changed: [], wasVerified: true, verified: true });
    assert.deepEqual(removed.record.verified, { at: 5, devices: [dev('phone', 1)] });
    assert.equal(matchesVerified(removed.record.verified, removed.record.devices), true);

    const added = reviewPeerKeys('bob', removed.record, [dev('phone', 1), dev('desk', 3)], trustAll);
    assert.deepEqual(added.change, { userId: 'bob', added: [dev('desk', 3)], removed: [], changed: [], wasVerified: true, verified: false });
    assert.equal(added.record.verified, null);
  });

  it('a device that left comes back only with its key', () => {
    const start: PeerRecord = { devices: [dev('phone', 1), dev('tablet', 2)], verified: null, refused: [], former: [] };
    const gone = reviewPeerKeys('bob', start, [dev('phone', 1)], trustAll).record;
    assert.deepEqual(gone.former, [dev('tablet', 2)]);
    const swapped = reviewPeerKeys('bob', gone, [dev('phone', 1), dev('tablet', 9)], trustAll);
    assert.deepEqual(swapped.change?.changed, [{ deviceId: 'tablet', trustedKey: key(2), listedKey: key(9) }]);
    const back = reviewPeerKeys('bob', gone, [dev('phone', 1), dev('tablet', 2)], trustAll);
    assert.deepEqual(back.change?.added, [dev('tablet', 2)]);
    assert.deepEqual(back.record.former, []);
  });

  it('a changed key is never accepted, ends a verification, and is reported once per key', () => {
    const start: PeerRecord = { devices: [dev('phone', 1)], verified: { at: 5, devices: [dev('phone', 1)] }, refused: [], former: [] };
    const first = reviewPeerKeys('bob', start, [dev('phone', 7)], trustAll);
    assert.deepEqual(first.record.devices, [dev('phone', 1)], 'the recorded key stays');
    assert.deepEqual(first.change?.changed, [{ deviceId: 'phone', trustedKey: key(1), listedKey: key(7) }]);
    assert.equal(first.change?.verified, false);
    const again = reviewPeerKeys('bob', first.record, [dev('phone', 7)], trustAll);
    assert.equal(again.change, null, 'the same refused key: nothing new');
    const other = reviewPeerKeys('bob', again.record, [dev('phone', 8)], trustAll);
    assert.equal(other.change?.changed.length, 1, 'another key: reported');
  });

  it('remembers at most PEER_REFUSED_KEYS_MAX refused keys, the newest', () => {
    let record: PeerRecord = { devices: [dev('phone', 0)], verified: null, refused: [], former: [] };
    for (let n = 1; n <= PEER_REFUSED_KEYS_MAX + 5; n++) record = reviewPeerKeys('bob', record, [dev('phone', n)], trustAll).record;
    assert.equal(record.refused.length, PEER_REFUSED_KEYS_MAX);
    assert.deepEqual(record.refused.at(-1), dev('phone', PEER_REFUSED_KEYS_MAX + 5));
  });

  it('matchesVerified needs the same ids and the same keys', () => {
    const v = { at: 1, devices: [dev('a', 1), dev('b', 2)] };
    assert.equal(matchesVerified(v, [dev('b', 2), dev('a', 1)]), true);
    assert.equal(matchesVerified(v, [dev('a', 1)]), false);
    assert.equal(matchesVerified(v, [dev('a', 1), dev('b', 3)]), false);
    assert.equal(matchesVerified(null, []), false);
  });

  it('property: the record never holds a key other than the first one seen for a device', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.record({ d: fc.constantFrom('a', 'b', 'c'), k: fc.integer({ min: 0, max: 3 }) }), { maxLength: 4 }), { maxLength: 8 }), (lists) => {
        let record: PeerRecord | undefined;
        const first = new Map<string, number>();
        for (const list of lists) {
          const unique = [...new Map(list.map((e) => [e.d, e])).values()];
          record = reviewPeerKeys('bob', record, unique.map((e) => dev(e.d, e.k)), trustAll).record;
          for (const e of unique) if (!first.has(e.d)) first.set(e.d, e.k);
          for (const d of record.devices) assert.deepEqual(d.identityKey, key(first.get(d.deviceId) ?? -1));
        }
      }),
    );
  });
});

describe('peer record storage form', () => {
  it('round-trips, and refuses what it is not', () => {
    const r: PeerRecord = { devices: [dev('phone', 1)], verified: { at: 9, devices: [dev('phone', 1)] }, refused: [dev('phone', 2)], former: [dev('old', 3)] };
    assert.deepEqual(peerRecordFromJson(JSON.parse(JSON.stringify(peerRecordToJson(r)))), r);
    const isStore = (e: unknown): boolean => SdkError.is(e, 'STORE');
    const good = peerRecordToJson(r);
    for (const bad of [null, 7, { ...good, devices: 'x' }, { ...good, devices: [['phone', 'AAAA']] }, { ...good, devices: [['bad id!', good['refused']]] }, { ...good, verified: { at: -1, devices: [] } }, { ...good, verified: undefined }]) {
      assert.throws(() => peerRecordFromJson(bad), isStore, JSON.stringify(bad));
    }
  });
});
