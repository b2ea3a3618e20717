/**
 * Crash durability of the SQLite backend: a child process appends to a
 * room and acknowledges each entry on stdout once its promise resolved; we
 * SIGKILL it mid-stream, reopen the store, and require every acknowledged
 * entry to be there, intact, with the log still gap-free. Three rounds on
 * the same store, so recovery is followed by more appends and another kill.
 */
import { deepStrictEqual, equal, ok } from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { STORAGE_PAGE_MAX, type RoomEntry } from '../src/storage/types.ts';

const CHILD = fileURLToPath(new URL('./_sqlite-append-child.js', import.meta.url));

/** Runs the child until it has acknowledged `acks` entries, then SIGKILLs it. Returns the acknowledged seqs. */
function appendThenKill(dir: string, acks: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let buffered = '';
    let stderr = '';
    let killed = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) acked.push(Number(line));
      if (!killed && acked.length >= acks) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`child exited on its own (code ${String(code)}): ${stderr}`));
    });
  });
}

async function readAll(s: SqliteStorage): Promise<RoomEntry[]> {
  const all: RoomEntry[] = [];
  for (;;) {
    const page = await s.readAfter('r', all.at(-1)?.seq ?? 0, STORAGE_PAGE_MAX);
    if (page.length === 0) return all;
    all.push(...page);
  }
}

test('sqlite: every acknowledged append survives SIGKILL', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-crash-'));
  try {
    const acknowledged: number[] = [];
    for (const acks of [150, 60, 300]) {
      const got = await appendThenKill(dir, acks);
      ok(got.length >= acks, `child acknowledged ${got.length} of ${acks}`);
      acknowledged.push(...got);

      const s = new SqliteStorage(dir);
      await s.migrate();
      const entries = await readAll(s);
      const last = await s.lastSeq('r');
      await s.close();
      // Gap-free from 1, and lastSeq agrees with the log.
      deepStrictEqual(entries.map((e) => e.seq), Array.from({ length: last }, (_, i) => i + 1));
      // Every acknowledged seq is present with the content the child wrote.
      const dec = new TextDecoder();
      for (const seq of acknowledged) {
        const e = entries[seq - 1];
        equal(e?.clientId, `c${seq}`);
        equal(dec.decode(e.body), `body ${seq}`);
      }
      ok(last >= Math.max(...acknowledged));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
