/**
 * Usage errors of `parley themis …`: one `parley: …` line, exit code 2, no
 * stack trace, no secret echoed; input size limits; help; and `parley serve`
 * still registered next to the new group.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { MAX_INPUT_BYTES, MAX_KEY_BYTES, MAX_SEALED_BYTES } from '../src/limits.ts';
import { assertFails, assertOk, parley, tempDir, themis } from './_cli.ts';

const tmp = tempDir();
const keyFile = tmp.path('cell.key');
before(async () => {
  assertOk(await themis(['keygen', '--type', 'symmetric', '--out', tmp.path('cell')]));
  assertOk(await themis(['keygen', '--out', tmp.path('alice')]));
});
after(() => tmp.cleanup());

describe('usage errors', () => {
  test('no key and no passphrase (stdin is not a terminal)', async () => {
    assertFails(await themis(['seal'], { input: 'x' }), 2, /no key: give --key, --passphrase-env or --passphrase-file/);
    assertFails(await themis(['open'], { input: 'x' }), 2, /no key/);
  });

  test('required keys of sign/verify/encrypt/decrypt', async () => {
    assertFails(await themis(['sign'], { input: 'x' }), 2, /required option '-k, --key <source>'/);
    assertFails(await themis(['verify'], { input: 'x' }), 2, /required option/);
    assertFails(await themis(['encrypt', '--key', tmp.path('alice.priv')], { input: 'x' }), 2, /required option '-p, --peer <source>'/);
  });

  test('a passphrase on the command line is refused, and never echoed', async () => {
    for (const args of [['--passphrase', 'hunter2'], ['--passphrase=hunter2'], ['--password', 'hunter2'], ['--passphrase']]) {
      const r = await themis(['seal', ...args], { input: 'x' });
      assertFails(r, 2, /a passphrase is never accepted on the command line .*--passphrase-env VAR, --passphrase-file FILE/);
      assert.ok(!r.stderr.includes('hunter2'));
    }
  });

  test('an unknown --option=value is reported without its value', async () => {
    const r = await themis(['seal', '--pass=hunter2'], { input: 'x' });
    assertFails(r, 2, /unknown option '--pass=…'/);
    assert.ok(!r.stderr.includes('hunter2'));
  });

  test('a secret key is refused as base64:… on the command line; its value is not echoed', async () => {
    const b64 = readFileSync(keyFile).toString('base64');
    const r = await themis(['seal', '--key', `base64:${b64}`], { input: 'x' });
    assertFails(r, 2, /secret keys are not accepted on the command line/);
    assert.ok(!r.stderr.includes(b64));
    const priv = readFileSync(tmp.path('alice.priv')).toString('base64');
    const s = await themis(['sign', '--key', `base64:${priv}`], { input: 'x' });
    assertFails(s, 2, /secret keys are not accepted/);
    assert.ok(!s.stderr.includes(priv));
  });

  test('conflicting key sources', async () => {
    assertFails(await themis(['seal', '--key', keyFile, '--passphrase-env', 'P'], { input: 'x' }), 2, /cannot be used with/);
    assertFails(await themis(['seal', '--passphrase-env', 'P', '--passphrase-file', 'f'], { input: 'x' }), 2, /cannot be used with/);
  });

  test('missing or unusable key and passphrase sources', async () => {
    assertFails(await themis(['seal', '--key', tmp.path('nope.key')], { input: 'x' }), 2, /cannot read --key key file .*no such file/);
    assertFails(await themis(['seal', '--key', 'env:NOT_SET_ANYWHERE'], { input: 'x' }), 2, /environment variable NOT_SET_ANYWHERE is not set/);
    assertFails(await themis(['seal', '--key', 'env:K'], { input: 'x', env: { K: 'not base64!' } }), 2, /does not hold a base64 key/);
    assertFails(await themis(['seal', '--passphrase-env', 'NOT_SET_ANYWHERE'], { input: 'x' }), 2, /is not set/);
    assertFails(await themis(['seal', '--passphrase-env', 'EMPTY'], { input: 'x', env: { EMPTY: '' } }), 2, /is empty/);
    writeFileSync(tmp.path('empty-pass'), '\n');
    assertFails(await themis(['seal', '--passphrase-file', tmp.path('empty-pass')], { input: 'x' }), 2, /is empty/);
    assertFails(await themis(['seal', '--key', tmp.path('alice.pub')], { input: 'x' }), 2, /holds a Themis public key, not a symmetric key/);
    assertFails(await themis(['sign', '--key', keyFile], { input: 'x' }), 2, /is not a valid Themis private key/);
    writeFileSync(tmp.path('huge.key'), Buffer.alloc(MAX_KEY_BYTES + 1, 1));
    assertFails(await themis(['seal', '--key', tmp.path('huge.key')], { input: 'x' }), 2, /larger than the 64 KiB limit/);
  });

  test('an existing --out is not overwritten without --force', async () => {
    const out = tmp.path('exists.cell');
    writeFileSync(out, 'precious');
    assertFails(await themis(['seal', '--key', keyFile, '--out', out], { input: 'x' }), 2, /already exists; use --force to overwrite it/);
    assert.equal(readFileSync(out, 'utf8'), 'precious');
    assertOk(await themis(['seal', '--key', keyFile, '--out', out, '--force'], { input: 'x' }));
    assert.notEqual(readFileSync(out, 'utf8'), 'precious');
  });

  test('a missing input file', async () => {
    assertFails(await themis(['seal', '--key', keyFile, '--in', tmp.path('nope')]), 2, /cannot read input .*no such file/);
  });

  test('unknown subcommand', async () => {
    assertFails(await themis(['frobnicate']), 2, /unknown command 'frobnicate'/);
  });
});

describe('input size limits', () => {
  test('a file one byte over the limit is refused before reading', async () => {
    const big = tmp.path('big.bin');
    writeFileSync(big, '');
    truncateSync(big, MAX_INPUT_BYTES + 1); // sparse: instant, no disk used
    assertFails(await themis(['seal', '--key', keyFile, '--in', big]), 2, /input ".*big\.bin" is larger than the 64 MiB limit/);
    const sealedSide = tmp.path('big.cell');
    writeFileSync(sealedSide, '');
    truncateSync(sealedSide, MAX_SEALED_BYTES + 1);
    assertFails(await themis(['open', '--key', keyFile, '--in', sealedSide]), 2, /larger than the 64 MiB \+ 64 KiB limit/);
  });

  test('stdin one byte over the limit is refused; exactly at the limit is accepted', async () => {
    assertFails(await themis(['seal', '--key', keyFile], { input: Buffer.alloc(MAX_INPUT_BYTES + 1) }), 2, /input is larger than the 64 MiB limit/);
    const r = await themis(['seal', '--key', keyFile], { input: Buffer.alloc(MAX_INPUT_BYTES) });
    assertOk(r);
    // What seal wrote at the limit, open reads back.
    const opened = await themis(['open', '--key', keyFile], { input: r.stdout });
    assertOk(opened);
    assert.equal(opened.stdout.length, MAX_INPUT_BYTES);
  });
});

describe('help and the rest of the CLI', () => {
  test('parley themis --help lists the tools and exits 0', async () => {
    const r = await themis(['--help']);
    assertOk(r);
    for (const name of ['keygen', 'seal', 'open', 'sign', 'verify', 'encrypt', 'decrypt']) assert.match(r.stdout.toString(), new RegExp(`\\b${name}\\b`));
    assert.match(r.stdout.toString(), /Exit codes/);
  });

  test('seal --help documents the passphrase sources and offers no passphrase flag', async () => {
    const r = await themis(['seal', '--help']);
    assertOk(r);
    const help = r.stdout.toString();
    assert.match(help, /--passphrase-env <var>/);
    assert.match(help, /--passphrase-file <file>/);
    assert.doesNotMatch(help, /--passphrase \[/);
    assert.doesNotMatch(help, /--password/);
  });

  test('parley --help still lists serve, next to themis', async () => {
    const r = await parley(['--help']);
    assertOk(r);
    assert.match(r.stdout.toString(), /serve \[options\]/);
    assert.match(r.stdout.toString(), /themis/);
  });
});
