/**
 * FRAMES_QUEUED_MAX at its edge, against a real `parley serve` process: a
 * connection whose frames pile up behind a handler that awaits storage stops
 * being read (ws pauses its socket) when the FRAMES_QUEUED_MAX-th unfinished
 * frame joins, and is read again once no more than half are left. A client cannot feel
 * the pause (the frames of a chunk already read still run, and the kernel
 * would buffer megabytes more), so the test reads it from the server's
 * metrics: `parley_reads_paused_total`.
 *
 * What counts (src/v1/connection.ts, `#enqueue`): the first frame of a burst
 * starts at once; its handler (`room.list`, an async storage read) returns
 * a pending promise, so it is unfinished, and every following frame waits
 * behind it. The frames of one socket read are parsed and handed over by ws
 * in one synchronous loop (its server emits messages synchronously; no
 * promise settles in between), so a burst of n room lists read at once
 * makes n frames unfinished at the same moment: n = FRAMES_QUEUED_MAX pauses,
 * n = FRAMES_QUEUED_MAX − 1 does not. The burst leaves the client in one
 * write (`V1Client.burst` corks the socket): a few KiB, one TCP segment on
 * loopback, which the server reads at once (were it ever split over two
 * reads, the first frame could finish in between: the edge case would see
 * no pause and fail, never pass wrongly). Every burst, with the frames its
 * connection sent before, stays within FRAMES_PER_SECOND: none is refused.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServerProcess, type ServerProcess } from './_server-process.ts';
import { authed, registered, type Frame, type V1Client } from './_v1-client.ts';
import { FRAMES_PER_SECOND, FRAMES_QUEUED_MAX } from '../src/limits.ts';

const PAUSED = 'parley_reads_paused_total';

describe(`v1: FRAMES_QUEUED_MAX (${FRAMES_QUEUED_MAX}) unfinished frames stop the socket being read`, () => {
  let server: ServerProcess;
  let url: string;
  let accessToken: string;
  const clients: V1Client[] = [];

  before(async () => {
    server = await startServerProcess();
    url = `ws://127.0.0.1:${server.port}/v1`;
    const { client, session } = await registered(url, 'bp-user');
    clients.push(client);
    accessToken = session.accessToken as string;
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.stop();
    server.cleanup();
  });

  /** The server's count of read pauses, from its /metrics. */
  async function pauses(): Promise<number> {
    const body = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
    const m = new RegExp(`^${PAUSED}\\{protocol="v1"\\} (\\d+)$`, 'm').exec(body);
    assert.ok(m !== null, `${PAUSED}{protocol="v1"} in /metrics`);
    return Number(m[1]);
  }

  /**
   * A fresh authenticated connection with nothing unfinished: the server
   * sends `session` before it pushes the mailbox, so one round trip more
   * (answered in order, behind it) makes sure the session handler is done.
   * Its frames so far (hello, auth, room.list) count against FRAMES_PER_SECOND.
   */
  async function idleConnection(label: string): Promise<V1Client> {
    const { client } = await authed(url, accessToken, label);
    clients.push(client);
    assert.equal((await client.roomList()).t, 'rooms');
    return client;
  }
  const FRAMES_BEFORE_BURST = 3;

  /**
   * Send `n` room lists in one write; check each is answered with `rooms`,
   * in order, and that the connection is read afterwards (a request sent
   * after the last answer can only be answered once the socket is read
   * again). Resolves with how many read pauses the server counted meanwhile.
   */
  async function burst(c: V1Client, n: number, tag: string): Promise<number> {
    const before = await pauses();
    const ids = Array.from({ length: n }, (_, i) => `${tag}-${i + 1}`);
    const start = c.received.length;
    const answers: Frame[] = await Promise.all(c.burst(() => ids.map((id) => c.request({ t: 'room.list', id }))));
    assert.deepEqual(
      answers.map((f) => `${f.t} ${String(f.re)}`),
      ids.map((id) => `rooms ${id}`),
      'every frame of the burst is answered, none refused',
    );
    assert.deepEqual(
      c.received.slice(start).map((f) => f.re),
      ids,
      'answered in the order sent, nothing else in between',
    );
    assert.equal((await c.roomList()).t, 'rooms', 'the socket is read again after the burst');
    return (await pauses()) - before;
  }

  test('the bursts stay within FRAMES_PER_SECOND (a refused frame would not be queued)', () => {
    // The most frames one connection below sends (two bursts at the edge, each followed by one request), as if at once.
    assert.ok(FRAMES_BEFORE_BURST + 2 * (FRAMES_QUEUED_MAX + 1) <= FRAMES_PER_SECOND);
    assert.ok(FRAMES_BEFORE_BURST + FRAMES_QUEUED_MAX + 16 + 1 <= FRAMES_PER_SECOND);
  });

  test(`FRAMES_QUEUED_MAX − 1 (${FRAMES_QUEUED_MAX - 1}) unfinished frames: the socket is not paused`, async () => {
    const c = await idleConnection('below');
    assert.equal(await burst(c, FRAMES_QUEUED_MAX - 1, 'below'), 0);
  });

  test(`exactly FRAMES_QUEUED_MAX (${FRAMES_QUEUED_MAX}) unfinished frames (one running, ${FRAMES_QUEUED_MAX - 1} waiting): paused once, every frame answered in order, read again after`, async () => {
    const c = await idleConnection('edge');
    assert.equal(await burst(c, FRAMES_QUEUED_MAX, 'edge'), 1);
    // Read again means unpaused: the same connection pauses again at the next full backlog.
    assert.equal(await burst(c, FRAMES_QUEUED_MAX, 'edge-again'), 1, 'a second burst pauses again');
    assert.ok(c.isOpen);
  });

  test('frames of the same read beyond FRAMES_QUEUED_MAX still run, and the pause counts once', async () => {
    const c = await idleConnection('beyond');
    assert.equal(await burst(c, FRAMES_QUEUED_MAX + 16, 'beyond'), 1);
  });
});
