/**
 * FrameOrder on its own (frame-order.ts): the rules that keep one
 * connection's answers in the order of its frames, with frames and
 * appends whose completion the test controls — including a store that
 * commits appends out of call order (PostgreSQL across rooms), which the
 * e2e tests on SQLite cannot produce — and the pause at FRAMES_QUEUED_MAX
 * with its resume at half.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameOrder } from '../src/v1/frame-order.ts';
import { FRAMES_QUEUED_MAX } from '../src/limits.ts';

interface Frame {
  name: string;
  /** A publish: handling it starts this append (the test settles it), not awaited. */
  append?: Promise<number>;
  /** The handler awaits this (a storage read); absent: it finishes at once. */
  wait?: Promise<void>;
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A connection's side: what was answered, in order, and the socket's pause state. */
function harness() {
  const answers: string[] = [];
  const failures: unknown[] = [];
  let paused = false;
  const pauses: number[] = [];
  const resumes: number[] = [];
  let queuedSeen = 0;
  const started: string[] = [];
  const order: FrameOrder<Frame> = new FrameOrder<Frame>({
    handle: (f) => {
      queuedSeen++;
      if (f.append !== undefined) {
        // As the connection does: the append starts now; its answer comes through FrameOrder.publish.
        started.push(f.name);
        order.publish(f.append, (r) => void answers.push(r.status === 'fulfilled' ? `${f.name}:ack ${r.value}` : `${f.name}:error`));
        return;
      }
      if (f.wait === undefined) {
        answers.push(f.name);
        return;
      }
      return f.wait.then(() => void answers.push(f.name));
    },
    isPublish: (f) => f.append !== undefined,
    failed: (err) => void failures.push(err),
    pause: () => {
      paused = true;
      pauses.push(queuedSeen);
      return true;
    },
    resume: () => {
      paused = false;
      resumes.push(queuedSeen);
    },
    get paused() {
      return paused;
    },
  });
  const publish = (name: string, append: Promise<number>): void => void order.enqueue({ name, append });
  return { order, answers, failures, started, publish, pauses, resumes, isPaused: () => paused };
}

const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('FrameOrder', () => {
  test('an ack waits for the answers before it, even when a later append commits first (a store that commits out of call order)', async () => {
    const h = harness();
    const first = deferred<number>();
    const second = deferred<number>();
    h.publish('p1', first.promise);
    h.publish('p2', second.promise);
    second.resolve(2);
    await turns();
    assert.deepEqual(h.answers, [], 'p2 is stored, but p1 is not answered yet');
    first.resolve(1);
    await h.order.drain();
    assert.deepEqual(h.answers, ['p1:ack 1', 'p2:ack 2']);
  });

  test('publishes pipeline: the next one starts while the one before is still committing', async () => {
    const h = harness();
    const first = deferred<number>();
    h.publish('p1', first.promise);
    h.publish('p2', Promise.resolve(2));
    await turns();
    assert.deepEqual(h.started, ['p1', 'p2'], 'p2 started before p1 was answered');
    assert.deepEqual(h.answers, []);
    first.resolve(1);
    await h.order.drain();
    assert.deepEqual(h.answers, ['p1:ack 1', 'p2:ack 2']);
  });

  test('a frame after a publish still committing is handled after its ack, and the frames behind it after that', async () => {
    const h = harness();
    const append = deferred<number>();
    h.publish('p1', append.promise);
    h.order.enqueue({ name: 'history' });
    h.publish('p2', Promise.resolve(7));
    await turns();
    assert.deepEqual(h.started, ['p1'], 'p2 waits behind history, which waits for the ack of p1');
    assert.deepEqual(h.answers, []);
    append.resolve(1);
    await h.order.drain();
    await turns();
    assert.deepEqual(h.answers, ['p1:ack 1', 'history', 'p2:ack 7']);
  });

  test('refusals and failed publishes take their place among the answers', async () => {
    const h = harness();
    const append = deferred<number>();
    h.publish('p1', append.promise);
    h.order.refuse(() => void h.answers.push('rate_limited'));
    h.order.answer(() => void h.answers.push('forbidden'));
    h.publish('p2', Promise.reject(new Error('disk full')));
    await turns();
    assert.deepEqual(h.answers, []);
    append.resolve(1);
    await h.order.drain();
    await turns();
    assert.deepEqual(h.answers, ['p1:ack 1', 'rate_limited', 'forbidden', 'p2:error']);
    assert.deepEqual(h.failures, []);
  });

  test('with nothing pending, a frame or an answer goes at once (no turn, no promise)', () => {
    const h = harness();
    h.order.enqueue({ name: 'room.list' });
    h.order.answer(() => void h.answers.push('error'));
    h.order.refuse(() => void h.answers.push('rate_limited'));
    assert.deepEqual(h.answers, ['room.list', 'error', 'rate_limited']);
  });

  test(`FRAMES_QUEUED_MAX (${FRAMES_QUEUED_MAX}): the frame that makes that many unfinished pauses reading once; reading resumes when no more than half are left`, async () => {
    const h = harness();
    const gates = Array.from({ length: FRAMES_QUEUED_MAX + 3 }, () => deferred<void>());
    const results: boolean[] = [];
    for (let i = 0; i < gates.length; i++) results.push(h.order.enqueue({ name: `f${i}`, wait: (gates[i] as ReturnType<typeof deferred<void>>).promise }));
    assert.equal(results.filter(Boolean).length, 1, 'one pause reported');
    assert.equal(results.indexOf(true), FRAMES_QUEUED_MAX - 1, 'by the frame that made FRAMES_QUEUED_MAX unfinished');
    assert.equal(h.isPaused(), true);
    // Finish frames one by one: unfinished goes 67, 66, …; reading resumes at FRAMES_QUEUED_MAX / 2 left, not before.
    const total = gates.length;
    for (let done = 1; done <= total; done++) {
      (gates[done - 1] as ReturnType<typeof deferred<void>>).resolve();
      await turns(3);
      const left = total - done;
      assert.equal(h.isPaused(), left > FRAMES_QUEUED_MAX / 2, `${left} left`);
    }
    assert.equal(h.resumes.length, 1);
    await h.order.drain();
    assert.deepEqual(h.answers, gates.map((_, i) => `f${i}`));
  });
});
