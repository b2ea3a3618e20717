// Does one member's history paging hold back everyone else's acks?
//
//   node bench/history-pages.bench.mjs [<repo root>]      (default: this checkout; another build's root for an A/B)
//
// A real server (`parley serve`, pinned to CPU 0) and three registered
// users: ha fills a room with 220 entries of ~64 KiB (paced under the
// publish rate limit), then asks for pages of 200 from the start ten times
// a second (each answered page awaited); meanwhile hb publishes 100 small
// messages to another room, one every 50 ms, and the time to each ack is
// the result. Before HISTORY_PAGE_BYTES_MAX a page was ~17 MB read and
// serialised in one turn (bench/SERVER-RESULTS.md, "2026-11-24 room_log").
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
const root = process.argv[2] ?? join(import.meta.dirname, '..');
const { register } = await import(join(root, 'bench/_server-parley.mjs'));
const dir = mkdtempSync(join(tmpdir(), 'hp-'));
const proc = spawn('taskset', ['-c', '0', process.execPath, join(root, 'apps/cli/dist/src/main.js'), 'serve', '--port', '0', '--host', '127.0.0.1', '--data', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
const port = await new Promise((res) => { let e = ''; proc.stderr.on('data', (d) => { e += d; const m = /\bport (\d+)/.exec(e); if (m) res(Number(m[1])); }); });
const a = await register(port, 'ha'); const b = await register(port, 'hb');
const r = await a.request({ t: 'room.create', kind: 'group', members: ['hb'] });
const roomId = r.room.roomId;
const big = randomBytes(64 * 1024 - 16).toString('base64');
for (let i = 0; i < 220; i++) { await a.request({ t: 'publish', roomId, clientId: `big-${i}`, body: big }, { timeoutMs: 60000 }); await new Promise((res) => setTimeout(res, 30)); }
const other = await register(port, 'hc'); const r2 = await other.request({ t: 'room.create', kind: 'group', members: ['hb'] });
const acks = []; let stop = false; let pages = 0, bytes = 0;
const hist = (async () => { while (!stop) { const t = performance.now(); const h = await a.request({ t: 'history', roomId, after: 0, limit: 200 }, { timeoutMs: 60000 }); pages++; bytes += h.entries.length; await new Promise((res) => setTimeout(res, Math.max(0, 100 - (performance.now() - t)))); } })();
const small = randomBytes(100).toString('base64');
for (let i = 0; i < 100; i++) { const t = performance.now(); await b.request({ t: 'publish', roomId: r2.room.roomId, clientId: `s-${i}`, body: small }); acks.push(performance.now() - t); await new Promise((res) => setTimeout(res, 50)); }
stop = true; await hist;
acks.sort((x, y) => x - y);
console.log(`${root}: bystander ack median ${acks[50].toFixed(1)} ms, p90 ${acks[90].toFixed(1)}, worst ${acks[99].toFixed(1)}; ${pages} history pages, ${(bytes / pages).toFixed(0)} entries per page`);
const exited = new Promise((res) => proc.once('exit', res));
proc.kill('SIGTERM');
await exited;
rmSync(dir, { recursive: true, force: true });
process.exit(0);
