/**
 * Local search over the messages a device keeps — decrypted only on the
 * device, never by the server (which only ever holds ciphertext).
 *
 * **How.** In this slice a search is a *scan*: every kept message (of one
 * room, or of all) is opened from the store and matched, newest first, up
 * to a bounded number of results. The store keeps messages sealed at rest
 * as it always did (`SqliteClientStore`: one Secure Cell per record), and a
 * scan adds nothing to the disk: no index, no tokens, no word list. A
 * plaintext index (SQLite FTS, say) would hold every word of every message
 * in a form a stolen file gives away — which the store exists to prevent —
 * and a sealed index needs a design of its own (blind tokens leak word
 * frequencies and co-occurrence; sealed posting lists need care to update).
 * That is future work; the scan costs one record opening per kept message
 * (the store keeps at most `messagesMax`, 10,000 by default), which is fast
 * enough for a device's own messages.
 *
 * **Matching** (`matchesQuery`): the query is split into words, and a
 * message matches when *every* word occurs in its text as the beginning of
 * one of its words ("meet" finds "meeting", not "helmet"). Both sides are
 * normalised first ({@link normaliseForSearch}): Unicode compatibility
 * forms (NFKC: "ﬁ" = "fi", full-width "ＡＢＣ" = "ABC"), full case folding
 * ("Straße" = "STRASSE" = "strasse"), and accents ignored on Latin and Greek
 * letters ("café" = "cafe", "άλφα" = "αλφα") — elsewhere marks are part of
 * the letter and kept (Devanagari vowel signs, for instance). Words are runs
 * of letters, marks and digits; everything else separates them. In scripts
 * written without spaces between words (Chinese, Japanese, Thai, Lao,
 * Khmer, Myanmar), a query word matches anywhere inside a run, since runs
 * there are phrases, not words; where such a run meets letters or digits of
 * another script ("用iPhone拍", "在3点"), a word boundary is there too.
 * Only text messages are searched.
 *
 * @module
 */
import { SdkError } from './errors.ts';
import type { ChatMessage, KeptMessage } from './events.ts';

/** Results `search` returns unless asked for fewer or more. */
export const SEARCH_RESULTS_DEFAULT = 50;
/** Most results one search returns. */
export const SEARCH_RESULTS_MAX = 1000;
/** Most words in a query (each must match, so more would only slow the scan). */
export const SEARCH_WORDS_MAX = 32;
/** Longest query, in UTF-16 code units, before splitting. */
export const SEARCH_QUERY_LENGTH_MAX = 1024;

/** Letters with accents, in the scripts where accents are folded away. */
const FOLDABLE_ACCENTS = /([\p{Script=Latin}\p{Script=Greek}])\p{Mn}+/gu;
/** What separates words: anything but letters, marks and digits. */
const WORD_SEPARATORS = /[^\p{L}\p{M}\p{N}]+/u;
/** Scripts written without spaces between words: a query word may match inside a run. */
const UNSPACED_SCRIPT = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;

/**
 * The form both queries and texts are compared in: NFKC, full case folding
 * (approximated, as JavaScript has no `casefold`, by lower-, upper- then
 * lower-casing: "ẞ" → "ß" → "SS" → "ss"; every sigma as "σ"), and accents
 * removed from Latin and Greek letters. Locale-independent.
 */
export function normaliseForSearch(text: string): string {
  // Lower-casing writes a word-final sigma as "ς"; folding makes every sigma "σ", so prefixes match.
  const folded = text.normalize('NFKC').toLowerCase().toUpperCase().toLowerCase().replace(/ς/g, 'σ');
  return folded.normalize('NFD').replace(FOLDABLE_ACCENTS, '$1').normalize('NFC');
}

const MARK = /\p{M}/u;

/**
 * The words of a normalised text. A run that mixes a script written without
 * spaces with others ("我用iphone拍的照片") is cut where it changes between
 * them, so "iphone" is a word of its own there ("我用", "iphone", "拍的照片");
 * a mark stays with the letter before it.
 */
function wordsOf(normalised: string): string[] {
  const out: string[] = [];
  for (const run of normalised.split(WORD_SEPARATORS)) {
    if (run.length === 0) continue;
    if (!UNSPACED_SCRIPT.test(run)) {
      out.push(run);
      continue;
    }
    let start = 0;
    let at = 0;
    let previous: boolean | null = null;
    for (const ch of run) {
      if (!MARK.test(ch)) {
        const unspaced = UNSPACED_SCRIPT.test(ch);
        if (previous !== null && unspaced !== previous) {
          out.push(run.slice(start, at));
          start = at;
        }
        previous = unspaced;
      }
      at += ch.length;
    }
    out.push(run.slice(start));
  }
  return out;
}

/** A parsed query: its normalised words, deduplicated, in order. */
export interface SearchQuery {
  readonly words: readonly string[];
}

/**
 * Parse a query: a string of words, or the words as an array (each may
 * itself hold several). `INVALID_ARGUMENT` when it has no word (only
 * punctuation or spaces), more than SEARCH_WORDS_MAX words, or is longer
 * than SEARCH_QUERY_LENGTH_MAX.
 */
export function parseSearchQuery(query: string | readonly string[]): SearchQuery {
  const parts = typeof query === 'string' ? [query] : Array.isArray(query) ? (query as readonly unknown[]) : null;
  if (parts === null || !parts.every((p): p is string => typeof p === 'string')) throw new SdkError('INVALID_ARGUMENT', 'a search query is a string or an array of strings');
  const text = parts.join(' ');
  if (text.length > SEARCH_QUERY_LENGTH_MAX) throw new SdkError('INVALID_ARGUMENT', `a search query is at most ${SEARCH_QUERY_LENGTH_MAX} characters`);
  const words = [...new Set(wordsOf(normaliseForSearch(text)))];
  if (words.length === 0) throw new SdkError('INVALID_ARGUMENT', 'a search query needs at least one word (letters or digits)');
  if (words.length > SEARCH_WORDS_MAX) throw new SdkError('INVALID_ARGUMENT', `a search query has at most ${SEARCH_WORDS_MAX} words`);
  return { words };
}

/** Whether `text` holds every word of `query` (see the module comment for what "holds" means). */
export function matchesQuery(text: string, query: SearchQuery): boolean {
  const words = wordsOf(normaliseForSearch(text));
  return query.words.every((q) => {
    const inside = UNSPACED_SCRIPT.test(q);
    return words.some((w) => (inside ? w.includes(q) : w.startsWith(q)));
  });
}

/** Newest first: by the server's time, then by room and seq (seq orders a room exactly). */
export function newestFirst(a: ChatMessage, b: ChatMessage): number {
  if (a.serverTs !== b.serverTs) return b.serverTs - a.serverTs;
  if (a.roomId !== b.roomId) return a.roomId < b.roomId ? -1 : 1;
  return b.seq - a.seq;
}

export interface SearchOptions {
  /** Only this room (default: every room). */
  readonly roomId?: string;
  /** At most this many results, 1 … SEARCH_RESULTS_MAX (default SEARCH_RESULTS_DEFAULT). */
  readonly limit?: number;
}

/** Check a search limit; the default when absent. */
export function searchLimit(limit: number | undefined): number {
  const n = limit ?? SEARCH_RESULTS_DEFAULT;
  if (!Number.isSafeInteger(n) || n < 1 || n > SEARCH_RESULTS_MAX) throw new SdkError('INVALID_ARGUMENT', `limit must be 1…${SEARCH_RESULTS_MAX}`);
  return n;
}

/**
 * The text messages among `messages` that match `query`, newest first, at
 * most `limit` (a scan; `messages` in any order).
 */
export function searchMessages(messages: Iterable<KeptMessage>, query: string | readonly string[] | SearchQuery, limit: number = SEARCH_RESULTS_DEFAULT): ChatMessage[] {
  const q = typeof query === 'object' && !Array.isArray(query) && 'words' in query ? query : parseSearchQuery(query as string | readonly string[]);
  const n = searchLimit(limit);
  const found: ChatMessage[] = [];
  for (const m of messages) if (m.kind === 'text' && matchesQuery(m.text, q)) found.push(m);
  found.sort(newestFirst);
  return found.slice(0, n);
}
