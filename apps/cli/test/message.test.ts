/**
 * `parley themis sign` / `verify` and `encrypt` / `decrypt` (Secure Message):
 * round trips from keygen, binary and base64; an invalid signature or wrong
 * key exits 1 with one opaque line and outputs nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertFails, assertOk, pattern, tempDir, themis } from './_cli.ts';

const INVALID_SIGNATURE = /^parley: verification failed: not a valid signed message for this public key\n$/;
const DECRYPT_FAILED = /^parley: cannot decrypt: wrong keys, or the data is corrupted\n$/;

const tmp = tempDir();
const alice = tmp.path('alice');
const bob = tmp.path('bob');
const mallory = tmp.path('mallory');
const message = pattern(1000, 3);

before(async () => {
  for (const prefix of [alice, bob, mallory]) assertOk(await themis(['keygen', '--out', prefix]));
});
after(() => tmp.cleanup());

describe('sign/verify', () => {
  test("the keygen, sign and verify examples of 'parley themis --help' run as written, in one directory", async () => {
    const help = (await themis(['--help'])).stdout.toString();
    const examples = help.split('\n').filter((l) => /^ {2}parley themis (keygen --out|sign|verify) /.test(l));
    assert.equal(examples.length, 3, help);
    const dir = tmp.path('example');
    mkdirSync(dir);
    writeFileSync(join(dir, 'report.pdf'), message);
    for (const line of examples) {
      const args = (line.split('#')[0] ?? '').trim().split(/\s+/).slice(2);
      assertOk(await themis(args, { cwd: dir }), line);
    }
    assert.deepEqual(readFileSync(join(dir, 'report.checked.pdf')), message);
  });

  test('keygen → sign → verify round trip, binary and base64', async () => {
    for (const b64 of [[], ['--base64']]) {
      const signed = await themis(['sign', '--key', `${alice}.priv`, ...b64], { input: message });
      assertOk(signed);
      const verified = await themis(['verify', '--key', `${alice}.pub`, ...b64], { input: signed.stdout });
      assertOk(verified);
      assert.deepEqual(verified.stdout, message);
    }
  });

  test('public key given as base64:… and env:VAR', async () => {
    const signed = await themis(['sign', '--key', `${alice}.priv`], { input: message });
    const pub = readFileSync(`${alice}.pub`).toString('base64');
    for (const [source, env] of [[`base64:${pub}`, {}], ['env:ALICE_PUB', { ALICE_PUB: pub }]] as const) {
      const r = await themis(['verify', '--key', source], { input: signed.stdout, env });
      assertOk(r);
      assert.deepEqual(r.stdout, message);
    }
  });

  test('tampered signature, tampered message, wrong key, garbage: exit 1, one opaque line, nothing written', async () => {
    const signed = (await themis(['sign', '--key', `${alice}.priv`], { input: message })).stdout;
    const badSignature = Buffer.from(signed);
    badSignature[badSignature.length - 5] = (badSignature[badSignature.length - 5] ?? 0) ^ 0x40;
    const badMessage = Buffer.from(signed);
    badMessage[20] = (badMessage[20] ?? 0) ^ 1;
    const out = tmp.path('verified');
    for (const [input, key] of [
      [badSignature, alice],
      [badMessage, alice],
      [signed, mallory],
      [Buffer.from('not a signed message'), alice],
      [signed.subarray(0, 10), alice],
    ] as const) {
      assertFails(await themis(['verify', '--key', `${key}.pub`, '--out', out], { input }), 1, INVALID_SIGNATURE);
      assert.ok(!existsSync(out));
    }
  });

  test('RSA keys sign and verify too', async () => {
    const rsa = tmp.path('rsa');
    assertOk(await themis(['keygen', '--type', 'rsa', '--bits', '1024', '--out', rsa]));
    const signed = await themis(['sign', '--key', `${rsa}.priv`], { input: message });
    assertOk(signed);
    const r = await themis(['verify', '--key', `${rsa}.pub`], { input: signed.stdout });
    assertOk(r);
    assert.deepEqual(r.stdout, message);
    assertFails(await themis(['verify', '--key', `${alice}.pub`], { input: signed.stdout }), 1, INVALID_SIGNATURE);
  });
});

describe('encrypt/decrypt', () => {
  test('alice → bob round trip, binary and base64', async () => {
    for (const b64 of [[], ['--base64']]) {
      const sent = await themis(['encrypt', '--key', `${alice}.priv`, '--peer', `${bob}.pub`, ...b64], { input: message });
      assertOk(sent);
      const got = await themis(['decrypt', '--key', `${bob}.priv`, '--peer', `${alice}.pub`, ...b64], { input: sent.stdout });
      assertOk(got);
      assert.deepEqual(got.stdout, message);
    }
  });

  test('wrong recipient, wrong claimed sender, tampering: exit 1, one opaque line', async () => {
    const sent = (await themis(['encrypt', '--key', `${alice}.priv`, '--peer', `${bob}.pub`], { input: message })).stdout;
    const tampered = Buffer.from(sent);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    for (const [input, me, peer] of [
      [sent, mallory, alice],
      [sent, bob, mallory],
      [tampered, bob, alice],
    ] as const) {
      assertFails(await themis(['decrypt', '--key', `${me}.priv`, '--peer', `${peer}.pub`], { input }), 1, DECRYPT_FAILED);
    }
  });

  test('key kinds are checked: a public key as --key, a private key as --peer, mixed families', async () => {
    assertFails(await themis(['encrypt', '--key', `${alice}.pub`, '--peer', `${bob}.pub`], { input: 'x' }), 2, /--key holds a public key/);
    const r = await themis(['encrypt', '--key', `${alice}.priv`, '--peer', `${bob}.priv`], { input: 'x' });
    assertFails(r, 2, /--peer holds a PRIVATE key/);
    assert.ok(!r.stderr.includes(readFileSync(`${bob}.priv`).toString('base64').slice(8, 40)), 'key bytes in the message');
    const rsa = tmp.path('rsa-mixed');
    assertOk(await themis(['keygen', '--type', 'rsa', '--bits', '1024', '--out', rsa]));
    assertFails(await themis(['encrypt', '--key', `${alice}.priv`, '--peer', `${rsa}.pub`], { input: 'x' }), 2, /same family/);
  });
});
