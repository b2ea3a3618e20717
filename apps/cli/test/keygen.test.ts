/**
 * `parley themis keygen`: files (raw Themis bytes, private key 0600), stdout
 * (labelled base64), key types, and no overwriting without --force.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { PrivateKey, PublicKey } from '@parley/themis';
import { assertFails, assertOk, parseKeygenOutput, tempDir, themis } from './_cli.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

describe('keygen', () => {
  test('EC by default: <prefix>.priv (0600) and <prefix>.pub hold a matching raw Themis key pair', async () => {
    const prefix = tmp.path('alice');
    const r = await themis(['keygen', '--out', prefix]);
    assertOk(r);
    assert.equal(r.stdout.length, 0, 'no key material on stdout with --out');
    const priv = readFileSync(`${prefix}.priv`);
    const pub = readFileSync(`${prefix}.pub`);
    assert.equal(new PrivateKey(priv).kind, 'ec-private');
    assert.equal(new PublicKey(pub).kind, 'ec-public');
    assert.equal(mode(`${prefix}.priv`), 0o600);
    assert.ok(!r.stderr.includes(priv.toString('base64')), 'private key on stderr');
  });

  test('without --out: both keys in base64 on stdout, the private key labelled secret', async () => {
    const r = await themis(['keygen']);
    assertOk(r);
    const text = r.stdout.toString('utf8');
    assert.match(text, /SECRET/);
    const keys = parseKeygenOutput(r.stdout);
    assert.equal(new PrivateKey(keys.get('private') ?? new Uint8Array()).kind, 'ec-private');
    assert.equal(new PublicKey(keys.get('public') ?? new Uint8Array()).kind, 'ec-public');
  });

  test('--type rsa --bits 1024', async () => {
    const prefix = tmp.path('rsa');
    assertOk(await themis(['keygen', '--type', 'rsa', '--bits', '1024', '--out', prefix]));
    assert.equal(new PrivateKey(readFileSync(`${prefix}.priv`)).kind, 'rsa-private');
    assert.equal(new PublicKey(readFileSync(`${prefix}.pub`)).kind, 'rsa-public');
    assert.equal(mode(`${prefix}.priv`), 0o600);
  });

  test('--type symmetric: 32 random bytes in <prefix>.key (0600), or labelled on stdout', async () => {
    const prefix = tmp.path('cellkey');
    assertOk(await themis(['keygen', '--type', 'symmetric', '--out', prefix]));
    assert.equal(readFileSync(`${prefix}.key`).length, 32);
    assert.equal(mode(`${prefix}.key`), 0o600);
    const r = await themis(['keygen', '--type', 'symmetric']);
    assertOk(r);
    assert.equal(parseKeygenOutput(r.stdout).get('symmetric')?.length, 32);
    assert.match(r.stdout.toString('utf8'), /SECRET/);
  });

  test('refuses to overwrite either file without --force, and writes neither', async () => {
    const prefix = tmp.path('taken');
    writeFileSync(`${prefix}.pub`, 'keep me');
    assertFails(await themis(['keygen', '--out', prefix]), 2, /already exists; use --force/);
    assert.equal(readFileSync(`${prefix}.pub`, 'utf8'), 'keep me');
    assert.ok(!existsSync(`${prefix}.priv`), 'the .priv was written although the .pub exists');
  });

  test('--force overwrites, and an existing world-readable .priv becomes 0600', async () => {
    const prefix = tmp.path('forced');
    writeFileSync(`${prefix}.priv`, 'old');
    chmodSync(`${prefix}.priv`, 0o644);
    writeFileSync(`${prefix}.pub`, 'old');
    assertOk(await themis(['keygen', '--out', prefix, '--force']));
    assert.equal(new PrivateKey(readFileSync(`${prefix}.priv`)).kind, 'ec-private');
    assert.equal(mode(`${prefix}.priv`), 0o600);
  });

  test('usage errors: --bits without rsa, unknown type', async () => {
    assertFails(await themis(['keygen', '--bits', '2048']), 2, /--bits applies only to --type rsa/);
    assertFails(await themis(['keygen', '--type', 'dsa']), 2, /Allowed choices are ec, rsa, symmetric/);
    assertFails(await themis(['keygen', '--type', 'rsa', '--bits', '512']), 2, /Allowed choices/);
  });

  test('--out must name files: empty, a directory (`keys/`) or `.` would write hidden .priv/.pub files, and is refused before writing', async () => {
    for (const out of ['', tmp.path('kd') + '/', '.', tmp.path('kd') + '/..']) {
      for (const type of ['ec', 'symmetric']) {
        assertFails(await themis(['keygen', '--type', type, '--out', out]), 2, /--out takes a file name prefix, as in --out keys\/alice/);
      }
    }
    assert.ok(!existsSync(tmp.path('kd/.priv')) && !existsSync('.priv') && !existsSync('.key'));
  });
});
