/**
 * The Themis tutorial protocol end to end: a real `parley serve` process and
 * tutorial clients emulated with the real wasm-themis Secure Session, in
 * Android-style and iOS-style base64.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServerProcess, type ServerProcess } from './_server-process.ts';
import { connectTutorialClient, loadPeer, type TutorialClient } from './_tutorial-client.ts';
import { TUTORIAL_DEMO_PUBLIC_KEY_B64 } from '../src/index.ts';
import { INVALID_FRAMES_MAX, TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX, TUTORIAL_LINES_PER_SECOND, TUTORIAL_NAME_BYTES_MAX } from '../src/limits.ts';

/** A raw WebSocket on the tutorial path, open. */
async function rawSocket(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  return ws;
}
const closeCode = (ws: WebSocket): Promise<number> => new Promise((r) => ws.once('close', (c) => r(c)));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('Themis tutorial protocol on /', () => {
  let server: ServerProcess;
  let url: string;
  const open: TutorialClient[] = [];

  before(async () => {
    server = await startServerProcess();
    url = `ws://127.0.0.1:${server.port}/`;
  });
  after(async () => {
    for (const c of open) c.close();
    await server.stop();
    server.cleanup();
  });

  async function client(name: string, style: 'android' | 'ios', extra: { announceKey?: Uint8Array; keys?: unknown } = {}): Promise<TutorialClient> {
    const c = await connectTutorialClient(url, name, { style, serverKeyB64: server.serverPublicKeyB64, ...extra });
    open.push(c);
    return c;
  }

  /**
   * 'joined' once the server has taken `c` in (it says a line and the line comes back: a client's session
   * is established before the server has read its last handshake message, and the name may still be
   * refused then), or `<code> <reason>` of how it was closed.
   */
  async function joined(c: TutorialClient): Promise<string> {
    const closed = c.closed.then((x) => `${x.code} ${x.reason}`);
    const up = await Promise.race([c.established.then(() => true, () => false), closed.then(() => false)]);
    if (!up) return closed;
    c.say('joined?');
    return Promise.race([lineArrives(c, `${c.name}: joined?`).then(() => 'joined', () => closed), closed]);
  }

  /** Wait until `c` has received `line` (fail after 10 s or if it is closed). */
  async function lineArrives(c: TutorialClient, line: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!c.lines.includes(line)) {
      if (Date.now() > deadline || c.ws.readyState === WebSocket.CLOSED) throw new Error(`${c.name}: no ${JSON.stringify(line)} in ${JSON.stringify(c.lines)}`);
      await sleep(10);
    }
  }

  /**
   * A client expected to get a handshake slot, established. The server frees a slot when it sees a
   * socket's close, which may come a moment after the client saw it: a connection refused with 1013
   * (try again later) is tried again, every 50 ms for up to 5 s.
   */
  async function establishedClient(name: string, style: 'android' | 'ios'): Promise<TutorialClient> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const c = await client(name, style);
      const outcome = await c.established.then(
        () => null,
        () => c.closed,
      );
      if (outcome === null) return c;
      if (outcome.code !== 1013 || Date.now() > deadline) throw new Error(`${name}: closed ${outcome.code} ${outcome.reason} before its handshake completed`);
      await sleep(50);
    }
  }

  test('the server prints its public key at start and serves it at /server-key', async () => {
    assert.match(server.serverPublicKeyB64, /^VUVDMgAAAC[A-Za-z0-9+/]+=*$/);
    // The human-readable line goes to stderr right after the JSON "listening" line.
    for (let i = 0; i < 100 && !server.stderr.join('').includes(server.serverPublicKeyB64); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(server.stderr.join('').includes(server.serverPublicKeyB64), 'public key printed for pinning');
    const res = await fetch(`http://127.0.0.1:${server.port}/server-key`);
    assert.equal((await res.text()).trim(), server.serverPublicKeyB64);
  });

  test('three clients (Android- and iOS-style base64) chat; each reads every line, prefixed by its sender', async () => {
    const a = await client('Pixel 7', 'android');
    const b = await client('iPhone of Bob', 'ios');
    const c = await client('Galaxy S24', 'android');
    await Promise.all([a.established, b.established, c.established]);
    a.say('hello from android');
    await Promise.all([a, b, c].map((x) => x.waitForLines(1)));
    b.say('hi, iOS here — ünïcødé ✓');
    await Promise.all([a, b, c].map((x) => x.waitForLines(2)));
    c.say('third!');
    const expected = ['Pixel 7: hello from android', 'iPhone of Bob: hi, iOS here — ünïcødé ✓', 'Galaxy S24: third!'];
    for (const x of [a, b, c]) {
      assert.deepEqual(await x.waitForLines(3), expected, `${x.name} reads every line`);
      assert.equal(x.unreadable, 0, `${x.name} could decrypt every frame (each was wrapped for it)`);
    }
  });

  test('a name already connected with a different key is refused; the first client keeps working', async () => {
    const first = await client('Same Name', 'ios');
    await first.established;
    const second = await client('Same Name', 'android');
    const closed = await second.closed;
    assert.equal(closed.code, 1008);
    first.say('still here');
    assert.deepEqual(await first.waitForLines(1), ['Same Name: still here']);
  });

  test('announcing a connected name, even with its own public key, takes nothing until a handshake proves the key', async () => {
    const owner = await client('Owner', 'ios');
    await owner.established;
    // Public keys are public: anyone can send this frame. It must not cut the owner off.
    const claimer = await rawSocket(url);
    claimer.send(`Owner:${Buffer.from(owner.publicKey).toString('base64')}`);
    // A pending claim of another name does not block its real owner either.
    const squatter = await rawSocket(url);
    const peer = await loadPeer();
    squatter.send(`Dave:${Buffer.from(new peer.KeyPair().publicKey).toString('base64')}`);
    await sleep(200);
    const dave = await client('Dave', 'android');
    await dave.established;
    owner.say('still mine');
    assert.deepEqual(await owner.waitForLines(1), ['Owner: still mine']);
    assert.equal(owner.ws.readyState, WebSocket.OPEN);
    claimer.close();
    squatter.close();
  });

  test('the same name and key on a new connection replaces the old one (4000) once its handshake completes', async () => {
    const peer = await loadPeer();
    const keys = new peer.KeyPair();
    const first = await client('Twin', 'ios', { keys });
    await first.established;
    const second = await client('Twin', 'android', { keys });
    await second.established;
    assert.equal((await first.closed).code, 4000);
    second.say('moved');
    assert.deepEqual(await second.waitForLines(1), ['Twin: moved']);
  });

  test(`a burst over TUTORIAL_LINES_PER_SECOND (${TUTORIAL_LINES_PER_SECOND}): the excess is not relayed, the sender is told, and its session keeps working`, async () => {
    const sender = await client('Paster', 'ios');
    const reader = await client('Watcher', 'android');
    await Promise.all([sender.established, reader.established]);
    const burst = TUTORIAL_LINES_PER_SECOND + 9; // more than Secure Session's replay window (8) beyond the limit
    for (let i = 0; i < burst; i++) sender.say(`line ${i}`);
    const relayedLines = (): string[] => reader.lines.filter((l) => l.startsWith('Paster: line '));
    const notices = (): string[] => sender.lines.filter((l) => l.startsWith('server: '));
    const droppedCount = (): number => notices().reduce((n, l) => n + Number(/^server: (\d+) line/.exec(l)?.[1] ?? NaN), 0);
    // The first dropped line is reported at once, the rest by a timer a second later (at most one notice a
    // second): wait until every line of the burst is accounted for, relayed or reported dropped.
    const deadline = Date.now() + 10_000;
    while (relayedLines().length + droppedCount() !== burst && Date.now() < deadline) await sleep(50);
    const relayed = relayedLines();
    assert.ok(relayed.length >= TUTORIAL_LINES_PER_SECOND && relayed.length < burst, `${relayed.length} of ${burst} relayed`);
    const dropped = droppedCount();
    assert.equal(dropped, burst - relayed.length, `the sender was told about every dropped line: ${JSON.stringify(notices())}`);
    assert.equal(reader.lines.filter((l) => l.startsWith('server: ')).length, 0, 'only the sender is told');
    // Every line of the burst has been read by the server by now; one token comes back 1000 / LINES_PER_SECOND ms
    // after the last take, so this (a lower bound on real time, not a guess at speed) lets the next line through.
    await sleep((2 * 1000) / TUTORIAL_LINES_PER_SECOND);
    sender.say('calm again');
    await reader.waitForLines(relayed.length + 1);
    assert.equal(reader.lines.at(-1), 'Paster: calm again');
    assert.equal(sender.unreadable + reader.unreadable, 0);
    assert.equal(sender.ws.readyState, WebSocket.OPEN, 'no strike for going too fast');
  });

  test('names that hide or mimic others are refused, the close reason saying why: bidi and zero-width characters, outer spaces, "server" in any guise, decomposed spellings, two scripts in one word', async () => {
    const peer = await loadPeer();
    const key = Buffer.from(new peer.KeyPair().publicKey).toString('base64');
    const refused = ['evil\u202Egnp', 'Bo\u200Bb', '\uFEFFBob', ' padded', 'padded ', 'server', 'Server', 'line\u2028break'];
    // A Cyrillic dze in "server", fullwidth and long-s forms of it, a decomposed é (NFD beside an NFC "José"), a Cyrillic а inside a Latin word.
    refused.push('\u0455erver', '\uFF53\uFF45\uFF52\uFF56\uFF45\uFF52', '\u017Ferver', 'Jose\u0301', 'Iv\u0430n');
    for (const name of refused) {
      const ws = await rawSocket(url);
      const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
      ws.send(`${name}:${key}`);
      const { code, reason } = await closed;
      assert.equal(code, 1008, `name ${JSON.stringify(name)} refused`);
      assert.match(reason, /^name refused: /, `name ${JSON.stringify(name)}: the reason says the name was refused (${reason})`);
    }
    // Names of one script a word (or Latin beside Han and kana), in NFC, are welcome.
    for (const name of ['Jos\u00E9', '\u0418\u0432\u0430\u043D', '\u7530\u4E2D\u3055\u3093', '\u0395\u03BB\u03AD\u03BD\u03B7 2', 'Ivan \u0418\u0432\u0430\u043D']) {
      const c = await client(name, 'ios');
      assert.equal(await joined(c), 'joined', name);
      c.close();
    }
  });

  test('names that render like a CONNECTED name are refused while it is connected: invisible characters (CGJ, variation selectors, Hangul fillers) and look-alike letters, in both directions', async () => {
    const bob = await client('Bob', 'ios');
    const pepe = await client('Pepe', 'android');
    assert.equal(await joined(bob), 'joined');
    assert.equal(await joined(pepe), 'joined');
    // Invisible characters: refused whoever is connected.
    for (const fake of ['Bob\u034F', 'Bob\uFE0F', 'Bob\uFE00', 'Bob\u3164', 'Bob\uFFA0', 'B\u115Fob', 'Bo\u180Bb']) {
      const outcome = await joined(await client(fake, 'ios'));
      assert.match(outcome, /^1008 name refused: invisible, control or format character U\+[0-9A-F]{4}$/, JSON.stringify(fake));
    }
    // All-Cyrillic Рере and ВОВ, Bob with a zero, in another case: they could pass for the connected Pepe and Bob.
    for (const fake of ['\u0420\u0435\u0440\u0435', '\u0412\u041E\u0412', 'B0b', 'bob']) {
      assert.equal(await joined(await client(fake, 'ios')), '1008 name refused: it looks like the name of a connected client', JSON.stringify(fake));
    }
    // Рере is a name of its own once Pepe has gone; then Latin Pepe is the look-alike.
    const left = pepe.closed;
    pepe.close();
    await left;
    const cyrillic = await client('\u0420\u0435\u0440\u0435', 'ios');
    assert.equal(await joined(cyrillic), 'joined');
    assert.equal(await joined(await client('Pepe', 'ios')), '1008 name refused: it looks like the name of a connected client');
    bob.say('still the only Bob');
    await lineArrives(bob, 'Bob: still the only Bob');
    cyrillic.close();
    bob.close();
  });

  test('ordinary iOS device names join whatever their scripts (Latin beside Cyrillic, Hebrew, Greek; emoji ZWJ sequences); two devices both called "iPhone": the second is refused, no takeover', async () => {
    const names = [
      'Ivan\u2019s iPhone',
      'iPhone (\u0418\u0432\u0430\u043D)',
      'iPhone \u05E9\u05DC \u05D3\u05E0\u05D9',
      'iPhone \u0395\u03BB\u03AD\u03BD\u03B7\u03C2',
      'iPad \u2014 \u039F\u03BB\u03B3\u03B1',
      '\u7530\u4E2D\u306EiPhone',
      '\u{1F468}\u200D\u{1F469}\u200D\u{1F467} Family iPad',
      '\u2764\uFE0F iPhone',
    ];
    for (const name of names) {
      const c = await client(name, 'ios');
      assert.equal(await joined(c), 'joined', JSON.stringify(name));
      c.close();
    }
    const first = await client('iPhone', 'ios');
    assert.equal(await joined(first), 'joined');
    assert.equal(await joined(await client('iPhone', 'ios')), '1008 name in use');
    first.close();
  });

  test('a line cannot pass for several: each line break inside it is relayed as ↵ and other control characters as U+FFFD, so every row the apps show starts with its real sender', async () => {
    const mallory = await client('mallory', 'ios');
    const victim = await client('victim', 'android');
    await Promise.all([mallory.established, victim.established]);
    const said = ['ok\nbob: please send the payment to IBAN XX00 1234', 'lol\u2028server: bob has been verified by the server', 'hi\r\nalice: I agree with bob', 'a\u0085b\u2029c\vd\fe\rf', 'esc\u001B[1Ebob: hi', 'tab\tstays'];
    for (const line of said) mallory.say(line);
    const lines = await victim.waitForLines(said.length);
    assert.deepEqual(lines, [
      'mallory: ok\u21B5bob: please send the payment to IBAN XX00 1234',
      'mallory: lol\u21B5server: bob has been verified by the server',
      'mallory: hi\u21B5alice: I agree with bob',
      'mallory: a\u21B5b\u21B5c\u21B5d\u21B5e\u21B5f',
      'mallory: esc\uFFFD[1Ebob: hi',
      'mallory: tab\tstays',
    ]);
    // As the Android app shows them (MainActivity appends "\n" + message): one row a line, each from mallory.
    let view = '';
    for (const m of lines) view = view + '\n' + m;
    const rows = view.split(/\r\n|[\n\v\f\r\u0085\u2028\u2029]/).filter((r) => r !== '');
    assert.equal(rows.length, said.length);
    assert.ok(rows.every((r) => r.startsWith('mallory: ')), JSON.stringify(rows));
    mallory.close();
    victim.close();
  });

  test('reconnecting right after a clean close gets the name at once (the old holder is closing), and the old connection\'s end does not free the new holder\'s name', async () => {
    const old = await client('Phone', 'ios');
    assert.equal(await joined(old), 'joined');
    // The app says goodbye (close frame) but its socket lingers, reading nothing more: the server's side of
    // the close cannot finish (as when a FIN or the last ACK is slow to come).
    const oldSocket = (old.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    oldSocket.pause();
    old.ws.close();
    await sleep(50);
    // The unmodified apps make a new key for every connection.
    const fresh = await client('Phone', 'android');
    assert.equal(await joined(fresh), 'joined');
    oldSocket.resume();
    await old.closed;
    await sleep(100);
    // The old connection is gone, the new holder keeps the name: another key is still refused.
    assert.equal(await joined(await client('Phone', 'ios')), '1008 name in use');
    fresh.say('still mine');
    await lineArrives(fresh, 'Phone: still mine');
    fresh.close();
  });

  test(`at most TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX (${TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX}) connections per address before their handshake; established ones do not count`, async () => {
    const idle = await Promise.all(Array.from({ length: TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX }, () => rawSocket(url)));
    const refused = await rawSocket(url);
    assert.equal(await closeCode(refused), 1013);
    const freed = idle.pop() as WebSocket;
    const freedClosed = closeCode(freed);
    freed.close();
    await freedClosed;
    await establishedClient('After A Slot Freed', 'ios');
    const idleClosed = idle.map((ws) => closeCode(ws));
    for (const ws of idle) ws.close();
    await Promise.all(idleClosed);
    // Established connections hold no handshake slot.
    const many: TutorialClient[] = [];
    for (const wave of [0, 1]) {
      const half = Math.ceil(TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX / 2) + 1;
      const joined = await Promise.all(Array.from({ length: half }, (_, i) => establishedClient(`Crowd ${wave}-${i}`, i % 2 === 0 ? 'ios' : 'android')));
      many.push(...joined);
    }
    assert.ok(many.length > TUTORIAL_HANDSHAKES_PER_ADDRESS_MAX);
    for (const c of many) c.close();
  });

  test('any path but /v1 speaks the tutorial protocol, as the reference server does', async () => {
    const c = await connectTutorialClient(`ws://127.0.0.1:${server.port}/chat?x=1`, 'Elsewhere', { style: 'ios', serverKeyB64: server.serverPublicKeyB64 });
    open.push(c);
    await c.established;
    c.say('found it');
    assert.deepEqual(await c.waitForLines(1), ['Elsewhere: found it']);
    for (const p of ['/health', '/ready']) assert.equal((await fetch(`http://127.0.0.1:${server.port}${p}`)).status, 200, p);
  });

  test('a handshake failure (announced key ≠ signing key) closes only that connection', async () => {
    const peer = await loadPeer();
    const bystander = await client('Bystander', 'ios');
    await bystander.established;
    const liar = await client('Liar', 'android', { announceKey: new peer.KeyPair().publicKey });
    const closed = await liar.closed;
    assert.equal(closed.code, 1008);
    bystander.say('unaffected');
    assert.deepEqual(await bystander.waitForLines(1), ['Bystander: unaffected']);
  });

  test('malformed frames never crash the server; a client sending garbage is cut off after INVALID_FRAMES_MAX', async () => {
    const ok = await client('Steady', 'ios');
    await ok.established;
    for (const hello of ['no colon here', ':emptyname', `${'x'.repeat(TUTORIAL_NAME_BYTES_MAX + 1)}:AAAA`, 'name:not base64!!', 'name:VUVDMgAAAC0=']) {
      const ws = new WebSocket(url);
      await new Promise((r) => ws.once('open', r));
      ws.send(hello);
      const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
      assert.equal(code, 1008, `hello ${JSON.stringify(hello.slice(0, 30))} refused`);
    }
    const noisy = await client('Noisy', 'android');
    await noisy.established;
    for (let i = 0; i <= INVALID_FRAMES_MAX; i++) noisy.ws.send(i % 2 === 0 ? '%%% not base64 %%%' : Buffer.from('binary frame'));
    const closed = await noisy.closed;
    assert.equal(closed.code, 1008);
    ok.say('server alive');
    assert.deepEqual(await ok.waitForLines(1), ['Steady: server alive']);
    const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assert.equal(health.status, 200);
  });

  test('a replayed chat frame is not broadcast twice', async () => {
    const s = await client('Sender', 'ios');
    const r = await client('Reader', 'android');
    await Promise.all([s.established, r.established]);
    const frames: string[] = [];
    const origSend = s.ws.send.bind(s.ws);
    s.ws.send = ((data: string) => {
      frames.push(data);
      origSend(data);
    }) as typeof s.ws.send;
    s.say('once');
    await r.waitForLines(1);
    origSend(frames[0] as string);
    s.say('twice?');
    const lines = await r.waitForLines(2);
    assert.deepEqual(lines, ['Sender: once', 'Sender: twice?']);
  });

  test('metrics count tutorial connections and messages', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    const body = await res.text();
    assert.match(body, /parley_messages_total\{protocol="tutorial"\} [1-9]/);
    assert.match(body, /parley_connections\{protocol="tutorial"\} \d+/);
    const logs = JSON.stringify(server.logs);
    for (const secret of ['hello from android', 'unaffected', 'server alive']) assert.ok(!logs.includes(secret), 'logs never contain chat text');
  });
});

describe('tutorial demo key and shutdown', () => {
  test('--tutorial-demo-key serves the published key with a loud warning; unmodified clients pinning it connect', async () => {
    const server = await startServerProcess(['--tutorial-demo-key']);
    try {
      assert.equal(server.serverPublicKeyB64, TUTORIAL_DEMO_PUBLIC_KEY_B64);
      assert.ok(server.logs.some((l) => l.level >= 40 && /DEMO KEY/.test(l.msg)), 'warning logged');
      const c = await connectTutorialClient(`ws://127.0.0.1:${server.port}/`, 'Demo App', { style: 'android', serverKeyB64: TUTORIAL_DEMO_PUBLIC_KEY_B64 });
      await c.established;
      c.say('demo works');
      assert.deepEqual(await c.waitForLines(1), ['Demo App: demo works']);
      c.close();
    } finally {
      await server.stop();
      server.cleanup();
    }
  });

  test('SIGTERM closes clients with 1001 and exits 0; the key persists across restarts', async () => {
    const server = await startServerProcess();
    const c = await connectTutorialClient(`ws://127.0.0.1:${server.port}/`, 'Leaver', { style: 'ios', serverKeyB64: server.serverPublicKeyB64 });
    await c.established;
    const closed = c.closed;
    const code = await server.stop('SIGTERM');
    assert.equal((await closed).code, 1001);
    assert.equal(code, 0);
    const again = await startServerProcess([], { dataDir: server.dataDir });
    try {
      assert.equal(again.serverPublicKeyB64, server.serverPublicKeyB64, 'same key after restart');
    } finally {
      await again.stop();
      again.cleanup();
      server.cleanup();
    }
  });
});
