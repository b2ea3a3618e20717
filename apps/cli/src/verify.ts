/**
 * `parley verify <user>`: the safety number of you and another user, over
 * every device's identity key of both as the server's key directory lists
 * them, to compare with the other user's out of band.
 *
 * @module
 */
import type { SafetyNumberDevice } from '@parley/sdk';
import { withSession, type StoreOptions } from './account.ts';
import { usageError } from './cli-error.ts';
import { note, writeLines } from './output.ts';
import { checkUserId } from './profile.ts';

function devices(userId: string, list: readonly SafetyNumberDevice[]): string {
  return `${userId}: ${list.length} device${list.length === 1 ? '' : 's'} (${list.map((d) => d.deviceId).join(', ')})`;
}

export async function verify(peerArg: string, options: StoreOptions): Promise<void> {
  const peer = checkUserId(peerArg);
  await withSession(options, async (s) => {
    if (peer === s.user) throw usageError(`${peer} is you: give the user to verify`);
    s.ctx.peer = peer;
    const r = await s.client.safetyNumber(peer);
    const groups = r.formatted.split(' ');
    const rows = [0, 4, 8].map((i) => `    ${groups.slice(i, i + 4).join(' ')}`);
    await writeLines([
      `Safety number of ${s.user} and ${peer}:`,
      '',
      ...rows,
      '',
      devices(r.local.userId, r.local.devices),
      devices(r.remote.userId, r.remote.devices),
    ]);
    note(
      `Compare it with the number '${'parley verify ' + s.user}' shows ${peer}, in person or over a channel you trust. ` +
        'The same number on both sides means no one substituted keys; it changes whenever either of you adds, removes or restores a device.',
    );
    for (const d of [...r.local.devices.map((x) => ({ user: r.local.userId, d: x })), ...r.remote.devices.map((x) => ({ user: r.remote.userId, d: x }))]) {
      if (!d.d.trusted) {
        note(
          `warning: the key directory lists a different identity key for ${d.user}/${d.d.deviceId} than the one this device trusted at first contact; messages to and from it are refused. Compare safety numbers before anything else.`,
        );
      }
    }
  });
}
