/**
 * A Themis tutorial client, emulated with the REAL wasm-themis Secure
 * Session (the library the tutorial's mobile apps use), speaking the
 * tutorial's text-frame protocol over a real WebSocket.
 *
 * `style: 'android'` sends base64 the way Android's `Base64.DEFAULT` does
 * (line breaks every 76 characters and a trailing newline); `'ios'` sends
 * plain base64.
 */
import { createRequire } from 'node:module';
import WebSocket from 'ws';

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Peer = any;
let loaded: Promise<Peer> | undefined;

/** wasm-themis needs global fetch hidden while it initialises on Node ≥ 18. */
export function loadPeer(): Promise<Peer> {
  loaded ??= (async () => {
    const saved = globalThis.fetch;
    (globalThis as { fetch: unknown }).fetch = undefined;
    try {
      // While it initialises, its Emscripten glue installs process-wide handlers that rethrow every
      // uncaught error and unhandled rejection, killing the test process with
      // the module's whole source as the 'line' and hiding the real error;
      // removed so node:test reports such errors against the failing test.
      const before = new Set<unknown>([...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')]);
      const peer = require('wasm-themis');
      await peer.initialized;
      for (const l of process.listeners('uncaughtException')) if (!before.has(l)) process.removeListener('uncaughtException', l);
      for (const l of process.listeners('unhandledRejection')) if (!before.has(l)) process.removeListener('unhandledRejection', l);
      return peer;
    } finally {
      globalThis.fetch = saved;
    }
  })();
  return loaded;
}

export type Style = 'android' | 'ios';

export function encodeStyled(bytes: Uint8Array, style: Style): string {
  const b64 = Buffer.from(bytes).toString('base64');
  if (style === 'ios') return b64;
  return (b64.match(/.{1,76}/g) ?? []).join('\n') + '\n';
}

export interface TutorialClient {
  name: string;
  ws: WebSocket;
  /** The client's public key (what it announces unless told otherwise). */
  publicKey: Uint8Array;
  /** Lines received and decrypted, in order. */
  lines: string[];
  /** Frames that failed to unwrap (must stay empty with a correct server). */
  unreadable: number;
  established: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  say(text: string): void;
  /** Wait until `n` lines have arrived (or fail after `ms`). */
  waitForLines(n: number, ms?: number): Promise<string[]>;
  close(): void;
}

export interface ClientOptions {
  style: Style;
  /** The server public key the client pins (base64). */
  serverKeyB64: string;
  /** Announce this public key instead of our own (to provoke a handshake failure). */
  announceKey?: Uint8Array;
  /** Use this wasm-themis KeyPair instead of a new one (the same user on a second connection). */
  keys?: Peer;
}

export async function connectTutorialClient(url: string, name: string, options: ClientOptions): Promise<TutorialClient> {
  const peer = await loadPeer();
  const keys = options.keys ?? new peer.KeyPair();
  const serverKey = new peer.PublicKey(Buffer.from(options.serverKeyB64, 'base64'));
  const session = new peer.SecureSession(new TextEncoder().encode(name), keys.privateKey, (id: Uint8Array) =>
    new TextDecoder().decode(id) === 'server' ? serverKey : null,
  );
  const ws = new WebSocket(url);
  let destroyed = false;
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  let resolveEstablished!: () => void;
  let rejectEstablished!: (e: Error) => void;
  const established = new Promise<void>((res, rej) => {
    resolveEstablished = res;
    rejectEstablished = rej;
  });
  established.catch(() => undefined);
  const closed = new Promise<{ code: number; reason: string }>((res) => {
    ws.on('close', (code, reason) => {
      rejectEstablished(new Error(`closed ${code} ${reason.toString()}`));
      res({ code, reason: reason.toString() });
      for (const w of waiters) w();
    });
  });
  const client: TutorialClient = {
    name,
    ws,
    publicKey: keys.publicKey,
    lines,
    unreadable: 0,
    established,
    closed,
    say(text: string) {
      ws.send(encodeStyled(session.wrap(new TextEncoder().encode(text)), options.style));
    },
    async waitForLines(n: number, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (lines.length < n) {
        if (Date.now() > deadline) throw new Error(`${name}: got ${lines.length} of ${n} lines: ${JSON.stringify(lines)}`);
        if (ws.readyState === WebSocket.CLOSED) throw new Error(`${name}: socket closed with ${lines.length} of ${n} lines`);
        await new Promise<void>((res) => {
          waiters.push(res);
          setTimeout(res, 50);
        });
      }
      return lines;
    },
    close() {
      ws.close();
      if (!destroyed) session.destroy();
      destroyed = true;
    },
  };
  ws.on('message', (data: Buffer) => {
    const bytes = new Uint8Array(Buffer.from(data.toString('utf8'), 'base64'));
    try {
      if (!session.established()) {
        const reply = session.negotiateReply(bytes);
        if (reply.length > 0) ws.send(encodeStyled(reply, options.style));
        if (session.established()) resolveEstablished();
        return;
      }
      lines.push(new TextDecoder().decode(session.unwrap(bytes)));
    } catch {
      client.unreadable++;
    }
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  const announced = options.announceKey ?? keys.publicKey;
  // Frame 1 and frame 2 back to back, as the apps do (no waiting).
  ws.send(`${name}:${encodeStyled(announced, options.style)}`);
  ws.send(encodeStyled(session.connectionRequest(), options.style));
  return client;
}
