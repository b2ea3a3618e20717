/**
 * The pure helpers behind the tools' I/O: strict, whitespace-tolerant
 * base64, size labels, and how commander's errors become our one line.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBase64, encodeBase64Line } from '../src/io.ts';
import { formatSize, MAX_INPUT_BYTES, MAX_SEALED_BYTES } from '../src/limits.ts';
import { formatCommanderError } from '../src/themis-tools.ts';
import { pattern } from './_cli.ts';

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
