/**
 * The helpers behind the tools' I/O: strict, whitespace-tolerant base64,
 * size labels, how commander's errors become our one line, where output
 * goes (regular files, devices, FIFOs) and how it is shown on a terminal.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, constants as fsConstants, readFileSync, statSync, writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { checkOutput, decodeBase64, encodeBase64Line, terminalText, writeOutput } from '../src/io.ts';
import { formatSize, MAX_INPUT_BYTES, MAX_SEALED_BYTES } from '../src/limits.ts';
import { formatCommanderError } from '../src/cli-error.ts';
import { pattern, tempDir } from './_cli.ts';

describe('decodeBase64', () => {
  test('round trips every length 0..70 through encodeBase64Line', () => {
    for (let n = 0; n <= 70; n++) {
      const bytes = pattern(n, n + 1);
      const text = encodeBase64Line(bytes).toString('latin1');
      assert.match(text, /^[A-Za-z0-9+/]*=*\n$/);
      assert.deepEqual(Buffer.from(decodeBase64(text) ?? []), bytes);
    }
  });

  test('tolerates whitespace anywhere and missing padding', () => {
    assert.deepEqual(Buffer.from(decodeBase64(' aGVs\r\n bG8=\t\n') ?? []), Buffer.from('hello'));
    assert.deepEqual(Buffer.from(decodeBase64('aGVsbG8') ?? []), Buffer.from('hello'));
  });

  test('refuses what it cannot decode exactly', () => {
    for (const bad of ['aGVsbG8!', 'aGVs-G8=', 'a', 'aGVsb', 'aGVsbG8===', 'aG=VsbG8', 'aGVsbG8=x', 'é']) {
      assert.equal(decodeBase64(bad), null, JSON.stringify(bad));
    }
  });
});

describe('formatSize', () => {
  test('labels the limits as the messages show them', () => {
    assert.equal(formatSize(MAX_INPUT_BYTES), '64 MiB');
    assert.equal(formatSize(MAX_SEALED_BYTES), '64 MiB + 64 KiB');
    assert.equal(formatSize(4096), '4 KiB');
    assert.equal(formatSize(1000), '1000 bytes');
  });
});

describe('formatCommanderError', () => {
  test('one line, prefixed, with a pointer to --help', () => {
    assert.equal(
      formatCommanderError("error: unknown option '--passphrse'\n(Did you mean --passphrase-env?)\n", 'parley themis seal'),
      "parley: unknown option '--passphrse' (Did you mean --passphrase-env?) (see: parley themis seal --help)\n",
    );
  });

  test('drops the value of an echoed --option=value', () => {
    assert.equal(formatCommanderError("error: unknown option '--pass=s3cret'\n", 'x'), "parley: unknown option '--pass=…' (see: x --help)\n");
  });
});

const hasMkfifo = process.platform !== 'win32' && spawnSync('mkfifo', ['--version'], { stdio: 'ignore' }).status === 0;
const isRoot = process.getuid?.() === 0;

/** The permission bits of `path`. */
const modeOf = (path: string): number => statSync(path).mode & 0o777;

/**
 * Reads the FIFO at `path` while `write` runs; the bytes read. If `write`
 * fails without ever opening the FIFO, a writer opened here ends the read.
 */
async function throughFifo(path: string, write: () => Promise<void>): Promise<Buffer> {
  const reading = readFile(path);
  try {
    await write();
  } finally {
    try {
      // With a reader waiting this opens at once; the reader sees the end when it closes.
      (await open(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK)).close().catch(() => undefined);
    } catch {
      // The reader has finished already (ENXIO: no reader).
    }
  }
  return reading;
}

describe('writeOutput: what the output is', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const secret = Buffer.from('the plaintext\n');

  test('a new file is created 0600 for a secret; an existing regular file is overwritten only with force, and reset to 0600 for a secret', async () => {
    const path = tmp.path('regular');
    await writeOutput(path, secret, { force: false, secret: true });
    assert.equal(modeOf(path), 0o600);
    writeFileSync(path, 'an older and longer content\n');
    chmodSync(path, 0o644);
    await assert.rejects(writeOutput(path, secret, { force: false, secret: true }), /already exists; use --force/);
    assert.equal(readFileSync(path, 'utf8'), 'an older and longer content\n');
    await writeOutput(path, secret, { force: true, secret: false });
    assert.deepEqual(readFileSync(path), secret);
    assert.equal(modeOf(path), 0o644, 'what is not secret keeps the mode');
    await writeOutput(path, secret, { force: true, secret: true });
    assert.equal(modeOf(path), 0o600);
    await assert.rejects(writeOutput(tmp.dir, secret, { force: true, secret: true }), /is a directory/);
    await assert.rejects(checkOutput(path, false), /already exists/);
    await checkOutput(path, true);
  });

  test('an existing FIFO is written through, with or without force, and its mode is never changed', { skip: hasMkfifo ? false : 'no mkfifo' }, async () => {
    const fifo = tmp.path('fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    chmodSync(fifo, 0o644);
    for (const force of [true, false]) {
      const read = await throughFifo(fifo, () => writeOutput(fifo, secret, { force, secret: true }));
      assert.deepEqual(read, secret, `force ${force}`);
      assert.equal(modeOf(fifo), 0o644, `force ${force}: the FIFO's mode changed`);
      assert.ok(statSync(fifo).isFIFO());
    }
    await checkOutput(fifo, false);
  });

  test('an existing character device (a private copy of the null device; as root) is written to, its mode never changed', { skip: isRoot && hasMkfifo ? false : 'needs root (mknod)' }, async (t) => {
    const device = tmp.path('null');
    if (spawnSync('mknod', [device, 'c', '1', '3']).status !== 0) {
      t.skip('mknod is not allowed here (a container without CAP_MKNOD?)');
      return;
    }
    chmodSync(device, 0o666);
    for (const force of [true, false]) {
      await writeOutput(device, secret, { force, secret: true });
      assert.equal(modeOf(device), 0o666, `force ${force}: the device's mode changed`);
      assert.ok(statSync(device).isCharacterDevice());
    }
  });
});

describe('terminalText', () => {
  const show = (bytes: Uint8Array | string): { text: string; changed: boolean } => terminalText(typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes);

  test('readable text passes unchanged: UTF-8 in any script, emoji sequences, tabs, line breaks, CRLF', () => {
    for (const text of ['hello\n', 'café, 文字, עברית, 😀👍🏽, 👨\u200d👩\u200d👧\n', 'a\tb\r\nc\r\n', '', 'no newline at the end']) {
      assert.deepEqual(show(text), { text, changed: false }, JSON.stringify(text));
    }
  });

  test('terminal controls, bidi overrides and bytes that are not UTF-8 become visible escapes', () => {
    assert.deepEqual(show('report\u001b]0;TITLE\u0007\u001b[2J done\n'), { text: 'report\\u{1b}]0;TITLE\\u{7}\\u{1b}[2J done\n', changed: true });
    assert.equal(show('evil\rgood\n').text, 'evil\\u{d}good\n');
    assert.equal(show('\u202etxt.exe').text, '\\u{202e}txt.exe');
    assert.equal(show('\u009b31m').text, '\\u{9b}31m');
    assert.equal(show(Buffer.from([0x41, 0xff, 0xc0, 0x80, 0xed, 0xa0, 0x80, 0xe2, 0x82])).text, 'A\\x{ff}\\x{c0}\\x{80}\\x{ed}\\x{a0}\\x{80}\\x{e2}\\x{82}');
    assert.equal(show(Buffer.from([0xf4, 0x90, 0x80, 0x80, 0x42])).text, '\\x{f4}\\x{90}\\x{80}\\x{80}B', 'above U+10FFFF');
  });

  test('whatever the bytes: nothing a terminal acts on is left, and valid UTF-8 without controls is untouched', () => {
    // eslint-disable-next-line no-control-regex -- control characters are what must not be there
    const active = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|\r(?!\n)/;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const { text } = terminalText(bytes);
        assert.ok(!active.test(text), JSON.stringify(text));
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
        // Letters that are default-ignorable (the Hangul fillers U+115F, U+1160, U+3164, U+FFA0) are invisible: shown escaped.
        const clean = s.replace(/[^\p{L}\p{N}\p{P}\p{Zs}\n\t]|\p{Default_Ignorable_Code_Point}/gu, '');
        assert.deepEqual(show(clean), { text: clean, changed: false });
      }),
    );
  });
});
