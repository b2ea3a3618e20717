/**
 * What `parley serve` tells a new user on stderr: where Parley clients
 * connect, where its data is, and that the public key is for Themis tutorial
 * clients.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startServer, until } from './_chat.ts';

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
});
