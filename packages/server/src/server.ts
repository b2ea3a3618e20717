/**
 * Composition of the Parley server: one HTTP server carrying health,
 * readiness and metrics endpoints and the WebSocket upgrades —
 * `/` for the Themis tutorial protocol, `/v1` for the Parley protocol.
 *
 * Shutdown (SIGTERM): stop accepting, close every socket with 1001
 * (going away), wait up to the grace period, then exit.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { KeyPair } from '@parley/themis';
import { resolveConfig, type ConfigInput, type ServerConfig } from './config.ts';
import { createLogger, type Logger } from './log.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { FRAME_BYTES_MAX } from './limits.ts';
import { demoKeyPair, loadOrCreateServerKey, tokenSecretSeed } from './server-key.ts';
import { openStorage } from './storage/open.ts';
import { PostgresStorage } from './storage/postgres.ts';
import { openDataDir } from './data-dir.ts';
import { clientAddress } from './client-address.ts';
import type { Storage } from './storage/types.ts';
import { TOKEN_SECRET_NAME, TokenIssuer } from './v1/auth.ts';
import { blobPolicy, startBlobSweeper } from './v1/blobs.ts';
import { CLOSE_V1, V1Connection } from './v1/connection.ts';
import { Hub } from './v1/hub.ts';
import { InProcessFanOut } from './fanout/in-process.ts';
import { DEPLOYMENT_ID_NAME, RedisFanOut, fanoutChannel } from './fanout/redis.ts';
import type { FanOut } from './fanout/types.ts';
import { InProcessPresence } from './presence/in-process.ts';
import { RedisPresence, presencePrefix } from './presence/redis.ts';
import type { Presence } from './presence/types.ts';
import { PresenceAnnouncer } from './v1/presence.ts';
import type { V1Deps } from './v1/context.ts';
import { FailureWindow, type FailureCounter } from './rate-limit.ts';
import { RedisFailureWindow, failuresPrefix } from './failure-window-redis.ts';
import { LOGIN_FAILURES_PER_USER_PER_MINUTE, V1_PING_INTERVAL_MS } from './limits.ts';
import { DeadPeers } from './v1/dead-peers.ts';
import { TutorialChat } from './tutorial/tutorial-chat.ts';
import { CLOSE } from './tutorial/settings.ts';

export interface RunningServer {
  readonly config: ServerConfig;
  readonly port: number;
  readonly serverPublicKey: Uint8Array;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly storage: Storage;
  /** Graceful stop; resolves when every socket is closed or the grace period ends. */
  stop(): Promise<void>;
}

export interface StartOptions {
  config?: ConfigInput;
  env?: NodeJS.ProcessEnv;
  logDestination?: NodeJS.WritableStream;
  /** Tests only: how often v1 peers are pinged (V1_PING_INTERVAL_MS). */
  v1PingIntervalMs?: number;
}

/** How long a start waits for the database's process lock (a killed predecessor's session may linger). */
const PROCESS_LOCK_WAIT_MS = 5000;

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  const config = resolveConfig(options.config, options.env);
  const log = createLogger(config.logLevel, options.logDestination);
  const metrics = createMetrics();

  // On SQLite, one process per data directory (data-dir.ts); released when it stops.
  const dataDir = openDataDir(config.dataDir, { exclusive: config.databaseUrl === undefined });
  let keyPair: KeyPair;
  if (config.tutorialDemoKey) {
    keyPair = demoKeyPair();
    log.warn(
      { tutorialDemoKey: true },
      'USING THE PUBLISHED THEMIS TUTORIAL DEMO KEY PAIR: anyone can impersonate this server. For testing the unmodified demo apps only.',
    );
  } else {
    const loaded = loadOrCreateServerKey(config.dataDir);
    keyPair = loaded.keyPair;
    if (loaded.created) log.info({ dataDir: config.dataDir }, 'generated a new server key pair');
  }
  const serverPublicKeyB64 = Buffer.from(keyPair.publicKey).toString('base64');

  const tutorial = new TutorialChat({ keyPair, log, metrics });
  const { storage, kind: storageKind } = await openStorage(config);
  // Processes on one PostgreSQL share rooms only through Redis: one without it must be alone there.
  if (storage instanceof PostgresStorage) {
    const sole = config.redisUrl === undefined;
    // A process killed just before may still hold it: its session ends a moment after its socket.
    let held = await storage.holdProcessLock(sole ? 'sole' : 'shared');
    for (const deadline = Date.now() + PROCESS_LOCK_WAIT_MS; !held && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      held = await storage.holdProcessLock(sole ? 'sole' : 'shared');
    }
    if (!held) {
      await storage.close();
      throw new Error(
        sole
          ? 'another parley process uses this database: processes sharing one database must all set PARLEY_REDIS_URL (without it each delivers to its own clients only)'
          : 'a parley process without PARLEY_REDIS_URL uses this database: processes sharing one database must all set it',
      );
    }
  }
  // Shared by every process on this store: tokens one issues, the others accept.
  const tokenSecret = await storage.serverSecret(TOKEN_SECRET_NAME, tokenSecretSeed(config.dataDir));
  // One process: in-process fan-out. Several sharing rooms (one PostgreSQL): Redis,
  // on a channel named after this deployment (its store), so that deployments
  // sharing one Redis never see each other's traffic.
  const deploymentId = config.redisUrl !== undefined ? await storage.serverSecret(DEPLOYMENT_ID_NAME, new Uint8Array(randomBytes(16))) : null;
  const fanout: FanOut =
    config.redisUrl !== undefined && deploymentId !== null ? await RedisFanOut.connect(config.redisUrl, fanoutChannel(deploymentId), undefined, { whileDown: true }) : new InProcessFanOut();
  // Redis down at start (an outage, a rolling restart): start not ready, as if it had gone away while running.
  if (!fanout.healthy) log.warn({ fanout: 'redis' }, 'Redis does not answer: starting not ready; deliveries to and from other processes wait until it does');
  // Presence likewise: who is online on any process sharing the deployment.
  let presence: Presence;
  try {
    presence = config.redisUrl !== undefined && deploymentId !== null ? await RedisPresence.connect(config.redisUrl, presencePrefix(deploymentId), { whileDown: true }) : new InProcessPresence();
  } catch (e) {
    await fanout.close();
    throw e;
  }
  // And the failed logins (and backup fetches) per user, so N processes allow the limit, not N times it.
  let loginFailures: FailureCounter;
  try {
    loginFailures =
      config.redisUrl !== undefined && deploymentId !== null
        ? await RedisFailureWindow.connect(config.redisUrl, failuresPrefix(deploymentId), LOGIN_FAILURES_PER_USER_PER_MINUTE, undefined, { whileDown: true })
        : new FailureWindow(LOGIN_FAILURES_PER_USER_PER_MINUTE);
  } catch (e) {
    await presence.close();
    await fanout.close();
    throw e;
  }
  const hub = new Hub(storage, fanout, (n) => metrics.deliveries.inc({ protocol: 'v1' }, n), { cacheMembers: config.redisUrl === undefined });
  const v1Deps: V1Deps = {
    storage,
    hub,
    tokens: new TokenIssuer(tokenSecret, { secret: config.trustedTokenSecret ?? null, publicKey: config.trustedTokenPublicKey ?? null }, config.accessTokenTtlS),
    log: log.child({ protocol: 'v1' }),
    metrics,
    loginFailures,
    blobs: blobPolicy(config),
    presence,
    announcer: new PresenceAnnouncer(() => v1Deps),
  };
  // Users of another process that stopped without saying so go offline; this process's own come back after a lapse.
  presence.onChange((changes) => v1Deps.announcer.changed(changes));
  const blobSweeper = startBlobSweeper(storage, v1Deps.blobs, v1Deps.log);
  const v1Connections = new Set<V1Connection>();
  const deadPeers = new DeadPeers(options.v1PingIntervalMs ?? V1_PING_INTERVAL_MS);
  let ready = false;
  // While the fan-out is down, deliveries from other processes are lost to this
  // one's clients (they are stored): not ready, and once it is back every client
  // is asked to reconnect (1012), which makes it sync what it missed.
  metrics.fanoutUp.set(fanout.healthy ? 1 : 0);
  fanout.onHealth((healthy) => {
    metrics.fanoutUp.set(healthy ? 1 : 0);
    if (!healthy) {
      log.warn({ fanout: 'redis' }, 'fan-out lost its Redis connection: deliveries from other processes are missed until it is back');
      return;
    }
    log.warn({ fanout: 'redis', connections: v1Connections.size }, 'fan-out reconnected: asking every client to reconnect and sync');
    metrics.resyncs.inc({ reason: 'fanout-reconnected' }, v1Connections.size);
    for (const c of [...v1Connections]) c.close(CLOSE_V1.RESYNC, 'reconnect and sync');
  });
  // Another process's deliveries to these users never reached Redis: they missed them here too.
  fanout.onLost((users) => {
    const affected = [...v1Connections].filter((c) => users === null || (c.userId !== null && users.has(c.userId)));
    log.warn({ fanout: 'redis', users: users === null ? 'all' : users.size, connections: affected.length }, 'another process lost deliveries while cut off from Redis: asking their recipients to reconnect and sync');
    metrics.resyncs.inc({ reason: 'deliveries-lost' }, affected.length);
    for (const c of affected) c.close(CLOSE_V1.RESYNC, 'reconnect and sync');
  });
  let stopping = false;

  const wss = new WebSocketServer({ noServer: true, maxPayload: FRAME_BYTES_MAX, perMessageDeflate: false, clientTracking: false });

  const http: Server = createServer((req, res) => {
    void handleHttp(req, res);
  });

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    // HEAD as GET (Node sends no body for it).
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (read && (path === '/healthz' || path === '/health')) return send(res, 200, 'text/plain', 'ok\n');
    if (read && (path === '/readyz' || path === '/ready')) {
      const ok = ready && !stopping && fanout.healthy;
      return send(res, ok ? 200 : 503, 'text/plain', ok ? 'ready\n' : 'not ready\n');
    }
    if (read && path === '/metrics') return send(res, 200, metrics.registry.contentType, await metrics.registry.metrics());
    if (read && path === '/server-key') return send(res, 200, 'text/plain', serverPublicKeyB64 + '\n');
    send(res, 404, 'text/plain', 'not found\n');
  }

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0];
    if (stopping) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    if (path !== '/v1' && path !== '/v1/') {
      // Any other path is the tutorial protocol, as for the tutorial's reference server (its clients use `/`).
      wss.handleUpgrade(req, socket, head, (ws) => tutorial.accept(ws, clientAddress(req, config.trustProxy)));
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const c = new V1Connection(ws, v1Deps, clientAddress(req, config.trustProxy));
      v1Connections.add(c);
      deadPeers.add(ws);
      ws.once('close', () => v1Connections.delete(c));
    });
  });

  try {
    await new Promise<void>((resolveListen, reject) => {
      http.once('error', reject);
      http.listen(config.port, config.host, () => {
        http.off('error', reject);
        resolveListen();
      });
    });
  } catch (err) {
    // Nothing listens (port taken, no permission): release what was opened, then report.
    deadPeers.stop();
    await blobSweeper.stop();
    await loginFailures.close();
    await presence.close();
    await fanout.close();
    await storage.close();
    dataDir.release();
    throw err;
  }
  const port = (http.address() as AddressInfo).port;
  ready = true;
  log.info({ host: config.host, port, dataDir: config.dataDir, storage: storageKind, fanout: config.redisUrl !== undefined ? 'redis' : 'in-process', serverPublicKey: serverPublicKeyB64 }, 'parley server listening');

  async function stop(): Promise<void> {
    if (stopping) return;
    stopping = true;
    log.info({}, 'shutting down');
    // HTTP keeps answering through the grace period (/readyz: 503, /healthz: 200); new
    // WebSocket sessions are refused (503) from now on. It closes once the sockets are gone.
    tutorial.closeAll(CLOSE.GOING_AWAY, 'server shutting down');
    // Let frames already received finish (their writes are acknowledged only once durable), then close —
    // within the grace period: a sync paused for a client that reads slowly does not hold the stop.
    const deadline = Date.now() + config.shutdownGraceMs;
    let graceOver: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all([...v1Connections].map((c) => c.drain())), new Promise((r) => (graceOver = setTimeout(r, config.shutdownGraceMs)))]);
    clearTimeout(graceOver);
    for (const c of [...v1Connections]) c.close(CLOSE_V1.GOING_AWAY, 'server shutting down');
    while ((tutorial.connectedCount > 0 || v1Connections.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    http.close();
    http.closeAllConnections();
    wss.close();
    deadPeers.stop();
    await blobSweeper.stop();
    // The last offline announcements go out before the fan-out closes.
    await v1Deps.announcer.settled();
    await loginFailures.close();
    await presence.close();
    await fanout.close();
    await storage.close();
    dataDir.release();
    log.info({}, 'stopped');
  }

  return { config, port, serverPublicKey: keyPair.publicKey, log, metrics, storage, stop };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
