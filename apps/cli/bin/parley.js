#!/usr/bin/env node
// The `parley` command as npm links it. Committed, not built: npm links a
// package's bin only if the file exists at install time, and dist/ does not
// exist until `npm run build`. So this stays plain JavaScript and loads the
// built entry, or says how to build it.
import { existsSync } from 'node:fs';

const main = new URL('../dist/src/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('parley: the CLI is not built yet: run `npm run build` in the Parley checkout, then try again\n');
  process.exit(1);
}
await import(main.href);
