/**
 * The tutorial endpoint's pure parts: which names are refused and why, when
 * two names look alike (skeletons), how a chat line is made one row, how
 * addresses are counted, and the relay budget's arithmetic.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkName, skeleton } from '../src/tutorial/names.ts';
import { LINE_BREAK_MARK, oneRow, parseHello } from '../src/tutorial/frames.ts';
import { addressKey } from '../src/tutorial/address.ts';
import { RelayBudget } from '../src/tutorial/relay-budget.ts';
import { TUTORIAL_NAME_BYTES_MAX } from '../src/limits.ts';

function refusal(name: string): string | null {
  const v = checkName(name);
  return v.ok ? null : v.reason;
}

describe('tutorial names', () => {
  test('invisible characters are refused, each with a reason naming it: default-ignorable code points, Hangul fillers, the blank Braille pattern', () => {
    const invisible: [string, string][] = [
      ['Bob\u034F', '034F'], // combining grapheme joiner
      ['Bob\uFE0F', 'FE0F'], // VS16 after a letter
      ['Bob\uFE00', 'FE00'], // VS1
      ['Bob\u3164', '3164'], // HANGUL FILLER
      ['Bob\uFFA0', 'FFA0'], // HALFWIDTH HANGUL FILLER
      ['B\u115Fob', '115F'], // HANGUL CHOSEONG FILLER
      ['B\u1160ob', '1160'], // HANGUL JUNGSEONG FILLER
      ['Bo\u180Bb', '180B'], // MONGOLIAN FREE VARIATION SELECTOR ONE
      ['Bo\u200Bb', '200B'], // ZERO WIDTH SPACE
      ['Bo\u200Db', '200D'], // ZWJ between letters
      ['Bob\u00AD', '00AD'], // SOFT HYPHEN
      ['Bob\u2800', '2800'], // BRAILLE PATTERN BLANK
      ['evil\u202Egnp', '202E'], // RIGHT-TO-LEFT OVERRIDE
      ['Bob\u{E0041}', 'E0041'], // TAG LATIN CAPITAL LETTER A
      ['line\u2028break', '2028'],
      ['tab\there', '0009'],
    ];
    for (const [name, cp] of invisible) assert.equal(refusal(name), `name refused: invisible, control or format character U+${cp}`, JSON.stringify(name));
  });

  test('emoji keep their selectors and joiners: ❤️, 👨‍👩‍👧, 👩🏽‍💻, 🏳️‍🌈, 1️⃣', () => {
    for (const name of ['\u2764\uFE0F iPhone', '\u{1F468}\u200D\u{1F469}\u200D\u{1F467} Family iPad', '\u{1F469}\u{1F3FD}\u200D\u{1F4BB} laptop', '\u{1F3F3}\uFE0F\u200D\u{1F308}', '1\uFE0F\u20E3 one']) {
      assert.equal(refusal(name), null, JSON.stringify(name));
    }
    // A joiner at the end, or before a letter, joins no emoji.
    assert.match(refusal('\u{1F468}\u200D') ?? '', /U\+200D/);
    assert.match(refusal('\u{1F468}\u200Dx') ?? '', /U\+200D/);
  });

  test('joiners that spell a word are kept: ZWNJ in Persian, ZWJ after a virama in Sinhala and Devanagari; between Latin, Greek or Cyrillic letters, or at a word’s edge, they only hide', () => {
    for (const name of ['\u0639\u0644\u06CC\u200C\u0631\u0636\u0627', '\u0DC1\u0DCA\u200D\u0DBB\u0DD3', '\u0915\u094D\u200D\u0937', '\u0928\u094D\u200C\u0928']) {
      assert.equal(refusal(name), null, JSON.stringify(name));
    }
    for (const [name, cp] of [
      ['Bo\u200Cb', '200C'],
      ['\u0418\u0432\u200D\u0430\u043D', '200D'],
      ['\u0639\u0644\u06CC\u200C', '200C'],
      ['\u200D\u0DBB\u0DD3', '200D'],
      ['\u0DC1\u0DCA\u200D b', '200D'],
    ] as const) {
      assert.equal(refusal(name), `name refused: invisible, control or format character U+${cp}`, JSON.stringify(name));
    }
    // A joiner never makes a second name: the skeleton drops it.
    const plain = checkName('\u0639\u0644\u06CC\u0631\u0636\u0627');
    const joined = checkName('\u0639\u0644\u06CC\u200C\u0631\u0636\u0627');
    assert.ok(plain.ok && joined.ok && plain.skeleton === joined.skeleton);
  });

  test('ordinary device names of any script pass, scripts mixed between words; letters of two scripts inside one word do not', () => {
    for (const name of [
      'Ivan\u2019s iPhone',
      'iPhone (\u0418\u0432\u0430\u043D)',
      'iPhone \u05E9\u05DC \u05D3\u05E0\u05D9',
      'iPhone \u0395\u03BB\u03AD\u03BD\u03B7\u03C2',
      'iPad \u2014 \u039F\u03BB\u03B3\u03B1',
      '\u7530\u4E2D\u306EiPhone',
      'Ivan \u0418\u0432\u0430\u043D',
      'iPhone-\u0418\u0432\u0430\u043D',
      'Jos\u00E9',
    ]) {
      assert.equal(refusal(name), null, JSON.stringify(name));
    }
    for (const name of ['\u0412ob', 'B\u0585b', 'Iv\u0430n', 'iPhone\u0418\u0432\u0430\u043D']) assert.equal(refusal(name), 'name refused: letters of two scripts in one word', JSON.stringify(name));
  });

  test('"server" and every name alike it are refused as reserved; so are empty, padded, over-long and decomposed names, each saying why', () => {
    // Cyrillic dze (small and capital) and ie among Latin letters, fullwidth, long s.
    for (const name of ['server', 'Server', 'SERVER', '\u0455erver', '\u0405erver', 'serv\u0435r', '\uFF53\uFF45\uFF52\uFF56\uFF45\uFF52', '\u017Ferver']) {
      assert.match(refusal(name) ?? '', /^name refused: it looks like "server"/, JSON.stringify(name));
    }
    assert.equal(refusal(''), 'name refused: empty');
    assert.equal(refusal(' padded'), 'name refused: white space at its start or end');
    assert.equal(refusal('padded\u3000'), 'name refused: white space at its start or end');
    assert.equal(refusal('Jose\u0301'), 'name refused: not in Unicode NFC (composed) form');
    assert.equal(refusal('x'.repeat(TUTORIAL_NAME_BYTES_MAX)), null);
    assert.equal(refusal('x'.repeat(TUTORIAL_NAME_BYTES_MAX + 1)), `name refused: longer than ${TUTORIAL_NAME_BYTES_MAX} bytes`);
    assert.equal(refusal('\u00E9'.repeat(TUTORIAL_NAME_BYTES_MAX / 2 + 1)), `name refused: longer than ${TUTORIAL_NAME_BYTES_MAX} bytes`);
  });

  test('skeletons: names that could pass for one another are equal, in both directions; different names are not', () => {
    const alike: [string, string][] = [
      ['Pepe', '\u0420\u0435\u0440\u0435'], // all-Cyrillic Рере
      ['\u0420\u0435\u0440\u0435', 'Pepe'],
      ['Bob', 'bob'],
      ['Bob', 'BOB'],
      ['Bob', '\u{1D401}\u{1D428}\u{1D41B}'], // mathematical bold
      ['Bob', '\uFF22\uFF4F\uFF42'], // fullwidth
      ['Bill', 'BiII'],
      ['Bill', 'Bi11'],
      ['Bob', 'B0b'],
      ['Mary', 'rnary'],
      ['Bob Smith', 'Bob  Smith'],
      ['KOALA', '\u039A\u039F\u0391L\u0391'], // Greek capitals but the L
      ['\u00CBva', '\u0401va'], // Ё (Cyrillic) and Ë (Latin)
      ['Stra\u00DFe', 'Strasse'],
      ['\u2764\uFE0F iPhone', '\u2764 iPhone'],
    ];
    for (const [a, b] of alike) assert.equal(skeleton(a), skeleton(b), `${JSON.stringify(a)} ~ ${JSON.stringify(b)}`);
    const different: [string, string][] = [
      ['Bob', 'Rob'],
      ['Ivan', '\u0418\u0432\u0430\u043D'],
      ['Anna', 'Anne'],
      ['iPhone', 'iPad'],
    ];
    for (const [a, b] of different) assert.notEqual(skeleton(a), skeleton(b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  });

  test('a hello refused for its name says so; a malformed hello or key says what was expected', () => {
    const key = 'VUVDMgAAAC11WDPUAhLfH+nqSBHh+XGOJBHL/cCjbtasiLZEwpokhO5QTD6g';
    const bad = parseHello(`Bob\u3164:${key}`);
    assert.ok(!bad.ok && bad.reason.startsWith('name refused: '));
    const empty = parseHello(`:${key}`);
    assert.ok(!empty.ok && empty.reason === 'name refused: empty');
    for (const hello of ['no colon here', 'name:not base64!!']) {
      const r = parseHello(hello);
      assert.ok(!r.ok && r.reason === 'expected <name>:<base64 EC public key>', hello);
    }
    const ok = parseHello(`iPhone (\u0418\u0432\u0430\u043D):${key}`);
    assert.ok(ok.ok && ok.hello.name === 'iPhone (\u0418\u0432\u0430\u043D)');
  });
});

describe('tutorial chat lines', () => {
  test('every line break (CR LF, LF, CR, VT, FF, NEL, U+2028, U+2029) becomes one ↵; other control characters U+FFFD; tabs and the rest stay', () => {
    assert.equal(LINE_BREAK_MARK, '\u21B5');
    assert.equal(oneRow('ok\nbob: pay'), 'ok\u21B5bob: pay');
    assert.equal(oneRow('a\r\nb\rc\vd\fe\u0085f\u2028g\u2029h'), 'a\u21B5b\u21B5c\u21B5d\u21B5e\u21B5f\u21B5g\u21B5h');
    assert.equal(oneRow('a\n\nb'), 'a\u21B5\u21B5b');
    assert.equal(oneRow('esc\u001B[1Ebell\u0007nul\u0000del\u007Fc1\u009B'), 'esc\uFFFD[1Ebell\uFFFDnul\uFFFDdel\uFFFDc1\uFFFD');
    assert.equal(oneRow('tab\there — ünïcødé ✓ \u{1F600}'), 'tab\there — ünïcødé ✓ \u{1F600}');
  });
});

describe('tutorial addresses', () => {
  test('IPv4 and IPv4-mapped IPv6 are one address; IPv6 counts by its /64; anything else as it is', () => {
    assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('::FFFF:192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('2001:db8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8:1:3::1'), '2001:db8:1:3::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
    assert.equal(addressKey(''), '');
    assert.equal(addressKey('not an address'), 'not an address');
  });
});

describe('tutorial relay budget', () => {
  test('one active address gets the whole budget (burst: one second of it), then refills at its rate', () => {
    let now = 0;
    const b = new RelayBudget(100, () => now);
    for (let i = 0; i < 10; i++) assert.equal(b.take('a', 10), 'relay', `line ${i}`);
    assert.equal(b.take('a', 10), 'over-share');
    now += 100;
    assert.equal(b.take('a', 10), 'relay');
    assert.equal(b.take('a', 10), 'over-share');
  });

  test('active addresses share the budget equally: a newcomer gets its share at once while the flooder is held to its own', () => {
    let now = 0;
    const b = new RelayBudget(100, () => now);
    let flooded = 0;
    while (b.take('flooder', 1) === 'relay') flooded++;
    assert.equal(flooded, 100);
    // Two active now: 50 each; the newcomer's bucket starts full.
    for (let i = 0; i < 50; i++) assert.equal(b.take('newcomer', 1), 'relay', `newcomer line ${i}`);
    assert.equal(b.take('newcomer', 1), 'over-share');
    now += 1000;
    let again = 0;
    while (b.take('flooder', 1) === 'relay') again++;
    assert.equal(again, 50, 'the flooder refills at half the budget while the newcomer is active');
  });

  test('the server-wide bucket (two seconds of the budget) bounds what many addresses take at once', () => {
    let now = 0;
    const b = new RelayBudget(100, () => now);
    let relayed = 0;
    let busy = 0;
    // Each new address finds a full share of 100 / active; the sum is held to 200 at once.
    for (let i = 0; i < 50; i++) {
      const v = b.take(`addr${i}`, 100);
      if (v === 'relay') relayed++;
      if (v === 'busy') busy++;
    }
    assert.equal(relayed, 2);
    assert.ok(busy > 0);
    now += 1000;
    assert.equal(b.take('addr1', 1), 'over-share', 'its share (100 / 50 a second) is still in debt for the line it sent');
  });

  test('a line costing more than a full share goes out when the share is full, and its sender waits off the debt', () => {
    let now = 0;
    const b = new RelayBudget(10, () => now);
    assert.equal(b.take('a', 25), 'relay');
    now += 1000;
    assert.equal(b.take('a', 1), 'over-share');
    now += 1500;
    assert.equal(b.take('a', 1), 'relay');
  });
});
