/**
 * `parley send-file`, `parley download` and chat's `/file` and `/download`,
 * as real processes against a real `parley serve`: a multi-chunk file
 * arrives byte for byte, is listed by history, is saved under a cleaned name
 * (never outside the current directory, never over an existing file without
 * --force, mode 0600), goes to stdout with `-o -`; wrong numbers and
 * non-files are one clear error; the sender deletes it (delete-file) and a
 * download then says so; and the server's files and logs hold
 * neither the file's content nor its name.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FILE_BYTES_MAX } from '@parley/sdk';
import { assertFails } from './_cli.ts';
import { assertServerHoldsNone, marker, ok, Profile, startServer, type ServerProcess } from './_chat.ts';

interface JsonItem {
  seq: number;
  from: string;
  text?: string;
  file?: { name: string; mediaType: string; bytes: number };
}

function items(out: string): JsonItem[] {
  return out
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as JsonItem);
}

describe('parley send-file / download / delete-file', () => {
  let server: ServerProcess & { url: string };
  let root: string;
  let alice: Profile;
  let bob: Profile;
  /** Where bob saves files (the cwd of his downloads). */
  let inbox: string;
  const name = `${marker('report')}.pdf`;
  const contentMarker = marker('file-content');
  /** The content of the file sent from a chat. */
  const chatMarker = marker('chat-file');
  /** 300 KiB: several upload chunks; a marker inside so the scan can look for it. */
  const content = Buffer.concat([Buffer.from(contentMarker), randomBytes(300 * 1024), Buffer.from(contentMarker)]);
  let seq = 0;

  before(async () => {
    server = await startServer();
    root = mkdtempSync(join(tmpdir(), 'parley-files-test-'));
    alice = new Profile(join(root, 'alice-machine'), 'alice', server.url);
    bob = new Profile(join(root, 'bob-machine'), 'bob', server.url);
    inbox = join(root, 'bob-inbox');
    mkdirSync(inbox);
    ok(await alice.run(['register', 'alice', '--device', 'laptop']), 'register alice');
    ok(await bob.run(['register', 'bob', '--device', 'phone']), 'register bob');
  });
  after(() => {
    server.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it('send-file encrypts and sends a file; the message number is printed', async () => {
    const path = join(root, name);
    writeFileSync(path, content);
    const r = await alice.run(['send-file', 'bob', path]);
    ok(r, 'send-file');
    const m = /Sent "([^"]+)" \(.+\) to bob as message #(\d+)\./.exec(r.stderr);
    assert.ok(m !== null, r.stderr);
    assert.equal(m[1], name);
    seq = Number(m[2]);
  });

  it('history lists it (name, media type from the extension, size), and chat shows it with its number', async () => {
    const list = items(ok(await bob.run(['history', 'alice', '--json']), 'history'));
    const file = list.find((i) => i.seq === seq);
    assert.deepEqual(file?.file, { name, mediaType: 'application/pdf', bytes: content.length });
    assert.equal(file?.from, 'alice');
    const shown = ok(await bob.run(['history', 'alice']), 'history');
    assert.ok(shown.includes(`(file #${seq} "${name}", ${content.length} bytes)`), shown);
  });

  it('download saves it under its name in the current directory, byte for byte, mode 0600', async () => {
    const r = await bob.run(['download', 'alice', String(seq)], { cwd: inbox });
    ok(r, 'download');
    assert.match(r.stderr, new RegExp(`Saved .+ from alice to "${name.replace('.', '\\.')}"\\.`));
    const saved = join(inbox, name);
    assert.ok(readFileSync(saved).equals(content));
    assert.equal(statSync(saved).mode & 0o777, 0o600);
  });

  it('an existing file is not overwritten without --force; -o - writes to stdout', async () => {
    const saved = join(inbox, name);
    writeFileSync(saved, 'mine');
    assertFails(await bob.run(['download', 'alice', String(seq)], { cwd: inbox }), 2, /already exists here; save the file elsewhere with -o <path>/);
    assert.equal(readFileSync(saved, 'utf8'), 'mine');
    assertFails(await bob.run(['download', 'alice', String(seq), '--force'], { cwd: inbox }), 2, /--force needs --output/);
    assert.equal(readFileSync(saved, 'utf8'), 'mine', 'the sender never chooses which file is overwritten');
    ok(await bob.run(['download', 'alice', String(seq), '--force', '-o', name], { cwd: inbox }), 'download --force -o');
    assert.ok(readFileSync(saved).equals(content));
    const out = await bob.run(['download', 'alice', String(seq), '-o', '-']);
    ok(out, 'download -o -');
    assert.ok(out.stdout.equals(content));
    const other = join(root, 'elsewhere.bin');
    ok(await bob.run(['download', 'alice', String(seq), '--output', other]), 'download --output');
    assert.ok(readFileSync(other).equals(content));
  });

  it('the name a sender chose never leads outside the current directory, hides the file or reads as an option', async () => {
    const small = join(root, 'small.txt');
    writeFileSync(small, 'small file');
    const cases: Array<[string, string]> = [
      ['../../escape\u0007\u202e\u200f.sh', 'escape.sh'],
      ['C:\\Windows\\evil.bat', 'evil.bat'],
      ['..', ''],
      ['.bashrc', 'bashrc'],
      ['-', ''],
      ['NUL.txt', '_NUL.txt'],
      ['trailing. . ', 'trailing'],
      ['. x', 'x'],
      ['CONOUT$', '_CONOUT$'],
      // A later `tar cf x.tar *` or `rm *` in that directory would read a leading '-' as an option.
      ['--checkpoint-action=exec=sh evil.sh', '_--checkpoint-action=exec=sh evil.sh'],
      // 80 CJK characters are 240 UTF-8 bytes (a sender may use 255): cut at a character, under 200 bytes, the extension kept.
      [`${'文'.repeat(80)}.txt`, `${'文'.repeat(65)}.txt`],
    ];
    for (const [sent, expected] of cases) {
      const r = await alice.run(['send-file', 'bob', small, '--name', sent]);
      ok(r, `send-file --name ${JSON.stringify(sent)}`);
      const n = Number(/as message #(\d+)/.exec(r.stderr)?.[1]);
      const dir = mkdtempSync(join(inbox, 'case-'));
      ok(await bob.run(['download', 'alice', String(n)], { cwd: dir }), 'download');
      assert.deepEqual(readdirSync(dir), [expected === '' ? `parley-file-${n}` : expected], `sent as ${JSON.stringify(sent)}`);
    }
    assert.ok(!existsSync(join(root, 'escape.sh')) && !existsSync(join(inbox, '..', '..', 'escape.sh')));
  });

  it('chat: /file sends one, /download saves one (scripted, not on a terminal)', async () => {
    const path = join(root, 'from-chat.txt');
    const text = chatMarker;
    writeFileSync(path, text);
    const out = ok(await alice.run(['chat', 'bob', '--limit', '0'], { input: `/file ${path}\n` }), 'chat /file');
    const m = /alice: \(file #(\d+) "from-chat\.txt", (\d+) bytes\)/.exec(out);
    assert.ok(m !== null, out);
    assert.equal(Number(m[2]), text.length);
    const r = await bob.run(['chat', 'alice', '--limit', '1'], { input: `/download ${m[1]} got.txt\n/download 999999\n`, cwd: inbox });
    ok(r, 'chat /download');
    assert.ok(r.stdout.toString().includes(`alice: (file #${m[1]} "from-chat.txt", ${text.length} bytes)`), r.stdout.toString());
    assert.match(r.stderr, new RegExp(`saved file #${m[1]} \\(${text.length} bytes\\) to got\\.txt`));
    assert.match(r.stderr, /file #999999 not saved — there is no message #999999/);
    assert.equal(readFileSync(join(inbox, 'got.txt'), 'utf8'), text);
  });

  it('wrong numbers, text messages, unknown users and oversized files: one clear error each', async () => {
    ok(await alice.run(['chat', 'bob'], { input: 'just text\n' }), 'chat');
    const last = items(ok(await bob.run(['history', 'alice', '--json', '--limit', '1']), 'history'))[0];
    assert.equal(last?.text, 'just text');
    assertFails(await bob.run(['download', 'alice', String(last?.seq)]), 1, /is not a file/);
    assertFails(await bob.run(['download', 'alice', '999999']), 1, /no message #999999/);
    assertFails(await bob.run(['download', 'alice', '12x']), 2, /not a message number/);
    assertFails(await bob.run(['download', 'carol', '1']), 1, /no conversation with carol/);
    const big = join(root, 'big.bin');
    writeFileSync(big, Buffer.alloc(FILE_BYTES_MAX + 1));
    assertFails(await alice.run(['send-file', 'bob', big]), 2, /too large|larger than|at most/);
    assertFails(await alice.run(['send-file', 'bob', join(root, 'missing.bin')]), 2, /no such file/);
    const empty = join(root, 'empty.bin');
    writeFileSync(empty, '');
    assertFails(await alice.run(['send-file', 'bob', empty]), 1, /is empty: there is nothing to send/);
  });

  it("the server's files and logs hold neither the contents nor the names (before any delete)", () => {
    assertServerHoldsNone(server, [contentMarker, name, chatMarker, alice.passphrase, bob.passphrase], ['alice', 'bob']);
  });

  it('delete-file: only the sender deletes; then a download says the file is gone; the message stays', async () => {
    assertFails(await bob.run(['delete-file', 'alice', String(seq)]), 1, /only its sender can delete it/);
    const r = await alice.run(['delete-file', 'bob', String(seq)]);
    ok(r, 'delete-file');
    assert.match(r.stderr, new RegExp(`Deleted the file of message #${seq} from the server`));
    assertFails(await alice.run(['delete-file', 'bob', String(seq)]), 1, /no longer on the server/);
    assertFails(await bob.run(['download', 'alice', String(seq), '-o', '-']), 1, /no longer on the server \(deleted by its sender/);
    const list = items(ok(await bob.run(['history', 'alice', '--json']), 'history'));
    assert.equal(list.find((i) => i.seq === seq)?.file?.name, name, 'the message itself stays');
  });

});
