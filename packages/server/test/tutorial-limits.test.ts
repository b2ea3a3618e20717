/**
 * What one host can make the tutorial endpoint do, bounded: relaying (a
 * server-wide budget shared fairly between addresses), connections per
 * address, bytes waiting for readers that do not read, and how long a dead
 * peer keeps its name (pings).
 *
 * A TutorialChat runs in this process behind a plain `ws` server, so limits
 * can be made small and the rate limits' clock frozen; the clients are the
 * real wasm-themis ones (_tutorial-client.ts). The peer's address is taken
 * from the URL (`?addr=`), as `client-address.ts` would take it from the
 * socket or the proxy.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { KeyPair } from '@parley/themis';
import { TutorialChat } from '../src/tutorial/tutorial-chat.ts';
import { TUTORIAL_LIMITS, type TutorialLimits } from '../src/tutorial/settings.ts';
import { createLogger } from '../src/log.ts';
import { createMetrics } from '../src/metrics.ts';
import { unsentBytes } from '../src/v1/prebuilt-frame.ts';
import { FRAME_BYTES_MAX, TUTORIAL_CLIENTS_PER_ADDRESS_MAX, TUTORIAL_FRAMES_PER_SECOND_MAX, TUTORIAL_LINE_BYTES_MAX, TUTORIAL_LINES_PER_SECOND, TUTORIAL_RELAY_UNIT_BYTES, TUTORIAL_RELAY_UNITS_PER_SECOND, TUTORIAL_SEND_BUFFER_BYTES_MAX } from '../src/limits.ts';
import { connectTutorialClient, type TutorialClient } from './_tutorial-client.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

interface ServerSide {
  ws: WebSocket;
  /** The most bytes ever left unsent right after a write to it. */
  maxUnsent: number;
}

interface Harness {
  chat: TutorialChat;
  port: number;
  serverKeyB64: string;
  /** The server side of the connection opened with `id`. */
  side(id: string): ServerSide;
  connect(name: string, options?: { addr?: string; id?: string; via?: number; keys?: unknown }): Promise<TutorialClient>;
  stop(): Promise<void>;
}

async function startChat(options: { limits?: Partial<TutorialLimits>; now?: () => number } = {}): Promise<Harness> {
  const keyPair = new KeyPair();
  const chat = new TutorialChat({ keyPair, log: createLogger('silent'), metrics: createMetrics(), ...options });
  const wss = new WebSocketServer({ noServer: true, maxPayload: FRAME_BYTES_MAX, perMessageDeflate: false, clientTracking: false });
  const sides = new Map<string, ServerSide>();
  const http: Server = createServer();
  http.on('upgrade', (req, socket, head) => {
    const params = new URL(req.url ?? '/', 'http://x').searchParams;
    wss.handleUpgrade(req, socket, head, (ws) => {
      const id = params.get('id');
      if (id !== null) {
        const side: ServerSide = { ws, maxUnsent: 0 };
        sides.set(id, side);
        const send = ws.send.bind(ws) as (data: string) => void;
        ws.send = ((data: string) => {
          send(data);
          side.maxUnsent = Math.max(side.maxUnsent, unsentBytes(ws));
        }) as typeof ws.send;
      }
      chat.accept(ws, params.get('addr') ?? req.socket.remoteAddress ?? '');
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as AddressInfo).port;
  const serverKeyB64 = Buffer.from(keyPair.publicKey).toString('base64');
  const clients: TutorialClient[] = [];
  return {
    chat,
    port,
    serverKeyB64,
    side(id) {
      const s = sides.get(id);
      if (s === undefined) throw new Error(`no connection ${id}`);
      return s;
    },
    async connect(name, { addr = '127.0.0.1', id, via, keys } = {}) {
      const query = new URLSearchParams({ addr, ...(id !== undefined ? { id } : {}) });
      const c = await connectTutorialClient(`ws://127.0.0.1:${via ?? port}/?${query.toString()}`, name, { style: 'ios', serverKeyB64, ...(keys !== undefined ? { keys } : {}) });
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.ws.terminate();
      chat.closeAll();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

/**
 * 'joined' once the server has taken `c` in (its line comes back: a client's
 * session is established before the server has seen its last handshake
 * message, and the server may still refuse it then), or how it was closed.
 */
async function outcome(c: TutorialClient): Promise<string> {
  const closed = c.closed.then((x) => `${x.code} ${x.reason}`);
  const up = await Promise.race([c.established.then(() => true, () => false), closed.then(() => false)]);
  if (!up) return closed;
  c.say('joined?');
  return Promise.race([c.waitForLines(1).then(() => 'joined', () => closed), closed]);
}

/** Connect `names` (from `addr`) a few at a time (under the per-address handshake limit) and wait until each is established. */
async function establishAll(h: Harness, names: string[], addr?: string): Promise<TutorialClient[]> {
  const out: TutorialClient[] = [];
  for (let i = 0; i < names.length; i += 8) {
    const batch = await Promise.all(names.slice(i, i + 8).map((n) => h.connect(n, { addr })));
    await Promise.all(batch.map((c) => c.established));
    out.push(...batch);
  }
  return out;
}

/** Lines of `sender` not relayed, as the server told it. */
const dropped = (sender: TutorialClient): number => sender.lines.filter((l) => l.startsWith('server: ')).reduce((n, l) => n + Number(/^server: (\d+) line/.exec(l)?.[1] ?? NaN), 0);
const relayedFrom = (reader: TutorialClient, name: string): number => reader.lines.filter((l) => l.startsWith(`${name}: `)).length;

/** Send `n` lines from `sender` and wait until the server has either relayed (to `reader`) or reported dropped each one. Returns how many were relayed. */
async function burst(sender: TutorialClient, reader: TutorialClient, n: number, text: (i: number) => string = (i) => `line ${i}`): Promise<number> {
  const relayedBefore = relayedFrom(reader, sender.name);
  const droppedBefore = dropped(sender);
  for (let i = 0; i < n; i++) sender.say(text(i));
  // The first drop is reported at once, later ones by a timer (at most one notice a second).
  await until(`${n} lines accounted for`, () => relayedFrom(reader, sender.name) - relayedBefore + dropped(sender) - droppedBefore === n, 15_000);
  return relayedFrom(reader, sender.name) - relayedBefore;
}

describe('tutorial: frames per connection', () => {
  test(`TUTORIAL_FRAMES_PER_SECOND_MAX (${TUTORIAL_FRAMES_PER_SECOND_MAX}): that many frames in a second are all unwrapped (lines over the line rate are dropped, not fatal); the next one closes that connection 1008 unread; the others chat on`, async () => {
    const clock = 1_000_000;
    const h = await startChat({ now: () => clock });
    try {
      const [flooder, reader, other] = (await establishAll(h, ['flooder', 'reader', 'other'])) as [TutorialClient, TutorialClient, TutorialClient];
      assert.equal(await burst(flooder, reader, TUTORIAL_FRAMES_PER_SECOND_MAX), TUTORIAL_LINES_PER_SECOND);
      assert.equal(dropped(flooder), TUTORIAL_FRAMES_PER_SECOND_MAX - TUTORIAL_LINES_PER_SECOND);
      flooder.say('one frame too many');
      assert.deepEqual(await flooder.closed, { code: 1008, reason: 'too many frames' });
      assert.equal(relayedFrom(reader, 'flooder'), TUTORIAL_LINES_PER_SECOND);
      assert.equal(await burst(other, reader, 3), 3);
    } finally {
      await h.stop();
    }
  });
});

describe('tutorial: line length', () => {
  test(`TUTORIAL_LINE_BYTES_MAX (${TUTORIAL_LINE_BYTES_MAX}): a line of exactly that many bytes is relayed; one byte more is not, and the sender is told why; long lines are no strike (the connection stays)`, async () => {
    const clock = 1_000_000;
    const h = await startChat({ now: () => clock, limits: { linesPerSecond: 1_000_000, framesPerSecond: 1_000_000 } });
    try {
      const [sender, reader] = (await establishAll(h, ['s', 'r'])) as [TutorialClient, TutorialClient];
      assert.equal(await burst(sender, reader, 1, () => 'x'.repeat(TUTORIAL_LINE_BYTES_MAX)), 1);
      assert.equal(await burst(sender, reader, 1, () => 'y'.repeat(TUTORIAL_LINE_BYTES_MAX + 1)), 0);
      assert.match(sender.lines.find((l) => l.startsWith('server: ')) ?? '', new RegExp(`^server: 1 line was not delivered: longer than ${TUTORIAL_LINE_BYTES_MAX} bytes$`));
      // More than the invalid-frame allowance of them: still connected, and the next short line goes through.
      assert.equal(await burst(sender, reader, 12, () => 'z'.repeat(TUTORIAL_LINE_BYTES_MAX + 1)), 0);
      assert.equal(await burst(sender, reader, 1, () => 'short again'), 1);
      assert.ok(reader.lines.includes('s: short again'));
    } finally {
      await h.stop();
    }
  });
});

describe('tutorial: relaying is bounded server-wide and shared fairly between addresses', () => {
  test(`TUTORIAL_RELAY_UNITS_PER_SECOND (${TUTORIAL_RELAY_UNITS_PER_SECOND}): with 20 recipients (20 units a line) exactly ${TUTORIAL_RELAY_UNITS_PER_SECOND / 20} lines go out in a second; the next is refused and its sender told`, async () => {
    const clock = 1_000_000;
    // Lines per connection are not what is tested here: no limit on them.
    const h = await startChat({ now: () => clock, limits: { linesPerSecond: 1_000_000, framesPerSecond: 1_000_000 } });
    try {
      const [sender, reader] = (await establishAll(h, Array.from({ length: 20 }, (_, i) => `c${i}`))) as [TutorialClient, TutorialClient];
      const expected = TUTORIAL_RELAY_UNITS_PER_SECOND / 20;
      const relayed = await burst(sender, reader, expected + 3);
      assert.equal(relayed, expected);
      assert.equal(dropped(sender), 3);
      assert.match(sender.lines.find((l) => l.startsWith('server: ')) ?? '', /not delivered: over your address's share of the server's relaying$/);
    } finally {
      await h.stop();
    }
  });

  test(`TUTORIAL_RELAY_UNIT_BYTES (${TUTORIAL_RELAY_UNIT_BYTES}): a relayed line of exactly that many bytes costs one unit per recipient, one byte more two`, async () => {
    let clock = 1_000_000;
    const h = await startChat({ now: () => clock, limits: { linesPerSecond: 1_000_000, framesPerSecond: 1_000_000, relayUnitsPerSecond: 8 } });
    try {
      const [sender, reader] = (await establishAll(h, ['s', 'r'])) as [TutorialClient, TutorialClient];
      const prefix = 's: '.length;
      // 2 recipients × 1 unit: 4 lines of the budget's 8.
      assert.equal(await burst(sender, reader, 6, () => 'x'.repeat(TUTORIAL_RELAY_UNIT_BYTES - prefix)), 4);
      clock += 10_000;
      // 2 recipients × 2 units: 2 lines.
      assert.equal(await burst(sender, reader, 6, () => 'x'.repeat(TUTORIAL_RELAY_UNIT_BYTES - prefix + 1)), 2);
    } finally {
      await h.stop();
    }
  });

  test('flooders from a few addresses get a share each; a bystander from another address is relayed at once, every line', async () => {
    const clock = 1_000_000;
    // 4 recipients: a line costs 4 units of 60.
    const h = await startChat({ now: () => clock, limits: { linesPerSecond: 1_000_000, framesPerSecond: 1_000_000, relayUnitsPerSecond: 60 } });
    try {
      const x = await h.connect('flooder x', { addr: '192.0.2.1' });
      const y = await h.connect('flooder y', { addr: '192.0.2.2' });
      const w = await h.connect('bystander', { addr: '198.51.100.7' });
      const r = await h.connect('reader', { addr: '203.0.113.9' });
      await Promise.all([x, y, w, r].map((c) => c.established));
      // One active address: the whole budget (60 / 4 = 15 lines), then it is refused.
      assert.equal(await burst(x, r, 20), 15);
      // Two active: y's share is 30 (7 lines).
      assert.equal(await burst(y, r, 20), 7);
      // Three: the bystander's share (20) is full when it speaks, and the server-wide bucket has room: 3 lines of 3.
      assert.equal(await burst(w, r, 3), 3);
      assert.ok(dropped(x) > 0 && dropped(y) > 0 && dropped(w) === 0);
    } finally {
      await h.stop();
    }
  });
});

describe('tutorial: connections per address', () => {
  test(`TUTORIAL_CLIENTS_PER_ADDRESS_MAX (${TUTORIAL_CLIENTS_PER_ADDRESS_MAX}) established connections from one address; the next is refused 1013 naming the limit; other addresses still get in`, async () => {
    const h = await startChat();
    try {
      const held = await establishAll(
        h,
        Array.from({ length: TUTORIAL_CLIENTS_PER_ADDRESS_MAX }, (_, i) => `squatter ${i}`),
        '192.0.2.1',
      );
      assert.equal(await outcome(await h.connect('one too many', { addr: '192.0.2.1' })), `1013 too many connections from this address (at most ${TUTORIAL_CLIENTS_PER_ADDRESS_MAX})`);
      assert.equal(await outcome(await h.connect('legit user', { addr: '198.51.100.7' })), 'joined');
      // A place freed is a place again.
      const leaving = held[0] as TutorialClient;
      leaving.close();
      await until('the server saw the close', () => h.chat.connectedCount === TUTORIAL_CLIENTS_PER_ADDRESS_MAX);
      assert.equal(await outcome(await h.connect('back again', { addr: '192.0.2.1' })), 'joined');
    } finally {
      await h.stop();
    }
  });

  test('handshakes finishing together do not overshoot the limit; IPv6 addresses count by their /64', async () => {
    const h = await startChat({ limits: { clientsPerAddress: 2 } });
    try {
      await (await h.connect('first', { addr: '192.0.2.1' })).established;
      const racing = await Promise.all(['second', 'third'].map((n) => h.connect(n, { addr: '192.0.2.1' })));
      const outcomes = await Promise.all(racing.map(outcome));
      assert.deepEqual(outcomes.sort(), ['1013 too many connections from this address (at most 2)', 'joined']);
      assert.equal(await outcome(await h.connect('v6 a', { addr: '2001:db8:1:2::1' })), 'joined');
      assert.equal(await outcome(await h.connect('v6 b', { addr: '2001:db8:1:2::abcd' })), 'joined');
      assert.equal(await outcome(await h.connect('v6 c', { addr: '2001:db8:1:2:ffff:ffff:ffff:ffff' })), '1013 too many connections from this address (at most 2)');
      assert.equal(await outcome(await h.connect('v6 d', { addr: '2001:db8:1:3::1' })), 'joined');
      // An IPv4-mapped address is the IPv4 one.
      assert.equal(await outcome(await h.connect('mapped', { addr: '::ffff:192.0.2.1' })), '1013 too many connections from this address (at most 2)');
    } finally {
      await h.stop();
    }
  });
});

describe('tutorial: readers that do not read', () => {
  /** Stop reading (the socket stays open); the kernel's buffers fill first, then the server's. */
  const stopReading = (c: TutorialClient): void => {
    (c.ws as unknown as { _socket: net.Socket })._socket.pause();
  };

  test(`TUTORIAL_SEND_BUFFER_BYTES_MAX (${TUTORIAL_SEND_BUFFER_BYTES_MAX}): a write never leaves more than that unsent for a reader; the one that would is not made, the reader is cut off; readers that read are untouched`, async () => {
    const h = await startChat({ limits: { linesPerSecond: 1_000_000, framesPerSecond: 1_000_000 } });
    try {
      const sender = await h.connect('sender', { id: 'sender' });
      const reader = await h.connect('reader', { id: 'reader' });
      const stuck = await h.connect('stuck', { id: 'stuck' });
      await Promise.all([sender, reader, stuck].map((c) => c.established));
      stopReading(stuck);
      const line = 'y'.repeat(12_000);
      let sent = 0;
      // At most 32 MiB (the general limit before) of lines; the kernel's buffers hold a few MiB of them.
      while (h.side('stuck').ws.readyState === 1 && sent < 2000) {
        sender.say(line);
        sent++;
        if (sent % 50 === 0) await reader.waitForLines(sent);
      }
      assert.notEqual(h.side('stuck').ws.readyState, 1, `cut off after ${sent} lines`);
      assert.ok(h.side('stuck').maxUnsent > 0, 'the server did queue for it');
      assert.ok(h.side('stuck').maxUnsent <= TUTORIAL_SEND_BUFFER_BYTES_MAX, `at most ${h.side('stuck').maxUnsent} unsent`);
      assert.ok(h.side('stuck').maxUnsent + 16_000 > TUTORIAL_SEND_BUFFER_BYTES_MAX, 'cut off only when the next line would not fit');
      await reader.waitForLines(sent);
      assert.equal(reader.ws.readyState, 1);
      assert.equal(h.chat.connectedCount, 2);
    } finally {
      await h.stop();
    }
  });

  test('TUTORIAL_SEND_STALL_MS: a reader with bytes waiting that reads none of them is cut off by a timer, with no further line sent; one that reads again in time is not', async () => {
    const stallMs = 1000;
    const h = await startChat({ limits: { linesPerSecond: 1_000_000, framesPerSecond: 1_000_000, sendStallMs: stallMs } });
    try {
      const sender = await h.connect('sender', { id: 'sender' });
      const stuck = await h.connect('stuck', { id: 'stuck' });
      const slow = await h.connect('slow', { id: 'slow' });
      await Promise.all([sender, stuck, slow].map((c) => c.established));
      stopReading(stuck);
      stopReading(slow);
      const line = 'z'.repeat(12_000);
      let sent = 0;
      while ((unsentBytes(h.side('stuck').ws) === 0 || unsentBytes(h.side('slow').ws) === 0) && sent < 2000) {
        sender.say(line);
        sent++;
        if (sent % 20 === 0) await sender.waitForLines(sent);
      }
      // The slow reader reads again (well within the stall time: its backlog began with the last few lines).
      (slow.ws as unknown as { _socket: net.Socket })._socket.resume();
      await sender.waitForLines(sent);
      const stalledAt = Date.now();
      await until('the stalled reader is cut off', () => h.side('stuck').ws.readyState === 3, 5000);
      const after = Date.now() - stalledAt;
      assert.ok(after <= stallMs + 2000, `cut off ${after} ms after the last line`);
      await slow.waitForLines(sent);
      assert.equal(h.side('slow').ws.readyState, 1, 'the reader that read again is still connected');
      assert.equal(h.chat.connectedCount, 2);
    } finally {
      await h.stop();
    }
  });

  test('TUTORIAL_SEND_BUFFER_BYTES_TOTAL_MAX: over it, readers holding more than an equal share are cut off before the next line', async () => {
    const total = 1024 * 1024;
    const h = await startChat({ limits: { linesPerSecond: 1_000_000, framesPerSecond: 1_000_000, sendBufferBytes: 64 * 1024 * 1024, sendBufferBytesTotal: total } });
    try {
      const sender = await h.connect('sender', { id: 'sender' });
      const reader = await h.connect('reader', { id: 'reader' });
      const a = await h.connect('stuck a', { id: 'a' });
      const b = await h.connect('stuck b', { id: 'b' });
      await Promise.all([sender, reader, a, b].map((c) => c.established));
      stopReading(a);
      stopReading(b);
      const line = 'w'.repeat(12_000);
      let sent = 0;
      while ((h.side('a').ws.readyState === 1 || h.side('b').ws.readyState === 1) && sent < 2000) {
        sender.say(line);
        sent++;
        if (sent % 50 === 0) await reader.waitForLines(sent);
      }
      assert.equal(h.side('a').ws.readyState !== 1 && h.side('b').ws.readyState !== 1, true, `both cut off after ${sent} lines`);
      // Each was written to only while the total was at most the cap: neither held much more than it.
      const frame = Math.ceil((12_000 + 40) / 3) * 4 + 100;
      for (const id of ['a', 'b']) assert.ok(h.side(id).maxUnsent <= total + frame, `${id}: ${h.side(id).maxUnsent} unsent at most`);
      await reader.waitForLines(sent);
      assert.equal(h.chat.connectedCount, 2);
    } finally {
      await h.stop();
    }
  });
});

describe('tutorial: heartbeat', () => {
  const pingMs = 300;
  // Generous: a loaded machine may not run this process for a while, and the pong would come too late.
  const pongMs = 1000;

  /** A TCP relay in front of the chat that can stop forwarding, neither side seeing a FIN or RST: a tunnel, a NAT that forgot the mapping. */
  async function relayTo(port: number): Promise<{ port: number; blackhole(): void; close(): void }> {
    let dead = false;
    const pipes: net.Socket[] = [];
    const relay = net.createServer((down) => {
      const up = net.connect(port, '127.0.0.1');
      pipes.push(up, down);
      down.on('data', (d) => (dead ? undefined : up.write(d)));
      up.on('data', (d) => (dead ? undefined : down.write(d)));
      down.on('error', () => undefined);
      up.on('error', () => undefined);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    return {
      port: (relay.address() as AddressInfo).port,
      blackhole: () => (dead = true),
      close() {
        for (const p of pipes) p.destroy();
        relay.close();
      },
    };
  }

  test('TUTORIAL_PING_INTERVAL_MS / TUTORIAL_PONG_TIMEOUT_MS: a peer whose network died (no pong) is cut off, and its name is free for the reconnect with a new key', async () => {
    assert.ok(TUTORIAL_LIMITS.pingIntervalMs >= 10_000 && TUTORIAL_LIMITS.pongTimeoutMs >= 5_000, 'the defaults are long; this test shortens them');
    const h = await startChat({ limits: { pingIntervalMs: pingMs, pongTimeoutMs: pongMs } });
    const relay = await relayTo(h.port);
    try {
      const phone = await h.connect('Anna iPhone', { via: relay.port, id: 'phone' });
      assert.equal(await outcome(phone), 'joined');
      relay.blackhole();
      const diedAt = Date.now();
      // The unmodified apps make a new key for every connection: refused while the dead one holds the name …
      const early = await h.connect('Anna iPhone');
      assert.equal((await early.closed).reason, 'name in use');
      // … and accepted once the server has given up on it.
      await until('the dead connection is cut off', () => h.side('phone').ws.readyState === 3, 5000);
      const gone = Date.now() - diedAt;
      assert.ok(gone <= pingMs + pongMs + 1000, `cut off ${gone} ms after the network died`);
      assert.equal(await outcome(await h.connect('Anna iPhone')), 'joined');
    } finally {
      relay.close();
      await h.stop();
    }
  });

  test('a peer that answers the pings stays connected, however long it is quiet', async () => {
    const h = await startChat({ limits: { pingIntervalMs: pingMs, pongTimeoutMs: pongMs } });
    const relay = await relayTo(h.port);
    try {
      const phone = await h.connect('Quiet iPhone', { via: relay.port, id: 'phone' });
      assert.equal(await outcome(phone), 'joined');
      let pings = 0;
      phone.ws.on('ping', () => pings++);
      await sleep(4 * pingMs + pongMs);
      assert.ok(pings >= 3, `${pings} pings`);
      assert.equal(h.side('phone').ws.readyState, 1);
      phone.say('still here');
      await phone.waitForLines(2);
    } finally {
      relay.close();
      await h.stop();
    }
  });
});
