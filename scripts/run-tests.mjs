#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/test/**/*.test.js) with
// node's built-in test runner. `--pure` forces the pure-JS (@noble) crypto
// backend through the `parley-pure` export condition, so the whole suite
// proves both backends. `--only <substring>` filters files.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const pure = args.includes('--pure');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined;

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = [];
// The pure-JS backend only changes code running in the test process itself;
// server tests drive separate server processes, so --pure runs the crypto suites (themis, protocol).
for (const root of pure ? ['packages/themis', 'packages/protocol'] : ['packages', 'apps']) {
  if (!existsSync(root)) continue;
  const pkgs = root.includes('/') ? [''] : readdirSync(root);
  for (const pkg of pkgs) {
    const t = join(root, pkg, 'dist', 'test');
    if (existsSync(t)) walk(t, files);
  }
}
const selected = files.filter((f) => !only || f.includes(only)).sort();
if (selected.length === 0) {
  console.error('no test files found; run `npm run build` first');
  process.exit(1);
}
const nodeArgs = [...(pure ? ['--conditions=parley-pure'] : []), '--test', '--test-reporter=spec', ...selected];
console.log(`# backend: ${pure ? 'noble (pure JS, forced)' : 'default (node:crypto)'}; ${selected.length} files`);
const r = spawnSync(process.execPath, nodeArgs, { stdio: 'inherit', env: { ...process.env, PARLEY_EXPECT_BACKEND: pure ? 'noble' : 'node' } });
process.exit(r.status ?? 1);
