#!/usr/bin/env node
/**
 * `parley` — the command line: `parley serve`, the chat commands
 * (`register`, `login`, `chat`, `history`, `verify`, `backup`, `restore`;
 * see `chat-commands.ts`) and the Themis developer tools (`parley themis …`,
 * see `themis-tools.ts`).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { Command, InvalidArgumentError } from 'commander';
import { chatCommands } from './chat-commands.ts';
import { CliError, exitOnCommanderError, formatCommanderError, reportError, usageError } from './cli-error.ts';
import { themisCommand } from './themis-tools.ts';

/** A TCP port: decimal digits only (`Number()` would take "", " ", "0x50" and "1e4"), 0..65535. */
function port(value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('must be a TCP port: an integer 0..65535 in decimal digits (0: any free port)');
  return Number(value);
}

/** `f()`, any error it throws made a usage error (its message kept: the settings' messages name what to fix). */
function asUsageError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw usageError(e instanceof Error ? e.message : String(e));
  }
}

/** This package's version, from its package.json (two levels up from `dist/src/main.js`). */
function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** How a client on this machine names a server listening on `host`: one on every interface is reached as localhost. */
function localHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return isIPv6(host) ? `[${host}]` : host;
}

/** What a new user needs from the start: where clients connect, where the data is, and who the key is for. */
function startupLines(s: { port: number; host: string; dataDir: string; postgres: boolean; publicKeyB64: string }): string {
  const base = `ws://${localHost(s.host)}:${s.port}`;
  return [
    `Parley server listening on ${s.host} port ${s.port}; data directory: ${s.dataDir}${s.postgres ? ' (server key; messages in PostgreSQL)' : ''}`,
    `Parley clients connect to ${base}/v1, e.g. npx parley register <user> --server ${base}`,
    `Themis tutorial clients (on /) pin the server's public key: ${s.publicKeyB64} (Parley's own clients do not need it)`,
  ].join('\n') + '\n';
}

/** A start-up failure the user can act on, said so; anything else as it is. */
function startFailure(e: unknown, port: number): unknown {
  if (e instanceof Error && (e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    return new Error(`port ${port} is already in use (by another parley serve, or another program): stop that process, or choose another port with --port N (npm start -- --port N)`);
  }
  return e;
}

// Parser errors (an unknown command or option, a bad --port) are one line and exit 2, as for the
// other commands: no help dump, and never the value of a mistyped --option=value (it may be a password).
const program = new Command('parley')
  .description('Parley: self-hosted end-to-end encrypted chat')
  .version(cliVersion(), '-V, --version', 'print the version of parley')
  .exitOverride(exitOnCommanderError)
  .configureOutput({ outputError: (text, write) => write(formatCommanderError(text, 'parley')) });

program
  .command('serve')
  .description('run the Parley server (WebSocket /v1, Themis tutorial protocol on /)')
  .configureOutput({ outputError: (text, write) => write(formatCommanderError(text, 'parley serve')) })
  .option('-p, --port <port>', 'TCP port, 0 for any free one (env PARLEY_PORT, else PORT; default 8080)', port)
  .option('--host <host>', 'interface to listen on (env PARLEY_HOST; default 0.0.0.0)')
  .option('-d, --data <dir>', 'data directory (env PARLEY_DATA; default ./data)')
  .option('--database-url <url>', 'PostgreSQL URL instead of embedded SQLite (env DATABASE_URL)')
  .option('--tutorial-demo-key', "use the Themis tutorial's published demo key pair (testing only!)")
  .option('--log-level <level>', 'trace|debug|info|warn|error|fatal|silent (env PARLEY_LOG_LEVEL; default info)')
  .action(async (opts: { port?: number; host?: string; data?: string; databaseUrl?: string; tutorialDemoKey?: boolean; logLevel?: string }) => {
    // Loaded here, not at start-up: the other commands need none of the server (nor its native modules).
    const { resolveConfig, startServer } = await import('@parley/server');
    // Settings first: a bad flag or variable is a usage error (exit 2), named in one line.
    const config = asUsageError(() =>
      resolveConfig({
        ...(opts.port !== undefined && { port: opts.port }),
        ...(opts.host !== undefined && { host: opts.host }),
        ...(opts.data !== undefined && { dataDir: opts.data }),
        ...(opts.databaseUrl !== undefined && { databaseUrl: opts.databaseUrl }),
        ...(opts.tutorialDemoKey === true && { tutorialDemoKey: true }),
        ...(opts.logLevel !== undefined && { logLevel: opts.logLevel }),
      }),
    );
    const server = await startServer({ config }).catch((e: unknown) => {
      throw startFailure(e, config.port);
    });
    const publicKeyB64 = Buffer.from(server.serverPublicKey).toString('base64');
    process.stderr.write(startupLines({ port: server.port, host: config.host, dataDir: config.dataDir, postgres: config.databaseUrl !== undefined, publicKeyB64 }));
    // On stderr whatever the log level: the log's own warning can be filtered out.
    if (server.config.tutorialDemoKey) {
      process.stderr.write(
        '\n*** WARNING: this server uses the Themis tutorial\'s PUBLISHED demo key pair (--tutorial-demo-key). ***\n' +
          '*** Anyone can impersonate it. For testing the unmodified demo apps only; never in production. ***\n\n',
      );
    }
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      server.log.info({ signal }, 'signal received');
      server.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });

for (const cmd of chatCommands()) program.addCommand(cmd);
program.addCommand(themisCommand());

// Whatever escapes a command's own handling is still one line, never a stack trace.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (e: unknown) => process.exit(reportError(e)));
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CliError) process.exit(reportError(err));
  // The server failed to start (port in use, data directory locked…): its message as is.
  process.stderr.write(`parley: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
