/**
 * The local name a received file is saved under (files.ts `suggestedName`):
 * the sender chooses the name, so whatever it is, the result is one plain
 * file name in the current directory — fast-check over arbitrary strings,
 * plus the cases that matter by name.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { FileRef } from '@parley/sdk';
import { suggestedName } from '../src/files.ts';

const ref = (name: string): FileRef => ({ name } as unknown as FileRef);
const utf8Bytes = (s: string): number => new TextEncoder().encode(s).length;

describe('suggestedName', () => {
  test('whatever the sender chose: one plain, visible file name of at most 200 UTF-8 bytes', () => {
    const piece = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.constantFrom('/', '\\', '..', '.', '-', '--', ' ', 'CON', 'nul.txt', '\u202e', '\u200f', '\u0000', '\n', '文', '😀', ':', '*'),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), fc.integer({ min: 1, max: 2 ** 40 }), (parts, seq) => {
        const name = suggestedName(ref(parts.join('')), seq);
        assert.ok(name.length > 0);
        assert.ok(utf8Bytes(name) <= 200, `${utf8Bytes(name)} bytes`);
        assert.ok(!/[/\\]/.test(name), `a path separator in ${JSON.stringify(name)}`);
        // eslint-disable-next-line no-control-regex -- control characters are what must not be there
        assert.ok(!/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029<>:"|?*]/.test(name), JSON.stringify(name));
        assert.ok(!/^[. ]/.test(name) && !/[. ]$/.test(name), `leading or trailing dot or space: ${JSON.stringify(name)}`);
        assert.notEqual(name, '-');
        assert.ok(!name.startsWith('-'), `read as an option by a later 'rm *': ${JSON.stringify(name)}`);
        assert.ok(!/^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i.test(name), `reserved: ${name}`);
        assert.ok(!/\p{Cs}/u.test(name.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')), 'no lone surrogate from a cut');
      }),
      { numRuns: 2000 },
    );
  });

  test('named cases', () => {
    const cases: Array<[string, string]> = [
      ['photo.jpg', 'photo.jpg'],
      ['../../etc/passwd', 'passwd'],
      ['C:\\Users\\x\\report.pdf', 'report.pdf'],
      ['', 'parley-file-7'],
      ['..', 'parley-file-7'],
      ['-', 'parley-file-7'],
      ['.hidden', 'hidden'],
      ['a\u202egpj.exe', 'agpj.exe'],
      ['com1.txt', '_com1.txt'],
      ['name. ', 'name'],
      [`${'a'.repeat(300)}.tar.gz`, `${'a'.repeat(197)}.gz`],
      [`${'😀'.repeat(60)}`, '😀'.repeat(50)],
      // A leading '-' would be an option to a later `rm *`, `tar cf x.tar *`, … in that directory.
      ['--checkpoint-action=exec=sh evil.sh', '_--checkpoint-action=exec=sh evil.sh'],
      ['-rf', '_-rf'],
      ['dir/-n', '_-n'],
      ['. -x.txt', '_-x.txt'],
      [`-${'a'.repeat(300)}.txt`, `_-${'a'.repeat(194)}.txt`],
      [`con.${'a'.repeat(300)}`, `_con.${'a'.repeat(179)}.${'a'.repeat(15)}`],
    ];
    for (const [sent, saved] of cases) assert.equal(suggestedName(ref(sent), 7), saved, JSON.stringify(sent));
  });
});
