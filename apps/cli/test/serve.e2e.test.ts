/**
 * What `parley serve` tells a new user on stderr: where Parley clients
 * connect, where its data is, and that the public key is for Themis tutorial
 * clients; and a port already in use as one line saying what to do.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { parley, tempDir } from './_cli.ts';
import { startServer, until } from './_chat.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

describe('parley serve at start', () => {
  it('says where clients connect, where the data is, and who pins the public key', async () => {
    const server = await startServer();
    try {
      const stderr = (): string => server.stderr.join('');
      await until(() => stderr().split('\n').length > 3, 'the start-up lines');
      const lines = stderr().split('\n');
      assert.equal(lines[0], `Parley server listening on 127.0.0.1 port ${server.port}; data directory: ${server.dataDir}`);
      assert.equal(lines[1], `Parley clients connect to ws://127.0.0.1:${server.port}/v1, e.g. npx parley register <user> --server ws://127.0.0.1:${server.port}`);
      assert.equal(lines[2], `Themis tutorial clients (on /) pin the server's public key: ${server.serverPublicKeyB64} (Parley's own clients do not need it)`);
    } finally {
      await server.stop();
      server.cleanup();
    }
  });

  it('a port already in use: one line naming it and what to do, exit 1', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await parley(['serve', '--port', String(port), '--host', '127.0.0.1', '--data', tmp.path('data')]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(
        r.stderr,
        `parley: port ${port} is already in use (by another parley serve, or another program): stop that process, or choose another port with --port N (npm start -- --port N)\n`,
      );
    } finally {
      taken.close();
    }
  });
});
