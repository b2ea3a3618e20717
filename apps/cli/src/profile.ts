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
import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
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

/** The files SQLite may keep beside a database. */
const STORE_COMPANIONS = ['-wal', '-shm', '-journal'] as const;

/** Removes a store file and SQLite's companions (after a failed register or restore). */
export function removeStore(path: string): void {
  for (const p of [path, ...STORE_COMPANIONS.map((c) => `${path}${c}`)]) rmSync(p, { force: true });
}

/**
 * Where a new store is made before it is moved to `path`
 * (`accounts/<user>.parley.<pid>.tmp`): the store's name appears only once
 * the account is complete, so a run killed half-way leaves at most this
 * file, which no command reads and the next new store of the same account
 * removes ({@link removeStaleTempStores}).
 */
export function tempStorePath(path: string): string {
  return `${path}.${process.pid}.tmp`;
}

/** Whether a process with this id is running (one we may not signal is running). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: unknown }).code === 'EPERM';
  }
}

/**
 * Removes the temporary stores for `path` left by runs that died half-way
 * (killed, or the machine stopped): those of processes that are gone (and
 * any with this process's id, which it has not made yet). Best effort.
 */
export function removeStaleTempStores(path: string): void {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d{1,10})\.tmp(?:-wal|-shm|-journal)?$/.exec(name.slice(prefix.length));
    if (m?.[1] === undefined) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && processAlive(pid)) continue;
    rmSync(join(dir, name), { force: true });
  }
}

/**
 * Moves a closed store (and any companion SQLite left) from `from` to `to`,
 * never over an existing file: the account's store appears complete or not
 * at all.
 */
export function moveStoreIntoPlace(from: string, to: string): void {
  try {
    // Companions without their database are left from an earlier store at `to`: SQLite would read them as this one's.
    if (!existsSync(to)) for (const c of STORE_COMPANIONS) rmSync(`${to}${c}`, { force: true });
    try {
      // A hard link fails if `to` exists (a rename would replace it).
      linkSync(from, to);
      rmSync(from, { force: true });
    } catch (e) {
      if ((e as { code?: unknown }).code === 'EEXIST') throw e;
      // A file system without hard links.
      if (existsSync(to)) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
      renameSync(from, to);
    }
    // None after a clean close (it checkpoints and empties the WAL); moved along if there are.
    for (const c of STORE_COMPANIONS) if (existsSync(`${from}${c}`)) renameSync(`${from}${c}`, `${to}${c}`);
  } catch (e) {
    if ((e as { code?: unknown }).code === 'EEXIST') throw failure(`${JSON.stringify(to)} was created meanwhile (by another parley process?); this one's store is left in ${JSON.stringify(from)}`);
    throw failure(`cannot move the new store to ${JSON.stringify(to)}: ${describeFsError(e)}`);
  }
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

/**
 * The server: --server, else PARLEY_SERVER, else the account's, else
 * DEFAULT_SERVER. Checked to be a ws(s):// or http(s):// URL whose path is
 * empty or ends in /v1, without query or fragment; a trailing slash after
 * /v1 is dropped (`…/v1/` → `…/v1`), so what is used and recorded is the
 * URL the server answers the Parley protocol on.
 */
export function resolveServer(options: ProfileOptions, account: AccountConfig | undefined): string {
  const server = options.server ?? process.env['PARLEY_SERVER'] ?? account?.server ?? DEFAULT_SERVER;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw usageError(`${JSON.stringify(server)} is not a server URL (for example ws://localhost:8080 or wss://chat.example.org)`);
  }
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(url.protocol)) {
    // "localhost:8080" parses as the scheme "localhost:": show what was typed, and what was meant.
    throw usageError(`the server URL must start with ws://, wss://, http:// or https:// (got ${JSON.stringify(server)}; for example ws://${server.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')})`);
  }
  // A query or fragment is not sent as part of the protocol's path (and an empty "?" or "#" is kept in
  // the href): either way the server would not be reached as written.
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(url.href)) {
    throw usageError('the server URL cannot have a query (?…) or a fragment (#…): give the scheme, host, port and, behind a proxy, a path ending in /v1');
  }
  // No path means /v1; any other path but one ending in /v1 (behind a proxy prefix) is not the Parley
  // protocol (a Parley server speaks the Themis tutorial chat on every other path), and would fail confusingly.
  if (url.pathname !== '/' && url.pathname !== '' && !/\/v1\/?$/.test(url.pathname)) {
    throw usageError(`the server URL's path must be empty or end in /v1, the Parley protocol (got ${JSON.stringify(url.pathname)})`);
  }
  // Recorded as …/v1, the one spelling every Parley server (and proxy rule) takes for the Parley protocol.
  if (url.pathname.endsWith('/v1/')) {
    url.pathname = url.pathname.slice(0, -1);
    return url.href;
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
