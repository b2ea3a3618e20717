/**
 * Runs the built `parley` command as a real child process, exactly as a user
 * would (`node apps/cli/dist/src/main.js themis …`), feeding stdin and
 * collecting stdout as bytes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled CLI, next to this compiled test (`dist/test/` → `dist/src/main.js`). */
export const CLI = fileURLToPath(new URL('../src/main.js', import.meta.url));

const TIMEOUT_MS = 30_000;

export interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  /** Bytes or text fed to stdin (then closed); stdin is closed at once without it. */
  input?: Uint8Array | string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  cwd?: string;
}

/** The environment children get: ours without the test runner's own markers. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env['NODE_TEST_CONTEXT'];
  delete env['NODE_OPTIONS'];
  return env;
}

/** `parley <args…>`; resolves when the process has exited. */
export function parley(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: childEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    // The CLI may stop reading early (input over the limit): that is not an error here.
    child.stdin.on('error', () => undefined);
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    if (options.input === undefined) child.stdin.end();
    else child.stdin.end(options.input);
  });
}

/** Whether util-linux `script` is installed: the prompt tests need its pseudo-terminal. */
export const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

/** The end of what a terminal shows while a prompt waits for its answer ("Passphrase for alice: ", "Shared secret: "…). */
const PROMPT_AT_END = /(?:(?:passphrase|secret)(?: for \S+)?: |\[y\/N\] )$/i;

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs `parley <args…>` on a pseudo-terminal (util-linux `script`); each
 * time the terminal shows a new prompt, types the next answer (none left:
 * nothing). Resolves with the exit code and everything the terminal showed.
 */
export function onTerminal(args: readonly string[], answers: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number | null; screen: string }> {
  const command = [process.execPath, CLI, ...args].map(shellQuote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: childEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    let answered = 0;
    let next = 0;
    child.stdin.on('error', () => undefined);
    const onOutput = (chunk: Buffer): void => {
      screen += chunk.toString('utf8');
      if (next < answers.length && PROMPT_AT_END.test(screen.slice(answered))) {
        child.stdin.write(answers[next++] ?? '');
        answered = screen.length;
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, screen });
    });
  });
}

/** `parley themis <args…>`. */
export function themis(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  return parley(['themis', ...args], options);
}

/** The command exited 0. */
export function assertOk(r: CliResult, what = 'command'): void {
  assert.equal(r.code, 0, `${what} failed (${r.code}): ${r.stderr}`);
}

/**
 * The command failed with `code` and exactly one `parley: …` line on stderr
 * (matching `pattern`), no stack trace, and nothing on stdout.
 */
export function assertFails(r: CliResult, code: number, pattern?: RegExp): void {
  assert.equal(r.code, code, `expected exit ${code}, got ${r.code}; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^parley: [^\n]+\n$/, `expected one error line, got: ${JSON.stringify(r.stderr)}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'stack trace on stderr');
  if (pattern !== undefined) assert.match(r.stderr, pattern);
  assert.equal(r.stdout.length, 0, 'a failed command must write nothing on stdout');
}

/** A fresh temporary directory; `cleanup()` removes it. */
export function tempDir(): { dir: string; path(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'parley-cli-test-'));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic test bytes covering all byte values (xorshift32), so failures reproduce. */
export function pattern(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = (seed * 0x9e3779b1) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Parses `keygen`'s stdout (`label: base64` lines) into bytes per label. */
export function parseKeygenOutput(stdout: Buffer): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  for (const line of stdout.toString('utf8').split('\n')) {
    const m = /^(private|public|symmetric): ([A-Za-z0-9+/=]+)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) keys.set(m[1], Buffer.from(m[2], 'base64'));
  }
  return keys;
}
