/**
 * How messages are shown on a terminal. Everything a peer sends is shown
 * *inert*: control characters (escape sequences could move the cursor,
 * rewrite the screen, set the window title or worse), bidirectional
 * controls (which can make text read differently from what it is) and
 * invisible characters (which can hide text, or make two different texts
 * look alike) are replaced by visible `\u{…}` escapes; see {@link inert}.
 * Times are the server's (the order everyone sees), in local time.
 *
 * @module
 */
import { SEAL_OVERHEAD_BYTES, type ChatMessage, type DecryptionFailure, type KeysChange } from '@parley/sdk';

/**
 * Characters that are never shown as they are: every control (Cc: C0, DEL,
 * C1) but tab and newline; every format character (Cf: the bidi marks,
 * embeddings, overrides and isolates, U+061C, the zero-width space, word
 * joiner and invisible operators, the BOM, the soft hyphen, U+180E,
 * interlinear annotations U+FFF9…U+FFFB, tag characters U+E0000…U+E007F,
 * …); every other default-ignorable code point (the Hangul fillers U+115F,
 * U+1160, U+3164, U+FFA0, the Khmer inherent vowels, unassigned ones such as
 * U+2065, which a later Unicode version may make invisible); line and
 * paragraph separators (they end lines on some terminals); lone surrogates.
 * Exceptions, in {@link keep}: what ordinary text and emoji need.
 */
const UNSAFE = /\p{Cc}|\p{Cf}|\p{Default_Ignorable_Code_Point}|\p{Zl}|\p{Zp}|\p{Cs}/u;

/**
 * A subdivision flag (🏴 with tags, as England's, Scotland's and Wales's):
 * U+1F3F4, 2 to 7 tag letters or digits, the cancel tag. The only tag
 * characters shown as they are: they render as one flag and can carry no
 * more than its short code.
 */
const FLAG_TAG_SEQUENCE = '\u{1f3f4}[\u{e0030}-\u{e0039}\u{e0061}-\u{e007a}]{2,7}\u{e007f}';

/** A flag tag sequence (kept whole), or one candidate character: checked by {@link keep}. */
const CANDIDATES = new RegExp(`${FLAG_TAG_SEQUENCE}|${UNSAFE.source}`, 'gu');

/** Variation selectors (text/emoji presentation, CJK ideographic variants, Mongolian free variation selectors). */
const VARIATION_SELECTOR = /^[\u{fe00}-\u{fe0f}\u{e0100}-\u{e01ef}\u{180b}-\u{180d}\u{180f}]$/u;
/** What a variation selector may follow: a visible character (never another selector, nor a format character). */
const SELECTABLE = /^[\p{L}\p{N}\p{S}\p{P}]$/u;
/** What a zero-width (non-)joiner may stand between: letters, marks (a virama, U+FE0F), digits, symbols (emoji). */
const JOINABLE = /^[\p{L}\p{M}\p{N}\p{S}]$/u;

/** The code point of `text` that ends at `i`, or ''. */
function codePointBefore(text: string, i: number): string {
  if (i <= 0) return '';
  const low = text.charCodeAt(i - 1);
  const start = low >= 0xdc00 && low <= 0xdfff && i >= 2 && (text.charCodeAt(i - 2) & 0xfc00) === 0xd800 ? i - 2 : i - 1;
  return text.slice(start, i);
}

/** The code point of `text` that starts at `i`, or ''. */
function codePointAt(text: string, i: number): string {
  const cp = text.codePointAt(i);
  return cp === undefined ? '' : String.fromCodePoint(cp);
}

/**
 * Whether a match of {@link CANDIDATES} at `offset` is shown as it is:
 * tab and newline; a flag tag sequence; a zero-width joiner or non-joiner
 * standing alone between two visible characters (emoji ZWJ sequences such
 * as 👩‍👩‍👧, Persian and Indic words need them; a run of them, or one at an
 * edge, only hides bits); a variation selector right after a visible
 * character (❤️, CJK variants; a second one after the first, a known way to
 * hide bytes behind an emoji, is escaped).
 */
function keep(match: string, offset: number, text: string): boolean {
  if (match === '\t' || match === '\n' || match.length > 2) return true;
  if (match === '\u200c' || match === '\u200d') return JOINABLE.test(codePointBefore(text, offset)) && JOINABLE.test(codePointAt(text, offset + match.length));
  if (VARIATION_SELECTOR.test(match)) return SELECTABLE.test(codePointBefore(text, offset));
  return false;
}

/** `text` with every unsafe character ({@link UNSAFE}, but for {@link keep}'s exceptions) replaced by `escape(c)`. */
function escapeUnsafe(text: string, escape: (c: string) => string): string {
  return text.replace(CANDIDATES, (match: string, offset: number) => (keep(match, offset, text) ? match : escape(match)));
}

/** `text` with every unsafe character as a visible `\u{…}` escape. */
export function inert(text: string): string {
  return escapeUnsafe(text, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`);
}

/** A message text for one line of output: inert, its line breaks followed by `indent`, tabs as spaces. */
export function displayText(text: string, indent: string): string {
  return inert(text.replace(/\r\n?/g, '\n')).replace(/\t/g, '    ').replace(/\n/g, `\n${indent}`);
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** `HH:MM` (local time). */
export function clock(ts: number): string {
  const d = new Date(ts);
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** `YYYY-MM-DD HH:MM` (local time). */
export function dateTime(ts: number): string {
  const d = new Date(ts);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${clock(ts)}`;
}

/** `HH:MM` today, `YYYY-MM-DD HH:MM` otherwise. */
export function shortTime(ts: number, now = Date.now()): string {
  return new Date(ts).toDateString() === new Date(now).toDateString() ? clock(ts) : dateTime(ts);
}

/** The time left until `at`, rounded down (never more than there is): `4 minutes`, `1 minute`, `40 seconds`. */
export function timeLeft(at: number, now = Date.now()): string {
  const seconds = Math.max(0, Math.floor((at - now) / 1000));
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

/** The body of a message: its text, or what a binary message is. */
function body(m: ChatMessage, indent: string): string {
  if (m.kind === 'text') return displayText(m.text, indent);
  if (m.kind === 'file') return `(file #${m.seq}${m.file.name === '' ? '' : ` "${displayText(m.file.name, indent)}"`}, ${m.file.blobSize - SEAL_OVERHEAD_BYTES} bytes)`;
  return `(a binary message of ${m.bytes.length} bytes; not shown)`;
}

/** `[time] user: text` — a chat line. */
export function chatLine(m: ChatMessage, time: string): string {
  const head = `[${time}] ${m.sender.userId}: `;
  return head + body(m, ' '.repeat(head.length));
}

/** The same for a text of one's own (not yet a stored message). */
export function textLine(userId: string, text: string, time: string): string {
  const head = `[${time}] ${userId}: `;
  return head + displayText(text, ' '.repeat(head.length));
}

/** Why a message cannot be shown, in words (the SDK's reason code follows in brackets). */
export function failureReason(f: DecryptionFailure): string {
  switch (f.reason) {
    case 'NOT_ADDRESSED':
      return 'not encrypted for this device: sent before it existed, or before the sender knew of it';
    case 'NO_LOCAL_COPY':
      return 'sent from this device, which keeps no copy of it (its store was replaced since?)';
    case 'DECRYPT_FAILED':
      return `cannot be decrypted here (for a session this device no longer has, or altered)`;
    case 'DUPLICATE':
      return 'a replayed message';
    case 'UNTRUSTED_IDENTITY':
      return `the identity key of ${f.from.userId}/${f.from.deviceId} changed; check 'parley verify ${f.from.userId}'`;
    case 'MALFORMED_PAYLOAD':
      // Decrypted, so it is from the sender's device: its client is broken, hostile or newer (e.g. a file of an impossible size).
      return `malformed: ${f.from.userId}'s client sent content this one cannot read (broken, or newer than this one)`;
    default:
      return 'cannot be read on this device';
  }
}

/** `[time] user: (why it cannot be shown) [REASON]`. */
export function failureLine(f: DecryptionFailure, time: string): string {
  return `[${time}] ${f.from.userId}: (message ${failureReason(f)}) [${f.reason}]`;
}

/** A history line: `YYYY-MM-DD HH:MM  user: text`. */
export function historyLine(m: ChatMessage): string {
  const head = `${dateTime(m.serverTs)}  ${m.sender.userId}: `;
  return head + body(m, ' '.repeat(head.length));
}

/** A history line for a message this device cannot read. */
export function historyFailureLine(f: DecryptionFailure): string {
  return `${dateTime(f.serverTs)}  ${f.from.userId}: (message ${failureReason(f)}) [${f.reason}]`;
}

/**
 * JSON text with every unsafe character (as for {@link inert}) as `\\uXXXX`
 * escapes (a surrogate pair of them beyond U+FFFF): still the same JSON
 * value, and inert on a terminal (JSON.stringify escapes C0 controls and
 * lone surrogates only, and leaves DEL, C1, bidi controls, invisible
 * characters and separators raw).
 */
function inertJson(value: unknown): string {
  return escapeUnsafe(JSON.stringify(value), (c) => Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''));
}

/** One JSON line per history item, for scripts (`--json`); safe to print on a terminal. */
export function jsonLine(item: ({ type: 'message' } & ChatMessage) | ({ type: 'undecryptable' } & DecryptionFailure)): string {
  if (item.type === 'undecryptable') {
    return inertJson({ seq: item.seq, time: new Date(item.serverTs).toISOString(), from: item.from.userId, device: item.from.deviceId, undecryptable: item.reason });
  }
  return inertJson({
    seq: item.seq,
    time: new Date(item.serverTs).toISOString(),
    sentAt: new Date(item.sentAt).toISOString(),
    from: item.sender.userId,
    device: item.sender.deviceId,
    outgoing: item.outgoing,
    ...(item.kind === 'text' ? { text: item.text } : item.kind === 'file' ? { file: { name: item.file.name, mediaType: item.file.mediaType, bytes: item.file.blobSize - SEAL_OVERHEAD_BYTES } } : { bytes: item.bytes.length }),
  });
}

/**
 * Columns `text` takes on a terminal, as wcwidth-style terminals count
 * them: 2 for East Asian wide and fullwidth characters and for emoji shown
 * as emoji (Emoji_Presentation, or followed by U+FE0F); 0 for combining
 * marks, variation selectors, the zero-width joiner and an emoji joined to
 * the one before it; 1 for the rest (©, ™, ❤ without U+FE0F are text
 * symbols, one column). An estimate — terminals differ on rare characters —
 * used to erase exactly the rows a typed line took.
 */
export function displayWidth(text: string): number {
  let n = 0;
  let joined = false;
  let previous = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp === 0x200d) {
      joined = true;
      continue;
    }
    if (cp === 0xfe0f) {
      // Emoji presentation asked for a text symbol counted 1: it becomes 2.
      if (previous === 1) n++;
      previous = 0;
      continue;
    }
    let w: number;
    if (ZERO_WIDTH.test(ch)) w = 0;
    else if (joined && EMOJI.test(ch)) w = 0;
    else w = WIDE.test(ch) ? 2 : 1;
    joined = false;
    previous = w === 1 && EMOJI.test(ch) ? 1 : 0;
    n += w;
  }
  return n;
}

const ZERO_WIDTH = /[\p{M}\u{fe00}-\u{fe0e}\u{200b}\u{2060}\u{feff}]/u;
const EMOJI = /\p{Extended_Pictographic}/u;
/** East Asian Wide (W) and Fullwidth (F) blocks, and emoji presented as emoji by default. */
const WIDE =
  /[\p{Emoji_Presentation}\u{1100}-\u{115f}\u{231a}\u{231b}\u{2329}\u{232a}\u{2e80}-\u{303e}\u{3041}-\u{33ff}\u{3400}-\u{4dbf}\u{4e00}-\u{9fff}\u{a000}-\u{a4cf}\u{a960}-\u{a97f}\u{ac00}-\u{d7a3}\u{f900}-\u{faff}\u{fe10}-\u{fe19}\u{fe30}-\u{fe6f}\u{ff00}-\u{ff60}\u{ffe0}-\u{ffe6}\u{16fe0}-\u{18aff}\u{1b000}-\u{1b2ff}\u{20000}-\u{2fffd}\u{30000}-\u{3fffd}]/u;

/** What a `keysChanged` event means, in one line. */
export function keysChangedNotice(c: KeysChange): string {
  const parts: string[] = [];
  if (c.added.length > 0) parts.push(`new device${c.added.length === 1 ? '' : 's'} ${c.added.map((d) => inert(d.deviceId)).join(', ')}`);
  if (c.removed.length > 0) parts.push(`device${c.removed.length === 1 ? '' : 's'} ${c.removed.map((d) => inert(d.deviceId)).join(', ')} removed`);
  if (c.changed.length > 0) parts.push(`ANOTHER IDENTITY KEY listed for ${c.changed.map((d) => inert(d.deviceId)).join(', ')} (refused: nothing is sent to it)`);
  const verified = c.wasVerified && !c.verified ? ` ${c.userId} is no longer verified.` : '';
  return `${c.userId}'s keys changed: ${parts.join('; ')}.${verified} If you did not expect this, compare safety numbers ('parley verify ${c.userId}').`;
}
