/**
 * Test harness for the SDK's end-to-end tests: a real `parley serve`
 * process (the server package's own helper), a TCP proxy that can cut or
 * black-hole connections, device provisioning, and event recorders.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before } from 'node:test';
// Types from the server's compiled test helper (built before this package: see tsconfig references).
import type * as ServerProcessModule from '../../server/dist/test/_server-process.js';
import type { ServerProcess } from '../../server/dist/test/_server-process.js';
import { ParleyClient as ParleyClientClass, type ParleyClient } from '../src/client.ts';
import type { ClientStore } from '../src/client-store.ts';
import type { ChatMessage, ConnectionEvent, DecryptionFailure, MembershipEvent } from '../src/events.ts';
import type { SdkError } from '../src/errors.ts';
import type { TransportFactory } from '../src/transport.ts';
import { webSocketTransport } from '../src/transport-ws.ts';

export type { ServerProcess };

// The compiled helper, next to the compiled server tests (this file runs from packages/sdk/dist/test).
const SERVER_PROCESS_JS = new URL('../../../server/dist/test/_server-process.js', import.meta.url);

/** Start `parley serve` on a free port with a fresh data directory. */
export async function startServer(options: { env?: NodeJS.ProcessEnv } = {}): Promise<ServerProcess & { url: string }> {
  const mod = (await import(SERVER_PROCESS_JS.href)) as typeof ServerProcessModule;
  const server = await mod.startServerProcess([], { env: { PARLEY_LOG_LEVEL: 'info', ...options.env } });
  return Object.assign(server, { url: `ws://127.0.0.1:${server.port}/v1` });
}

/**
 * Add a device to an existing user the way an application does: the new
 * device's store makes a signed link request, one of the user's connected
 * devices (`existing`) sends it with `device.add`.
 */
export async function provisionDevice(existing: ParleyClient, store: ClientStore, deviceId: string): Promise<void> {
  await existing.addDevice(ParleyClientClass.deviceLinkRequest(store, existing.userId, deviceId));
}

/** Everything a client emits, recorded; pass `on` to ParleyClient.register/login. */
export interface Recorder {
  readonly messages: ChatMessage[];
  readonly failures: DecryptionFailure[];
  readonly membership: MembershipEvent[];
  readonly connection: ConnectionEvent[];
  readonly errors: SdkError[];
  readonly on: {
    message: (m: ChatMessage) => void;
    decryptionError: (f: DecryptionFailure) => void;
    membership: (m: MembershipEvent) => void;
    connection: (c: ConnectionEvent) => void;
    error: (e: SdkError) => void;
  };
}

export function recorder(): Recorder {
  const messages: ChatMessage[] = [];
  const failures: DecryptionFailure[] = [];
  const membership: MembershipEvent[] = [];
  const connection: ConnectionEvent[] = [];
  const errors: SdkError[] = [];
  return {
    messages,
    failures,
    membership,
    connection,
    errors,
    on: {
      message: (m) => messages.push(m),
      decryptionError: (f) => failures.push(f),
      membership: (m) => membership.push(m),
      connection: (c) => connection.push(c),
      error: (e) => errors.push(e),
    },
  };
}

/** The text of each message (binary ones as `<n bytes>`). */
export function texts(messages: readonly ChatMessage[]): string[] {
  return messages.map((m) => (m.kind === 'text' ? m.text : m.kind === 'binary' ? `<${m.bytes.length} bytes>` : `<file ${m.file.name}>`));
}

/** Poll `condition` every 20 ms until it holds; fail after `ms`. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A distinctive random marker to look for in the server's files. */
export function marker(label: string): string {
  return `${label}-${Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(12))).toString('hex')}`;
}

/** Close every client, ignoring failures (for `after` hooks). */
export async function closeAll(clients: readonly (ParleyClient | undefined)[]): Promise<void> {
  await Promise.all(clients.map((c) => c?.close().catch(() => undefined)));
}

/** The server of one `describe` ({@link serverForSuite}). */
export interface SuiteServer {
  /** Its `/v1` address, once the suite's `before` has run. */
  readonly url: string;
  /** Its port (for a proxy in front of it). */
  readonly port: number;
  readonly dataDir: string;
  /** The clients the tests open: closed after the suite, before the server goes. */
  readonly clients: ParleyClient[];
}

/**
 * A real `parley serve` for the enclosing `describe`: started before its
 * tests; after them, every client in `clients` is closed, then the server is
 * killed and its data directory removed.
 */
export function serverForSuite(): SuiteServer {
  let running: (ServerProcess & { url: string }) | undefined;
  const clients: ParleyClient[] = [];
  const live = (): ServerProcess & { url: string } => {
    if (running === undefined) throw new Error('the suite server starts in before()');
    return running;
  };
  before(async () => {
    running = await startServer();
  });
  after(async () => {
    await closeAll(clients);
    running?.cleanup();
  });
  return {
    get url() {
      return live().url;
    },
    get port() {
      return live().port;
    },
    get dataDir() {
      return live().dataDir;
    },
    clients,
  };
}

/**
 * A TCP proxy in front of the server: `dropAll()` cuts every connection
 * (both sides, no closing handshake), `blackhole` silently discards what the
 * server sends (so a client never sees an answer), `freezeAll()` makes the
 * connections open now carry nothing either way and never close (a NAT that
 * forgot them), while new ones work.
 */
export class TcpProxy {
  readonly port: number;
  blackhole = false;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #frozen = new WeakSet<Socket>();

  private constructor(server: Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | null = null;
    const server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      if (proxy !== null) proxy.#track(client, upstream);
      const frozen = (): boolean => proxy !== null && proxy.#frozen.has(client);
      client.on('data', (d) => {
        if (!frozen()) upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (proxy?.blackhole !== true && !frozen()) client.write(d);
      });
      const end = (): void => {
        // A frozen connection stays as it is: no close reaches either side.
        if (frozen()) return;
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    proxy = new TcpProxy(server, address.port);
    return proxy;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/v1`;
  }

  #track(...sockets: Socket[]): void {
    for (const s of sockets) {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    }
  }

  /** The connections open now carry nothing more, either way, and never close. */
  freezeAll(): void {
    for (const s of this.#sockets) this.#frozen.add(s);
  }

  /** Cut every connection now. */
  dropAll(): void {
    for (const s of this.#sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A frame from the server as the fault injectors see it: parsed, or `{}` when it is not JSON. */
function parsed(text: string): { t?: unknown; [k: string]: unknown } {
  try {
    return JSON.parse(text) as { t?: unknown };
  } catch {
    return {};
  }
}

/** What `FaultyTransport` does with one frame from the server. */
export type FrameFault = 'pass' | 'drop' | { readonly delayMs: number };

/**
 * The real `ws` transport with faults injected below the SDK: each frame
 * the server sends is shown to `fault` (parsed), which passes it, drops it
 * or delays it (so later frames overtake it). Only the client side is
 * touched: the server and its socket are real.
 */
export function faultyTransport(fault: (frame: { t?: unknown; [k: string]: unknown }) => FrameFault): TransportFactory {
  return (url, events) => {
    let closed = false;
    return webSocketTransport(url, {
      message: (text) => {
        const f = fault(parsed(text));
        if (f === 'pass') events.message(text);
        // A socket delivers nothing after its close: neither does a delayed frame.
        else if (f !== 'drop') setTimeout(() => closed || events.message(text), f.delayMs);
      },
      close: (code, reason) => {
        closed = true;
        events.close(code, reason);
      },
    });
  };
}

/**
 * The real `ws` transport below a server that lies: each frame the real
 * server sends is shown to `rewrite` (parsed, and as its text), which
 * returns the texts the client gets instead — none to drop it, a changed
 * one, or extra frames the server never sent. The server is real; only
 * what reaches the client is forged.
 */
export function hostileTransport(rewrite: (frame: { t?: unknown; [k: string]: unknown }, text: string) => readonly string[]): TransportFactory {
  return (url, events) =>
    webSocketTransport(url, {
      message: (text) => {
        for (const t of rewrite(parsed(text), text)) events.message(t);
      },
      close: (code, reason) => events.close(code, reason),
    });
}

/** `xs[i]`, failing the test when there is none. */
export function nth<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`no item ${i} (of ${xs.length})`);
  return x;
}
