// What a peer's text can do to a terminal: nothing. Every character that is
// invisible, reorders text or acts on the terminal is shown as an escape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inert } from '../src/render.ts';

test('controls, bidi marks and overrides, zero-width characters and the BOM are shown escaped', () => {
  const cases: [string, string][] = [
    ['\u001b[2J', '\\u{1b}[2J'],
    ['\u009b', '\\u{9b}'],
    ['a\u200bb', 'a\\u{200b}b'], // zero-width space
    ['\u200e\u200f', '\\u{200e}\\u{200f}'], // left-to-right and right-to-left marks
    ['\u202e', '\\u{202e}'], // right-to-left override
    ['\u2066x\u2069', '\\u{2066}x\\u{2069}'], // isolate
    ['\u2060', '\\u{2060}'], // word joiner
    ['\ufeffBob', '\\u{feff}Bob'], // BOM
    ['\u2028', '\\u{2028}'],
  ];
  for (const [raw, shown] of cases) assert.equal(inert(raw), shown, JSON.stringify(raw));
});

test('ordinary text of any script, emoji sequences (zero-width joiner) and tabs pass through unchanged', () => {
  for (const t of ['héllo wörld', 'Привет', 'こんにちは', 'مرحبا', 'می\u200cخواهم', '👩\u200d👩\u200d👧 family', 'a\tb', 'line\nbreak']) assert.equal(inert(t), t);
});
