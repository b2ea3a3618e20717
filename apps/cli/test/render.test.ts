// What a peer's text can do to a terminal: nothing. Every character that is
// invisible, reorders text or acts on the terminal is shown as an escape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { displayWidth, inert, jsonLine } from '../src/render.ts';

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

test('history --json lines stay the same JSON and print inert: DEL, C1, bidi overrides and separators are \\u escapes', () => {
  const text = 'esc \u001b]0;T\u0007 bidi \u202eevil\u202c ls \u2028next c1 \u009b31m del \u007f zwsp \u200b ok é 京';
  const line = jsonLine({ type: 'message', kind: 'text', text, roomId: 'r', seq: 7, id: 'm', sender: { userId: 'bob', deviceId: 'd' }, outgoing: false, sentAt: 0, serverTs: 0 });
  // eslint-disable-next-line no-control-regex -- checking for control characters is the point
  assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u200b\u202a-\u202e\u2028\u2029]/);
  assert.equal((JSON.parse(line) as { text: string }).text, text);
  assert.match(line, /ok é 京/);
});

test('display width as terminals count it: wide CJK (punctuation too) and emoji 2; text symbols (©, ™, ❤ without VS16) 1; marks and joined emoji 0', () => {
  const cases: [string, number][] = [
    ['abc', 3],
    ['™©®‼↔❤', 6],
    ['❤\ufe0f', 2],
    ['🎉', 2],
    ['「。」、', 8],
    ['京タワー', 8],
    ['한국', 4],
    ['ＣＡＦＥ', 8],
    ['e\u0301', 1],
    ['👨\u200d👩\u200d👧', 2],
  ];
  for (const [text, width] of cases) assert.equal(displayWidth(text), width, JSON.stringify(text));
});
