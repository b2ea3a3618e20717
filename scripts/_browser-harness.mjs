// What the browser checks (scripts/browser-test.mjs, scripts/browser-sdk-test.mjs)
// share: a list of named checks printed as they pass or fail, a watchdog,
// clean-ups that run whatever happens, a Vite build of one page, a static
// server for the bundle, and Debian's Chromium — never a downloaded browser.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** One line for an error: name and message, whitespace folded, cut (never a wasm-themis dump). */
export function short(e, max = 400) {
  const s = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return s.replace(/\s+/g, ' ').slice(0, max);
}

export function assert(cond, what) {
  if (!cond) throw new Error(what);
}

/**
 * A run of named checks. `step` runs one (a throw is a failed check with a
 * short message); with `stopAfterFailure`, the steps after a failed one are
 * recorded as skipped (for flows where each step needs the previous one).
 */
export function checks(title, { deadlineMs, stopAfterFailure = false }) {
  const results = [];
  const cleanups = [];
  let broken = false;
  const record = (section, name, ok, detail = '') => {
    results.push({ section, name, ok, detail });
    console.log(`${ok ? 'ok  ' : 'FAIL'} [${section}] ${name}${detail ? ` — ${detail}` : ''}`);
  };
  const step = async (section, name, fn) => {
    if (broken) {
      record(section, name, false, 'skipped: an earlier step failed');
      return undefined;
    }
    try {
      const detail = await fn();
      record(section, name, true, typeof detail === 'string' ? detail : '');
      return detail ?? true;
    } catch (e) {
      record(section, name, false, short(e));
      if (stopAfterFailure) broken = true;
      return undefined;
    }
  };
  /** Runs `main`, then the clean-ups (last added first), prints the summary and exits 0 or 1. */
  const run = async (main) => {
    const started = Date.now();
    const watchdog = setTimeout(() => {
      console.error(`${title}: gave up after ${deadlineMs / 1000} s`);
      process.exit(1);
    }, deadlineMs);
    try {
      await main();
    } catch (e) {
      record('harness', 'unexpected error', false, short(e));
    } finally {
      for (const f of cleanups.reverse()) {
        try {
          await f();
        } catch {
          // best effort
        }
      }
      clearTimeout(watchdog);
    }
    const failed = results.filter((r) => !r.ok);
    console.log(`\n# ${title}: ${results.length - failed.length}/${results.length} checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (failed.length > 0) {
      console.log('# FAILED:');
      for (const r of failed) console.log(`#   [${r.section}] ${r.name}${r.detail ? ` — ${r.detail}` : ''}`);
    }
    process.exit(failed.length > 0 ? 1 : 0);
  };
  return { results, cleanups, record, step, run, get broken() { return broken; } };
}

/**
 * Vite's programmatic build of one page (`page.js` in `outDir`), no config
 * file. Returns the output chunks, every module id Rollup saw (stubs and
 * externals included) and the build warnings.
 */
export async function viteBundle({ root, page, outDir, tmp, plugins = [] }) {
  const { build } = await import('vite');
  let graph = [];
  const warnings = [];
  const res = await build({
    configFile: false,
    envDir: false,
    root,
    cacheDir: join(tmp, 'vite-cache'),
    publicDir: false,
    logLevel: 'warn',
    mode: 'production',
    plugins: [
      ...plugins,
      {
        name: 'module-graph',
        buildEnd() {
          graph = [...this.getModuleIds()];
        },
      },
    ],
    build: {
      outDir,
      emptyOutDir: true,
      write: true,
      reportCompressedSize: false,
      rollupOptions: {
        input: page,
        onwarn: (w, warn) => {
          warnings.push(w.message);
          warn(w);
        },
        output: { entryFileNames: 'page.js', chunkFileNames: '[name]-[hash].js' },
      },
    },
  });
  const chunks = (Array.isArray(res) ? res : [res]).flatMap((r) => r.output).filter((o) => o.type === 'chunk');
  return { chunks, graph: [...new Set([...graph, ...chunks.flatMap((c) => Object.keys(c.modules))])], warnings };
}

/** Serves `dir` (and a page that loads `/page.js`) on a free port of 127.0.0.1; closed by a clean-up. */
export async function serveBundle(dir, title, cleanups) {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };
  const html = `<!doctype html><meta charset="utf-8"><title>${title}</title><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>`;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/' || path === '/index.html') return void res.writeHead(200, { 'content-type': types['.html'] }).end(html);
    const file = resolve(dir, `.${path}`);
    if (!file.startsWith(dir + sep) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  cleanups.push(() => new Promise((ok) => server.close(ok)));
  return `http://127.0.0.1:${server.address().port}/`;
}

/**
 * Whether Debian's Chromium is there. Without it the browser part is a
 * failed check under CI=true, else skipped with a warning.
 */
export function chromiumPresent(record) {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') record('browser', `${CHROMIUM} exists`, false, 'Chromium is missing under CI=true (.ci/run installs the Debian package `chromium`)');
  else console.warn(`WARNING: ${CHROMIUM} not found: skipping the in-browser run (install Debian's \`chromium\`; no browser is ever downloaded)`);
  return false;
}

/** Debian's Chromium with a fresh profile, closed by a clean-up. */
export async function launchChromium(userDataDir, cleanups) {
  const { chromium } = await import('playwright-core');
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  cleanups.push(() => context.close());
  return context;
}
