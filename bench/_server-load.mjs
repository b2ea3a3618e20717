// The load generator of bench/server.bench.mjs. Runs as its own process
// (pinned to the CPU the server is not on); gets its job as JSON in argv[2]
// and answers with one IPC message. Jobs:
//
//   setup  – populate a Parley data directory through the protocol
//   room   – C members in one room: closed loop (`inFlight` messages) or a
//            fixed publish rate; every delivery to every member is counted
//   pairs  – N two-member rooms, both members publishing, closed loop
//   idle   – open N idle connections in batches, sample server memory
//
// Every client is a raw WebSocket (_server-wire.mjs). For Parley each one
// is a real v1 member: hello + auth with an access token, then it reads and
// classifies frames by their first bytes (`{"t":"msg"…` with the seq at a
// fixed offset, `{"t":"ack"…` parsed as JSON). For the bare server the
// message number is in the first 4 bytes of the binary payload.
import { Buffer } from 'node:buffer';
import { setInterval, clearInterval } from 'node:timers';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { encodeFrame, openWs, pool } from './_server-wire.mjs';
import { authConnect, DEVICE_ID, mintToken, setupParley, userId } from './_server-parley.mjs';
import { loadBetween, procRss, snapshot } from './_server-proc.mjs';

const job = JSON.parse(argvJob());
// Client ids must be new in every run: the server deduplicates (sender device, clientId) per room.
const TAG = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x');
const log = (s) => process.stderr.write(`[load] ${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function argvJob() {
  const a = process.argv[2];
  if (!a) throw new Error('usage: _server-load.mjs <job JSON>');
  return a;
}

/** Client-side pacing under the server's per-connection limit (MESSAGES_PER_SECOND = 50, burst 50). */
const BUCKET_RATE = 45; // tokens per second per publishing connection
const BUCKET_BURST = 5;

class Buckets {
  constructor(n) {
    this.tokens = new Float64Array(n).fill(BUCKET_BURST);
    this.last = new Float64Array(n).fill(performance.now());
  }
  take(p, now) {
    let t = this.tokens[p] + ((now - this.last[p]) * BUCKET_RATE) / 1000;
    if (t > BUCKET_BURST) t = BUCKET_BURST;
    this.last[p] = now;
    if (t < 1) {
      this.tokens[p] = t;
      return false;
    }
    this.tokens[p] = t - 1;
    return true;
  }
}

const pids = () => ({ server: job.serverPid, load: process.pid, parent: process.ppid });

/** Waits until no frame arrived for `quietMs` (presence announcements after connecting, for instance). */
async function settle(lastFrameAt, quietMs = 500, maxMs = 120_000) {
  const t0 = performance.now();
  while (performance.now() - lastFrameAt() < quietMs && performance.now() - t0 < maxMs) await sleep(100);
}

function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// ------------------------------------------------------------------ connect

/** Opens `users.length` members: Parley hello+auth per user, or a bare ws to `barePath(i)`. */
async function connectAll(users, barePath) {
  const t0 = performance.now();
  const sessions = await pool(users.length, 100, async (i) => {
    if (job.server === 'parley') return authConnect(job.port, mintToken(job.secret, userId(users[i]), DEVICE_ID));
    return { ws: await openWs(job.port, barePath(i)) };
  });
  log(`connected ${users.length} clients in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return sessions;
}

// ------------------------------------------------------------------ room

async function runRoom() {
  const { roomSize: C, payload, publishers: P, inFlight: W, rate, warmup, seconds } = job;
  const parley = job.server === 'parley';
  const roomId = parley ? job.roomId : null;
  const users = Array.from({ length: C }, (_, i) => i);
  const sessions = await connectAll(users, () => `/r/room-${C}`);
  let base = 0;
  if (parley) {
    const r = await sessions[0].request({ t: 'room.list' });
    base = r.rooms.find((x) => x.roomId === roomId).lastSeq;
  }
  const CAP = 1 << 19;
  const need = C - 1; // every member but the sending connection
  const cnt = new Int32Array(CAP); // deliveries seen per message (bare: by number; parley: by seq − base − 1)
  const firstT = new Float64Array(CAP);
  const lastT = new Float64Array(CAP);
  const sendT = new Float64Array(CAP); // by message number
  const doneT = new Float64Array(CAP);
  const kOfI = new Int32Array(CAP).fill(-1); // parley: message number → seq slot (from the ack)
  const iOfK = new Int32Array(CAP).fill(-1);
  let sent = 0, completed = 0, inflight = 0, recvFrames = 0, errors = 0, firstError = null, stopping = false;
  let lastFrameAt = performance.now();
  let starvedMs = 0, starvedSince = -1;

  const body = randomBytes(payload);
  const bodyB64 = body.toString('base64');
  const prefixLen = parley ? Buffer.byteLength(`{"t":"msg","roomId":"${roomId}","seq":`) : 0;

  const complete = (i, k, now) => {
    doneT[i] = Math.max(lastT[k], now);
    completed++;
    inflight--;
    if (rate === 0) pump(now);
  };
  const onDelivered = (k, now) => {
    const n = ++cnt[k];
    if (n === 1) firstT[k] = now;
    lastT[k] = now;
    if (n === need) {
      if (!parley) complete(k, k, now);
      else if (iOfK[k] >= 0) complete(iOfK[k], k, now);
    }
  };
  const onAck = (buf, s, e, now) => {
    const f = JSON.parse(buf.toString('utf8', s, e));
    if (f.duplicate) {
      errors++;
      if (firstError === null) firstError = `duplicate ack for ${f.clientId}`;
    }
    const i = Number(f.clientId.slice(TAG.length + 1));
    const k = f.seq - base - 1;
    kOfI[i] = k;
    iOfK[k] = i;
    if (cnt[k] === need) complete(i, k, now);
  };
  const onOther = (buf, s, e) => {
    if (buf[s + 6] === 0x65 /* e: error */) {
      errors++;
      if (firstError === null) firstError = buf.toString('utf8', s, Math.min(e, s + 300));
    }
  };
  for (const sess of sessions) {
    sess.ws.onFrame = parley
      ? (op, buf, s, e, now) => {
          lastFrameAt = now;
          if (buf[s + 6] === 0x6d && buf[s + 7] === 0x73 /* "msg" */) {
            recvFrames++;
            let p = s + prefixLen, seq = 0, c;
            while ((c = buf[p++]) >= 48 && c <= 57) seq = seq * 10 + (c - 48);
            onDelivered(seq - base - 1, now);
          } else if (buf[s + 6] === 0x61 && buf[s + 7] === 0x63 /* "ack" */) onAck(buf, s, e, now);
          else onOther(buf, s, e);
        }
      : (op, buf, s, e, now) => {
          lastFrameAt = now;
          recvFrames++;
          onDelivered(buf.readUInt32BE(s), now);
        };
  }
  await settle(() => lastFrameAt);

  // Publishers: the first P members, round-robin, each paced by its own bucket.
  const buckets = new Buckets(P);
  let rr = 0;
  const takePublisher = (now) => {
    for (let n = 0; n < P; n++) {
      const p = rr;
      rr = rr + 1 === P ? 0 : rr + 1;
      if (buckets.take(p, now)) return p;
    }
    return -1;
  };
  const tmpl = Buffer.from(body);
  const send = (p, now) => {
    const i = sent++;
    sendT[i] = now;
    inflight++;
    if (parley) sessions[p].ws.sendText(`{"t":"publish","roomId":"${roomId}","clientId":"${TAG}-${i}","body":"${bodyB64}"}`);
    else {
      tmpl.writeUInt32BE(i, 0);
      sessions[p].ws.sendEncoded(encodeFrame(2, tmpl));
    }
  };
  let retry = null;
  const pump = (now) => {
    while (!stopping && inflight < W && sent < CAP) {
      const p = takePublisher(now);
      if (p < 0) {
        if (starvedSince < 0) starvedSince = now;
        if (retry === null) retry = setTimeout(() => ((retry = null), pump(performance.now())), 2);
        return;
      }
      if (starvedSince >= 0) {
        starvedMs += now - starvedSince;
        starvedSince = -1;
      }
      send(p, now);
    }
  };

  const t0 = performance.now();
  let ticker = null;
  if (rate === 0) pump(t0);
  else {
    ticker = setInterval(() => {
      const now = performance.now();
      const due = Math.floor(((now - t0) * rate) / 1000);
      while (sent < due && sent < CAP) {
        const p = takePublisher(now);
        if (p < 0) {
          starvedMs += 1;
          break;
        }
        send(p, now);
      }
    }, 1);
  }
  await sleep(warmup * 1000);
  const a = snapshot(pids());
  process.send({ event: 'window-start' });
  const starvedA = starvedMs;
  await sleep(seconds * 1000);
  const b = snapshot(pids());
  process.send({ event: 'window-end' });
  const starvedB = starvedMs;
  stopping = true;
  if (ticker) clearInterval(ticker);
  const drainT0 = performance.now();
  while (completed < sent && performance.now() - drainT0 < 20_000) await sleep(20);
  await sleep(200); // late duplicates or stray frames would show up in recvFrames

  const inWin = [], lat = [], first = [];
  let done = 0;
  for (let i = 0; i < sent; i++) {
    if (doneT[i] >= a.t && doneT[i] < b.t) done++;
    if (sendT[i] >= a.t && sendT[i] < b.t && doneT[i] > 0) {
      const k = parley ? kOfI[i] : i;
      lat.push(lastT[k] - sendT[i]);
      first.push(firstT[k] - sendT[i]);
      inWin.push(i);
    }
  }
  lat.sort((x, y) => x - y);
  first.sort((x, y) => x - y);
  const wall = (b.t - a.t) / 1000;
  for (const s of sessions) s.ws.destroy();
  return {
    msgsPerSec: done / wall,
    deliveriesPerSec: (done * need) / wall,
    recipientsPerMessage: need,
    sent,
    completed,
    lost: sent - completed,
    recvFrames,
    expectedFrames: completed * need,
    errors,
    firstError,
    publisherStarvedFraction: (starvedB - starvedA) / (wall * 1000),
    latencyMs: { samples: lat.length, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), max: lat[lat.length - 1] ?? NaN },
    firstMemberMs: { p50: percentile(first, 0.5), p99: percentile(first, 0.99) },
    load: loadBetween(a, b),
  };
}

// ------------------------------------------------------------------ pairs

async function runPairs() {
  const { pairs: N, payload, inFlight: W, warmup, seconds } = job;
  const parley = job.server === 'parley';
  const users = [];
  for (let k = 0; k < N; k++) users.push(job.pairList[k].a, job.pairList[k].b);
  const sessions = await connectAll(users, (i) => `/r/pair-${i >> 1}`);
  const n = 2 * N;
  const sent = new Int32Array(n), acked = new Int32Array(n), delivered = new Int32Array(n), done = new Int32Array(n);
  let lastFrameAt = performance.now();
  let errors = 0, firstError = null, stopping = false, inWindow = false, windowDone = 0, totalDone = 0, recvFrames = 0;
  const body = randomBytes(payload);
  const bodyB64 = body.toString('base64');
  const barePayload = encodeFrame(2, body); // same bytes every time (the bare server relays them as they are)
  const buckets = new Buckets(n);
  const starved = new Set();
  let starvedEvents = 0, sends = 0;

  const pump = (c, now) => {
    while (!stopping && sent[c] - done[c] < W) {
      if (!buckets.take(c, now)) {
        starved.add(c);
        starvedEvents++;
        return;
      }
      const m = sent[c]++;
      sends++;
      if (parley) sessions[c].ws.sendText(`{"t":"publish","roomId":"${job.pairList[c >> 1].roomId}","clientId":"${TAG}-${m}","body":"${bodyB64}"}`);
      else sessions[c].ws.sendEncoded(barePayload);
    }
  };
  const progress = (c, now) => {
    const d = parley ? Math.min(delivered[c], acked[c]) : delivered[c];
    if (d > done[c]) {
      const k = d - done[c];
      done[c] = d;
      totalDone += k;
      if (inWindow) windowDone += k;
      pump(c, now);
    }
  };
  sessions.forEach((sess, c) => {
    const partner = c ^ 1;
    sess.ws.onFrame = parley
      ? (op, buf, s, e, now) => {
          lastFrameAt = now;
          if (buf[s + 6] === 0x6d && buf[s + 7] === 0x73) {
            recvFrames++;
            delivered[partner]++;
            progress(partner, now);
          } else if (buf[s + 6] === 0x61 && buf[s + 7] === 0x63) {
            acked[c]++;
            progress(c, now);
          } else if (buf[s + 6] === 0x65) {
            errors++;
            if (firstError === null) firstError = buf.toString('utf8', s, Math.min(e, s + 300));
          }
        }
      : (op, buf, s, e, now) => {
          lastFrameAt = now;
          recvFrames++;
          delivered[partner]++;
          progress(partner, now);
        };
  });
  await settle(() => lastFrameAt);
  const retry = setInterval(() => {
    const now = performance.now();
    const list = [...starved];
    starved.clear();
    for (const c of list) pump(c, now);
  }, 2);
  const t0 = performance.now();
  for (let c = 0; c < n; c++) pump(c, t0);
  await sleep(warmup * 1000);
  const a = snapshot(pids());
  const starvedA = starvedEvents, sendsA = sends;
  inWindow = true;
  process.send({ event: 'window-start' });
  await sleep(seconds * 1000);
  inWindow = false;
  const b = snapshot(pids());
  process.send({ event: 'window-end' });
  const starvedB = starvedEvents, sendsB = sends;
  stopping = true;
  clearInterval(retry);
  const totalSent = () => sent.reduce((x, y) => x + y, 0);
  const drainT0 = performance.now();
  while (totalDone < totalSent() && performance.now() - drainT0 < 20_000) await sleep(20);
  await sleep(200);
  const wall = (b.t - a.t) / 1000;
  for (const s of sessions) s.ws.destroy();
  return {
    msgsPerSec: windowDone / wall,
    deliveriesPerSec: windowDone / wall,
    recipientsPerMessage: 1,
    sent: totalSent(),
    completed: totalDone,
    lost: totalSent() - totalDone,
    recvFrames,
    expectedFrames: totalDone,
    errors,
    firstError,
    // Share of send attempts in the window that found the client-side bucket empty.
    publisherStarvedFraction: (starvedB - starvedA) / Math.max(1, sendsB - sendsA + starvedB - starvedA),
    load: loadBetween(a, b),
  };
}

// ------------------------------------------------------------------ idle

async function memSample(lastFrameAt) {
  await settle(lastFrameAt, 500);
  const before = Date.now();
  process.kill(job.serverPid, 'SIGUSR2');
  let gc = null;
  for (let t = 0; t < 200 && gc === null; t++) {
    await sleep(50);
    try {
      if (statSync(job.gcFile).mtimeMs >= before - 5) {
        const m = JSON.parse(readFileSync(job.gcFile, 'utf8'));
        if (m.at >= before) gc = m;
      }
    } catch {
      // not written yet
    }
  }
  if (gc === null) throw new Error('the server did not answer SIGUSR2 with a GC sample (is _server-gc-hook.mjs loaded?)');
  const out = { rss: procRss(job.serverPid), heapUsed: gc.heapUsed, heapTotal: gc.heapTotal, external: gc.external, arrayBuffers: gc.arrayBuffers, rssInProcess: gc.rss };
  if (job.server === 'parley') {
    // Cross-check with what the server itself exports.
    const text = await (await globalThis.fetch(`http://127.0.0.1:${job.port}/metrics`)).text();
    const metric = (name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1]);
    out.metricsRss = metric('parley_process_resident_memory_bytes');
    out.metricsHeapUsed = metric('parley_nodejs_heap_size_used_bytes');
    out.metricsConnections = metric('parley_connections');
  }
  return out;
}

async function runIdle() {
  const { checkpoints, batch } = job;
  let lastFrameAt = performance.now();
  const all = [];
  const samples = [];
  const s0 = await memSample(() => lastFrameAt);
  samples.push({ connections: 0, ...s0 });
  let opened = 0;
  let connectSeconds = 0;
  for (const cp of checkpoints) {
    const t0 = performance.now();
    while (opened < cp) {
      const n = Math.min(batch, cp - opened);
      const got = await pool(n, n, async (j) => {
        const i = opened + j;
        if (job.server === 'parley') {
          const s = await authConnect(job.port, mintToken(job.secret, userId(i), DEVICE_ID));
          s.ws.onFrame = (op, buf, st, e, now) => (lastFrameAt = now); // presence etc.: read and drop
          return s.ws;
        }
        const ws = await openWs(job.port, '/r/idle', { noDelay: false });
        ws.onFrame = (op, buf, st, e, now) => (lastFrameAt = now);
        return ws;
      });
      all.push(...got);
      opened += n;
    }
    connectSeconds += (performance.now() - t0) / 1000;
    const closedEarly = all.filter((w) => w.closed).length;
    if (closedEarly > 0) throw new Error(`${closedEarly} idle connections were closed by the server`);
    samples.push({ connections: opened, connectRate: opened / connectSeconds, ...(await memSample(() => lastFrameAt)) });
    log(`idle: ${opened} connections, server RSS ${(samples.at(-1).rss / 1e6).toFixed(1)} MB`);
  }
  for (const w of all) w.destroy();
  return { samples };
}

// ------------------------------------------------------------------ main

let result;
if (job.mode === 'setup') result = await setupParley({ ...job, log });
else if (job.mode === 'room') result = await runRoom();
else if (job.mode === 'pairs') result = await runPairs();
else if (job.mode === 'idle') result = await runIdle();
else throw new Error(`unknown mode ${job.mode}`);
process.send(result, () => process.exit(0));
