/**
 * Test harness for the chat commands: a real `parley serve` process (the
 * server package's own helper, compiled), profiles driven through the real
 * built CLI (`node apps/cli/dist/src/main.js …`), long-running chats as
 * child processes, and the scan of the server's files and logs for
 * plaintext.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
// Types from the server's compiled test helper (built before this package: see tsconfig references).
import type * as ServerProcessModule from '../../../packages/server/dist/test/_server-process.js';
import type { ServerProcess } from '../../../packages/server/dist/test/_server-process.js';
import { CLI, childEnv, parley, type CliResult } from './_cli.ts';

export type { ServerProcess };

// The compiled helper, from this file's compiled place (apps/cli/dist/test).
const SERVER_PROCESS_JS = new URL('../../../../packages/server/dist/test/_server-process.js', import.meta.url);

/**
 * `parley serve` on a free port and a fresh data directory — or, to restart
 * one, on `again`'s port and data directory — with the most verbose logs
 * (so the scan sees everything it logs).
 */
export async function startServer(again?: ServerProcess): Promise<ServerProcess & { url: string }> {
  const mod = (await import(SERVER_PROCESS_JS.href)) as typeof ServerProcessModule;
  const server =
    again === undefined
      ? await mod.startServerProcess([], { env: { PARLEY_LOG_LEVEL: 'trace' } })
      : await mod.startServerProcess(['--port', String(again.port)], { dataDir: again.dataDir, env: { PARLEY_LOG_LEVEL: 'trace' } });
  return Object.assign(server, { url: `ws://127.0.0.1:${server.port}` });
}

/** A distinctive random marker, to find (or not) in the server's files. */
export function marker(label: string): string {
  return `${label}-${randomBytes(10).toString('hex')}`;
}

/** The environment variable the tests pass store passphrases in. */
export const PASS_VAR = 'PARLEY_TEST_PASSPHRASE';

/** One profile directory (one machine) with one account. */
export class Profile {
  readonly dir: string;
  readonly user: string;
  readonly passphrase: string;
  readonly server: string;

  constructor(dir: string, user: string, server: string, passphrase = `passphrase of ${user} ${randomBytes(6).toString('hex')}`) {
    this.dir = dir;
    this.user = user;
    this.server = server;
    this.passphrase = passphrase;
  }

  /** The options every command of this profile gets. */
  get flags(): string[] {
    return ['--profile', this.dir, '--server', this.server, '--passphrase-env', PASS_VAR];
  }

  get env(): Record<string, string> {
    return { [PASS_VAR]: this.passphrase };
  }

  /** `parley <command> <args…> <this profile's flags>`. */
  run(args: readonly string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
    return parley([...args, ...this.flags], { input: options.input, env: { ...this.env, ...options.env }, cwd: options.cwd });
  }
}

/** The command exited 0; its stdout as text. */
export function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what} failed (${r.code}): ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: stack trace on stderr`);
  return r.stdout.toString('utf8');
}

/** A command that keeps running (a chat fed through a pipe): its output as it comes, its input line by line. */
export class Running {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: readonly string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [CLI, ...args], { env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  write(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  end(): void {
    this.child.stdin.end();
  }

  /** Waits until stdout (or stderr) matches. */
  async waitFor(pattern: RegExp, where: 'stdout' | 'stderr' = 'stdout', ms = 15_000): Promise<void> {
    await until(() => pattern.test(this[where]), `${pattern} on ${where} (stdout: ${JSON.stringify(this.stdout)}, stderr: ${JSON.stringify(this.stderr)})`, ms);
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** Poll `condition` until it holds; fail after `ms`. */
export async function until(condition: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push({ path, bytes: readFileSync(path) });
  }
  return out;
}

/**
 * The server's data directory (database, WAL, key files) and its logs (and
 * those of `earlier` runs on the same directory), as raw bytes, hold none of `secrets` — while they do hold `present` (public
 * things it must have: a user id), so the scan can see what is there.
 */
export function assertServerHoldsNone(server: ServerProcess, secrets: readonly string[], present: readonly string[], earlier: readonly ServerProcess[] = []): void {
  const files = filesUnder(server.dataDir);
  assert.ok(files.some((f) => f.path.endsWith('parley.db')), 'the database file exists');
  const logs = [...earlier, server].map((s) => JSON.stringify(s.logs) + s.stderr.join('')).join('\n');
  const haystacks = [...files, { path: 'server logs', bytes: Buffer.from(logs) }];
  const everything = Buffer.concat(haystacks.map((h) => h.bytes));
  for (const p of present) assert.ok(everything.includes(Buffer.from(p)), `positive control: ${p} is on the server`);
  for (const h of haystacks) {
    for (const s of secrets) {
      assert.equal(h.bytes.indexOf(Buffer.from(s)), -1, `${JSON.stringify(s)} is in ${h.path}`);
      assert.equal(h.bytes.indexOf(Buffer.from(Buffer.from(s).toString('base64').slice(0, 16))), -1, `the base64 of ${JSON.stringify(s)} is in ${h.path}`);
    }
  }
}
