/**
 * The interactive passphrase prompt of `seal` / `open`, on a real
 * pseudo-terminal (util-linux `script`; skipped where it is missing):
 * no echo, confirmation on seal, Ctrl-C, and the input-from-stdin conflict.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { CLI, assertOk, childEnv, pattern, tempDir, themis } from './_cli.ts';

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
const PASSPHRASE = 'typed at the prompt';
const TIMEOUT_MS = 20_000;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs `parley themis <args>` on a pseudo-terminal; each time the terminal
 * output shows the next prompt, types the next answer. Resolves with the
 * exit code and everything the terminal showed.
 */
function onTerminal(args: string[], answers: string[]): Promise<{ code: number | null; screen: string }> {
  const command = [process.execPath, CLI, 'themis', ...args].map(shellQuote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    let prompts = 0;
    child.stdin.on('error', () => undefined);
    const onOutput = (chunk: Buffer): void => {
      screen += chunk.toString('utf8');
      const seen = screen.match(/Passphrase: /gi)?.length ?? 0;
      while (prompts < seen && prompts < answers.length) child.stdin.write(answers[prompts++]);
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, screen });
    });
  });
}

const tmp = tempDir();
const plainFile = tmp.path('plain.bin');
const message = pattern(300, 5);
before(() => writeFileSync(plainFile, message));
after(() => tmp.cleanup());

describe('passphrase prompt', { skip: hasScript ? false : 'util-linux script is not installed' }, () => {
  test('seal asks twice without echo; the cell opens with the same passphrase from the environment and at the prompt', async () => {
    const cell = tmp.path('typed.cell');
    const r = await onTerminal(['seal', '--in', plainFile, '--out', cell], [`${PASSPHRASE}\r`, `${PASSPHRASE}\r`]);
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, /Passphrase: [\s\S]*Repeat passphrase: /);
    assert.ok(!r.screen.includes(PASSPHRASE), 'the passphrase was echoed');
    const o = await themis(['open', '--passphrase-env', 'P', '--in', cell], { env: { P: PASSPHRASE } });
    assertOk(o);
    assert.deepEqual(o.stdout, message);
    const out = tmp.path('typed.out');
    const p = await onTerminal(['open', '--in', cell, '--out', out], [`${PASSPHRASE}\r`]);
    assert.equal(p.code, 0, p.screen);
    assert.deepEqual(readFileSync(out), message);
  });

  test('a mismatched confirmation is refused (exit 2)', async () => {
    const r = await onTerminal(['seal', '--in', plainFile, '--out', tmp.path('mismatch.cell')], ['one\r', 'two\r']);
    assert.equal(r.code, 2, r.screen);
    assert.match(r.screen, /parley: the passphrases do not match/);
  });

  test('Ctrl-C at the prompt exits 130', async () => {
    const r = await onTerminal(['open', '--in', plainFile, '--out', tmp.path('never')], ['\u0003']);
    assert.equal(r.code, 130, r.screen);
    assert.match(r.screen, /parley: interrupted/);
  });

  test('the prompt needs the input in a file, not on the terminal', async () => {
    const r = await onTerminal(['seal', '--out', tmp.path('x.cell')], []);
    assert.equal(r.code, 2, r.screen);
    assert.match(r.screen, /give the input with --in <file>/);
  });

  test('binary output to a terminal is refused; --base64 is allowed', async () => {
    const key = tmp.path('k');
    assertOk(await themis(['keygen', '--type', 'symmetric', '--out', key]));
    const r = await onTerminal(['seal', '--key', `${key}.key`, '--in', plainFile], []);
    assert.equal(r.code, 2, r.screen);
    assert.match(r.screen, /refusing to write binary output to a terminal/);
    const b = await onTerminal(['seal', '--key', `${key}.key`, '--in', plainFile, '--base64'], []);
    assert.equal(b.code, 0, b.screen);
    assert.match(b.screen, /^[A-Za-z0-9+/]+=*\r?\n$/);
  });
});
