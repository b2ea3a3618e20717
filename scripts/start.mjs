#!/usr/bin/env node
// `npm start` will start the Parley server and web client (issue #4 onwards).
// Until the server exists, say so plainly instead of pretending.
console.error('Parley: the chat server is not implemented yet (tracked in issue #4).');
console.error('What exists today is @parley/themis; run `npm test` or `npm run bench`.');
process.exit(1);
