// What a peer's text can do to a terminal: nothing. Every character that is
// invisible, reorders text or acts on the terminal is shown as an escape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { displayWidth, failureLine, historyFailureLine, inert, jsonLine, timeLeft } from '../src/render.ts';

test('time left is rounded down, never more than there is', () => {
  const now = 1_000_000;
  assert.equal(timeLeft(now + 5 * 60_000, now), '5 minutes');
  assert.equal(timeLeft(now + 5 * 60_000 - 1, now), '4 minutes');
  assert.equal(timeLeft(now + 119_999, now), '1 minute');
  assert.equal(timeLeft(now + 60_000, now), '1 minute');
  assert.equal(timeLeft(now + 59_999, now), '59 seconds');
  assert.equal(timeLeft(now + 1_999, now), '1 second');
  assert.equal(timeLeft(now - 5, now), '0 seconds');
});

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

test('every invisible or format character is escaped, not only a list of known ones: Cf, default-ignorables, Hangul fillers, tags, lone surrogates', () => {
  const cases: [string, string][] = [
    ['a\u061cb', 'a\\u{61c}b'], // Arabic letter mark (bidi)
    ['pay\u00adpal', 'pay\\u{ad}pal'], // soft hyphen
    ['a\u180eb', 'a\\u{180e}b'], // Mongolian vowel separator
    ['\u115f\u1160\u3164\uffa0', '\\u{115f}\\u{1160}\\u{3164}\\u{ffa0}'], // Hangul fillers (blank, yet letters)
    ['\ufff9a\ufffab\ufffb', '\\u{fff9}a\\u{fffa}b\\u{fffb}'], // interlinear annotation
    ['ok\u{e0001}\u{e0069}\u{e0067}\u{e006e}\u{e007f}', 'ok\\u{e0001}\\u{e0069}\\u{e0067}\\u{e006e}\\u{e007f}'], // tag characters: hidden text
    ['\u206a\u206f', '\\u{206a}\\u{206f}'], // deprecated format characters
    ['\u2065', '\\u{2065}'], // unassigned, default-ignorable
    ['\u17b4', '\\u{17b4}'], // Khmer inherent vowel (invisible)
    ['\u{1d173}', '\\u{1d173}'], // musical symbol format
    ['x\ud800y', 'x\\u{d800}y'], // a lone surrogate
    ['a\u2029b', 'a\\u{2029}b'],
    // Joiners that join nothing (at an edge, in a run) only hide bits; so do variation selectors after another or after nothing.
    ['\u200dab\u200c', '\\u{200d}ab\\u{200c}'],
    ['a\u200c\u200d\u200cb', 'a\\u{200c}\\u{200d}\\u{200c}b'],
    ['a \u200d b', 'a \\u{200d} b'],
    ['\ufe0f', '\\u{fe0f}'],
    ['\u{1f600}\ufe0f\u{e0100}\u{e0101}', '\u{1f600}\ufe0f\\u{e0100}\\u{e0101}'],
    ['\u{1f3f4}\u{e0041}\u{e007f}', '\u{1f3f4}\\u{e0041}\\u{e007f}'], // not a subdivision flag (capital tag letter)
  ];
  for (const [raw, shown] of cases) assert.equal(inert(raw), shown, JSON.stringify(raw));
});

test('emoji still render: ZWJ sequences, skin tones, keycaps, VS16, subdivision flags; and Persian, Indic and CJK text with their joiners and variants', () => {
  for (const t of [
    '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}\u200d\u{1f466}', // family
    '\u{1f3f3}\ufe0f\u200d\u{1f308}', // rainbow flag: VS16 then ZWJ
    '\u{1f469}\u{1f3fd}\u200d\u{1f4bb}', // technologist, medium skin tone
    '\u{1f441}\ufe0f\u200d\u{1f5e8}\ufe0f', // eye in speech bubble
    '1\ufe0f\u20e3 #\ufe0f\u20e3 \u203c\ufe0f \u00a9\ufe0f \u2764\ufe0f \u263a\ufe0e',
    '\u{1f3f4}\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f} \u{1f3f4}\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}', // England, Scotland
    '\u{1f1eb}\u{1f1f7}', // a regional-indicator flag
    'ک\u200cها', // Persian ZWNJ
    '\u0915\u094d\u200d\u0937', // Devanagari: virama, ZWJ
    '\u845b\u{e0100}', // CJK ideographic variation sequence
    '\u1820\u180b', // Mongolian free variation selector
    '中文 日本語 한국어 ภาษาไทย',
  ]) assert.equal(inert(t), t, JSON.stringify(t));
});

test('history --json escapes the same characters, as valid JSON (a surrogate pair of \\u escapes beyond U+FFFF)', () => {
  const text = 'a\u061cb \u3164 x\u{e0041}y \u{1f468}\u200d\u{1f469} \u{1f3f4}\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}';
  const line = jsonLine({ type: 'message', kind: 'text', text, roomId: 'r', seq: 7, id: 'm', sender: { userId: 'bob', deviceId: 'd' }, outgoing: false, sentAt: 0, serverTs: 0 });
  assert.match(line, /a\\u061cb \\u3164 x\\udb40\\udc41y \u{1f468}\u200d\u{1f469} \u{1f3f4}/u);
  assert.equal((JSON.parse(line) as { text: string }).text, text);
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

test('a message the sender\'s client made malformed (a file of an impossible size) is shown as such, with its reason: never as a file', () => {
  const f = { roomId: 'r', seq: 110, from: { userId: 'bob', deviceId: 'phone' }, clientId: 'c', serverTs: 0, reason: 'MALFORMED_PAYLOAD' } as const;
  assert.equal(failureLine(f, '12:00'), "[12:00] bob: (message malformed: bob's client sent content this one cannot read (broken, or newer than this one)) [MALFORMED_PAYLOAD]");
  assert.match(historyFailureLine(f), /bob: \(message malformed: .*\) \[MALFORMED_PAYLOAD\]$/);
  assert.deepEqual(JSON.parse(jsonLine({ type: 'undecryptable', ...f })), { seq: 110, time: new Date(0).toISOString(), from: 'bob', device: 'phone', undecryptable: 'MALFORMED_PAYLOAD' });
});
