/**
 * The chat commands end to end, as real processes against a real
 * `parley serve`: two users register in two profiles (two machines), an
 * empty history, a scripted (non-TTY) `parley chat` sends lines, the other
 * side reads them decrypted with `parley history` (text and JSON) and finds
 * them with `--search`, a running chat receives live, both see the same
 * safety number; usage and failure cases are one line each; and the
 * server's database and logs hold none of the plaintexts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertFails, parley, type CliResult } from './_cli.ts';
import { assertServerHoldsNone, marker, ok, PASS_VAR, Profile, Running, startServer, type ServerProcess } from './_chat.ts';

describe('parley chat commands', () => {
  let server: ServerProcess & { url: string };
  /** Runs of the server before a restart (same data directory). */
  const earlier: ServerProcess[] = [];
  let root: string;
  let alice: Profile;
  let bob: Profile;
  const secrets: string[] = [];
  const m = {
    first: marker('hello-bob'),
    cafe: `Café crème at noon? ${marker('cafe')}`,
    slash: marker('slash'),
    reply: marker('reply-from-bob'),
    live: marker('live'),
    afterRestart: marker('after-restart'),
    queued: marker('queued-while-down'),
    evil: marker('evil'),
  };

  before(async () => {
    server = await startServer();
    root = mkdtempSync(join(tmpdir(), 'parley-chat-test-'));
    alice = new Profile(join(root, 'alice-machine'), 'alice', server.url);
    bob = new Profile(join(root, 'bob-machine'), 'bob', server.url);
    secrets.push(...Object.values(m), alice.passphrase, bob.passphrase);
  });
  after(() => {
    for (const s of earlier) s.cleanup();
    server.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it('register: a store and a config per profile, private, no secret in the config', async () => {
    const a = ok(await alice.run(['register', 'alice', '--device', 'laptop']), 'register alice');
    assert.match(a, /^Registered alice \(device laptop\) on ws:\/\/127\.0\.0\.1:\d+\./);
    const b = ok(await bob.run(['register', 'bob']), 'register bob');
    assert.match(b, /^Registered bob \(device [A-Za-z0-9_-]+\)/, 'a device id from the host name (or a random one)');
    for (const p of [alice, bob]) {
      assert.equal(statSync(p.dir).mode & 0o777, 0o700);
      assert.equal(statSync(join(p.dir, 'accounts', `${p.user}.parley`)).mode & 0o777, 0o600);
      assert.equal(statSync(join(p.dir, 'config.json')).mode & 0o777, 0o600);
      const config = readFileSync(join(p.dir, 'config.json'), 'utf8');
      assert.equal(JSON.parse(config).user, p.user);
      assert.ok(!config.includes(p.passphrase));
      assert.equal(readFileSync(join(p.dir, 'accounts', `${p.user}.parley`)).indexOf(Buffer.from(p.user)), -1, 'the store names no user');
    }
    assert.match(ok(await alice.run(['login', 'alice']), 'login'), /^Logged in as alice \(device laptop\) on /);
  });

  it('history of a conversation that does not exist yet: nothing on stdout, a note on stderr', async () => {
    const r = await alice.run(['history', 'bob']);
    assert.equal(ok(r, 'history'), '');
    assert.match(r.stderr, /No conversation with bob yet/);
  });

  it('a scripted chat sends each line; the other side reads them decrypted, in order', async () => {
    const input = `${m.first}\n\n${m.cafe}\n//${m.slash}\n/help\n`;
    const r = await alice.run(['chat', 'bob'], { input });
    const out = ok(r, 'chat');
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 3, out);
    assert.match(lines[0] ?? '', new RegExp(`^\\[\\d\\d:\\d\\d\\] alice: ${m.first}$`));
    assert.ok(lines[1]?.endsWith(`alice: ${m.cafe}`));
    assert.ok(lines[2]?.endsWith(`alice: /${m.slash}`), '//text sends /text');
    assert.match(r.stderr, /\/quit, \/exit/, '/help is answered on stderr, not sent');

    const h = ok(await bob.run(['history', 'alice']), 'history');
    const texts = h.trimEnd().split('\n');
    assert.equal(texts.length, 3, h);
    assert.match(texts[0] ?? '', new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d  alice: ${m.first}$`));
    assert.ok(texts[1]?.endsWith(m.cafe) && texts[2]?.endsWith(`/${m.slash}`));

    const json = ok(await bob.run(['history', 'alice', '--json']), 'history --json')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { text: string; from: string; device: string; outgoing: boolean; seq: number });
    assert.deepEqual(
      json.map((j) => j.text),
      [m.first, m.cafe, `/${m.slash}`],
    );
    assert.ok(json.every((j) => j.from === 'alice' && j.device === 'laptop' && !j.outgoing));
  });

  it('--search finds only the messages holding every word (case, accents aside), newest first, shown oldest first', async () => {
    const hit = ok(await bob.run(['history', 'alice', '--search', 'CAFE creme']), 'search');
    assert.equal(hit.trimEnd().split('\n').length, 1, hit);
    assert.ok(hit.includes(m.cafe));
    const none = await bob.run(['history', 'alice', '--search', 'cafe nowhere']);
    assert.equal(ok(none, 'search'), '');
    assert.match(none.stderr, /No message with alice matches/);
    // bob's own messages are searchable too (kept when sent).
    ok(await bob.run(['chat', 'alice', '--limit', '0'], { input: `${m.reply} about the café\n` }), 'reply');
    const both = ok(await bob.run(['history', 'alice', '--search', 'café']), 'search');
    const lines = both.trimEnd().split('\n');
    assert.equal(lines.length, 2, both);
    assert.ok(lines[0]?.includes(m.cafe) && lines[1]?.includes(m.reply), 'oldest first');
    assert.ok(ok(await alice.run(['history', 'bob', '--search', 'cafe', '--limit', '1']), 'search').includes(m.reply), '--limit keeps the newest');
    assertFails(await bob.run(['history', 'alice', '--search', '?!']), 2, /--search needs at least one word/);
  });

  it('with the server out of reach, history and --search show what this device keeps, and say so', async () => {
    const offline = (args: string[]): Promise<CliResult> => parley([...args, '--profile', bob.dir, '--server', 'ws://127.0.0.1:1', '--passphrase-env', PASS_VAR], { env: bob.env });
    const h = await offline(['history', 'alice']);
    assert.equal(ok(h, 'history offline'), ok(await bob.run(['history', 'alice']), 'history online'));
    assert.match(h.stderr, /cannot reach the server at ws:\/\/127\.0\.0\.1:1.*: showing what this device keeps of the conversation with alice/);
    const found = await offline(['history', 'alice', '--search', 'CAFE creme']);
    assert.equal(ok(found, 'search offline'), ok(await bob.run(['history', 'alice', '--search', 'CAFE creme']), 'search online'));
    assert.ok(found.stdout.toString().includes(m.cafe));
    assert.equal(ok(await offline(['history', 'alice', '--search', 'nowhere-at-all']), 'no match'), '');
  });

  it('a running chat shows history, then live messages; a second process on the same account is refused', async () => {
    const chat = new Running(['chat', 'bob', '--limit', '2', ...alice.flags], alice.env);
    try {
      await chat.waitFor(/Chat with bob as alice/, 'stderr');
      await chat.waitFor(/· bob is offline\./, 'stderr');
      await chat.waitFor(new RegExp(m.reply));
      assert.ok(!chat.stdout.includes(m.first), '--limit 2 shows the last two messages only');
      const busy = await alice.run(['history', 'bob']);
      assertFails(busy, 1, /alice's store is in use by another parley process/);
      ok(await bob.run(['chat', 'alice', '--limit', '0'], { input: `${m.live}\n` }), 'bob sends');
      await chat.waitFor(new RegExp(`\\] bob: ${m.live}`));
      // Presence as it changes: bob's chat came and went.
      await chat.waitFor(/· bob is online\./, 'stderr');
      await chat.waitFor(/· bob went offline\./, 'stderr');
      chat.write('/quit');
      assert.equal(await chat.exited, 0, chat.stderr);
    } finally {
      chat.kill();
    }
  });

  it('a chat stopped by a signal (a supervisor\'s SIGTERM, a piped chat\'s SIGINT) ends cleanly, its store closed, and exits 128 + the signal', async () => {
    for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
      const chat = new Running(['chat', 'bob', '--limit', '0', ...alice.flags], alice.env);
      try {
        await chat.waitFor(/Chat with bob as alice/, 'stderr');
        const line = marker(signal);
        chat.write(line);
        await chat.waitFor(new RegExp(`\\] alice: ${line}`));
        chat.child.kill(signal);
        assert.equal(await chat.exited, code, chat.stderr);
        assert.doesNotMatch(chat.stderr, /\n\s+at /);
        assert.ok(ok(await bob.run(['history', 'alice', '--limit', '1']), 'history').includes(line), 'what was sent is stored');
        ok(await alice.run(['history', 'bob', '--limit', '1']), 'the store is free again');
      } finally {
        chat.kill();
      }
    }
  });

  it('two running chats sending at the same moment each show every line of the other (an acknowledgement of our own never hides earlier peer messages)', async () => {
    const a = new Running(['chat', 'bob', '--limit', '0', ...alice.flags], alice.env);
    const b = new Running(['chat', 'alice', '--limit', '0', ...bob.flags], bob.env);
    try {
      await a.waitFor(/Chat with bob as alice/, 'stderr');
      await b.waitFor(/Chat with alice as bob/, 'stderr');
      const tag = marker('both');
      const n = 25;
      for (let i = 0; i < n; i++) {
        a.write(`${tag} a${i}`);
        b.write(`${tag} b${i}`);
      }
      const count = (out: string, who: string, side: string): number => out.split('\n').filter((l) => l.includes(`] ${who}: ${tag} ${side}`)).length;
      await a.waitFor(new RegExp(`\\] alice: ${tag} a${n - 1}\\b`));
      await b.waitFor(new RegExp(`\\] bob: ${tag} b${n - 1}\\b`));
      // Every line of the other side arrives (history proves they were all sent); none twice.
      await a.waitFor(new RegExp(`\\] bob: ${tag} b${n - 1}\\b`));
      await b.waitFor(new RegExp(`\\] alice: ${tag} a${n - 1}\\b`));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(count(a.stdout, 'bob', 'b'), n, a.stdout);
      assert.equal(count(b.stdout, 'alice', 'a'), n, b.stdout);
      assert.equal(count(a.stdout, 'alice', 'a'), n, 'our own lines, once each');
      a.write('/quit');
      b.write('/quit');
      assert.equal(await a.exited, 0, a.stderr);
      assert.equal(await b.exited, 0, b.stderr);
    } finally {
      a.kill();
      b.kill();
    }
  });

  it('text from others is shown inert: control characters and bidi overrides escaped', async () => {
    ok(await bob.run(['chat', 'alice', '--limit', '0'], { input: `\u001b]0;owned\u0007${m.evil}\u202e\n` }), 'bob sends');
    const h = ok(await alice.run(['history', 'bob', '--limit', '1']), 'history');
    assert.ok(h.includes(`\\u{1b}]0;owned\\u{7}${m.evil}\\u{202e}`), h);
    assert.ok(!h.includes('\u001b') && !h.includes('\u202e'));
  });

  it('verify: the same safety number on both sides, with the devices it covers', async () => {
    const a = ok(await alice.run(['verify', 'bob']), 'verify');
    const b = ok(await bob.run(['verify', 'alice']), 'verify');
    const digits = (s: string): string => (s.match(/\b\d{5}\b/g) ?? []).join('');
    assert.match(digits(a), /^\d{60}$/);
    assert.equal(digits(a), digits(b));
    assert.match(a, /^alice: 1 device \(laptop\)$/m);
    assert.match(a, /^bob: 1 device \(/m);
  });

  it('verify --secret: both run it, the same secret verifies both, a different one verifies neither — and the secret stays off the server', async () => {
    const secret = marker('shared-secret');
    secrets.push(secret);
    // Alice asks and waits; bob answers from his own machine.
    const asking = new Running(['verify', 'bob', '--secret-env', 'SHARED', ...alice.flags], { ...alice.env, SHARED: secret });
    await asking.waitFor(/Waiting for them to run 'parley verify alice --secret'/, 'stderr');
    const answer = await bob.run(['verify', 'alice', '--secret-env', 'SHARED'], { env: { SHARED: `  ${secret}\n` } });
    assert.match(ok(answer, 'bob verifies'), /^alice is verified: you typed the same secret and see the same device keys \(laptop\)\.$/m);
    assert.match(answer.stderr, /Answering alice's request \(from device laptop\)/);
    assert.equal(await asking.exited, 0, asking.stderr);
    assert.match(asking.stdout, /^bob is verified/m);

    const wrong = new Running(['verify', 'bob', '--secret-env', 'SHARED', ...alice.flags], { ...alice.env, SHARED: 'one thing' });
    await wrong.waitFor(/Waiting for them/, 'stderr');
    const other = await bob.run(['verify', 'alice', '--secret-env', 'SHARED'], { env: { SHARED: 'another thing' } });
    assert.equal(await wrong.exited, 1);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /^parley: alice is NOT verified: the secrets differ, or someone between you changed keys/m);
    assert.match(wrong.stderr, /bob is NOT verified/);
    assertFails(await alice.run(['verify', 'bob', '--secret']), 2, /no shared secret: give --secret-env VAR or --secret-file FILE/);
  });

  it('a request seen in a chat is answered as the chat says — leave it, run parley verify — though the chat took the request off the server', async () => {
    const secret = marker('after-chat');
    secrets.push(secret);
    const chat = new Running(['chat', 'alice', '--limit', '0', ...bob.flags], bob.env);
    const asking = new Running(['verify', 'bob', '--secret-env', 'SHARED', ...alice.flags], { ...alice.env, SHARED: secret });
    try {
      await chat.waitFor(/Chat with alice as bob/, 'stderr');
      await chat.waitFor(/alice asks to verify with a secret you both know: leave \(\/quit\) and run 'parley verify alice --secret'/, 'stderr');
      chat.write('/quit');
      assert.equal(await chat.exited, 0, chat.stderr);
      const answer = await bob.run(['verify', 'alice', '--secret-env', 'SHARED'], { env: { SHARED: secret } });
      assert.match(answer.stderr, /Answering alice's request \(from device laptop\)/);
      assert.match(ok(answer, 'bob verifies'), /^alice is verified/m);
      assert.equal(await asking.exited, 0, asking.stderr);
    } finally {
      chat.kill();
      asking.kill();
    }
  });

  it('Ctrl-C while verify --secret waits cancels the attempt and tells the other side at once (exit 130)', async () => {
    const chat = new Running(['chat', 'alice', '--limit', '0', ...bob.flags], bob.env);
    const asking = new Running(['verify', 'bob', '--secret-env', 'SHARED', ...alice.flags], { ...alice.env, SHARED: marker('given-up') });
    try {
      await chat.waitFor(/Chat with alice as bob/, 'stderr');
      await asking.waitFor(/Waiting for them to run 'parley verify alice --secret'/, 'stderr');
      await chat.waitFor(/alice asks to verify with a secret you both know/, 'stderr');
      asking.child.kill('SIGINT');
      assert.equal(await asking.exited, 130, asking.stderr);
      assert.match(asking.stderr, /^parley: interrupted: the verification with bob was cancelled, and bob was told$/m);
      await chat.waitFor(/alice gave up the verification request\./, 'stderr');
      chat.write('/quit');
      assert.equal(await chat.exited, 0, chat.stderr);
    } finally {
      chat.kill();
      asking.kill();
    }
  });

  it('failures and usage errors: one line, the right exit code, no secret echoed', async () => {
    const argv = await parley(['chat', 'bob', '--profile', alice.dir, '--passphrase', 'hunter2'], { input: '' });
    assertFails(argv, 2, /a passphrase is never accepted on the command line/);
    assert.ok(!argv.stderr.includes('hunter2'));
    assertFails(await alice.run(['history', 'bob'], { env: { [PASS_VAR]: 'not the passphrase' } }), 1, /the passphrase does not open alice's store/);
    assertFails(await parley(['history', 'bob', '--profile', alice.dir]), 2, /no passphrase for alice's store: give --passphrase-env/);
    assertFails(await alice.run(['chat', 'carol']), 1, /there is no user carol on ws:/);
    assertFails(await alice.run(['history', 'carol']), 1, /there is no user carol on ws:/);
    const unknown = await alice.run(['verify', 'carol', '--secret-env', 'S'], { env: { S: 'shared' } });
    assertFails(unknown, 1, /there is no user carol on ws:/);
    assert.doesNotMatch(unknown.stderr, /Asked carol/, 'nobody was asked');
    assertFails(await alice.run(['chat', 'alice']), 2, /alice is you/);
    assertFails(await alice.run(['register', 'bob']), 1, /bob already exists on ws:/);
    assert.ok(!existsSync(join(alice.dir, 'accounts', 'bob.parley')), 'a failed registration leaves no store behind');
    assertFails(await alice.run(['register', 'alice']), 2, /already has an account alice/);
    assertFails(await alice.run(['register', 'Not_Valid']), 2, /is not a valid user id/);
    assertFails(await alice.run(['history', 'bob', '--limit', '0']), 2, /--limit/);
    assertFails(await parley(['history', 'bob', '--profile', join(root, 'empty')]), 2, /no account in the profile/);
    const down = await parley(['login', 'alice', ...alice.flags.slice(0, 2), '--server', 'ws://127.0.0.1:9', '--passphrase-env', PASS_VAR], { env: alice.env });
    const unreachable = /^parley: cannot reach the server at ws:\/\/127\.0\.0\.1:9: .*ECONNREFUSED.* \(is 'parley serve' running there\? For another server, give --server <url>\)\n$/;
    assertFails(down, 1, unreachable);
    // Every command says the same: the hint is given in one place.
    const env = { ...alice.env, B: 'a backup passphrase for the unreachable test' };
    const away = ['--server', 'ws://127.0.0.1:9', '--passphrase-env', PASS_VAR];
    writeFileSync(join(root, 'dave-file'), 'x');
    for (const args of [
      ['register', 'dave', '--profile', join(root, 'dave')],
      ['restore', 'dave', '--profile', join(root, 'dave'), '--backup-passphrase-env', 'B'],
      ['verify', 'bob', '--profile', alice.dir],
      ['backup', '--profile', alice.dir, '--backup-passphrase-env', 'B'],
      ['send-file', 'bob', join(root, 'dave-file'), '--profile', alice.dir],
    ]) {
      assertFails(await parley([...args, ...away], { env }), 1, unreachable);
    }
    // https:// to a server without TLS: said so, not OpenSSL's record-layer error.
    const tls = await parley(['login', 'alice', ...alice.flags.slice(0, 2), '--server', server.url.replace('ws://', 'https://'), '--passphrase-env', PASS_VAR], { env: alice.env });
    assertFails(tls, 1, /cannot reach the server at https:\/\/127\.0\.0\.1:\d+.*: its TLS handshake failed \(a server without TLS\? then use ws:\/\/ or http:\/\/\)\n$/);
    assert.doesNotMatch(tls.stderr, /SSL routines|EPROTO/);
    // A path that is not the Parley protocol's (a Parley server speaks the tutorial chat there).
    const elsewhere = await parley(['login', 'alice', ...alice.flags.slice(0, 2), '--server', 'http://127.0.0.1:9/chat', '--passphrase-env', PASS_VAR], { env: alice.env });
    assertFails(elsewhere, 2, /path must be empty or end in \/v1/);
  });

  it('a running chat rides out a server restart quietly: what was typed meanwhile is sent, what arrives is shown', async () => {
    const chat = new Running(['chat', 'bob', '--limit', '0', ...alice.flags], alice.env);
    try {
      await chat.waitFor(/Chat with bob as alice/, 'stderr');
      await server.stop();
      earlier.push(server);
      chat.write(m.queued); // queued in the store while the server is down
      await new Promise((resolve) => setTimeout(resolve, 300));
      server = await startServer(server);
      await chat.waitFor(new RegExp(`\\] alice: ${m.queued}`));
      ok(await bob.run(['chat', 'alice', '--limit', '0'], { input: `${m.afterRestart}\n` }), 'bob sends');
      await chat.waitFor(new RegExp(`\\] bob: ${m.afterRestart}`));
      chat.write('/quit');
      assert.equal(await chat.exited, 0, chat.stderr);
      assert.doesNotMatch(chat.stderr, /parley:|\n\s+at |Error/, 'no error shown for a lost connection');
      assert.ok(ok(await bob.run(['history', 'alice', '--limit', '2']), 'history').includes(`alice: ${m.queued}`));
    } finally {
      chat.kill();
    }
  });

  it("the server's database and logs hold none of the plaintexts", async () => {
    assertServerHoldsNone(server, secrets, ['alice', 'bob', 'laptop'], earlier);
    await server.stop(); // shutdown checkpoints the WAL into the database
    assertServerHoldsNone(server, secrets, ['alice', 'bob', 'laptop'], earlier);
  });
});
