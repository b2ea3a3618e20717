// Preloaded (node --expose-gc --import) into BOTH servers of
// bench/server.bench.mjs, the bare `ws` baseline and `parley serve`, so the
// idle-memory samples of both are taken after a full GC: on SIGUSR2 it runs
// gc() twice and writes process.memoryUsage() as JSON to $BENCH_GC_FILE.
// It adds nothing else to either process.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_GC_FILE;
if (file && typeof globalThis.gc === 'function') {
  process.on('SIGUSR2', () => {
    globalThis.gc();
    globalThis.gc();
    writeFileSync(file, JSON.stringify({ ...process.memoryUsage(), at: Date.now() }));
  });
}
