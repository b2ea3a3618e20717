/**
 * The interactive passphrase prompt of `seal` / `open`, on a real
 * pseudo-terminal (util-linux `script`; skipped where it is missing):
 * no echo, confirmation on seal, Ctrl-C, and the input-from-stdin conflict.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { assertOk, hasScript, onTerminal as onParleyTerminal, pattern, tempDir, themis } from './_cli.ts';

const PASSPHRASE = 'typed at the prompt';

/** `parley themis <args…>` on a pseudo-terminal, answering its prompts. */
function onTerminal(args: string[], answers: string[]): Promise<{ code: number | null; screen: string }> {
  return onParleyTerminal(['themis', ...args], answers);
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

  test('a mismatched confirmation is asked again; after three, refused (exit 2)', async () => {
    const again = tmp.path('again.cell');
    const r = await onTerminal(['seal', '--in', plainFile, '--out', again], ['one\r', 'two\r', `${PASSPHRASE}\r`, `${PASSPHRASE}\r`]);
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, /The passphrases do not match; try again \(2 tries left\)\./);
    const o = await themis(['open', '--passphrase-env', 'P', '--in', again], { env: { P: PASSPHRASE } });
    assertOk(o);
    assert.deepEqual(o.stdout, message);
    const refused = await onTerminal(['seal', '--in', plainFile, '--out', tmp.path('mismatch.cell')], ['one\r', 'two\r', 'one\r', 'two\r', 'one\r', 'two\r']);
    assert.equal(refused.code, 2, refused.screen);
    assert.match(refused.screen, /try again \(1 try left\)[\s\S]*parley: the passphrases do not match \(3 tries\)/);
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
