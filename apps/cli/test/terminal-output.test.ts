/**
 * What `parley themis open` / `verify` / `decrypt` show on a terminal (a
 * real pseudo-terminal through util-linux `script`; skipped where it is
 * missing): the recovered data is someone else's, so its control
 * characters are shown as visible escapes instead of acting on the terminal
 * (set its title, clear it, …), with a note on stderr; readable text is
 * shown as it is; a pipe or a file gets the exact bytes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { assertOk, CLI, childEnv, tempDir, themis } from './_cli.ts';

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
const TIMEOUT_MS = 20_000;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `parley themis <args>` on a pseudo-terminal (stdin, stdout and stderr): its exit code and the bytes the terminal received. */
function onTerminal(args: string[]): Promise<{ code: number | null; screen: Buffer }> {
  const command = [process.execPath, CLI, 'themis', ...args].map(shellQuote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen: Buffer.concat(chunks) });
    });
    child.stdin.end();
  });
}

const ESC = 0x1b;
const BEL = 0x07;
const hostile = Buffer.from('report\u001b]0;TITLE-SET-BY-SIGNER\u0007\u001b[2J done\n', 'utf8');
const readable = Buffer.from('Plain text, café 文字 😀\n\tsecond line\n', 'utf8');

const tmp = tempDir();
after(() => tmp.cleanup());

describe('recovered data on a terminal', { skip: hasScript ? false : 'util-linux script is not installed' }, () => {
  /** For each tool: the arguments that recover `name`'s data, made beforehand. */
  const recover = new Map<string, (name: string) => string[]>();

  before(async () => {
    const k = (name: string): string => tmp.path(name);
    for (const r of [
      await themis(['keygen', '--out', k('signer')]),
      await themis(['keygen', '--out', k('peer')]),
      await themis(['keygen', '--type', 'symmetric', '--out', k('cell')]),
    ])
      assertOk(r, 'keygen');
    for (const [name, data] of [
      ['hostile', hostile],
      ['readable', readable],
    ] as const) {
      writeFileSync(k(`${name}.txt`), data);
      assertOk(await themis(['sign', '--key', k('signer.priv'), '--in', k(`${name}.txt`), '--out', k(`${name}.signed`)]), 'sign');
      assertOk(await themis(['seal', '--key', k('cell.key'), '--in', k(`${name}.txt`), '--out', k(`${name}.cell`)]), 'seal');
      assertOk(await themis(['encrypt', '--key', k('signer.priv'), '--peer', k('peer.pub'), '--in', k(`${name}.txt`), '--out', k(`${name}.enc`)]), 'encrypt');
    }
    recover.set('verify', (name) => ['verify', '--key', k('signer.pub'), '--in', k(`${name}.signed`)]);
    recover.set('open', (name) => ['open', '--key', k('cell.key'), '--in', k(`${name}.cell`)]);
    recover.set('decrypt', (name) => ['decrypt', '--key', k('peer.priv'), '--peer', k('signer.pub'), '--in', k(`${name}.enc`)]);
  });

  test("verify, open and decrypt: a signer's escape sequences are shown as escapes, never sent raw; a note says so", async () => {
    for (const [tool, args] of recover) {
      const r = await onTerminal(args('hostile'));
      assert.equal(r.code, 0, `${tool}: ${r.screen.toString('utf8')}`);
      assert.ok(!r.screen.includes(ESC) && !r.screen.includes(BEL), `${tool}: raw control characters reached the terminal: ${JSON.stringify(r.screen.toString('latin1'))}`);
      const screen = r.screen.toString('utf8');
      assert.ok(screen.includes('report\\u{1b}]0;TITLE-SET-BY-SIGNER\\u{7}\\u{1b}[2J done'), `${tool}: ${screen}`);
      assert.match(screen, /shown as \\u\{…\} \/ \\x\{…\} escapes on this terminal; for the exact bytes, use --out <file> or a pipe/);
    }
  });

  test('readable text is shown as it is, without a note', async () => {
    for (const [tool, args] of recover) {
      const r = await onTerminal(args('readable'));
      assert.equal(r.code, 0, `${tool}: ${r.screen.toString('utf8')}`);
      // The terminal turns each \n into \r\n.
      assert.equal(r.screen.toString('utf8'), readable.toString('utf8').replace(/\n/g, '\r\n'), tool);
    }
  });

  test('--out /dev/tty is a terminal too; a pipe or a file gets the exact bytes', async () => {
    const verify = recover.get('verify');
    assert.ok(verify !== undefined);
    const tty = await onTerminal([...verify('hostile'), '--out', '/dev/tty']);
    assert.equal(tty.code, 0, tty.screen.toString('utf8'));
    assert.ok(!tty.screen.includes(ESC), 'raw ESC through --out /dev/tty');
    const piped = await themis(verify('hostile'));
    assertOk(piped);
    assert.deepEqual(piped.stdout, hostile);
    const out = tmp.path('hostile.out');
    const onFile = await onTerminal([...verify('hostile'), '--out', out]);
    assert.equal(onFile.code, 0, onFile.screen.toString('utf8'));
    assert.deepEqual(readFileSync(out), hostile);
  });
});
