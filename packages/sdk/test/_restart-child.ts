/**
 * A device in its own process, for restart.e2e.test.ts: registers on a
 * SqliteClientStore file, starts a direct room, sends a first message, then
 * sends what the parent asks for over IPC and reports once each message is
 * kept in the store's outbound queue. The parent ends it with SIGKILL: no
 * close, no checkpoint, nothing flushed on the way out.
 *
 * argv: storePath passphrase url userId peerUserId
 */
import { ParleyClient } from '../src/client.ts';
import { SqliteClientStore } from '../src/sqlite-store.ts';

type Command = { readonly t: 'send'; readonly texts: readonly string[] };
type Report = { readonly t: 'ready'; readonly roomId: string } | { readonly t: 'queued'; readonly clientIds: readonly string[] } | { readonly t: 'failed'; readonly error: string };

const [path, passphrase, url, userId, peer] = process.argv.slice(2) as [string, string, string, string, string];
const report = (r: Report): void => {
  process.send?.(r);
};

try {
  const store = await SqliteClientStore.open(path, passphrase);
  const client = await ParleyClient.register(url, userId, 'dev1', { store });
  const roomId = await client.startDirect(peer);
  await client.send(roomId, 'from the first process'); // also fills the member and device caches, so sending works offline
  process.on('message', (m: Command) => {
    for (const text of m.texts) client.send(roomId, text).catch(() => undefined); // never settles: the process is killed first
    const poll = setInterval(() => {
      const q = store.queuedMessages();
      if (q.length >= m.texts.length) {
        clearInterval(poll);
        report({ t: 'queued', clientIds: q.map((x) => x.clientId) });
      }
    }, 10);
  });
  report({ t: 'ready', roomId });
} catch (e) {
  report({ t: 'failed', error: e instanceof Error ? e.message : String(e) });
}
