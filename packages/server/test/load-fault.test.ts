/**
 * Load and fault test: 200 clients publish 50,000 messages in total to
 * group and direct rooms through a real `parley serve` process on SQLite,
 * with random disconnects (abrupt and clean), and the server is killed with
 * SIGKILL halfway and restarted on the same data directory and port.
 * Clients reconnect (access token, refresh token or signed login), sync
 * from their last contiguous seq per room and re-publish every message they
 * hold no ack for, with the same clientId.
 *
 * Afterwards, reading every room's log back through `history` from fresh
 * connections:
 *  1. every acknowledged (room, seq) is in the store with the sender,
 *     clientId and body that were acknowledged — nothing acknowledged is lost;
 *  2. every member of every room has received (live or by sync, deduplicated
 *     by seq) exactly the room's log, seq 1 to the end, with the stored
 *     contents; live deliveries on each connection came in seq order and
 *     without gaps (a connection that was sent seq n+1 was sent seq n);
 *  3. each (sender device, clientId) is stored at most once per room
 *     (idempotency across reconnects and the crash);
 *  4. every message a client published was acknowledged, and appears exactly
 *     once in the log, at the acknowledged seq; the log holds no other messages.
 *
 * Knobs (environment): LOAD_MESSAGES (default 50000), LOAD_CLIENTS (200),
 * LOAD_SEED, LOAD_WINDOW (publishes in flight per client, 4),
 * LOAD_DISCONNECTS_PER_CLIENT (expected random disconnects, 2),
 * LOAD_KILL_AT (fraction of messages acknowledged when the server is
 * killed, 0.5).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { startServerProcess, type ServerProcess } from './_server-process.ts';
import { LoadClient, Violations, hashOf, messageBody, newStats, type Entry, type Target } from './_load-client.ts';
import { MESSAGES_PER_SECOND, SYNC_ENTRIES_PER_ROOM_MAX } from '../src/limits.ts';

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
  return n;
}

const TOTAL = envNumber('LOAD_MESSAGES', 50_000);
const CLIENTS = envNumber('LOAD_CLIENTS', 200);
const GROUP_SIZE = 20;
const SEED = envNumber('LOAD_SEED', Math.floor(Math.random() * 2 ** 31));
const WINDOW = envNumber('LOAD_WINDOW', 4);
const DISCONNECTS_PER_CLIENT = envNumber('LOAD_DISCONNECTS_PER_CLIENT', 2);
const KILL_AT = envNumber('LOAD_KILL_AT', 0.5);
/** Share of each client's messages that go to its group room (the rest to its direct room). */
const GROUP_SHARE = 0.8;
/** No acknowledgement for this long means the server (or the test) is stuck. */
const STALL_MS = 60_000;

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with LOAD_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** "p50 / p99 / max" of a list of milliseconds. */
function spread(ms: number[]): string {
  if (ms.length === 0) return 'none';
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number): string => (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number).toFixed(0);
  return `p50 ${at(0.5)} / p99 ${at(0.99)} / max ${at(1)} ms`;
}

async function inBatches<T>(items: readonly T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

test(`load and fault: ${CLIENTS} clients, ${TOTAL} messages, random disconnects, SIGKILL + restart midway`, { timeout: 5 * 60_000 }, async (t) => {
  assert.ok(CLIENTS >= 2 * GROUP_SIZE && CLIENTS % GROUP_SIZE === 0 && CLIENTS % 2 === 0, `LOAD_CLIENTS must be a multiple of ${GROUP_SIZE}`);
  const report = (line: string): void => t.diagnostic(line);
  report(`seed ${SEED} (replay with LOAD_SEED=${SEED})`);
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-load-'));
  const servers: ServerProcess[] = [];
  const clients: LoadClient[] = [];
  try {
    let server = await startServerProcess([], { dataDir });
    servers.push(server);
    const port = server.port;
    const target: Target = { url: `ws://127.0.0.1:${port}/v1` };
    const stats = newStats();
    const violations = new Violations();
    const perClient = Math.ceil(TOTAL / CLIENTS);
    let acked = 0;
    let onAck = (): void => undefined;
    for (let i = 0; i < CLIENTS; i++) {
      clients.push(
        new LoadClient(`u${String(i).padStart(3, '0')}`, {
          target,
          stats,
          violations,
          rng: prng(SEED + i * 7919),
          window: WINDOW,
          ratePerSecond: MESSAGES_PER_SECOND * 0.8,
          burst: Math.max(1, Math.floor(MESSAGES_PER_SECOND / 5)),
          disconnectProbability: DISCONNECTS_PER_CLIENT / perClient,
          onAck: () => onAck(),
        }),
      );
    }
    const client = (i: number): LoadClient => clients[i] as LoadClient;

    // ---------------------------------------------------------- setup
    const setupStart = performance.now();
    await inBatches(clients, 50, (c) => c.connect(true));
    const members = new Map<string, string[]>();
    const groupOf = new Map<string, string>();
    const directOf = new Map<string, string>();
    async function createRoom(owner: LoadClient, kind: 'group' | 'direct', others: LoadClient[]): Promise<string> {
      const f = await owner.call({ t: 'room.create', kind, members: others.map((o) => o.userId) });
      assert.equal(f.t, 'room', `room.create: ${JSON.stringify(f)}`);
      const roomId = (f['room'] as { roomId: string }).roomId;
      members.set(roomId, [owner.userId, ...others.map((o) => o.userId)]);
      for (const m of [owner, ...others]) (kind === 'group' ? groupOf : directOf).set(m.userId, roomId);
      return roomId;
    }
    const groups = CLIENTS / GROUP_SIZE;
    await Promise.all(
      Array.from({ length: groups }, (_, g) => createRoom(client(g * GROUP_SIZE), 'group', clients.slice(g * GROUP_SIZE + 1, (g + 1) * GROUP_SIZE))),
    );
    const half = CLIENTS / 2;
    await Promise.all(Array.from({ length: half }, (_, i) => createRoom(client(i), 'direct', [client(i + half)])));
    await Promise.all(clients.map((c) => c.syncNow()));
    for (const c of clients) {
      const mine = [groupOf.get(c.userId), directOf.get(c.userId)];
      assert.deepEqual([...c.rooms.keys()].sort(), mine.sort(), `${c.userId} learned its two rooms from membership events`);
    }

    // The plan: each message goes to the sender's group room or its direct room.
    for (let i = 0; i < CLIENTS; i++) {
      const c = client(i);
      const rng = prng(SEED ^ (0x5bd1e995 + i));
      const quota = Math.floor(TOTAL / CLIENTS) + (i < TOTAL % CLIENTS ? 1 : 0);
      for (let n = 0; n < quota; n++) {
        c.addToPlan((rng() < GROUP_SHARE ? groupOf.get(c.userId) : directOf.get(c.userId)) as string, `${c.userId}-m${n}`);
      }
    }
    report(`setup: ${CLIENTS} devices registered, ${members.size} rooms (${groups} groups of ${GROUP_SIZE}, ${half} direct) in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);

    // ---------------------------------------------------------- load, with a crash in the middle
    const killAt = Math.max(1, Math.floor(TOTAL * KILL_AT));
    let restart: Promise<void> | null = null;
    let ackedAtKill = 0;
    let restartedAt = 0;
    let connectedAtKill = 0;
    let downMs = 0;
    let lastProgress = performance.now();
    onAck = () => {
      acked++;
      lastProgress = performance.now();
      if (restart === null && acked >= killAt) {
        ackedAtKill = acked;
        connectedAtKill = clients.filter((c) => c.connected).length;
        restart = (async () => {
          const killedAt = performance.now();
          const old = server;
          target.phase = 'while killing';
          await old.stop('SIGKILL');
          target.phase = 'server down';
          try {
            server = await startServerProcess(['--port', String(port)], { dataDir });
          } catch (err) {
            // The port could not be taken again: restart elsewhere; clients follow `target`.
            report(`restart on port ${port} failed (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); using a new port`);
            server = await startServerProcess([], { dataDir });
            target.url = `ws://127.0.0.1:${server.port}/v1`;
          }
          servers.push(server);
          restartedAt = performance.now();
          target.phase = 'after the restart';
          downMs = performance.now() - killedAt;
          report(`server SIGKILLed after ${ackedAtKill} acks with ${connectedAtKill} clients connected; back on port ${server.port} after ${downMs.toFixed(0)} ms`);
        })();
      }
    };

    const loadStart = performance.now();
    target.phase = 'before the kill';
    const clientLag = monitorEventLoopDelay({ resolution: 10 });
    clientLag.enable();
    const clientCpu = process.cpuUsage();
    for (const c of clients) c.chaos = true;
    const progress = setInterval(() => {
      const s = (performance.now() - loadStart) / 1000;
      console.log(`# load: ${acked}/${TOTAL} acked after ${s.toFixed(0)} s (${(acked / s).toFixed(0)} msg/s), ${stats.randomDisconnects} random disconnects`);
    }, 10_000);
    let watchdog: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      watchdog = setInterval(() => {
        if (performance.now() - lastProgress < STALL_MS) return;
        const stuck = clients.filter((c) => c.pendingCount > 0).map((c) => `${c.userId} (${c.pendingCount} pending, ${c.connected ? 'connected' : 'disconnected'})`);
        reject(new Error(`no acknowledgement for ${STALL_MS / 1000} s at ${acked}/${TOTAL}; stuck: ${stuck.slice(0, 20).join(', ')}`));
      }, 1000);
    });
    try {
      await Promise.race([Promise.all(clients.map((c) => c.run())), stalled]);
      if (restart !== null) await restart;
    } finally {
      clearInterval(progress);
      clearInterval(watchdog);
    }
    const loadSeconds = (performance.now() - loadStart) / 1000;
    clientLag.disable();
    const clientCpuUsed = process.cpuUsage(clientCpu);
    const serverMetrics = (await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text()).split('\n');
    const restartedServerSeconds = (performance.now() - restartedAt) / 1000;
    const metric = (name: string): number => Number(serverMetrics.find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN);
    assert.ok(restart !== null, 'the server was killed and restarted during the load');
    for (const c of clients) c.chaos = false;

    // Every client catches up from its last contiguous seq, then leaves.
    const finalStart = performance.now();
    await inBatches(clients, 50, (c) => c.syncNow());
    await Promise.all(clients.map((c) => c.close()));
    const finalSyncSeconds = (performance.now() - finalStart) / 1000;

    // ---------------------------------------------------------- read the store back
    const auditStart = performance.now();
    const logs = new Map<string, Entry[]>();
    await inBatches([...members.keys()], 10, async (roomId) => {
      const owner = clients.find((c) => c.userId === (members.get(roomId) as string[])[0]) as LoadClient;
      logs.set(roomId, await owner.readLog(roomId));
    });
    const auditSeconds = (performance.now() - auditStart) / 1000;

    const byUser = new Map(clients.map((c) => [c.userId, c]));
    let storedMessages = 0;
    for (const [roomId, log] of logs) {
      const where = new Map<string, number>();
      log.forEach((e, i) => {
        if (e.seq !== i + 1 || e.roomId !== roomId) violations.add('store-contiguity', `room ${roomId}: position ${i + 1} holds ${e.roomId} seq ${e.seq}`);
        if (e.kind !== 'message') return;
        storedMessages++;
        if (e.body !== messageBody(e.from.userId, e.from.deviceId, e.clientId)) violations.add('store-body', `room ${roomId} seq ${e.seq}: body does not match its sender/clientId`);
        // (3) each (sender device, clientId) at most once per room.
        const key = `${e.from.userId}/${e.from.deviceId}/${e.clientId}`;
        const prev = where.get(key);
        if (prev !== undefined) violations.add('3-idempotency', `room ${roomId}: ${key} stored at seq ${prev} and again at seq ${e.seq}`);
        else where.set(key, e.seq);
        // (4) no stored message nobody was told about.
        const sender = byUser.get(e.from.userId);
        const ack = sender?.acked.get(e.clientId);
        if (ack === undefined || ack.roomId !== roomId || ack.seq !== e.seq) {
          violations.add('4-unacknowledged-in-store', `room ${roomId} seq ${e.seq}: ${key} stored, but its sender holds ${ack === undefined ? 'no ack' : `an ack for ${ack.roomId} seq ${ack.seq}`}`);
        }
      });
    }
    if (storedMessages !== TOTAL) violations.add('4-message-count', `the store holds ${storedMessages} messages; ${TOTAL} were published`);

    let ackedTotal = 0;
    let excusedGaps = 0;
    for (const c of clients) {
      // (4) every planned message acknowledged.
      if (c.acked.size !== c.plan.length) violations.add('4-not-acknowledged', `${c.userId}: ${c.plan.length - c.acked.size} of ${c.plan.length} messages never acknowledged`);
      // (1) every acknowledged message is in the store as acknowledged.
      for (const [clientId, { roomId, seq }] of c.acked) {
        ackedTotal++;
        const e = logs.get(roomId)?.[seq - 1];
        if (e === undefined) violations.add('1-acked-missing', `${c.userId}: ${clientId} acked at room ${roomId} seq ${seq}, which is not in the store`);
        else if (e.kind !== 'message' || e.from.userId !== c.userId || e.from.deviceId !== c.deviceId || e.clientId !== clientId || e.body !== messageBody(c.userId, c.deviceId, clientId)) {
          violations.add('1-acked-mismatch', `${c.userId}: ${clientId} acked at room ${roomId} seq ${seq}, which holds ${e.from.userId}/${e.from.deviceId}/${e.clientId} (${e.kind})`);
        }
      }
      // (2) live delivery is gap-free: once a sync is answered, a connection receives every
      // later entry until it closes or syncs again (excused: its own publishes still
      // unanswered then).
      for (const gap of c.liveGaps) {
        const e = logs.get(gap.roomId)?.[gap.seq - 1];
        if (e !== undefined && e.from.userId === c.userId && e.from.deviceId === c.deviceId && gap.unanswered.has(e.clientId)) {
          excusedGaps++;
          continue;
        }
        violations.add('2-live-gap', `${c.userId} connection ${gap.connId}: room ${gap.roomId} seq ${gap.seq} (${e === undefined ? 'not in the store' : `${e.from.userId}/${e.clientId}`}) never arrived, though later entries did (${gap.context})`);
      }
      // (2) each member knows exactly the room's log, with the stored contents.
      for (const roomId of c.rooms.keys()) if (!(members.get(roomId) ?? []).includes(c.userId)) violations.add('2-foreign-room', `${c.userId} received entries of room ${roomId}`);
    }
    for (const [roomId, log] of logs) {
      for (const userId of members.get(roomId) as string[]) {
        const view = (byUser.get(userId) as LoadClient).rooms.get(roomId);
        if (view === undefined) {
          violations.add('2-delivery-missing', `${userId}: nothing received of room ${roomId} (${log.length} entries)`);
          continue;
        }
        for (const e of log) {
          const h = view.at(e.seq);
          if (h === 0) violations.add('2-delivery-missing', `${userId}: room ${roomId} seq ${e.seq} never delivered`);
          else if (h !== hashOf(e)) violations.add('2-delivery-mismatch', `${userId}: room ${roomId} seq ${e.seq} delivered with contents other than stored`);
        }
        if (view.maxSeq > log.length) violations.add('2-delivery-phantom', `${userId}: room ${roomId} received seq ${view.maxSeq}, the store ends at ${log.length}`);
      }
    }

    // The server logged no error, and the restarted one stops cleanly.
    for (const s of servers) for (const l of s.logs) if (l.level >= 50) violations.add('server-error-log', JSON.stringify(l).slice(0, 300));
    const exit = await server.stop('SIGTERM');
    if (exit !== 0) violations.add('server-exit', `the restarted server exited with ${exit} on SIGTERM`);

    const rate = TOTAL / loadSeconds;
    report(`load: ${TOTAL} messages in ${loadSeconds.toFixed(1)} s = ${rate.toFixed(0)} msg/s (${(TOTAL / (loadSeconds - downMs / 1000)).toFixed(0)} msg/s excluding ${(downMs / 1000).toFixed(1)} s downtime)`);
    report(`final sync ${finalSyncSeconds.toFixed(1)} s; store read back (${[...logs.values()].reduce((n, l) => n + l.length, 0)} entries in ${logs.size} rooms) in ${auditSeconds.toFixed(1)} s`);
    report(`acks: ${ackedTotal} distinct (${ackedAtKill} before the kill), ${stats.acks} received, ${stats.duplicateAcks} duplicates; publishes ${stats.publishes} (${stats.republishes} re-publishes), rate-limited ${stats.rateLimited}`);
    report(`connections: ${stats.connects} sessions (${stats.authRegister} register, ${stats.authToken} token, ${stats.authRefresh} refresh, ${stats.authLogin} login; ${stats.refreshLostReply} refresh tokens lost with a reply), ${stats.randomDisconnects} random disconnects, ${stats.droppedByServer} dropped by the server, ${stats.connectFailures} failed attempts`);
    if (stats.connectErrors.size > 0) report(`failed connection attempts (when they started): ${[...stats.connectErrors].map(([why, n]) => `${n}× ${why}`).join('; ')}`);
    report(
      `CPU during the load: test process ${((clientCpuUsed.user + clientCpuUsed.system) / 1e6).toFixed(1)} s of ${loadSeconds.toFixed(1)} s (event-loop delay p99 ${(clientLag.percentile(99) / 1e6).toFixed(0)} / max ${(clientLag.max / 1e6).toFixed(0)} ms); ` +
        `restarted server ${metric('parley_process_cpu_seconds_total').toFixed(1)} s of its ${restartedServerSeconds.toFixed(1)} s (event-loop lag p99 ${(metric('parley_nodejs_eventloop_lag_p99_seconds') * 1000).toFixed(0)} / max ${(metric('parley_nodejs_eventloop_lag_max_seconds') * 1000).toFixed(0)} ms)`,
    );
    report(`latency: (re)connect ${spread(stats.connectMs)}; sync ${spread(stats.syncMs)}`);
    report(`deliveries: ${stats.liveMsgs} live, ${stats.syncWindowMsgs} during syncs, ${stats.duplicateMsgs} duplicates deduplicated, ${stats.syncs} syncs (${stats.syncContinuations} continuing one cut at ${SYNC_ENTRIES_PER_ROOM_MAX} entries); ${stats.gapCheckedEpochs} connection epochs checked for live gaps (${excusedGaps} gaps excused: own publishes unanswered at close)`);
    if (violations.total > 0) report(`VIOLATIONS:\n${violations.summary()}`);
    assert.equal(violations.total, 0, `invariants violated:\n${violations.summary()}`);
  } finally {
    await Promise.all(clients.map((c) => c.close(false)));
    for (const s of servers) s.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
