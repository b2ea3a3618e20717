/**
 * `parley themis seal` / `open`: Secure Cell Seal with a symmetric key or a
 * passphrase (environment variable or file), with and without context,
 * binary and base64; every wrong secret fails alike, opaquely.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { assertFails, assertOk, pattern, tempDir, themis } from './_cli.ts';

const OPAQUE = /^parley: cannot open: wrong key, passphrase or context, or the data is corrupted\n$/;
const PASSPHRASE = 'correct horse battery staple';

const tmp = tempDir();
const keyFile = tmp.path('cell.key');
const otherKeyFile = tmp.path('other.key');
const passFile = tmp.path('pass.txt');
const message = pattern(4099, 7); // every byte value, not valid UTF-8

before(async () => {
  assertOk(await themis(['keygen', '--type', 'symmetric', '--out', tmp.path('cell')]));
  assertOk(await themis(['keygen', '--type', 'symmetric', '--out', tmp.path('other')]));
  writeFileSync(passFile, `${PASSPHRASE}\n`);
});
after(() => tmp.cleanup());

interface Secret {
  name: string;
  args: string[];
  env?: Record<string, string>;
}

const secrets = (): Secret[] => [
  { name: 'key file', args: ['--key', keyFile] },
  { name: 'key in env:VAR', args: ['--key', 'env:CELL_KEY'], env: { CELL_KEY: readFileSync(keyFile).toString('base64') } },
  { name: 'passphrase from env', args: ['--passphrase-env', 'CELL_PASS'], env: { CELL_PASS: PASSPHRASE } },
  { name: 'passphrase from file', args: ['--passphrase-file', passFile] },
];

describe('seal/open round trips', () => {
  for (const context of [undefined, 'invoice 42']) {
    for (const base64 of [false, true]) {
      test(`every secret source, ${context === undefined ? 'no context' : 'context'}, ${base64 ? 'base64' : 'binary'}`, async () => {
        for (const s of secrets()) {
          const extra = [...(context === undefined ? [] : ['--context', context]), ...(base64 ? ['--base64'] : [])];
          const sealed = await themis(['seal', ...s.args, ...extra], { input: message, env: s.env });
          assertOk(sealed, `seal (${s.name})`);
          if (base64) assert.match(sealed.stdout.toString('latin1'), /^[A-Za-z0-9+/]+=*\n$/);
          assert.ok(!sealed.stdout.includes(message.subarray(0, 64)), 'plaintext visible in the cell');
          const opened = await themis(['open', ...s.args, ...extra], { input: sealed.stdout, env: s.env });
          assertOk(opened, `open (${s.name})`);
          assert.deepEqual(opened.stdout, message, `round trip (${s.name})`);
        }
      });
    }
  }

  test('the passphrase file and the same passphrase in the environment are interchangeable (one trailing newline stripped)', async () => {
    const sealed = await themis(['seal', '--passphrase-file', passFile], { input: 'x' });
    assertOk(sealed);
    const opened = await themis(['open', '--passphrase-env', 'P'], { input: sealed.stdout, env: { P: PASSPHRASE } });
    assertOk(opened);
    assert.equal(opened.stdout.toString(), 'x');
  });

  test('--in/--out files; the opened plaintext is created 0600', async () => {
    const plain = tmp.path('plain.bin');
    writeFileSync(plain, message);
    assertOk(await themis(['seal', '--key', keyFile, '--in', plain, '--out', tmp.path('plain.cell')]));
    assertOk(await themis(['open', '--key', keyFile, '--in', tmp.path('plain.cell'), '--out', tmp.path('plain.out')]));
    assert.deepEqual(readFileSync(tmp.path('plain.out')), message);
    assert.equal(statSync(tmp.path('plain.out')).mode & 0o777, 0o600);
  });

  test('base64 input may be wrapped and indented', async () => {
    const sealed = await themis(['seal', '--key', keyFile, '--base64'], { input: message });
    assertOk(sealed);
    const wrapped = `  ${(sealed.stdout.toString('latin1').trim().match(/.{1,76}/g) ?? []).join('\r\n\t')}\n\n`;
    const opened = await themis(['open', '--key', keyFile, '--base64'], { input: wrapped });
    assertOk(opened);
    assert.deepEqual(opened.stdout, message);
  });
});

describe('seal/open failures', () => {
  let keySealed: Buffer;
  let passSealed: Buffer;
  let contextSealed: Buffer;
  before(async () => {
    keySealed = (await themis(['seal', '--key', keyFile], { input: message })).stdout;
    passSealed = (await themis(['seal', '--passphrase-file', passFile], { input: message })).stdout;
    contextSealed = (await themis(['seal', '--key', keyFile, '--context', 'right'], { input: message })).stdout;
  });

  test('wrong key, wrong passphrase, wrong or missing context, tampering: exit 1, one opaque line, nothing written', async () => {
    const tampered = Buffer.from(keySealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    const cases: [string, string[], Buffer, Record<string, string>?][] = [
      ['wrong key', ['--key', otherKeyFile], keySealed],
      ['wrong passphrase', ['--passphrase-env', 'P'], passSealed, { P: 'wrong horse' }],
      ['key instead of passphrase', ['--key', keyFile], passSealed],
      ['wrong context', ['--key', keyFile, '--context', 'wrong'], contextSealed],
      ['missing context', ['--key', keyFile], contextSealed],
      ['unexpected context', ['--key', keyFile, '--context', 'right'], keySealed],
      ['tampered cell', ['--key', keyFile], tampered],
      ['truncated cell', ['--key', keyFile], keySealed.subarray(0, 30)],
      ['not a cell', ['--key', keyFile], Buffer.from('hello world, not a cell')],
    ];
    for (const [name, args, input, env] of cases) {
      const out = tmp.path(`failed-${name.replace(/\W/g, '-')}`);
      const r = await themis(['open', ...args, '--out', out], { input, env });
      assertFails(r, 1, OPAQUE);
      assert.ok(!existsSync(out), `${name}: output written`);
      assert.ok(!r.stderr.includes('wrong horse'), `${name}: passphrase in the message`);
    }
  });

  test('invalid base64 is refused (not silently skipped)', async () => {
    const text = `${keySealed.toString('base64')}!`;
    assertFails(await themis(['open', '--key', keyFile, '--base64'], { input: text }), 1, /input is not valid base64/);
  });

  test("a key file holding base64 text (keygen's printed key saved to a file) is refused, not taken as other key bytes", async () => {
    const b64File = tmp.path('cell.key.b64');
    writeFileSync(b64File, `${readFileSync(keyFile).toString('base64')}\n`);
    assertFails(await themis(['seal', '--key', b64File], { input: 'x' }), 2, /holds base64 text, not raw key bytes/);
    // The same key decoded is the raw file: accepted.
    writeFileSync(b64File, Buffer.from(readFileSync(b64File, 'utf8').trim(), 'base64'));
    assertOk(await themis(['seal', '--key', b64File], { input: 'x' }));
  });

  test('empty input cannot be sealed', async () => {
    assertFails(await themis(['seal', '--key', keyFile], { input: '' }), 1, /input is empty/);
  });
});
