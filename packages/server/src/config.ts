/**
 * Server settings. Every setting has a flag (apps/cli) and an environment
 * variable; flags win. Documented in the README.
 *
 * @module
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parse as parseConnectionString } from 'pg-connection-string';
import { ACCESS_TOKEN_TTL_S, BLOB_RETENTION_DAYS_DEFAULT, BLOB_UPLOAD_TTL_S_DEFAULT } from './limits.ts';

export interface ServerConfig {
  /** Interface to listen on: a host name or an IP address. Env PARLEY_HOST (empty: unset). Default 0.0.0.0. */
  host: string;
  /** TCP port; 0 picks a free one. Env PARLEY_PORT, else PORT (decimal digits). Default 8080. */
  port: number;
  /** Data directory (SQLite database, server key). Env PARLEY_DATA. Default ./data. */
  dataDir: string;
  /** PostgreSQL URL; when set, PostgreSQL replaces SQLite. Env DATABASE_URL. */
  databaseUrl: string | undefined;
  /** Redis URL; when set, deliveries fan out through Redis so several processes can share rooms. Env PARLEY_REDIS_URL. */
  redisUrl: string | undefined;
  /** Use the tutorial's published demo key pair (testing only). Env PARLEY_TUTORIAL_DEMO_KEY=1. */
  tutorialDemoKey: boolean;
  /** pino level. Env PARLEY_LOG_LEVEL. Default info. */
  logLevel: string;
  /** Milliseconds to wait for connections to close on shutdown. Env PARLEY_SHUTDOWN_GRACE_MS. */
  shutdownGraceMs: number;
  /**
   * Take a client's address from the last `X-Forwarded-For` entry (a reverse
   * proxy in front is the only way in; client-address.ts). Env
   * PARLEY_TRUST_PROXY=1. Default off: the header is ignored.
   */
  trustProxy: boolean;
  /** Access-token lifetime in seconds. Env PARLEY_ACCESS_TOKEN_TTL_S. Default ACCESS_TOKEN_TTL_S (900). */
  accessTokenTtlS: number;
  /**
   * Where SQLite writes run: `thread` (a writer thread, so commits and their
   * fsyncs never stall the event loop) or `inline` (on the event loop).
   * Env PARLEY_SQLITE_WRITER: `thread`, `inline`, or `auto` (the default):
   * `thread` when the process may run on two CPUs or more, `inline` on one —
   * where the thread cannot run beside the event loop and only adds a copy
   * and two thread hops per batch (bench/SERVER-RESULTS.md).
   */
  sqliteWriter: 'thread' | 'inline';
  /** Shared secret (≥ 32 bytes, base64) with which a host application may mint access tokens. Env PARLEY_TRUSTED_TOKEN_SECRET. */
  trustedTokenSecret: Uint8Array | undefined;
  /**
   * Public key (EC P-256, Ed25519 or RSA ≥ 2048 bits) with which a host
   * application may sign access tokens (ES256, EdDSA, RS256/PS256): a PEM
   * (SPKI) or a JWK, inline or as `@/path/to/file`. Env
   * PARLEY_TRUSTED_TOKEN_PUBLIC_KEY.
   */
  trustedTokenPublicKey: KeyObject | undefined;
  /** Seconds an upload may stay incomplete before it is removed. Env PARLEY_BLOB_UPLOAD_TTL_S. Default BLOB_UPLOAD_TTL_S_DEFAULT (3600). */
  blobUploadTtlS: number;
  /** Days a complete blob is kept; 0: until its uploader deletes it. Env PARLEY_BLOB_RETENTION_DAYS. Default BLOB_RETENTION_DAYS_DEFAULT (30). */
  blobRetentionDays: number;
}

export type ConfigInput = Partial<ServerConfig>;

/** A value as shown in an error: quoted, cut (settings checked here are never secrets). */
function shown(v: string): string {
  return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
}

/**
 * An integer setting: from its flag (already a number: named by the flag,
 * or by the option for settings without one), else from the first of its
 * environment variables that is set and not empty — decimal digits only
 * (no sign, spaces, hex or exponent: `Number()` would read " " as 0 and
 * "0x50" as 80) — else `fallback`; always within `min … max`.
 */
function intSetting(flag: { value: number | undefined; name: string }, env: NodeJS.ProcessEnv, names: readonly string[], range: { min: number; max: number; unit?: string }, fallback: number): number {
  const what = `an integer ${range.min}..${range.max}${range.unit === undefined ? '' : ` (${range.unit})`}`;
  if (flag.value !== undefined) {
    if (!Number.isInteger(flag.value) || flag.value < range.min || flag.value > range.max) throw new Error(`${flag.name} must be ${what}, got ${String(flag.value)}`);
    return flag.value;
  }
  for (const name of names) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const n = Number(v);
    if (!/^[0-9]+$/.test(v) || n < range.min || n > range.max) throw new Error(`${name} must be ${what} in decimal digits, got ${shown(v)}`);
    return n;
  }
  return fallback;
}

/** Where a string setting came from, for its error messages: the flag when given, else the variable. */
function stringSetting(flag: { value: string | undefined; name: string }, env: NodeJS.ProcessEnv, envName: string): { value: string; name: string } | undefined {
  if (flag.value !== undefined) return { value: flag.value, name: flag.name };
  // An empty variable is the same as an unset one.
  const v = env[envName];
  return v === undefined || v === '' ? undefined : { value: v, name: envName };
}

/** Base64 (standard or URL-safe alphabet, padding optional), nothing else: Buffer.from would skip stray characters silently. */
const BASE64 = /^(?:[A-Za-z0-9+/]+|[A-Za-z0-9_-]+)={0,2}$/;

function trustedSecret(v: string | undefined): Uint8Array | undefined {
  if (v === undefined || v === '') return undefined;
  const text = v.trim();
  if (!BASE64.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new Error('PARLEY_TRUSTED_TOKEN_SECRET is not base64 (the host signs with the decoded bytes: give them base64-encoded)');
  }
  const b = Buffer.from(text, 'base64');
  if (b.length < 32) throw new Error('PARLEY_TRUSTED_TOKEN_SECRET must be base64 of at least 32 bytes');
  return new Uint8Array(b);
}

/** Largest key file read for PARLEY_TRUSTED_TOKEN_PUBLIC_KEY=@file (an RSA-16384 public key in PEM is under 3 KiB). */
const KEY_FILE_BYTES_MAX = 64 * 1024;

const FILE_ERRORS: Readonly<Record<string, string>> = { ENOENT: 'no such file or directory', EACCES: 'permission denied', EISDIR: 'it is a directory', ENOTDIR: 'a part of the path is not a directory', ELOOP: 'too many symbolic links' };

/** The key file `@path` names, read with errors that say which setting and which file. */
function keyFile(path: string): string {
  const cannot = (why: string): Error => new Error(`PARLEY_TRUSTED_TOKEN_PUBLIC_KEY: cannot read the key file ${JSON.stringify(path)} (${why})`);
  if (path === '') throw cannot('no file name after @');
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw cannot('it is a directory');
    if (!st.isFile()) throw cannot('not a regular file');
    if (st.size > KEY_FILE_BYTES_MAX) throw cannot(`larger than ${KEY_FILE_BYTES_MAX} bytes: not a public key`);
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') throw e;
    throw cannot(FILE_ERRORS[code] ?? code);
  }
}

/** Parse a trusted token public key (PEM or JWK, inline or `@file`); refuses private keys and weak ones. */
export function trustedPublicKey(v: string | undefined): KeyObject | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const text = v.startsWith('@') ? keyFile(v.slice(1)) : v;
  let key: KeyObject;
  try {
    const trimmed = text.trim();
    key = trimmed.startsWith('{') ? createPublicKey({ key: JSON.parse(trimmed) as JsonWebKey, format: 'jwk' }) : createPublicKey(trimmed);
  } catch {
    throw new Error('PARLEY_TRUSTED_TOKEN_PUBLIC_KEY must be a public key as PEM (SPKI) or JWK');
  }
  // createPublicKey also derives a public key from a private one: refuse
  // that, so a private key is never handed to the server by mistake.
  if (/PRIVATE KEY/.test(text) || /"d"\s*:/.test(text)) throw new Error('PARLEY_TRUSTED_TOKEN_PUBLIC_KEY must be a public key, not a private key');
  const t = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails;
  const ok = (t === 'ec' && d?.namedCurve === 'prime256v1') || t === 'ed25519' || (t === 'rsa' && (d?.modulusLength ?? 0) >= 2048);
  if (!ok) throw new Error('PARLEY_TRUSTED_TOKEN_PUBLIC_KEY must be EC P-256, Ed25519 or RSA of at least 2048 bits');
  return key;
}

// URLs are never shown in errors: they may hold a password.
function redisUrl(s: { value: string; name: string } | undefined): string | undefined {
  if (s === undefined) return undefined;
  if (!/^rediss?:\/\//.test(s.value)) throw new Error(`${s.name} must be a redis:// or rediss:// URL`);
  if (!URL.canParse(s.value)) throw new Error(`${s.name} is not a valid redis:// URL (not shown: it may hold a password)`);
  return s.value;
}

function databaseUrl(s: { value: string; name: string } | undefined): string | undefined {
  if (s === undefined) return undefined;
  if (!/^postgres(ql)?:\/\//.test(s.value)) throw new Error(`${s.name} must be a postgres:// (or postgresql://) URL`);
  // Parsed as the driver will parse it, so that a malformed one is refused here, by name.
  try {
    parseConnectionString(s.value);
  } catch {
    throw new Error(`${s.name} is not a valid postgres:// URL (not shown: it may hold a password)`);
  }
  return s.value;
}

/** A switch in the environment: 1 or true is on; unset, empty, 0 or false is off; anything else stops the start. */
function envSwitch(name: string, v: string | undefined): boolean {
  if (v === undefined || v === '' || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  throw new Error(`${name} must be 1 or true (on), or 0, false or empty (off); got ${shown(v)}`);
}

/**
 * The interface to listen on: a host name or an IP address. An empty
 * PARLEY_HOST is unset, as every empty variable (the default, 0.0.0.0);
 * an empty --host, or one with spaces or other characters no host name or
 * address has, stops the start (Node would listen on every interface for
 * an empty one, or fail later with a lookup error).
 */
function host(s: { value: string; name: string } | undefined): string {
  if (s === undefined) return '0.0.0.0';
  if (!/^[A-Za-z0-9._:%-]+$/.test(s.value)) throw new Error(`${s.name} must be a host name or an IP address (0.0.0.0 or :: for every interface), got ${shown(s.value)}`);
  return s.value;
}

function dataDir(s: { value: string; name: string } | undefined): string {
  if (s?.value === '') throw new Error(`${s.name} must name a directory, got ""`);
  return resolve(s?.value ?? './data');
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function logLevel(s: { value: string; name: string } | undefined): string {
  if (s === undefined) return 'info';
  if (!LOG_LEVELS.includes(s.value)) throw new Error(`${s.name} must be one of ${LOG_LEVELS.join(', ')}; got ${shown(s.value)}`);
  return s.value;
}

function sqliteWriter(s: { value: string; name: string } | undefined, cpus: number): 'thread' | 'inline' {
  if (s === undefined || s.value === 'auto') return cpus >= 2 ? 'thread' : 'inline';
  if (s.value === 'thread' || s.value === 'inline') return s.value;
  throw new Error(`${s.name} must be thread, inline or auto; got ${shown(s.value)}`);
}

/** Longest shutdown grace: the longest timer Node keeps (a longer one would fire at once). */
const SHUTDOWN_GRACE_MS_MAX = 2 ** 31 - 1;

/**
 * Merge flags over environment over defaults, validating as we go. An
 * empty variable is the same as an unset one. Every error names the flag
 * (or, for settings without one, the option) or the variable the bad value
 * came from.
 */
export function resolveConfig(flags: ConfigInput = {}, env: NodeJS.ProcessEnv = process.env, cpus: number = availableParallelism()): ServerConfig {
  return {
    host: host(stringSetting({ value: flags.host, name: '--host' }, env, 'PARLEY_HOST')),
    // PARLEY_PORT wins over PORT (which hosting platforms set).
    port: intSetting({ value: flags.port, name: '--port' }, env, ['PARLEY_PORT', 'PORT'], { min: 0, max: 65535, unit: '0: any free port' }, 8080),
    dataDir: dataDir(stringSetting({ value: flags.dataDir, name: '--data' }, env, 'PARLEY_DATA')),
    databaseUrl: databaseUrl(stringSetting({ value: flags.databaseUrl, name: '--database-url' }, env, 'DATABASE_URL')),
    redisUrl: redisUrl(stringSetting({ value: flags.redisUrl, name: 'the redisUrl option' }, env, 'PARLEY_REDIS_URL')),
    tutorialDemoKey: flags.tutorialDemoKey ?? envSwitch('PARLEY_TUTORIAL_DEMO_KEY', env['PARLEY_TUTORIAL_DEMO_KEY']),
    logLevel: logLevel(stringSetting({ value: flags.logLevel, name: '--log-level' }, env, 'PARLEY_LOG_LEVEL')),
    shutdownGraceMs: intSetting({ value: flags.shutdownGraceMs, name: 'the shutdownGraceMs option' }, env, ['PARLEY_SHUTDOWN_GRACE_MS'], { min: 0, max: SHUTDOWN_GRACE_MS_MAX, unit: 'milliseconds' }, 5000),
    trustProxy: flags.trustProxy ?? envSwitch('PARLEY_TRUST_PROXY', env['PARLEY_TRUST_PROXY']),
    sqliteWriter: sqliteWriter(stringSetting({ value: flags.sqliteWriter, name: 'the sqliteWriter option' }, env, 'PARLEY_SQLITE_WRITER'), cpus),
    trustedTokenSecret: flags.trustedTokenSecret ?? trustedSecret(env['PARLEY_TRUSTED_TOKEN_SECRET']),
    trustedTokenPublicKey: flags.trustedTokenPublicKey ?? trustedPublicKey(env['PARLEY_TRUSTED_TOKEN_PUBLIC_KEY']),
    accessTokenTtlS: intSetting({ value: flags.accessTokenTtlS, name: 'the accessTokenTtlS option' }, env, ['PARLEY_ACCESS_TOKEN_TTL_S'], { min: 1, max: 86_400, unit: 'seconds' }, ACCESS_TOKEN_TTL_S),
    blobUploadTtlS: intSetting({ value: flags.blobUploadTtlS, name: 'the blobUploadTtlS option' }, env, ['PARLEY_BLOB_UPLOAD_TTL_S'], { min: 1, max: 7 * 86_400, unit: 'seconds' }, BLOB_UPLOAD_TTL_S_DEFAULT),
    blobRetentionDays: intSetting({ value: flags.blobRetentionDays, name: 'the blobRetentionDays option' }, env, ['PARLEY_BLOB_RETENTION_DAYS'], { min: 0, max: 36_500, unit: 'days; 0: kept until deleted' }, BLOB_RETENTION_DAYS_DEFAULT),
  };
}
