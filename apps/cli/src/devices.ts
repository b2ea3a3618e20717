/**
 * A second device for an account: `parley link-device <user>` on the new
 * machine makes its keys and prints a link request; `parley add-device
 * <request>` on a machine that already has the account adds it; then
 * `parley login <user>` on the new machine.
 *
 * The request carries the new device's identity key and its signature over
 * the user and device id (proof that the key is held), nothing secret. It
 * travels however the user carries it (copy and paste, a file): whoever
 * could swap it on the way could add a device of their own, so both
 * commands print the key's fingerprint for the user to compare.
 *
 * ```
 * parley-link-v1:<base64url of UTF-8 JSON {"u": user, "d": device, "k": key (base64), "s": signature (base64)}>
 * ```
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { keyBackupDeviceId, ParleyClient, type DeviceLinkRequest } from '@parley/sdk';
import { newStorePassphrase, openStore, refuseArgvPassphrase, withNewStore, withSession, type StoreOptions } from './account.ts';
import { failure, usageError } from './cli-error.ts';
import { decodeBase64 } from './io.ts';
import { note, writeLine } from './output.ts';
import { checkDeviceId, checkUserId, defaultDeviceId, ensureProfileDir, profileDir, readConfig, rememberAccount, removeStore, resolveServer, storePath } from './profile.ts';

const PREFIX = 'parley-link-v1:';
/** Longest request accepted (a request is about 250 characters). */
const LINK_REQUEST_CHARS_MAX = 1024;
const IDENTITY_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;

export interface LinkOptions extends StoreOptions {
  device?: string;
  /** Discard this profile's device of the account that never logged in, and make a new one. */
  replace?: boolean;
}

/** The request as one line. */
export function encodeLinkRequest(r: DeviceLinkRequest): string {
  const json = JSON.stringify({ u: r.userId, d: r.deviceId, k: Buffer.from(r.identityKey).toString('base64'), s: Buffer.from(r.signature).toString('base64') });
  return PREFIX + Buffer.from(json, 'utf8').toString('base64url');
}

/** A request line back; a usage error for anything else. */
export function decodeLinkRequest(text: string): DeviceLinkRequest {
  const line = text.trim();
  const bad = (why: string) => usageError(`not a device link request (${why}): copy the whole line 'parley link-device' printed, starting with ${PREFIX}`);
  if (line.length > LINK_REQUEST_CHARS_MAX) throw bad('too long');
  if (!line.startsWith(PREFIX)) throw bad(`no ${PREFIX} prefix`);
  const body = line.slice(PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw bad('not base64url');
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw bad('cut short or damaged');
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const { u, d, k, s } = o;
  if (typeof u !== 'string' || typeof d !== 'string' || typeof k !== 'string' || typeof s !== 'string') throw bad('fields missing');
  const identityKey = decodeBase64(k);
  const signature = decodeBase64(s);
  if (identityKey?.length !== IDENTITY_KEY_BYTES || signature?.length !== SIGNATURE_BYTES) throw bad('damaged key or signature');
  return { userId: checkUserId(u), deviceId: checkDeviceId(d), identityKey, signature };
}

/** A short, comparable fingerprint of an identity key: the first 20 bytes as hex in groups of four. */
export function keyFingerprint(identityKey: Uint8Array): string {
  const hex = Buffer.from(identityKey.subarray(0, 20)).toString('hex');
  return (hex.match(/.{4}/g) ?? []).join(' ');
}

/**
 * On the new machine: its store and keys, and the request to add it
 * (printed). Nothing is sent. Run again before the device was added (the
 * request got lost), it prints the same request from the store.
 */
export async function linkDevice(userArg: string, options: LinkOptions): Promise<void> {
  refuseArgvPassphrase(options);
  const user = checkUserId(userArg);
  const dir = profileDir(options);
  const config = readConfig(dir);
  const server = resolveServer(options, undefined);
  const path = storePath(dir, user);
  let device: string;
  let request: DeviceLinkRequest;
  if (existsSync(path) && options.replace === true) await discardUnaddedDevice(options, dir, user, path);
  if (existsSync(path)) {
    ({ device, request } = await requestAgain(options, dir, user, config.accounts[user]?.device));
  } else {
    device = checkDeviceId(options.device ?? defaultDeviceId());
    const passphrase = await newStorePassphrase(options, user);
    ensureProfileDir(dir);
    const made = device;
    request = await withNewStore(path, passphrase, { ctx: { server, user, device, action: 'login' }, kept: () => rememberAccount(dir, user, { device: made, server }) }, (store) =>
      Promise.resolve(ParleyClient.deviceLinkRequest(store, user, made)),
    );
  }
  await writeLine(encodeLinkRequest(request));
  process.stderr.write(
    `Device ${device} of ${user} has its keys in ${path} (fingerprint ${keyFingerprint(request.identityKey)}).\n` +
      `On a machine that has ${user} already, run: parley add-device '<the line above>'\n` +
      `and check that it shows the same fingerprint. Then, here: parley login ${user}\n`,
  );
}

/**
 * The link request of a store `link-device` made whose device has never
 * logged in (not added yet, most likely: its request was lost); anything
 * else already in the profile is refused.
 */
async function requestAgain(options: LinkOptions, dir: string, user: string, recorded: string | undefined): Promise<{ device: string; request: DeviceLinkRequest }> {
  const store = await openStore(options, dir, user);
  try {
    if (store.account() !== null || recorded === undefined) {
      throw usageError(`the profile ${JSON.stringify(dir)} already has an account ${user}: use 'parley login ${user}' (or another --profile for a new device)`);
    }
    if (options.device !== undefined && checkDeviceId(options.device) !== recorded) {
      throw usageError(
        `the profile ${JSON.stringify(dir)} holds device ${recorded} of ${user}, not yet added: run 'parley link-device ${user}' for its request, ` +
          `or 'parley link-device ${user} --device ${options.device} --replace' to discard it and make device ${options.device} instead`,
      );
    }
    note(`Device ${recorded} of ${user} has not logged in yet (it must be added first): its link request again.`);
    return { device: recorded, request: ParleyClient.deviceLinkRequest(store, user, recorded) };
  } finally {
    store.close();
  }
}

/**
 * `--replace`: the profile's store of the account holds a device that never
 * logged in (its link request was never used, or named the wrong id):
 * checked with the passphrase, then removed, so a new one can be made.
 * A device that did log in is never discarded here (remove-device is for that).
 */
async function discardUnaddedDevice(options: LinkOptions, dir: string, user: string, path: string): Promise<void> {
  const store = await openStore(options, dir, user);
  let loggedIn: boolean;
  try {
    loggedIn = store.account() !== null;
  } finally {
    store.close();
  }
  if (loggedIn) throw usageError(`the profile ${JSON.stringify(dir)} has an account ${user} that logged in: --replace only discards a device not yet added (use 'parley remove-device' for one that was)`);
  removeStore(path);
  note(`Discarded the device of ${user} in this profile that had not logged in (if another device added it meanwhile, remove it there: parley remove-device <id>).`);
}

/** On a device of the account: add the device a link request names. */
export async function addDevice(requestText: string, options: StoreOptions): Promise<void> {
  const request = decodeLinkRequest(requestText);
  await withSession(options, async (s) => {
    if (request.userId !== s.user) throw usageError(`the request is for ${request.userId}, and this is ${s.user}: add it from one of ${request.userId}'s devices`);
    if (request.deviceId === s.device) throw usageError(`this device is ${s.device} already: on the new machine, make the request again under another id (parley link-device ${request.userId} --device <id> --replace)`);
    try {
      await s.client.addDevice(request);
    } catch (e) {
      if (e instanceof Error && 'serverCode' in e && e.serverCode === 'conflict') {
        throw failure(`${s.user} already has a device ${request.deviceId}, or had one that was removed (ids are never given to another key): link the new device under another id (parley link-device ${s.user} --device <id>, in a new --profile)`);
      }
      throw e;
    }
    await writeLine(`Added device ${request.deviceId} to ${s.user} (fingerprint ${keyFingerprint(request.identityKey)}: compare it with the one the new device showed).`);
  });
}

/** The account's devices as the server lists them, with key fingerprints; this one marked. */
export async function listDevices(options: StoreOptions): Promise<void> {
  await withSession(options, async (s) => {
    for (const d of await s.client.ownDevices()) {
      await writeLine(`${d.deviceId}\t${keyFingerprint(d.identityKey)}${d.deviceId === s.device ? '\t(this device)' : ''}`);
    }
  });
}

/**
 * Remove a device of the account — a lost or stolen one, or this one. The
 * server deletes it, with its keys and tokens, and ends its sessions;
 * peers stop encrypting to it. This device's store stays on disk either way.
 */
export async function removeDevice(deviceArg: string, options: StoreOptions & { yes?: boolean }): Promise<void> {
  const device = checkDeviceId(deviceArg);
  await withSession(options, async (s) => {
    if (device === s.device && options.yes !== true) {
      throw usageError(`${device} is the device you are on: removing it cannot be undone (it will never log in again). Add --yes to remove it.`);
    }
    let listed;
    try {
      listed = await s.client.removeDevice(device);
    } catch (e) {
      if (e instanceof Error && 'serverCode' in e && e.serverCode === 'conflict') throw failure(`${device} is ${s.user}'s last device: an account keeps at least one`);
      throw e;
    }
    if (listed === null) throw failure(`${s.user} has no device ${device} (see 'parley devices')`);
    if (device === s.device) {
      await writeLine(`Removed this device (${device}) from ${s.user}: it cannot log in again. Its store ${storePath(s.dir, s.user)} still holds the history on this machine; delete it if you no longer want it.`);
    } else {
      await writeLine(`Removed device ${device} (fingerprint ${keyFingerprint(listed.identityKey)}) from ${s.user}: it is signed out, cannot log in again, and your peers stop encrypting to it.`);
      // The server keeps one backup per user: one of the device just removed restores nothing now.
      if (keyBackupDeviceId((await s.client.loadKeyBackup())?.backup) === device) note(`warning: the key backup on the server was of ${device}, and restores nothing now: run 'parley backup' here.`);
    }
  });
}

/** End every session of the account but this one: copies of tokens stop working; the account's devices log in again with their keys. */
export async function signOutEverywhere(options: StoreOptions): Promise<void> {
  await withSession(options, async (s) => {
    await s.client.signOutEverywhere();
    await writeLine(`Signed ${s.user} out everywhere: every token issued before no longer works, and the other devices log in again with their own keys.`);
  });
}
