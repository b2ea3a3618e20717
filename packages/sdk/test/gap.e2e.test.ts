/**
 * Holes in a room's live stream, against a real server: a `msg` frame lost
 * or overtaken below the SDK (as when two server processes' deliveries
 * cross) is noticed at the next entry, fetched with a `sync`, and every
 * message is shown once, in room order — never skipped.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParleyClient } from '../src/client.ts';
import { faultyTransport, type FrameFault, nth, recorder, serverForSuite, sleep, texts, until } from './_harness.ts';

describe('gaps in the live stream', () => {
  const server = serverForSuite();
  const { clients } = server;

  /** Alice and bob in a direct room; bob's frames go through `fault` once `armed` is set. */
  async function pair(name: string, fault: (frame: { t?: unknown; [k: string]: unknown }) => FrameFault) {
    const ra = recorder();
    const rb = recorder();
    const armed = { on: false };
    const alice = await ParleyClient.register(server.url, `${name}-a`, 'dev1', { on: ra.on });
    const bob = await ParleyClient.register(server.url, `${name}-b`, 'dev1', {
      on: rb.on,
      transport: faultyTransport((f) => (armed.on ? fault(f) : 'pass')),
    });
    clients.push(alice, bob);
    const room = await alice.startDirect(`${name}-b`);
    await alice.send(room, 'warm-up');
    await until(() => rb.messages.length === 1, 'the warm-up');
    return { alice, bob, ra, rb, room, armed };
  }

  it('a lost msg frame is fetched when the next one shows the hole', async () => {
    let msgFrames = 0;
    const { alice, rb, room, armed } = await pair('gap-lost', (f) => (f.t === 'msg' && ++msgFrames === 2 ? 'drop' : 'pass'));
    armed.on = true;
    const sent = ['one', 'two (its frame is lost)', 'three', 'four'];
    for (const t of sent) await alice.send(room, t);
    await until(() => rb.messages.length === 5, 'all four after the warm-up');
    await sleep(200); // a repeat would show here
    assert.equal(msgFrames >= 4, true, 'the fault saw the live frames');
    assert.deepEqual(texts(rb.messages), ['warm-up', ...sent]);
    const seqs = rb.messages.map((m) => m.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => nth(seqs, 0) + i), 'gapless, in room order');
    assert.deepEqual(rb.failures, []);
    assert.deepEqual(rb.errors, []);
  });

  it('a msg frame overtaken by later ones is shown in its place, once', async () => {
    let msgFrames = 0;
    const { alice, rb, room, armed } = await pair('gap-late', (f) => (f.t === 'msg' && ++msgFrames === 1 ? { delayMs: 400 } : 'pass'));
    armed.on = true;
    const sent = ['late one', 'two', 'three'];
    for (const t of sent) await alice.send(room, t);
    await until(() => rb.messages.length === 4, 'all three after the warm-up');
    await sleep(600); // the late frame arrives meanwhile: a repeat, dropped
    assert.deepEqual(texts(rb.messages), ['warm-up', ...sent]);
    assert.deepEqual(rb.failures, []);
    assert.deepEqual(rb.errors, []);
  });

  it('holes in a burst, replays lost too: synced again until filled, nothing skipped', async () => {
    // Two of every three entries lose their first two frames: the live one and the first replay.
    const lost = new Map<number, number>();
    const { alice, rb, room, armed } = await pair('gap-burst', (f) => {
      if (f.t !== 'msg' || typeof f['seq'] !== 'number' || f['seq'] % 3 === 0) return 'pass';
      const n = lost.get(f['seq']) ?? 0;
      if (n >= 2) return 'pass';
      lost.set(f['seq'], n + 1);
      return 'drop';
    });
    armed.on = true;
    const sent = Array.from({ length: 12 }, (_, i) => `m${i}`);
    await Promise.all(sent.map((t) => alice.send(room, t)));
    // The burst's last frames may be lost with nothing after them to show the hole: a message after it does.
    armed.on = false;
    await alice.send(room, 'after');
    await until(() => rb.messages.length === 14, 'the burst and the message after it');
    await sleep(200);
    assert.deepEqual(texts(rb.messages), ['warm-up', ...sent, 'after']);
    assert.equal([...lost.values()].filter((n) => n === 2).length >= 4, true, 'replays were lost as well');
    assert.deepEqual(rb.failures, []);
  });
});
