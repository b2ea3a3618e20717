/**
 * Tutorial client names: which names are refused, and when two names look
 * alike.
 *
 * The protocol has no accounts: a name is a label another user reads beside
 * every line. So a name may not hide characters (nothing invisible, no
 * control or format characters), may not pass for the server, and may not
 * pass for a name that is connected: two names are "alike" when their
 * skeletons (below) are equal, and then only the first connected keeps it.
 *
 * Scripts may be mixed between words — device names such as
 * `iPhone (Иван)`, `iPhone Ελένης` or `iPhone של דני` are ordinary — but not
 * inside a word, where a Cyrillic or Armenian letter among Latin ones is
 * there to pass for a Latin one (`Вob`, `Bօb`).
 *
 * @module
 */
import { TUTORIAL_NAME_BYTES_MAX } from '../limits.ts';

/** A name that may be used, with its skeleton; or why not. */
export type NameVerdict = { ok: true; skeleton: string } | { ok: false; reason: string };

/**
 * Characters nobody can see, or that change how text around them is shown:
 * control (Cc), format (Cf: bidi overrides, zero-width spaces and joiners),
 * line and paragraph separators, the Unicode Default_Ignorable_Code_Point set
 * (combining grapheme joiner, variation selectors, Hangul fillers U+115F,
 * U+1160, U+3164, U+FFA0, Mongolian variation selectors, tag characters …)
 * and the blank Braille pattern U+2800, which is drawn as a space.
 * Exceptions, in emoji only: see `hidden`.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u2800]/u;
const ZWJ = '\u200D';
const ZWNJ = '\u200C';
/**
 * Letters and marks of scripts whose spelling uses the joiners (Arabic,
 * Persian, the Brahmic scripts after a virama: `علی‌رضا`, `ශ්‍රී`): neither
 * Latin, Greek nor Cyrillic, where a joiner only hides. The skeleton drops
 * joiners, so one never makes a look-alike of a connected name.
 */
const JOINING_SCRIPT = /(?![\p{Script=Latin}\p{Script=Greek}\p{Script=Cyrillic}])[\p{L}\p{M}]/u;
const VS15 = '\uFE0E';
const VS16 = '\uFE0F';
const EMOJI = /\p{Emoji}/u;
const PICTOGRAPH = /\p{Extended_Pictographic}/u;
const EMOJI_MODIFIER = /\p{Emoji_Modifier}/u;

/**
 * Whether the code point at `i` is one nobody can see that is not part of an
 * emoji or a word: a text or emoji presentation selector (U+FE0E, U+FE0F)
 * right after an emoji (`❤️`), a zero-width joiner between two emoji of a
 * ZWJ sequence (`👨‍👩‍👧`, `👩🏽‍💻`, `🏳️‍🌈`), and a zero-width joiner or
 * non-joiner between two letters or marks of a script that spells with them
 * (see JOINING_SCRIPT), are part of it.
 */
function hidden(cps: readonly string[], i: number): boolean {
  const ch = cps[i] as string;
  if (!INVISIBLE.test(ch)) return false;
  const prev = cps[i - 1];
  if ((ch === ZWJ || ch === ZWNJ) && prev !== undefined && JOINING_SCRIPT.test(prev) && JOINING_SCRIPT.test(cps[i + 1] ?? '')) return false;
  if (ch === VS15 || ch === VS16) return prev === undefined || !EMOJI.test(prev);
  if (ch === ZWJ) {
    const next = cps[i + 1];
    const emojiBefore =
      prev !== undefined && (PICTOGRAPH.test(prev) || EMOJI_MODIFIER.test(prev) || (prev === VS16 && i >= 2 && EMOJI.test(cps[i - 2] as string)));
    return !(emojiBefore && next !== undefined && PICTOGRAPH.test(next));
  }
  return true;
}

/**
 * Letters that look like Latin ones in common fonts, and the Latin letter
 * they pass for: Cyrillic and Greek capitals and small letters (`Р`→`P`,
 * `е`→`e`, `ѕ`→`s`, `Ο`→`O`, `ν`→`v` …), and within Latin capital `I`, `1`
 * and `|` (all like `l`) and `0` (like `O`). Applied after compatibility
 * decomposition, so accented forms follow their base letter (`Ё` is `Ë`).
 * Deliberately small: letters that only resemble a Latin one in some fonts
 * are not in it.
 */
const LOOKS_LATIN: ReadonlyMap<string, string> = new Map(
  [
    // Cyrillic capitals: А В Е К М Н О Р С Т У Х Ѕ І Ј Ӏ Ү Һ Ԛ Ԝ
    ['\u0410', 'A'], ['\u0412', 'B'], ['\u0415', 'E'], ['\u041A', 'K'], ['\u041C', 'M'], ['\u041D', 'H'], ['\u041E', 'O'], ['\u0420', 'P'],
    ['\u0421', 'C'], ['\u0422', 'T'], ['\u0423', 'Y'], ['\u0425', 'X'], ['\u0405', 'S'], ['\u0406', 'l'], ['\u0408', 'J'], ['\u04C0', 'l'],
    ['\u04AE', 'Y'], ['\u04BA', 'h'], ['\u051A', 'Q'], ['\u051C', 'W'],
    // Cyrillic small letters: а е о р с у х ѕ і ј ӏ ү һ ԁ ԛ ԝ
    ['\u0430', 'a'], ['\u0435', 'e'], ['\u043E', 'o'], ['\u0440', 'p'], ['\u0441', 'c'], ['\u0443', 'y'], ['\u0445', 'x'], ['\u0455', 's'],
    ['\u0456', 'i'], ['\u0458', 'j'], ['\u04CF', 'l'], ['\u04AF', 'y'], ['\u04BB', 'h'], ['\u0501', 'd'], ['\u051B', 'q'], ['\u051D', 'w'],
    // Greek capitals: Α Β Ε Ζ Η Ι Κ Μ Ν Ο Ρ Τ Υ Χ Ϲ Ϳ
    ['\u0391', 'A'], ['\u0392', 'B'], ['\u0395', 'E'], ['\u0396', 'Z'], ['\u0397', 'H'], ['\u0399', 'l'], ['\u039A', 'K'], ['\u039C', 'M'],
    ['\u039D', 'N'], ['\u039F', 'O'], ['\u03A1', 'P'], ['\u03A4', 'T'], ['\u03A5', 'Y'], ['\u03A7', 'X'], ['\u03F9', 'C'], ['\u037F', 'J'],
    // Greek small letters: α ι ν ο ρ υ ϲ ϳ
    ['\u03B1', 'a'], ['\u03B9', 'i'], ['\u03BD', 'v'], ['\u03BF', 'o'], ['\u03C1', 'p'], ['\u03C5', 'u'], ['\u03F2', 'c'], ['\u03F3', 'j'],
    // Latin and digits: I 1 | ǀ 0
    ['I', 'l'], ['1', 'l'], ['|', 'l'], ['\u01C0', 'l'], ['0', 'O'],
  ] as const,
);

function looksLatin(text: string): string {
  let out = '';
  for (const ch of text) out += LOOKS_LATIN.get(ch) ?? ch;
  return out;
}

/**
 * The form two names are compared in: a name that could pass for another
 * has the same skeleton. Compatibility-decomposed (NFKD: `ｓｅｒｖｅｒ`,
 * `𝐁𝐨𝐛` and `ſerver` are plain letters), emoji selectors and joiners
 * dropped, LOOKS_LATIN applied, case folded (upper then lower case:
 * `ß`→`ss`, `ς`→`σ`), LOOKS_LATIN again (for letters the fold produced),
 * `rn` read as `m`, runs of white space as one space, then composed (NFC).
 */
export function skeleton(name: string): string {
  let s = name.normalize('NFKD').replace(/\p{Default_Ignorable_Code_Point}/gu, '');
  s = looksLatin(looksLatin(s).toUpperCase().toLowerCase());
  return s.replace(/rn/g, 'm').replace(/\s+/gu, ' ').normalize('NFC');
}

/**
 * Names no client may take, nor any name alike: the server's own lines are
 * signed `server: …`.
 */
const RESERVED_SKELETONS: ReadonlySet<string> = new Set(['server'].map(skeleton));

/**
 * Scripts told apart inside a word (UTS #39 "highly restrictive": one
 * script, or Latin with the scripts written beside it in Chinese, Japanese
 * and Korean). A letter of any other script counts as "other". Common and
 * Inherited characters (digits, punctuation, emoji, combining marks)
 * belong to every script.
 */
const SCRIPTS: readonly [string, RegExp][] = (
  ['Latin', 'Cyrillic', 'Greek', 'Armenian', 'Georgian', 'Hebrew', 'Arabic', 'Devanagari', 'Thai', 'Han', 'Hiragana', 'Katakana', 'Hangul', 'Bopomofo', 'Cherokee'] as const
).map((name) => [name, new RegExp(`\\p{Script=${name}}`, 'u')]);
const SCRIPT_NEUTRAL = /[\p{Script=Common}\p{Script=Inherited}]/u;
const MIXES_ALLOWED: readonly ReadonlySet<string>[] = [new Set(['Latin', 'Han', 'Hiragana', 'Katakana']), new Set(['Latin', 'Han', 'Bopomofo']), new Set(['Latin', 'Han', 'Hangul'])];
/** What separates words: white space and punctuation (`iPhone (Иван)`, `iPad — Ολγα`). */
const WORD_BREAK = /[\s\p{P}]+/u;

/** Whether a word's letters come from one script (or an allowed mix): `ѕerver`, with a Cyrillic dze, does not. */
function singleScript(word: string): boolean {
  const used = new Set<string>();
  for (const ch of word) {
    if (SCRIPT_NEUTRAL.test(ch)) continue;
    used.add(SCRIPTS.find(([, re]) => re.test(ch))?.[0] ?? 'other');
  }
  if (used.size <= 1) return true;
  return MIXES_ALLOWED.some((mix) => [...used].every((script) => mix.has(script)));
}

/**
 * Whether `name` may be used at all (whether it is alike a connected name is
 * the caller's question, with the skeleton returned). Refused, with the
 * reason sent in the close frame: an empty name, one over
 * TUTORIAL_NAME_BYTES_MAX bytes, with white space at either end, not in NFC
 * (a decomposed `José` would be a second `José`), holding an invisible
 * character (see INVISIBLE and `hidden`), alike `server`, or with letters
 * of two scripts in one word.
 */
export function checkName(name: string): NameVerdict {
  if (name.length === 0) return { ok: false, reason: 'name refused: empty' };
  if (Buffer.byteLength(name, 'utf8') > TUTORIAL_NAME_BYTES_MAX) return { ok: false, reason: `name refused: longer than ${TUTORIAL_NAME_BYTES_MAX} bytes` };
  if (name !== name.trim()) return { ok: false, reason: 'name refused: white space at its start or end' };
  if (name !== name.normalize('NFC')) return { ok: false, reason: 'name refused: not in Unicode NFC (composed) form' };
  const cps = [...name];
  for (let i = 0; i < cps.length; i++) {
    if (hidden(cps, i)) return { ok: false, reason: `name refused: invisible, control or format character U+${(cps[i] as string).codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')}` };
  }
  const sk = skeleton(name);
  if (RESERVED_SKELETONS.has(sk)) return { ok: false, reason: 'name refused: it looks like "server", the name of the server\'s own lines' };
  if (!name.split(WORD_BREAK).every(singleScript)) return { ok: false, reason: 'name refused: letters of two scripts in one word' };
  return { ok: true, skeleton: sk };
}
