/**
 * The profile: where the chat commands keep an account between runs.
 *
 * ```
 * <profile>/                  mode 0700 (default ~/.parley, or PARLEY_HOME, or --profile)
 *   config.json               mode 0600, no secrets: { version, user, accounts: { <user>: { device, server } } }
 *   accounts/<user>.parley    mode 0600, the device's SqliteClientStore (every record sealed under the passphrase)
 * ```
 *
 * The config names who the commands act as by default (the last account
 * registered, logged in or restored) and, per account, its device id and
 * server. It holds nothing secret: keys, sessions, messages and contacts are
 * all in the sealed store. (The account's user and device ids are also
 * the store file's name and in the config, in clear: the server knows
 * them anyway.)
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { CliError, failure, usageError } from './cli-error.ts';
import { describeFsError } from './io.ts';

/** The server when neither --server, PARLEY_SERVER nor the account's config names one. */
export const DEFAULT_SERVER = 'ws://localhost:8080';

/** The server's id patterns (docs/protocol.md, "Framing"). */
export const USER_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;

const CONFIG_VERSION = 1;
/** Longest config file read (it holds a few ids per account). */
const CONFIG_BYTES_MAX = 1024 * 1024;
/** Longest device id made from the host name (room left for a suffix). */
const HOST_DEVICE_ID_MAX = 40;

export interface AccountConfig {
  device: string;
  server: string;
}

export interface ProfileConfig {
  version: typeof CONFIG_VERSION;
  /** Who the commands act as without --user. */
  user?: string;
  accounts: Record<string, AccountConfig>;
}

/** What every chat command accepts about where and who. */
export interface ProfileOptions {
  profile?: string;
  server?: string;
  user?: string;
}

export function checkUserId(userId: string, what = 'user'): string {
  if (!USER_ID.test(userId)) throw usageError(`${JSON.stringify(userId)} is not a valid ${what} id (lower-case letters, digits, '.', '_', '-'; up to 64, starting with a letter or digit)`);
  return userId;
}

export function checkDeviceId(deviceId: string): string {
  if (!DEVICE_ID.test(deviceId)) throw usageError(`${JSON.stringify(deviceId)} is not a valid device id (letters, digits, '_', '-'; 1 to 64)`);
  return deviceId;
}

/** The profile directory: --profile, else PARLEY_HOME, else ~/.parley (absolute). */
export function profileDir(options: ProfileOptions): string {
  const dir = options.profile ?? process.env['PARLEY_HOME'] ?? join(homedir(), '.parley');
  if (dir === '') throw usageError('the profile directory is empty (--profile or PARLEY_HOME)');
  return resolve(dir);
}

/** Creates the profile directory (0700) and its accounts directory, if needed. */
export function ensureProfileDir(dir: string): void {
  for (const d of [dir, join(dir, 'accounts')]) {
    try {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      if (!statSync(d).isDirectory()) throw usageError(`the profile ${JSON.stringify(d)} is not a directory`);
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw usageError(`cannot create the profile directory ${JSON.stringify(d)}: ${describeFsError(e)}`);
    }
  }
}

/** Where an account's sealed store lives. */
export function storePath(dir: string, userId: string): string {
  return join(dir, 'accounts', `${userId}.parley`);
}

/** Removes a store file and SQLite's companions (after a failed register or restore). */
export function removeStore(path: string): void {
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) rmSync(p, { force: true });
}

/** Creates an empty store file with mode 0600, so that SQLite (and its WAL) never make it readable by others. */
export function createPrivateFile(path: string): void {
  try {
    writeFileSync(path, new Uint8Array(0), { flag: 'wx', mode: 0o600 });
  } catch (e) {
    throw failure(`cannot create ${JSON.stringify(path)}: ${describeFsError(e)}`);
  }
}

function configPath(dir: string): string {
  return join(dir, 'config.json');
}

/** The profile's config; an empty one when there is none yet. A damaged file is refused, not overwritten. */
export function readConfig(dir: string): ProfileConfig {
  const path = configPath(dir);
  if (!existsSync(path)) return { version: CONFIG_VERSION, accounts: {} };
  let text: string;
  try {
    if (statSync(path).size > CONFIG_BYTES_MAX) throw usageError(`${JSON.stringify(path)} is too large to be a Parley profile config`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw usageError(`cannot read ${JSON.stringify(path)}: ${describeFsError(e)}`);
  }
  const bad = (): never => {
    throw usageError(`${JSON.stringify(path)} is not a valid Parley profile config; fix it or move it away`);
  };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return bad();
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad();
  const o = v as Record<string, unknown>;
  if (o['version'] !== CONFIG_VERSION) return bad();
  const accounts: Record<string, AccountConfig> = {};
  const raw = o['accounts'];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad();
  for (const [user, a] of Object.entries(raw as Record<string, unknown>)) {
    if (!USER_ID.test(user) || typeof a !== 'object' || a === null) return bad();
    const { device, server } = a as Record<string, unknown>;
    if (typeof device !== 'string' || !DEVICE_ID.test(device) || typeof server !== 'string') return bad();
    accounts[user] = { device, server };
  }
  const user = o['user'];
  if (user !== undefined && (typeof user !== 'string' || !USER_ID.test(user))) return bad();
  return { version: CONFIG_VERSION, ...(user !== undefined && { user }), accounts };
}

/** Writes the config atomically (a temporary file renamed over it), mode 0600. */
export function writeConfig(dir: string, config: ProfileConfig): void {
  const path = configPath(dir);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw failure(`cannot write ${JSON.stringify(path)}: ${describeFsError(e)}`);
  }
}

/** Records an account (and makes it the default one). */
export function rememberAccount(dir: string, userId: string, account: AccountConfig): void {
  const config = readConfig(dir);
  config.accounts[userId] = account;
  config.user = userId;
  writeConfig(dir, config);
}

/** Who to act as: --user, else PARLEY_USER, else the profile's default account. */
export function resolveUser(options: ProfileOptions, dir: string, config: ProfileConfig): string {
  const user = options.user ?? process.env['PARLEY_USER'] ?? config.user;
  if (user === undefined || user === '') {
    throw usageError(`no account in the profile ${JSON.stringify(dir)}: run 'parley register <user>' (or 'parley restore <user>'), or give --user`);
  }
  return checkUserId(user);
}

/** The server: --server, else PARLEY_SERVER, else the account's, else DEFAULT_SERVER. Checked to be a ws(s):// or http(s):// URL. */
export function resolveServer(options: ProfileOptions, account: AccountConfig | undefined): string {
  const server = options.server ?? process.env['PARLEY_SERVER'] ?? account?.server ?? DEFAULT_SERVER;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw usageError(`${JSON.stringify(server)} is not a server URL (for example ws://localhost:8080 or wss://chat.example.org)`);
  }
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(url.protocol)) throw usageError(`the server URL must start with ws://, wss://, http:// or https:// (got ${url.protocol})`);
  // No path means /v1; any other path but one ending in /v1 (behind a proxy prefix) is not the Parley
  // protocol (a Parley server speaks the Themis tutorial chat there), and would fail confusingly.
  if (url.pathname !== '/' && url.pathname !== '' && !/\/v1\/?$/.test(url.pathname)) {
    throw usageError(`the server URL's path must be empty or end in /v1, the Parley protocol (got ${JSON.stringify(url.pathname)})`);
  }
  return server;
}

/**
 * A device id for this machine: its host name, cut to the id alphabet
 * (`my.laptop` → `my-laptop`), or `cli-` and a random short id when the host
 * name gives nothing usable.
 */
export function defaultDeviceId(): string {
  const fromHost = hostname()
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, HOST_DEVICE_ID_MAX)
    .replace(/-+$/, '');
  return fromHost !== '' ? fromHost : `cli-${randomBytes(4).toString('hex')}`;
}
