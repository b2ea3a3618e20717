/**
 * Health, readiness and shutdown as an orchestrator sees them, against a
 * real server process: HEAD answers as GET; through the shutdown grace
 * period /readyz says 503, /healthz 200, and new WebSocket sessions are
 * refused; a sync paused for a client that stopped reading does not hold
 * the stop; the demo-key warning reaches stderr whatever the log level.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { startServerProcess } from './_server-process.ts';
import { b64, loggedIn, registered } from './_v1-client.ts';
import { BODY_BYTES_MAX, MESSAGES_PER_SECOND, SYNC_DRAIN_TIMEOUT_MS } from '../src/limits.ts';

const CLI = fileURLToPath(new URL('../../../../apps/cli/dist/src/main.js', import.meta.url));

/** A raw WebSocket upgrade on `path`: the status line of the answer, and the socket (left open, never answering a close). */
function upgrade(port: number, path: string): Promise<{ status: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    socket.once('data', (chunk: Buffer) => resolve({ status: chunk.toString('latin1').split('\r\n')[0] ?? '', socket }));
    socket.once('error', reject);
  });
}

describe('health and shutdown', () => {
  it('HEAD answers as GET; during the grace period /readyz is 503, /healthz 200, and new sessions are refused', async () => {
    // A long grace period, so that every step below fits in it however slow this machine; the test does not
    // wait it out: destroying the stubborn socket (the last connection) ends it, and the process exits then.
    const server = await startServerProcess([], { env: { PARLEY_SHUTDOWN_GRACE_MS: '20000' } });
    const base = `http://127.0.0.1:${server.port}`;
    try {
      for (const path of ['/healthz', '/readyz', '/metrics', '/server-key']) {
        const head = await fetch(base + path, { method: 'HEAD' });
        assert.equal(head.status, 200, `HEAD ${path}`);
        assert.equal((await head.text()).length, 0);
      }
      // A peer that never answers the close frame keeps the server in its grace period.
      const stubborn = await upgrade(server.port, '/v1');
      assert.match(stubborn.status, / 101 /);
      server.child.kill('SIGTERM');
      let ready = 200;
      const readyDeadline = Date.now() + 10_000;
      while (ready === 200 && Date.now() < readyDeadline) {
        ready = (await fetch(`${base}/readyz`)).status;
        if (ready === 200) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(ready, 503, '/readyz while shutting down');
      assert.equal((await fetch(`${base}/healthz`)).status, 200, '/healthz while the process runs');
      const late = await upgrade(server.port, '/v1');
      assert.match(late.status, / 503 /, 'no new session');
      late.socket.destroy();
      assert.equal(server.child.exitCode, null, 'still in its grace period');
      const destroyedAt = Date.now();
      stubborn.socket.destroy();
      assert.equal(await server.exited, 0);
      assert.ok(Date.now() - destroyedAt < 15_000, 'the process exits once its last connection is gone, not at the end of the grace period');
    } finally {
      server.cleanup();
    }
  });

  it('a sync paused for a client that stopped reading does not hold the stop past the grace period', async () => {
    const server = await startServerProcess([], { env: { PARLEY_SHUTDOWN_GRACE_MS: '1000' } });
    const url = `ws://127.0.0.1:${server.port}/v1`;
    try {
      const owner = await registered(url, 'sync-staller');
      const room = (await owner.client.createRoom('group', [])).room as { roomId: string };
      // About 13 MB of entries: far more than the kernel's socket buffers hold, so the sync pauses.
      const body = b64(new Uint8Array(BODY_BYTES_MAX).fill(1));
      const publishers = await Promise.all([1, 2, 3].map((i) => loggedIn(url, 'sync-staller', 'dev1', `publisher ${i}`)));
      await Promise.all(publishers.map((p, i) => Promise.all(Array.from({ length: MESSAGES_PER_SECOND }, (_, k) => p.client.publish(room.roomId, `m${i}-${k}`, body)))));
      for (const p of [owner, ...publishers]) p.client.close();
      const reader = await loggedIn(url, 'sync-staller', 'dev1', 'stalled reader');
      (reader.client.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      reader.client.sendRaw(JSON.stringify({ t: 'sync', id: 's', rooms: {} }));
      await new Promise((r) => setTimeout(r, 500));
      const stoppedAt = Date.now();
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
      // Before, the stop waited for the paused sync: SYNC_DRAIN_TIMEOUT_MS (30 s) and more.
      assert.ok(Date.now() - stoppedAt < SYNC_DRAIN_TIMEOUT_MS, `stopped after ${Date.now() - stoppedAt} ms`);
      reader.client.ws.terminate();
    } finally {
      server.cleanup();
    }
  });

  it('--tutorial-demo-key warns on stderr even with --log-level error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-demo-'));
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--data', dir, '--tutorial-demo-key', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let stderr = '';
      let stdout = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (c: Buffer) => {
          stderr += c.toString();
          if (stderr.includes('never in production')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
        setTimeout(() => reject(new Error(`no warning on stderr within 20 s: ${stderr}`)), 20_000).unref();
      });
      assert.match(stderr, /WARNING: this server uses the Themis tutorial's PUBLISHED demo key pair/);
      assert.equal(stdout.includes('"level":40'), false, 'the log itself stays at error level');
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
