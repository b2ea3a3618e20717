/**
 * `parley history <user> [--search <words>] [--limit N] [--json]`: the
 * direct conversation with a user, decrypted on this machine; or, with
 * `--search`, the messages of it that contain every word (a local scan of
 * the messages this device keeps — see the SDK's search.ts).
 *
 * When the server cannot be reached, or this device was removed from its
 * account, both show what this device keeps (its sealed store holds every
 * message it decrypted), with a note that newer messages are missing: the
 * conversation is this machine's to read.
 *
 * @module
 */
import { newestFirst, searchMessages, type ChatMessage, type DecryptionFailure, type HistoryEntry, type ParleyClient } from '@parley/sdk';
import { deviceWasRemoved, openStore, serverUnreachable, withSession, type StoreOptions } from './account.ts';
import { usageError } from './cli-error.ts';
import { note, writeLines } from './output.ts';
import { checkUserId, profileDir, readConfig, resolveUser } from './profile.ts';
import { historyFailureLine, historyLine, jsonLine } from './render.ts';

export interface HistoryOptions extends StoreOptions {
  search?: string;
  limit?: number;
  json?: boolean;
}

/** Messages shown without --limit. */
export const HISTORY_LIMIT_DEFAULT = 50;
/** Most messages one `history` shows (the store keeps 10,000). */
export const HISTORY_LIMIT_MAX = 10_000;
/** Most results of one `--search` (the SDK's SEARCH_RESULTS_MAX). */
export const SEARCH_LIMIT_MAX = 1000;
/** Entries asked for per `history` request (the server's page limit). */
const PAGE = 200;

type Shown = ({ type: 'message' } & ChatMessage) | ({ type: 'undecryptable' } & DecryptionFailure);

/** The newest `limit` messages of a room (readable or not), oldest first, paging back through the log. */
export async function lastMessages(client: ParleyClient, roomId: string, limit: number): Promise<Shown[]> {
  const out: Shown[] = [];
  let before: number | undefined;
  while (out.length < limit) {
    const page: HistoryEntry[] = await client.history(roomId, { ...(before !== undefined && { before }), limit: PAGE });
    if (page.length === 0) break;
    // Membership changes and verification steps are not messages.
    const shown = page.filter((e): e is Shown => e.type === 'message' || e.type === 'undecryptable');
    out.unshift(...shown.slice(Math.max(0, shown.length - (limit - out.length))));
    const first = page[0]?.seq ?? 1;
    if (first <= 1) break;
    before = first;
  }
  return out;
}

export async function history(peerArg: string, options: HistoryOptions): Promise<void> {
  const peer = checkUserId(peerArg);
  const search = options.search;
  const limit = options.limit ?? HISTORY_LIMIT_DEFAULT;
  if (search !== undefined && limit > SEARCH_LIMIT_MAX) throw usageError(`--limit with --search is at most ${SEARCH_LIMIT_MAX}`);
  if (search !== undefined && !/[\p{L}\p{N}]/u.test(search)) throw usageError('--search needs at least one word (letters or digits)');
  let items: Shown[] | null;
  try {
    items = await withSession(options, async (s) => {
      if (peer === s.user) throw usageError(`${peer} is you: give the other user of the conversation`);
      s.ctx.peer = peer;
      // Everything that arrived while away is decrypted (and kept) first, so history and search include it.
      await s.client.synced();
      const roomId = await s.client.findDirect(peer);
      if (roomId === null) {
        // No conversation, or no such user: the key directory tells (`not_found`, explained).
        await s.client.safetyNumber(peer);
        note(`No conversation with ${peer} yet (start one with 'parley chat ${peer}').`);
        return null;
      }
      // The peer's device list as it is now, so a device added or removed since is reported here too (keysChanged).
      await s.client.safetyNumber(peer).catch(() => undefined);
      if (search === undefined) return lastMessages(s.client, roomId, limit);
      return (await s.client.search(search, { roomId, limit })).reverse().map((m) => ({ type: 'message' as const, ...m }));
    });
  } catch (e) {
    if (!serverUnreachable(e) && !deviceWasRemoved(e)) throw e;
    items = await fromStore(peer, options, search, limit, (e as Error).message);
  }
  if (items === null) return;
  if (search !== undefined && items.length === 0 && options.json !== true) note(`No message with ${peer} matches ${JSON.stringify(search)}.`);
  if (options.json === true) {
    await writeLines(items.map(jsonLine));
    return;
  }
  await writeLines(items.map((i) => (i.type === 'message' ? historyLine(i) : historyFailureLine(i))));
}

/** The server out of reach (`why`): the messages with `peer` this device keeps, as `history` shows them. */
async function fromStore(peer: string, options: HistoryOptions, search: string | undefined, limit: number, why: string): Promise<Shown[]> {
  const dir = profileDir(options);
  const user = resolveUser(options, dir, readConfig(dir));
  if (peer === user) throw usageError(`${peer} is you: give the other user of the conversation`);
  const store = await openStore(options, dir, user);
  let kept: ChatMessage[];
  try {
    kept = (store.keptMessages() ?? []).filter((m): m is ChatMessage => m.kind !== 'control' && store.directPeer(m.roomId) === peer);
  } finally {
    store.close();
  }
  note(`${why}: showing what this device keeps of the conversation with ${peer} (messages since its last connection are missing).`);
  const found = search === undefined ? kept.sort(newestFirst).slice(0, limit) : searchMessages(kept, search, limit);
  return found.reverse().map((m) => ({ type: 'message' as const, ...m }));
}
