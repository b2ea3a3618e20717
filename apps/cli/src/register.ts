/**
 * `parley register <user>` and `parley login <user>`: an account in the
 * profile, its device on the server.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { ParleyClient } from '@parley/sdk';
import { explain, newStorePassphrase, openStore, refuseArgvPassphrase, withNewStore, type StoreOptions } from './account.ts';
import { usageError } from './cli-error.ts';
import { note, writeLine } from './output.ts';
import {
  checkDeviceId,
  checkUserId,
  defaultDeviceId,
  ensureProfileDir,
  profileDir,
  readConfig,
  rememberAccount,
  resolveServer,
  storePath,
} from './profile.ts';

export interface AccountOptions extends StoreOptions {
  device?: string;
}

/** A new user with this machine as its first device: the store, the registration, the published keys. */
export async function register(userArg: string, options: AccountOptions): Promise<void> {
  refuseArgvPassphrase(options);
  const user = checkUserId(userArg);
  const device = checkDeviceId(options.device ?? defaultDeviceId());
  const dir = profileDir(options);
  readConfig(dir); // a damaged config fails now, before anything is created
  const server = resolveServer(options, undefined);
  const path = storePath(dir, user);
  if (existsSync(path)) throw usageError(`the profile ${JSON.stringify(dir)} already has an account ${user}: use 'parley login ${user}'`);
  const passphrase = await newStorePassphrase(options, user);
  ensureProfileDir(dir);
  // A failed or interrupted registration leaves nothing behind (the store appears only once the server
  // has the account), so that it can simply be run again; see withNewStore.
  const kept = (): void => rememberAccount(dir, user, { device, server });
  await withNewStore(path, passphrase, { ctx: { server, user, device, action: 'registration' }, kept }, async (store) => {
    const client = await ParleyClient.register(server, user, device, { store });
    await client.close();
  });
  await writeLine(`Registered ${user} (device ${device}) on ${server}.`);
  await writeLine(`Its keys are in ${path}, sealed under your passphrase. Next: 'parley chat <user>'; 'parley backup' keeps a key backup on the server.`);
}

/** Logs an account's device in (checking the store's passphrase and the server's acceptance) and makes it the profile's default. */
export async function login(userArg: string, options: AccountOptions): Promise<void> {
  refuseArgvPassphrase(options);
  const user = checkUserId(userArg);
  const dir = profileDir(options);
  const config = readConfig(dir);
  const account = config.accounts[user];
  const server = resolveServer(options, account);
  const store = await openStore(options, dir, user);
  const known = store.account()?.deviceId;
  // Never a guess (such as the host name): a wrong device id is only a refusal from the server, counted as a failed login.
  const given = options.device ?? known ?? account?.device;
  let device = '';
  try {
    if (given === undefined) {
      throw usageError(`${user}'s store in this profile has not logged in yet and the profile's config does not name its device: give --device <id> (the one 'parley link-device' made it for)`);
    }
    device = checkDeviceId(given);
    if (known !== undefined && known !== device) throw usageError(`${user}'s store in this profile is device ${known}, not ${device}`);
    const client = await ParleyClient.login(server, user, device, { store });
    try {
      // A device's first login (one made by link-device): peers learn of it only when it writes, so it
      // writes now — a control message in each conversation — and they encrypt to it from then on.
      if (known === undefined) {
        const rooms = await client.resetSessions();
        if (rooms > 0) note(`Announced this device in ${rooms} conversation${rooms === 1 ? '' : 's'}: the other members now encrypt to it too.`);
      }
    } catch {
      note('warning: could not announce this device in your conversations; the other members encrypt to it once it has written there');
    } finally {
      await client.close();
    }
  } catch (e) {
    throw explain(e, { server, user, device, action: 'login', firstLogin: known === undefined });
  } finally {
    store.close();
  }
  rememberAccount(dir, user, { device, server });
  await writeLine(`Logged in as ${user} (device ${device}) on ${server}.`);
}
