/**
 * fast-check at the SDK level, against a real `parley serve`: two users,
 * each a `ParleyClient` on its own sealed SQLite store, and random
 * interleavings of sends (not awaited), live frames lost or delayed below
 * the SDK (so later ones overtake them), and device restarts (client and
 * store closed, reopened from the file, logged in again) — with sends still
 * in flight. Once the transport catches up (both sides send a last message
 * and read the other's), every message a side sent and saw stored has
 * reached the other exactly once, every delivered message is one that was
 * sent, in the order it was sent, and nothing is left undecryptable.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ParleyClient } from '../src/client.ts';
import type { ChatMessage, DecryptionFailure } from '../src/events.ts';
import { SqliteClientStore } from '../src/sqlite-store.ts';
import { faultyTransport, startServer, until, type FrameFault, type ServerProcess } from './_harness.ts';

const PASS = 'interleaving passphrase';
const RUNS = 25;

type Who = 'a' | 'b';
type Command =
  | { readonly t: 'send'; readonly from: Who }
  | { readonly t: 'drop'; readonly to: Who }
  | { readonly t: 'delay'; readonly to: Who; readonly ms: number }
  | { readonly t: 'restart'; readonly who: Who }
  | { readonly t: 'pause'; readonly ms: number };

const who = fc.constantFrom<Who>('a', 'b');
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: who.map((from) => ({ t: 'send', from }) as const) },
  { weight: 2, arbitrary: who.map((to) => ({ t: 'drop', to }) as const) },
  { weight: 2, arbitrary: fc.record({ to: who, ms: fc.integer({ min: 5, max: 120 }) }).map((r) => ({ t: 'delay', ...r }) as const) },
  { weight: 1, arbitrary: who.map((w) => ({ t: 'restart', who: w }) as const) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 40 }).map((ms) => ({ t: 'pause', ms }) as const) },
);

/** One device: its client (replaced on restart), what it received, its pending faults. */
interface Device {
  readonly userId: string;
  readonly path: string;
  client: ParleyClient;
  store: SqliteClientStore;
  readonly received: ChatMessage[];
  readonly failures: DecryptionFailure[];
  /** Faults for the next live msg frames, in order. */
  readonly faults: FrameFault[];
  /** Each seq is lost at most once: its replay passes (a lossy path, not a broken one). */
  readonly lost: Set<number>;
  /** Text → whether its send resolved (stored), in send order. */
  readonly sent: Map<string, boolean>;
}

describe('SDK interleavings (fast-check, real server)', () => {
  let server: ServerProcess & { url: string };
  let dir: string;
  let run = 0;

  before(async () => {
    server = await startServer();
    dir = mkdtempSync(join(tmpdir(), 'parley-sdk-interleave-'));
  });
  after(() => {
    server.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  function transportFor(d: Omit<Device, 'client' | 'store'>) {
    return faultyTransport((f) => {
      if (f.t !== 'msg' || typeof f['seq'] !== 'number' || d.faults.length === 0) return 'pass';
      const fault = d.faults.shift() ?? 'pass';
      if (fault === 'drop') {
        if (d.lost.has(f['seq'])) return 'pass';
        d.lost.add(f['seq']);
      }
      return fault;
    });
  }

  async function connect(d: Omit<Device, 'client' | 'store'>, how: 'register' | 'login'): Promise<{ client: ParleyClient; store: SqliteClientStore }> {
    const store = await SqliteClientStore.open(d.path, PASS, { mustExist: how === 'login' });
    const on = {
      message: (m: ChatMessage) => d.received.push(m),
      decryptionError: (f: DecryptionFailure) => d.failures.push(f),
    };
    const options = { store, on, transport: transportFor(d) };
    const client = how === 'register' ? await ParleyClient.register(server.url, d.userId, 'dev1', options) : await ParleyClient.login(server.url, d.userId, 'dev1', options);
    return { client, store };
  }

  async function device(userId: string): Promise<Device> {
    const base = { userId, path: join(dir, `${userId}.parley`), received: [], failures: [], faults: [], lost: new Set<number>(), sent: new Map<string, boolean>() };
    return { ...base, ...(await connect(base, 'register')) };
  }

  async function restart(d: Device): Promise<void> {
    await d.client.close();
    d.store.close();
    Object.assign(d, await connect(d, 'login'));
  }

  it(`every stored message arrives once, in order, decryptable (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 4, maxLength: 24 }), async (commands) => {
        run++;
        const a = await device(`il${run}-a`);
        const b = await device(`il${run}-b`);
        const parties = { a, b };
        const other = (d: Device): Device => (d === a ? b : a);
        try {
          const room = await a.client.startDirect(b.userId);
          const sends: Promise<unknown>[] = [];
          let n = 0;
          const send = (d: Device, text: string): Promise<unknown> => {
            d.sent.set(text, false);
            const p = d.client.send(room, text).then(
              () => d.sent.set(text, true),
              () => undefined, // CLOSED by a restart: it may still go out from the store's queue
            );
            sends.push(p);
            return p;
          };
          for (const c of commands) {
            if (c.t === 'send') void send(parties[c.from], `${c.from}-${n++}`);
            else if (c.t === 'drop') parties[c.to].faults.push('drop');
            else if (c.t === 'delay') parties[c.to].faults.push({ delayMs: c.ms });
            else if (c.t === 'restart') await restart(parties[c.who]);
            else await new Promise((resolve) => setTimeout(resolve, c.ms));
          }
          await Promise.all(sends);
          // Catching up: no more faults; a last message each way shows any hole left at the tail.
          for (const d of [a, b]) d.faults.length = 0;
          await Promise.all([send(a, 'a-last'), send(b, 'b-last')]);
          for (const d of [a, b]) {
            const from = other(d);
            await until(() => d.received.some((m) => m.kind === 'text' && m.text === `${from.userId.slice(-1)}-last`), `${d.userId} to read the last message`, 20_000);
          }
          for (const d of [a, b]) {
            const from = other(d);
            const order = [...from.sent.keys()];
            const got = d.received.map((m) => (m.kind === 'text' ? m.text : '<binary>'));
            assert.deepEqual(d.failures, [], `${d.userId}: nothing undecryptable`);
            assert.equal(new Set(got).size, got.length, `${d.userId}: at most once (${got.join(' ')})`);
            for (const t of got) assert.ok(from.sent.has(t), `${d.userId} got "${t}", which was never sent`);
            const positions = got.map((t) => order.indexOf(t));
            assert.deepEqual(positions, [...positions].sort((x, y) => x - y), `${d.userId}: in send order (${got.join(' ')})`);
            for (const [t, stored] of from.sent) if (stored) assert.ok(got.includes(t), `${d.userId}: stored message "${t}" never arrived (${got.join(' ')})`);
          }
        } finally {
          for (const d of [a, b]) {
            await d.client.close().catch(() => undefined);
            d.store.close();
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});
