/**
 * `parley chat` on real terminals: two tmux sessions (their own tmux
 * server, on a socket of their own) run `parley chat` for alice and bob
 * against a real `parley serve`, passphrases from the environment. A line
 * typed in one terminal appears in the other; while it is being typed, the
 * other shows "<user> is typing…"; the reverse; then /quit and Ctrl-D end
 * both with exit 0 and no stack trace. Skipped where tmux is missing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, childEnv } from './_cli.ts';
import { assertServerHoldsNone, marker, ok, PASS_VAR, Profile, startServer, until, type ServerProcess } from './_chat.ts';
import { limits } from '@parley/sdk';

const { TYPING_INTERVAL_MS } = limits;

const TMUX = 'tmux';
const hasTmux = spawnSync(TMUX, ['-V'], { stdio: 'ignore' }).status === 0;
/** A tmux server of our own: never the user's, never another test's. */
const SOCKET = `parley-test-${process.pid}-${randomBytes(4).toString('hex')}`;
const WAIT_MS = 20_000;

function tmuxEnv(): NodeJS.ProcessEnv {
  const env = childEnv();
  delete env['TMUX']; // when the tests themselves run inside tmux
  delete env['TMUX_PANE'];
  return env;
}

function tmux(...args: string[]): string {
  const r = spawnSync(TMUX, ['-L', SOCKET, '-f', '/dev/null', ...args], { env: tmuxEnv(), encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`tmux ${args[0]} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** What a session's terminal shows, its scrollback included, wrapped lines joined. */
function screen(session: string): string {
  return tmux('capture-pane', '-p', '-J', '-S', '-', '-t', session);
}

async function waitForScreen(session: string, pattern: RegExp): Promise<void> {
  let last = '';
  try {
    await until(() => pattern.test((last = screen(session))), `${pattern} in ${session}`, WAIT_MS);
  } catch (e) {
    throw new Error(`${(e as Error).message}; the terminal shows:\n${last}`);
  }
}

describe('parley chat between two terminals (tmux)', { skip: hasTmux ? false : 'tmux is not installed' }, () => {
  let server: ServerProcess & { url: string };
  let root: string;
  let alice: Profile;
  let bob: Profile;
  const sessions = { alice: `alice-${randomBytes(3).toString('hex')}`, bob: `bob-${randomBytes(3).toString('hex')}` };
  const fromAlice = marker('from-alice');
  const fromBob = marker('from-bob');

  before(async () => {
    server = await startServer();
    root = mkdtempSync(join(tmpdir(), 'parley-tmux-test-'));
    alice = new Profile(join(root, 'alice'), 'alice', server.url);
    bob = new Profile(join(root, 'bob'), 'bob', server.url);
    ok(await alice.run(['register', 'alice', '--device', 'laptop']), 'register alice');
    ok(await bob.run(['register', 'bob', '--device', 'phone']), 'register bob');
  });
  after(() => {
    try {
      tmux('kill-server');
    } catch {
      // Already gone.
    }
    server.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  /** `parley chat <peer>` in a new detached tmux session; the exit code is printed when it ends, and the pane stays. */
  function startChat(session: string, me: Profile, peer: string, columns = 160): void {
    const command = [process.execPath, CLI, 'chat', peer, ...me.flags].map(shellQuote).join(' ');
    tmux(
      'new-session', '-d', '-s', session, '-x', String(columns), '-y', '40',
      '-e', `${PASS_VAR}=${me.passphrase}`,
      `${command}; echo "[exited $?]"; sleep 120`,
    );
  }

  it('a line typed in one terminal appears in the other, typing shows, both ways; /quit and Ctrl-D leave', async () => {
    startChat(sessions.alice, alice, 'bob');
    await waitForScreen(sessions.alice, /Chat with bob as alice[\s\S]*^> $/m);
    // bob starts once alice's chat has made the room (two at once could make two).
    startChat(sessions.bob, bob, 'alice');
    await waitForScreen(sessions.bob, /Chat with alice as bob[\s\S]*^> $/m);

    tmux('send-keys', '-t', sessions.alice, '-l', fromAlice);
    await waitForScreen(sessions.bob, /\(alice is typing…\) > /);
    tmux('send-keys', '-t', sessions.alice, 'Enter');
    await waitForScreen(sessions.bob, new RegExp(`^\\[\\d\\d:\\d\\d\\] alice: ${fromAlice}$`, 'm'));
    await waitForScreen(sessions.alice, new RegExp(`^\\[\\d\\d:\\d\\d\\] alice: ${fromAlice}$`, 'm'));

    tmux('send-keys', '-t', sessions.bob, '-l', fromBob);
    await waitForScreen(sessions.alice, /\(bob is typing…\) > /);
    tmux('send-keys', '-t', sessions.bob, 'Enter');
    await waitForScreen(sessions.alice, new RegExp(`^\\[\\d\\d:\\d\\d\\] bob: ${fromBob}$`, 'm'));
    // The message ended bob's typing indicator on alice's screen.
    await waitForScreen(sessions.alice, new RegExp(`bob: ${fromBob}\\n> $`, 'm'));

    // A command being typed is not typing a message: bob sees nothing of it (past
    // TYPING_INTERVAL_MS since alice's last typing frame, so one could go out).
    await new Promise((resolve) => setTimeout(resolve, TYPING_INTERVAL_MS + 500));
    tmux('send-keys', '-t', sessions.alice, '-l', '/he');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.doesNotMatch(screen(sessions.bob), /alice is typing/, 'typing "/he" sent typing frames');
    tmux('send-keys', '-t', sessions.alice, 'C-u');
    // alice types, then leaves without sending: her going offline ends the indicator at once.
    await until(
      () => {
        tmux('send-keys', '-t', sessions.alice, '-l', 'x');
        return /\(alice is typing…\) > /.test(screen(sessions.bob));
      },
      'alice typing shown to bob',
      WAIT_MS,
    );
    tmux('send-keys', '-t', sessions.alice, 'C-u');
    tmux('send-keys', '-t', sessions.alice, '-l', '/quit');
    tmux('send-keys', '-t', sessions.alice, 'Enter');
    await waitForScreen(sessions.alice, /^\[exited 0\]$/m);
    await waitForScreen(sessions.bob, /· alice went offline\./);
    assert.match(screen(sessions.bob), /· alice went offline\.\n> \s*$/, 'the prompt no longer says alice is typing');
    tmux('send-keys', '-t', sessions.bob, 'C-d');
    await waitForScreen(sessions.bob, /^\[exited 0\]$/m);
    for (const s of [sessions.alice, sessions.bob]) {
      const shown = screen(s);
      assert.doesNotMatch(shown, /\n\s+at |Error:/, `${s}: ${shown}`);
      assert.ok(!shown.includes(alice.passphrase) && !shown.includes(bob.passphrase));
    }
    // And what the terminals showed is what the stores kept.
    const h = ok(await bob.run(['history', 'alice']), 'history');
    assert.ok(h.includes(`alice: ${fromAlice}`) && h.includes(`bob: ${fromBob}`), h);
    assertServerHoldsNone(server, [fromAlice, fromBob, alice.passphrase, bob.passphrase], ['alice', 'bob']);
  });
  it('80 columns: a message arriving while a line wider than the terminal is being typed is shown above it, and the typed line stays whole; a line of exactly the width leaves no echo behind', async () => {
    const a = `${sessions.alice}-narrow`;
    const b = `${sessions.bob}-narrow`;
    startChat(a, alice, 'bob', 80);
    await waitForScreen(a, /Chat with bob as alice[\s\S]*^> $/m);
    startChat(b, bob, 'alice', 80);
    await waitForScreen(b, /Chat with alice as bob[\s\S]*^> $/m);
    const typed = `${marker('wide')}-${'q'.repeat(70)}`; // ~104 columns with the prompt: two rows
    tmux('send-keys', '-t', a, '-l', typed);
    await waitForScreen(a, new RegExp(`> ${typed}$`, 'm'));
    const incoming = marker('while-typing');
    tmux('send-keys', '-t', b, '-l', incoming);
    tmux('send-keys', '-t', b, 'Enter');
    await waitForScreen(a, new RegExp(`^\\[\\d\\d:\\d\\d\\] bob: ${incoming}$`, 'm'));
    // The typing indicator came and went, the message arrived: the typed line is drawn once, after them, whole.
    await waitForScreen(a, new RegExp(`bob: ${incoming}\\n> ${typed}$`, 'm'));
    assert.equal(screen(a).split(typed).length - 1, 1, `the typed line once:\n${screen(a)}`);
    tmux('send-keys', '-t', a, 'Enter');
    await waitForScreen(a, new RegExp(`alice: ${typed}\\n> $`, 'm'));
    assert.ok(!screen(a).includes(`> ${typed}`), `no raw echo left:\n${screen(a)}`);

    // Exactly the width: "> " and 78 columns.
    const exact = `${marker('exact')}-`.padEnd(78, 'w');
    tmux('send-keys', '-t', a, '-l', exact);
    await waitForScreen(a, new RegExp(`> ${exact}`, 'm'));
    tmux('send-keys', '-t', a, 'Enter');
    await waitForScreen(a, new RegExp(`alice: ${exact}\\n> $`, 'm'));
    assert.ok(!screen(a).includes(`> ${exact}`), `no raw echo left:\n${screen(a)}`);
    await waitForScreen(b, new RegExp(`alice: ${exact}$`, 'm'));

    for (const s of [a, b]) {
      tmux('send-keys', '-t', s, 'C-d');
      await waitForScreen(s, /^\[exited 0\]$/m);
    }
  });
  it('closing the terminal (SIGHUP, the pty gone) ends the chat without an error: the store is closed, the exit is by the hangup (129)', async () => {
    const hup = `${sessions.alice}-hup`;
    const err = join(root, 'hup.err');
    const rc = join(root, 'hup.rc');
    const command = [process.execPath, CLI, 'chat', 'bob', ...alice.flags].map(shellQuote).join(' ');
    // The shell records the chat's exit; its own SIGHUP only runs a trap, so it lives to write it.
    tmux(
      'new-session', '-d', '-s', hup, '-x', '100', '-y', '30',
      '-e', `${PASS_VAR}=${alice.passphrase}`,
      `bash -c ${shellQuote(`trap 'true' HUP; ${command} 2>${shellQuote(err)}; echo $? > ${shellQuote(rc)}`)}`,
    );
    await waitForScreen(hup, /Chat with bob as alice[\s\S]*^> $/m);
    tmux('kill-session', '-t', hup);
    await until(() => existsSync(rc) && readFileSync(rc, 'utf8').trim() !== '', 'the exit status', WAIT_MS);
    assert.equal(readFileSync(rc, 'utf8').trim(), '129', readFileSync(err, 'utf8'));
    assert.equal(readFileSync(err, 'utf8'), '', 'nothing on stderr: no error, no native stack');
    // The store was closed properly: the next command opens it.
    ok(await alice.run(['history', 'bob', '--limit', '1']), 'history after the hangup');
  });

  it('a line typed while the connection is down is shown as queued, and a note says when it went out', async () => {
    const session = `${sessions.alice}-down`;
    startChat(session, alice, 'bob');
    await waitForScreen(session, /Chat with bob as alice[\s\S]*^> $/m);
    await server.stop('SIGTERM');
    await waitForScreen(session, /· connection lost; reconnecting…/);
    const line = marker('queued');
    tmux('send-keys', '-t', session, '-l', line);
    tmux('send-keys', '-t', session, 'Enter');
    await waitForScreen(session, new RegExp(`^\\[\\d\\d:\\d\\d\\] alice: ${line}  \\(queued\\)$`, 'm'));
    server = await startServer(server);
    await waitForScreen(session, new RegExp(`^· sent: ${line}$`, 'm'));
    tmux('send-keys', '-t', session, 'C-d');
    await waitForScreen(session, /^\[exited 0\]$/m);
    assert.ok(ok(await bob.run(['history', 'alice', '--limit', '1']), 'history').includes(line));
  });
});
