/**
 * Runs the real server as a child process (`parley serve`), exactly as a
 * user would, and reads its JSON log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';

const CLI = fileURLToPath(new URL('../../../../apps/cli/dist/src/main.js', import.meta.url));

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface ServerProcess {
  port: number;
  dataDir: string;
  serverPublicKeyB64: string;
  logs: LogLine[];
  stderr: string[];
  child: ChildProcess;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  cleanup(): void;
}

export async function startServerProcess(extraArgs: string[] = [], options: { dataDir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'parley-test-'));
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--data', dataDir, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  let buffered = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = new Promise<LogLine>((resolve, reject) => {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim() === '') continue;
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line) as LogLine;
        } catch {
          parsed = { level: 0, msg: `UNPARSEABLE LOG LINE: ${line}` };
        }
        logs.push(parsed);
        if (parsed.msg === 'parley server listening') resolve(parsed);
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => stderr.push(chunk));
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${stderr.join('')}`)));
  });
  const first = await listening;
  return {
    port: first['port'] as number,
    dataDir,
    serverPublicKeyB64: first['serverPublicKey'] as string,
    logs,
    stderr,
    child,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
    cleanup() {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A real `parley serve` for the enclosing `describe`: started before its
 * tests, stopped (and its data directory removed) after them, once the
 * connections put in `open` are closed.
 */
export function serverForSuite<C extends { close(): void }>(extraArgs: string[] = [], options: { env?: NodeJS.ProcessEnv } = {}): { readonly server: ServerProcess; readonly url: string; readonly open: C[] } {
  let running: ServerProcess | undefined;
  const open: C[] = [];
  before(async () => {
    running = await startServerProcess(extraArgs, options);
  });
  after(async () => {
    for (const c of open) c.close();
    await running?.stop();
    running?.cleanup();
  });
  const live = (): ServerProcess => {
    if (running === undefined) throw new Error('the suite server starts in before()');
    return running;
  };
  return {
    get server() {
      return live();
    },
    get url() {
      return `ws://127.0.0.1:${live().port}/v1`;
    },
    open,
  };
}
