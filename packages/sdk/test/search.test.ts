/**
 * Local search (search.ts) without a server: normalisation (NFKC, case
 * folding, accents on Latin and Greek only), query parsing and its limits,
 * word-prefix matching with every word required (inside runs for scripts
 * without spaces), newest-first bounded results; `keptMessages` of both
 * stores; and that a search writes nothing to the store file.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemoryClientStore } from '../src/client-store.ts';
import { SdkError } from '../src/errors.ts';
import type { ChatMessage } from '../src/events.ts';
import { matchesQuery, normaliseForSearch, parseSearchQuery, searchMessages, SEARCH_RESULTS_MAX, SEARCH_WORDS_MAX } from '../src/search.ts';
import { SqliteClientStore } from '../src/sqlite-store.ts';

const isInvalid = (e: unknown): boolean => SdkError.is(e, 'INVALID_ARGUMENT');

function msg(roomId: string, seq: number, text: string, serverTs = 1_700_000_000_000 + seq * 1000): ChatMessage {
  return { kind: 'text', text, roomId, seq, id: `m-${roomId}-${seq}`, sender: { userId: 'bob', deviceId: 'phone' }, outgoing: false, sentAt: serverTs - 5, serverTs };
}

const matches = (text: string, query: string): boolean => matchesQuery(text, parseSearchQuery(query));

describe('search normalisation', () => {
  it('folds case fully, compatibility forms and Latin/Greek accents, and nothing else', () => {
    assert.equal(normaliseForSearch('Straße'), 'strasse');
    assert.equal(normaliseForSearch('Café CRÈME brûlée'), 'cafe creme brulee');
    assert.equal(normaliseForSearch('ﬁne ＡＢＣ１２３'), 'fine abc123');
    assert.equal(normaliseForSearch('ΆΛΦΑ ΟΔΟΣ'), 'αλφα οδοσ');
    assert.equal(normaliseForSearch('İstanbul'), 'istanbul');
    // Devanagari vowel signs are marks, and part of the letter: kept.
    assert.equal(normaliseForSearch('नमस्ते'), 'नमस्ते');
    // Decomposed and composed input give the same form.
    assert.equal(normaliseForSearch('cafe\u0301'), normaliseForSearch('caf\u00e9'));
  });
});

describe('search queries', () => {
  it('splits into normalised, deduplicated words; strings or arrays', () => {
    assert.deepEqual(parseSearchQuery('  Dinner, FRIDAY! dinner ').words, ['dinner', 'friday']);
    assert.deepEqual(parseSearchQuery(['Café', 'at 8pm']).words, ['cafe', 'at', '8pm']);
  });

  it('refuses queries without a word, with too many words, too long, or not text', () => {
    for (const q of ['', '   ', '?!…', []]) assert.throws(() => parseSearchQuery(q), isInvalid, JSON.stringify(q));
    assert.throws(() => parseSearchQuery(Array.from({ length: SEARCH_WORDS_MAX + 1 }, (_, i) => `w${i}`).join(' ')), isInvalid);
    assert.doesNotThrow(() => parseSearchQuery(Array.from({ length: SEARCH_WORDS_MAX }, (_, i) => `w${i}`).join(' ')));
    assert.throws(() => parseSearchQuery('x'.repeat(1025)), isInvalid);
    assert.throws(() => parseSearchQuery(42 as unknown as string), isInvalid);
    assert.throws(() => parseSearchQuery([1] as unknown as string[]), isInvalid);
  });

  it('matches when every word starts a word of the text', () => {
    assert.ok(matches('Let us MEET at the Café on Friday', 'friday cafe'));
    assert.ok(matches('meeting tomorrow', 'meet'));
    assert.ok(!matches('a helmet', 'met'), 'a word inside another word is not a match');
    assert.ok(!matches('dinner on friday', 'dinner saturday'), 'every word is required');
    assert.ok(matches('Die STRAẞE ist gesperrt', 'strasse'));
    assert.ok(matches("don't panic", 'don'));
    assert.ok(matches('δρόμος', 'ΔΡΟΜ'));
    assert.ok(matches('ＦＵＬＬ width', 'full'));
  });

  it('matches inside runs in scripts written without spaces', () => {
    assert.ok(matches('明日東京タワーへ行く', '東京'));
    assert.ok(matches('ไปกินข้าวกัน', 'กินข้าว'));
    assert.ok(!matches('明日大阪へ行く', '東京'));
  });

  it('latin words and numbers inside such a run are words of their own', () => {
    assert.ok(matches('我用iPhone拍的照片', 'iphone'));
    assert.ok(matches('我用iPhone拍的照片', '照片'));
    assert.ok(matches('我用iPhone拍的照片', '我用iPhone'), 'a mixed query word is split the same way');
    assert.ok(matches('会议在3点开始', '3'));
    assert.ok(matches('東京でGoogleの面接を受けた', 'google'));
    assert.ok(matches('東京でGoogleの面接を受けた', '面接'));
    assert.ok(!matches('我用iPhone拍的照片', 'phone'), 'a latin word still matches from its start only');
    // A combining mark stays with the kana before it (NFKC composes most; this one is spaced-script inherited).
    assert.ok(matches('カ\u3099ラスとcafe', 'cafe'));
  });
});

describe('searchMessages', () => {
  it('returns matching text messages newest first, bounded', () => {
    const messages: ChatMessage[] = [
      msg('r1', 1, 'lunch at noon'),
      msg('r1', 2, 'Lunch moved'),
      { ...msg('r1', 3, ''), kind: 'binary', bytes: new TextEncoder().encode('lunch') } as unknown as ChatMessage,
      msg('r2', 1, 'lunch in the other room', 1_700_000_000_000 + 2500),
      msg('r1', 4, 'nothing here'),
    ];
    const found = searchMessages(messages, 'lunch');
    assert.deepEqual(
      found.map((m) => `${m.roomId}/${m.seq}`),
      ['r2/1', 'r1/2', 'r1/1'],
      'newest first by server time; binary messages are not searched',
    );
    assert.deepEqual(
      searchMessages(messages, 'lunch', 1).map((m) => `${m.roomId}/${m.seq}`),
      ['r2/1'],
    );
    assert.throws(() => searchMessages(messages, 'lunch', 0), isInvalid);
    assert.throws(() => searchMessages(messages, 'lunch', SEARCH_RESULTS_MAX + 1), isInvalid);
  });
});

describe('keptMessages', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-search-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('MemoryClientStore lists a room, or every room', () => {
    const store = MemoryClientStore.create();
    store.storeMessage(msg('r1', 1, 'one'));
    store.storeMessage(msg('r2', 1, 'two'));
    store.storeMessage(msg('r1', 2, 'three'));
    assert.deepEqual(
      store.keptMessages('r1').map((m) => m.seq),
      [1, 2],
    );
    assert.equal(store.keptMessages().length, 3);
    assert.deepEqual(store.keptMessages('nope'), []);
  });

  it('SqliteClientStore lists a room, or every room, across reopening; a search writes nothing to the file', async () => {
    const path = join(dir, 'kept.parley');
    let store = await SqliteClientStore.open(path, 'pass phrase');
    store.storeMessage(msg('r1', 1, 'première réunion'));
    store.storeMessage(msg('r2', 1, 'elsewhere'));
    store.storeMessage(msg('r1', 2, 'seconde réunion'));
    store.close();
    store = await SqliteClientStore.open(path, 'pass phrase');
    try {
      const r1 = store.keptMessages('r1');
      assert.deepEqual(
        r1.map((m) => (m.kind === 'text' ? m.text : '')),
        ['première réunion', 'seconde réunion'],
      );
      assert.equal(store.keptMessages().length, 3);
      const bytes = (): Buffer => Buffer.concat([path, `${path}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p)));
      const before = bytes();
      const found = searchMessages(store.keptMessages('r1'), 'REUNION');
      assert.deepEqual(
        found.map((m) => m.seq),
        [2, 1],
      );
      assert.ok(bytes().equals(before), 'searching changed the store file');
      assert.equal(before.indexOf(Buffer.from('réunion')), -1, 'a kept message is in clear in the file');
    } finally {
      store.close();
    }
  });
});
