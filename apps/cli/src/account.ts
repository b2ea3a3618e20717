/**
 * What the chat commands share: the passphrases (store and backup), opening
 * an account's sealed store (or making a new one) and logging its device in, closing both, and
 * turning the SDK's errors into one clear line.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { ParleyClient, SdkError, type ClientOptions } from '@parley/sdk';
import { SqliteClientStore } from '@parley/sdk/node';
import { CliError, failure, usageError } from './cli-error.ts';
import { note } from './output.ts';
import {
  canPrompt,
  characterCount,
  PASSPHRASE_TRIES,
  PASSPHRASE_WARN_BELOW,
  passphraseFromOptions,
  promptPassphraseAs,
  triesLeft,
  type PassphraseOptions,
} from './passphrase.ts';
import { keysChangedNotice } from './render.ts';
import {
  createPrivateFile,
  moveStoreIntoPlace,
  profileDir,
  readConfig,
  removeStaleTempStores,
  removeStore,
  resolveServer,
  resolveUser,
  storePath,
  tempStorePath,
  type ProfileOptions,
} from './profile.ts';

/** Options of every command that opens an account's store. */
export interface StoreOptions extends ProfileOptions, PassphraseOptions {
  /** Refused: a passphrase is never taken from the command line. */
  passphrase?: string | boolean;
  password?: string | boolean;
}

/** Options of the commands that also need a backup passphrase. */
export interface BackupPassphraseOptions {
  backupPassphraseEnv?: string;
  backupPassphraseFile?: string;
}

export function refuseArgvPassphrase(options: StoreOptions): void {
  if (options.passphrase !== undefined || options.password !== undefined) {
    throw usageError(
      'a passphrase is never accepted on the command line (other users can see it, e.g. with ps); use --passphrase-env VAR, --passphrase-file FILE, or type it at the prompt',
    );
  }
}

/** The store's passphrase from --passphrase-env / --passphrase-file; undefined when it is to be asked (a usage error if it cannot be). */
async function givenStorePassphrase(options: StoreOptions, userId: string): Promise<Uint8Array | undefined> {
  refuseArgvPassphrase(options);
  const given = await passphraseFromOptions(options);
  if (given === undefined && !canPrompt()) throw usageError(`no passphrase for ${userId}'s store: give --passphrase-env VAR or --passphrase-file FILE (stdin is not a terminal)`);
  return given;
}

/**
 * The passphrase of a new store of `userId`: from --passphrase-env /
 * --passphrase-file, else chosen at the terminal (typed twice; a short one
 * gets a warning). Bytes, taken as they are.
 */
export async function newStorePassphrase(options: StoreOptions, userId: string): Promise<Uint8Array> {
  const given = await givenStorePassphrase(options, userId);
  if (given !== undefined) return given;
  process.stderr.write(`Choose a passphrase for ${userId}'s store on this machine (it seals keys and messages on disk).\n`);
  const bytes = await promptPassphraseAs(`Passphrase for ${userId}`, true);
  if (characterCount(bytes) < PASSPHRASE_WARN_BELOW) {
    note(`warning: a passphrase of fewer than ${PASSPHRASE_WARN_BELOW} characters is quick to guess for whoever copies the store file; a longer one protects it better.`);
  }
  return bytes;
}

/**
 * The key backup's passphrase: from --backup-passphrase-env /
 * --backup-passphrase-file, else asked on the terminal (`choose`: a new one,
 * typed twice). As text when it is UTF-8 (the SDK NFKC-normalises it, so the
 * same characters typed on another machine open the backup), else as bytes.
 */
export async function backupPassphrase(options: BackupPassphraseOptions, choose: boolean): Promise<string | Uint8Array> {
  let bytes = await passphraseFromOptions(
    { passphraseEnv: options.backupPassphraseEnv, passphraseFile: options.backupPassphraseFile },
    { env: '--backup-passphrase-env', file: '--backup-passphrase-file' },
  );
  if (bytes === undefined) {
    if (!canPrompt()) throw usageError('no backup passphrase: give --backup-passphrase-env VAR or --backup-passphrase-file FILE (stdin is not a terminal)');
    if (choose) process.stderr.write("Choose a new passphrase for the key backup, not your store's: the server keeps the backup and can try to guess it offline.\n");
    bytes = await promptPassphraseAs(choose ? 'New backup passphrase' : 'Backup passphrase', choose);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bytes;
  }
  // The text cannot be wiped (JavaScript strings are immutable); the bytes at least are.
  bytes.fill(0);
  return text;
}

/** What a failure was about, to word its message. */
export interface FailureContext {
  server?: string;
  user?: string;
  device?: string;
  /** The other user of a conversation. */
  peer?: string;
  /** "registration", "login", … (for refusals). */
  action?: string;
  /** The store has never logged in: one `link-device` made, whose device may not have been added yet. */
  firstLogin?: boolean;
}

/** The SDK's message without its "Parley SDK: " prefix. */
function sdkMessage(e: SdkError): string {
  return e.message.replace(/^Parley SDK: /, '');
}

/**
 * An SdkError as a CliError with a message that says what to do; anything
 * else unchanged (reportError names unexpected errors briefly).
 */
export function explain(e: unknown, ctx: FailureContext): unknown {
  if (e instanceof CliError || !(e instanceof SdkError)) return e;
  const msg = sdkMessage(e);
  const serverName = ctx.server ?? 'the server';
  const at = ctx.server === undefined ? 'the server' : `the server at ${ctx.server}`;
  const who = ctx.user === undefined ? 'this account' : ctx.device === undefined ? ctx.user : `${ctx.user} (device ${ctx.device})`;
  switch (e.code) {
    case 'CLOSED':
      // OpenSSL's own words for a server that does not speak TLS are no help to a user.
      if (/cannot connect|before it opened/.test(msg) && /EPROTO|SSL routines|wrong version number/.test(msg)) {
        return failure(`cannot reach ${at}: its TLS handshake failed (a server without TLS? then use ws:// or http://)`, e);
      }
      // Every command reaches the server through here: one hint for all of them.
      if (/cannot connect|before it opened/.test(msg)) {
        return failure(`cannot reach ${at}: ${msg.replace(/^.*?: /, '')} (is 'parley serve' running there? For another server, give --server <url>)`, e);
      }
      return failure(`lost the connection to ${at} (${msg})`, e);
    case 'TIMEOUT':
      return failure(`${at} did not answer in time (${msg})`, e);
    case 'DEVICE_REMOVED':
      return failure(`${who} was removed from its account: it cannot log in again (another device of ${ctx.user ?? 'the account'} can link a new one)`, e);
    case 'BAD_PASSPHRASE':
      return failure(
        `the passphrase does not open ${ctx.user === undefined ? 'the store' : `${ctx.user}'s store`}; a forgotten one cannot be recovered: ` +
          `only 'parley restore ${ctx.user ?? '<user>'}' from a key backup (into another --profile) gets the account back`,
      );
    case 'STORE':
      if (/in use/.test(msg)) return failure(`${ctx.user === undefined ? 'the store' : `${ctx.user}'s store`} is in use by another parley process (a running chat?); close it first`);
      return failure(`${ctx.user === undefined ? 'the store' : `${ctx.user}'s store`} cannot be used: ${msg}`);
    case 'AUTH_FAILED':
      if (e.serverCode === 'conflict') return failure(`${ctx.user ?? 'this user'} already exists on ${serverName}: pick another user id (or, if it is yours, 'parley restore' it from its key backup)`);
      if (e.serverCode === 'invalid_credentials' && ctx.firstLogin === true && ctx.user !== undefined) {
        return failure(`${at} does not know ${who} (or its key): add the device first — 'parley link-device ${ctx.user}' here prints its request again; run 'parley add-device <request>' on a machine that has ${ctx.user}`);
      }
      if (e.serverCode === 'invalid_credentials') return failure(`${at} refused the ${ctx.action ?? 'login'} of ${who} (unknown user or device, or another key)`);
      if (e.serverCode === 'rate_limited') return failure('too many failed attempts for this user; wait a minute and try again');
      return failure(`${at} refused the ${ctx.action ?? 'login'}: ${msg}`);
    case 'SERVER':
      if (e.serverCode === 'not_found' && ctx.peer !== undefined) return failure(`there is no user ${ctx.peer} on ${serverName}`);
      if (e.serverCode === 'rate_limited') return failure(`${at} asks to slow down (rate limited); try again shortly`);
      return failure(`${at} refused: ${msg}`);
    case 'NO_RECIPIENTS':
      return failure(`${ctx.peer ?? 'the other user'} has no device that can receive messages yet`);
    case 'IDENTITY_CHANGED':
      return failure(`the server lists an identity key for ${ctx.peer ?? 'a device'} that differs from the one this device trusts (refused): ${msg}. Compare safety numbers ('parley verify ${ctx.peer ?? '<user>'}') in person before anything else`);
    case 'INVALID_ARGUMENT':
      return usageError(msg);
    default:
      return failure(msg);
  }
}

/** The account a store is of (null: none yet). */
type StoreAccount = ReturnType<SqliteClientStore['account']>;

/** How {@link withNewStore} makes and keeps a store. */
export interface NewStoreOptions {
  /** What failures are about (see {@link explain}). */
  ctx: FailureContext;
  /** Runs once the store is in place (records the account in the profile's config), with the account the store is of. */
  kept?: (account: StoreAccount) => void;
  /** When `fn` stopped (a failure, a signal) after the server accepted the device: what is left to do, for a note. */
  unfinished?: (account: NonNullable<StoreAccount>) => string;
}

/** Signals that end a command run from a terminal or a service manager (numbers for the exit code, 128 + n). */
const ENDING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * A new account store at `path` (sealed under `passphrase`, which is
 * wiped), handed to `fn` and closed afterwards.
 *
 * The store is made under a temporary name ({@link tempStorePath}, mode
 * 0600) and moved to `path` only at the end, so that `path` appears
 * complete or not at all. It is kept when `fn` succeeds — or, even if `fn`
 * fails or the command is interrupted (Ctrl-C, SIGTERM, SIGHUP), once the
 * server has accepted the store's device (the store then records its
 * account: a registered user must not lose its keys). Otherwise it is
 * removed, so that the command can simply be run again. A run killed
 * outright (SIGKILL, power loss) leaves at most the temporary file, which
 * nothing reads and the next new store of that account removes.
 */
export async function withNewStore<T>(path: string, passphrase: Uint8Array, options: NewStoreOptions, fn: (store: SqliteClientStore) => Promise<T>): Promise<T> {
  const tmp = tempStorePath(path);
  let store: SqliteClientStore | undefined;
  let settled = false;
  /** The server knows the device: from here on the store is worth keeping, whatever happens. */
  const accepted = (): boolean => {
    try {
      return (store?.account() ?? null) !== null;
    } catch {
      return false;
    }
  };
  /** Keeps or removes the new store, once (synchronous: it also runs on process exit). */
  const settle = (keep: boolean): StoreAccount => {
    if (settled) return null;
    settled = true;
    let account: StoreAccount = null;
    try {
      account = keep ? (store?.account() ?? null) : null;
    } catch {
      account = null;
    }
    try {
      store?.close();
    } catch {
      // Closing checkpoints; the file is consistent after every transaction anyway.
    }
    if (!keep) {
      removeStore(tmp);
      return null;
    }
    moveStoreIntoPlace(tmp, path);
    options.kept?.(account);
    return account;
  };
  /** The note for a command stopped once the device was accepted. */
  const unfinished = (account: StoreAccount): void => {
    if (account !== null && options.unfinished !== undefined) note(options.unfinished(account));
  };
  // Ended by a signal or process.exit (a signal handler below, an uncaught error): settle on the way out.
  const onExit = (): void => {
    if (settled) return;
    const keep = accepted();
    try {
      const account = settle(keep);
      note(keep ? `The server had accepted the device: the account is kept in ${path}.` : 'Nothing was kept: run the command again.');
      unfinished(account);
    } catch (e) {
      note(`parley: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    note(`parley: interrupted (${signal})`);
    process.exit(128 + (osConstants.signals[signal] ?? 0));
  };
  removeStaleTempStores(path);
  process.on('exit', onExit);
  for (const s of ENDING_SIGNALS) process.on(s, onSignal);
  try {
    createPrivateFile(tmp);
    try {
      store = await SqliteClientStore.open(tmp, passphrase);
    } finally {
      passphrase.fill(0);
    }
    const result = await fn(store);
    settle(true);
    return result;
  } catch (e) {
    const keep = accepted();
    let account: StoreAccount;
    try {
      account = settle(keep);
    } catch (moveError) {
      throw explain(moveError, options.ctx);
    }
    if (keep) note(`note: the server had accepted the device before this failure, so the account is kept in ${path}${options.ctx.user === undefined ? '' : `: 'parley login ${options.ctx.user}' uses it`}.`);
    unfinished(account);
    throw explain(e, options.ctx);
  } finally {
    for (const s of ENDING_SIGNALS) process.off(s, onSignal);
    process.off('exit', onExit);
    passphrase.fill(0);
  }
}

/** An account's store and its logged-in device. */
export interface Session {
  readonly client: ParleyClient;
  readonly store: SqliteClientStore;
  readonly dir: string;
  readonly user: string;
  readonly device: string;
  readonly server: string;
  /** The context for {@link explain}. */
  readonly ctx: FailureContext;
  /** Whether `candidate` is the passphrase that opened the store. */
  readonly isStorePassphrase: (candidate: Uint8Array) => boolean;
}

/** An open store, and whether a passphrase is the one that opened it (for a warning; the passphrase itself is not kept). */
interface OpenedStore {
  readonly store: SqliteClientStore;
  readonly isPassphrase: (candidate: Uint8Array) => boolean;
}

/** A check of whether a later passphrase equals `passphrase`, keeping only a digest of it under a key of this process. */
function passphraseCheck(passphrase: Uint8Array): (candidate: Uint8Array) => boolean {
  const key = randomBytes(32);
  const digest = (p: Uint8Array): Buffer => createHmac('sha256', key).update(p).digest();
  const kept = digest(passphrase);
  return (candidate) => timingSafeEqual(digest(candidate), kept);
}

async function openStoreChecked(options: StoreOptions, dir: string, userId: string): Promise<OpenedStore> {
  const path = storePath(dir, userId);
  if (!existsSync(path)) {
    throw usageError(`the profile ${JSON.stringify(dir)} has no account ${userId}: run 'parley register ${userId}' or 'parley restore ${userId}' (or give --profile)`);
  }
  const given = await givenStorePassphrase(options, userId);
  for (let attempt = 1; ; attempt++) {
    const passphrase = given ?? (await promptPassphraseAs(`Passphrase for ${userId}`, false));
    // Before opening: the store may wipe the passphrase it was given.
    const isPassphrase = passphraseCheck(passphrase);
    try {
      const store = await SqliteClientStore.open(path, passphrase, { mustExist: true });
      return { store, isPassphrase };
    } catch (e) {
      // At the terminal a typo is asked again; a passphrase from a variable or file would fail the same way.
      if (given === undefined && attempt < PASSPHRASE_TRIES && SdkError.is(e, 'BAD_PASSPHRASE')) {
        process.stderr.write(`That passphrase does not open ${userId}'s store; ${triesLeft(attempt)}.\n`);
        continue;
      }
      throw explain(e, { user: userId });
    } finally {
      passphrase.fill(0);
    }
  }
}

/**
 * Opens `userId`'s store (the passphrase from the options or the prompt,
 * where a wrong one is asked again) and opens the store file; the caller
 * closes it. `BAD_PASSPHRASE`, a store in use, a missing account: one clear
 * CliError.
 */
export async function openStore(options: StoreOptions, dir: string, userId: string): Promise<SqliteClientStore> {
  return (await openStoreChecked(options, dir, userId)).store;
}

/**
 * The account the options name (--user, PARLEY_USER, the profile's
 * default), its store opened and its device logged in to the server; stays
 * connected until {@link closeSession}. Listeners in `on` see everything,
 * catching up included.
 */
export async function openSession(options: StoreOptions, on: ClientOptions['on'] = {}): Promise<Session> {
  refuseArgvPassphrase(options);
  const dir = profileDir(options);
  const config = readConfig(dir);
  const user = resolveUser(options, dir, config);
  const account = config.accounts[user];
  const server = resolveServer(options, account);
  const { store, isPassphrase } = await openStoreChecked(options, dir, user);
  const device = store.account()?.deviceId ?? account?.device;
  if (device === undefined) {
    store.close();
    throw usageError(`${user}'s store has no device yet: run 'parley login ${user} --device <id>'`);
  }
  const ctx: FailureContext = { server, user, device, action: 'login', firstLogin: store.account() === null };
  // A key change is reported once (the store then knows the device): every command shows it, not only chat.
  const listeners: ClientOptions['on'] = { keysChanged: (c) => note(keysChangedNotice(c)), ...on };
  try {
    const client = await ParleyClient.login(server, user, device, { store, on: listeners });
    return { client, store, dir, user, device, server, ctx, isStorePassphrase: isPassphrase };
  } catch (e) {
    store.close();
    throw explain(e, ctx);
  }
}

/** Whether `e` (as {@link explain} made it) says the server could not be reached or did not answer. */
export function serverUnreachable(e: unknown): boolean {
  return e instanceof CliError && e.cause instanceof SdkError && (e.cause.code === 'CLOSED' || e.cause.code === 'TIMEOUT');
}

/** Whether `e` (as {@link explain} made it) says this device was removed from its account: its store is still its own to read. */
export function deviceWasRemoved(e: unknown): boolean {
  return e instanceof CliError && e.cause instanceof SdkError && e.cause.code === 'DEVICE_REMOVED';
}

/** Disconnects, then closes the store (which checkpoints it). Never throws. */
export async function closeSession(session: Session | undefined): Promise<void> {
  if (session === undefined) return;
  await session.client.close().catch(() => undefined);
  try {
    session.store.close();
  } catch {
    // Closing is best effort: the file is consistent after every transaction.
  }
}

/** Runs `fn` on an open session and always closes it; SDK errors explained. */
export async function withSession<T>(options: StoreOptions, fn: (s: Session) => Promise<T>, on?: ClientOptions['on']): Promise<T> {
  const session = await openSession(options, on);
  try {
    return await fn(session);
  } catch (e) {
    throw explain(e, session.ctx);
  } finally {
    await closeSession(session);
  }
}
