/**
 * Usage errors of `parley themis …`: one `parley: …` line, exit code 2, no
 * stack trace, no secret echoed; input size limits; help; `parley serve`
 * still registered next to the new group, and its usage errors and those of
 * the top-level command (unknown options and commands, bad settings) alike.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_INPUT_BYTES, MAX_KEY_BYTES, MAX_SEALED_BYTES } from '../src/limits.ts';
import { assertFails, assertOk, childEnv, parley, tempDir, themis } from './_cli.ts';

const tmp = tempDir();
const keyFile = tmp.path('cell.key');
before(async () => {
  assertOk(await themis(['keygen', '--type', 'symmetric', '--out', tmp.path('cell')]));
  assertOk(await themis(['keygen', '--out', tmp.path('alice')]));
});
after(() => tmp.cleanup());

describe('usage errors', () => {
  test('no key and no passphrase (stdin is not a terminal)', async () => {
    for (const command of ['seal', 'open']) {
      const hint = /^parley: no key: give --key, --passphrase-env or --passphrase-file \(a passphrase prompt needs a terminal, and the input in --in <file>\)\n$/;
      assertFails(await themis([command], { input: 'x' }), 2, hint);
    }
  });

  test('required keys of sign/verify/encrypt/decrypt', async () => {
    assertFails(await themis(['sign'], { input: 'x' }), 2, /required option '-k, --key <source>'/);
    assertFails(await themis(['verify'], { input: 'x' }), 2, /required option/);
    assertFails(await themis(['encrypt', '--key', tmp.path('alice.priv')], { input: 'x' }), 2, /required option '-p, --peer <source>'/);
  });

  test('a passphrase on the command line is refused, and never echoed', async () => {
    for (const args of [['--passphrase', 'hunter2'], ['--passphrase=hunter2'], ['--password', 'hunter2'], ['--passphrase']]) {
      const r = await themis(['seal', ...args], { input: 'x' });
      assertFails(r, 2, /a passphrase is never accepted on the command line .*--passphrase-env VAR, --passphrase-file FILE/);
      assert.ok(!r.stderr.includes('hunter2'));
    }
  });

  test('an unknown --option=value is reported without its value', async () => {
    const r = await themis(['seal', '--pass=hunter2'], { input: 'x' });
    assertFails(r, 2, /unknown option '--pass=…'/);
    assert.ok(!r.stderr.includes('hunter2'));
  });

  test('a secret key is refused as base64:… on the command line; its value is not echoed', async () => {
    const b64 = readFileSync(keyFile).toString('base64');
    const r = await themis(['seal', '--key', `base64:${b64}`], { input: 'x' });
    assertFails(r, 2, /secret keys are not accepted on the command line/);
    assert.ok(!r.stderr.includes(b64));
    const priv = readFileSync(tmp.path('alice.priv')).toString('base64');
    const s = await themis(['sign', '--key', `base64:${priv}`], { input: 'x' });
    assertFails(s, 2, /secret keys are not accepted/);
    assert.ok(!s.stderr.includes(priv));
  });

  test('conflicting key sources', async () => {
    assertFails(await themis(['seal', '--key', keyFile, '--passphrase-env', 'P'], { input: 'x' }), 2, /cannot be used with/);
    assertFails(await themis(['seal', '--passphrase-env', 'P', '--passphrase-file', 'f'], { input: 'x' }), 2, /cannot be used with/);
  });

  test('missing or unusable key and passphrase sources', async () => {
    assertFails(await themis(['seal', '--key', tmp.path('nope.key')], { input: 'x' }), 2, /cannot read --key key file .*no such file/);
    assertFails(await themis(['seal', '--key', 'env:NOT_SET_ANYWHERE'], { input: 'x' }), 2, /environment variable NOT_SET_ANYWHERE is not set/);
    assertFails(await themis(['seal', '--key', 'env:K'], { input: 'x', env: { K: 'not base64!' } }), 2, /does not hold a base64 key/);
    assertFails(await themis(['seal', '--passphrase-env', 'NOT_SET_ANYWHERE'], { input: 'x' }), 2, /is not set/);
    assertFails(await themis(['seal', '--passphrase-env', 'EMPTY'], { input: 'x', env: { EMPTY: '' } }), 2, /is empty/);
    writeFileSync(tmp.path('empty-pass'), '\n');
    assertFails(await themis(['seal', '--passphrase-file', tmp.path('empty-pass')], { input: 'x' }), 2, /is empty/);
    assertFails(await themis(['seal', '--key', tmp.path('alice.pub')], { input: 'x' }), 2, /holds a Themis public key, not a symmetric key/);
    assertFails(await themis(['sign', '--key', keyFile], { input: 'x' }), 2, /is not a valid Themis private key/);
    writeFileSync(tmp.path('huge.key'), Buffer.alloc(MAX_KEY_BYTES + 1, 1));
    assertFails(await themis(['seal', '--key', tmp.path('huge.key')], { input: 'x' }), 2, /larger than the 64 KiB limit/);
  });

  test('an existing --out is not overwritten without --force', async () => {
    const out = tmp.path('exists.cell');
    writeFileSync(out, 'precious');
    assertFails(await themis(['seal', '--key', keyFile, '--out', out], { input: 'x' }), 2, /already exists; use --force to overwrite it/);
    assert.equal(readFileSync(out, 'utf8'), 'precious');
    assertOk(await themis(['seal', '--key', keyFile, '--out', out, '--force'], { input: 'x' }));
    assert.notEqual(readFileSync(out, 'utf8'), 'precious');
  });

  test('a missing input file', async () => {
    assertFails(await themis(['seal', '--key', keyFile, '--in', tmp.path('nope')]), 2, /cannot read input .*no such file/);
  });

  test('unknown subcommand', async () => {
    assertFails(await themis(['frobnicate']), 2, /unknown command 'frobnicate'/);
  });
});

describe('input size limits', () => {
  test('a file one byte over the limit is refused before reading', async () => {
    const big = tmp.path('big.bin');
    writeFileSync(big, '');
    truncateSync(big, MAX_INPUT_BYTES + 1); // sparse: instant, no disk used
    assertFails(await themis(['seal', '--key', keyFile, '--in', big]), 2, /input ".*big\.bin" is larger than the 64 MiB limit/);
    const sealedSide = tmp.path('big.cell');
    writeFileSync(sealedSide, '');
    truncateSync(sealedSide, MAX_SEALED_BYTES + 1);
    assertFails(await themis(['open', '--key', keyFile, '--in', sealedSide]), 2, /larger than the 64 MiB \+ 64 KiB limit/);
  });

  test('stdin one byte over the limit is refused; exactly at the limit is accepted', async () => {
    assertFails(await themis(['seal', '--key', keyFile], { input: Buffer.alloc(MAX_INPUT_BYTES + 1) }), 2, /input is larger than the 64 MiB limit/);
    const r = await themis(['seal', '--key', keyFile], { input: Buffer.alloc(MAX_INPUT_BYTES) });
    assertOk(r);
    // What seal wrote at the limit, open reads back.
    const opened = await themis(['open', '--key', keyFile], { input: r.stdout });
    assertOk(opened);
    assert.equal(opened.stdout.length, MAX_INPUT_BYTES);
  });
});

describe('help and the rest of the CLI', () => {
  test('parley themis --help lists the tools and exits 0', async () => {
    const r = await themis(['--help']);
    assertOk(r);
    for (const name of ['keygen', 'seal', 'open', 'sign', 'verify', 'encrypt', 'decrypt']) assert.match(r.stdout.toString(), new RegExp(`\\b${name}\\b`));
    assert.match(r.stdout.toString(), /Exit codes/);
  });

  test('seal --help documents the passphrase sources and offers no passphrase flag', async () => {
    const r = await themis(['seal', '--help']);
    assertOk(r);
    const help = r.stdout.toString();
    assert.match(help, /--passphrase-env <var>/);
    assert.match(help, /--passphrase-file <file>/);
    assert.doesNotMatch(help, /--passphrase \[/);
    assert.doesNotMatch(help, /--password/);
  });

  test("parley --version (and -V) prints the package's version and exits 0", async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await parley([flag]);
      assertOk(r);
      assert.equal(r.stdout.toString(), `${version}\n`);
    }
  });

  test("each chat command's help shows only options it accepts: --user where it is taken, nowhere on the others", async () => {
    for (const name of ['register', 'login', 'restore', 'link-device']) {
      const help = await parley([name, '--help']);
      assertOk(help);
      assert.doesNotMatch(help.stdout.toString(), /--user/, `${name} --help`);
      assertFails(await parley([name, 'alice', '--user', 'alice']), 2, /unknown option '--user'/);
    }
    for (const name of ['add-device', 'chat', 'history', 'send-file', 'download', 'delete-file', 'verify', 'backup']) {
      const help = (await parley([name, '--help'])).stdout.toString();
      assert.match(help, /^ {2}--user <user> /m, `${name} --help lists --user`);
      assert.match(help, /^Where and who:\n[\s\S]*^ {2}--user <user> /m, `${name} --help explains --user`);
    }
  });

  test('parley --help still lists serve, next to themis', async () => {
    const r = await parley(['--help']);
    assertOk(r);
    assert.match(r.stdout.toString(), /serve \[options\]/);
    assert.match(r.stdout.toString(), /themis/);
  });
});

describe('parley serve and the top-level command: usage errors as for the other commands', () => {
  // A server that starts by mistake (the bug these guard against) would write here, not in ./data.
  const data = (): string => tmp.path('serve-data');

  test('a mistyped --option=value is one line without its value, exit 2 (it may hold a password)', async () => {
    for (const args of [['serve', '--databse-url=postgres://parley:S3CRET-PW@db/parley', '--data', data()], ['--pasword=S3CRET-PW']]) {
      const r = await parley(args);
      assertFails(r, 2, /^parley: unknown option '--(databse-url|pasword)=…' \(see: parley( serve)? --help\)\n$/);
      assert.ok(!r.stderr.includes('S3CRET-PW'), r.stderr);
    }
  });

  test('verify takes its secret from one source: --secret (a prompt), --secret-env or --secret-file', async () => {
    const sources = [['--secret'], ['--secret-env', 'S'], ['--secret-file', tmp.path('secret')]];
    for (let i = 0; i < sources.length; i++) {
      for (let j = i + 1; j < sources.length; j++) {
        assertFails(await parley(['verify', 'bob', ...(sources[i] ?? []), ...(sources[j] ?? [])], { env: { S: 'shared' } }), 2, /cannot be used with/);
      }
    }
  });

  test('a database that cannot be reached: one line naming it, its password hidden, exit 1', async () => {
    const r = await parley(['serve', '--port', '0', '--data', data(), '--database-url', 'postgres://parley:S3CRET-PW@127.0.0.1:1/parley']);
    // (Its stdout is the server's log: the new key pair, kept in the data directory for the next start.)
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^parley: cannot use the PostgreSQL database at postgres:\/\/parley:\*\*\*@127\.0\.0\.1:1\/parley: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
    assert.ok(!r.stderr.includes('S3CRET-PW') && !r.stdout.includes('S3CRET-PW'));
  });

  test('an unknown command, an extra argument: one line, exit 2, no help dump', async () => {
    assertFails(await parley(['frob']), 2, /^parley: unknown command 'frob' \(see: parley --help\)\n$/);
    assertFails(await parley(['serve', 'extra', '--data', data()]), 2, /too many arguments for 'serve'/);
  });

  test('--port is decimal digits 0..65535; "", spaces, hex, exponents and signs are refused before anything listens', async () => {
    for (const bad of ['', ' ', '0x4971', '1e4', '+80', '-1', '65536', '18080 ']) {
      assertFails(await parley(['serve', `--port=${bad}`, '--data', data()]), 2, /--port <port>' argument .* is invalid\. must be a TCP port: an integer 0\.\.65535 in decimal digits \(0: any free port\)/);
    }
  });

  test('a bad setting in the environment is one line naming the variable, exit 2, before anything listens', async () => {
    for (const [name, value, message] of [
      ['PARLEY_PORT', ' ', /^parley: PARLEY_PORT must be an integer 0\.\.65535 \(0: any free port\) in decimal digits, got " "\n$/],
      ['PARLEY_PORT', '0x4970', /PARLEY_PORT must be/],
      ['PORT', '1e4', /^parley: PORT must be/],
      ['PARLEY_ACCESS_TOKEN_TTL_S', '0', /^parley: PARLEY_ACCESS_TOKEN_TTL_S must be an integer 1\.\.86400 \(seconds\)/],
      ['PARLEY_TRUSTED_TOKEN_PUBLIC_KEY', `@${tmp.path('missing.pem')}`, /^parley: PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: cannot read the key file ".*missing\.pem" \(no such file or directory\)\n$/],
      ['PARLEY_TRUST_PROXY', 'TRUE', /^parley: PARLEY_TRUST_PROXY must be 1 or true \(on\), or 0, false or empty \(off\); got "TRUE"\n$/],
      ['DATABASE_URL', 'mysql://parley:S3CRET-PW@db/parley', /^parley: DATABASE_URL must be a postgres:\/\/ \(or postgresql:\/\/\) URL\n$/],
    ] as const) {
      const r = await parley(['serve', '--data', data()], { env: { [name]: value } });
      assertFails(r, 2, message);
      assert.ok(!r.stderr.includes('S3CRET-PW'), r.stderr);
    }
    assertFails(await parley(['serve', '--host=', '--data', data()]), 2, /^parley: --host must be a host name or an IP address/);
  });
});

describe('the parley command as npm links it (bin/parley.js, committed: dist/ does not exist at install time)', () => {
  const cliDir = fileURLToPath(new URL('../../', import.meta.url));
  const shim = join(cliDir, 'bin', 'parley.js');

  test("package.json's bin is the committed shim, executable, and it runs the built CLI", () => {
    const pkg = JSON.parse(readFileSync(join(cliDir, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
    assert.equal(pkg.bin?.['parley'], './bin/parley.js');
    assert.match(readFileSync(shim, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    assert.notEqual(statSync(shim).mode & 0o111, 0, 'the shim is not executable');
    const r = spawnSync(shim, ['--help'], { encoding: 'utf8', env: childEnv() });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: parley /);
  });

  test('before a build it says, in one line, to run npm run build', () => {
    const copy = tmp.path('unbuilt');
    mkdirSync(join(copy, 'bin'), { recursive: true });
    copyFileSync(shim, join(copy, 'bin', 'parley.js'));
    const r = spawnSync(process.execPath, [join(copy, 'bin', 'parley.js'), '--help'], { encoding: 'utf8', env: childEnv() });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^parley: the CLI is not built yet: run `npm run build` in the Parley checkout, then try again\n$/);
  });
});
