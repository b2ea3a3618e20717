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
import { INVALID_FRAMES_MAX, TUTORIAL_NAME_BYTES_MAX } from '../src/limits.ts';

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

  async function client(name: string, style: 'android' | 'ios', extra: { announceKey?: Uint8Array } = {}): Promise<TutorialClient> {
    const c = await connectTutorialClient(url, name, { style, serverKeyB64: server.serverPublicKeyB64, ...extra });
    open.push(c);
    return c;
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
