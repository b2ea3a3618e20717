/**
 * Server settings. Every setting has a flag (apps/cli) and an environment
 * variable; flags win. Documented in the README.
 *
 * @module
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { ACCESS_TOKEN_TTL_S, BLOB_RETENTION_DAYS_DEFAULT, BLOB_UPLOAD_TTL_S_DEFAULT } from './limits.ts';

export interface ServerConfig {
  /** Interface to listen on. Env PARLEY_HOST. Default 0.0.0.0. */
  host: string;
  /** TCP port; 0 picks a free one. Env PORT or PARLEY_PORT. Default 8080. */
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

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

function ttl(v: number): number {
  if (!Number.isInteger(v) || v < 1 || v > 86_400) throw new Error('access token lifetime must be 1..86400 seconds');
  return v;
}

function inRange(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be an integer ${min}..${max}, got ${v}`);
  return v;
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

/** Parse a trusted token public key (PEM or JWK, inline or `@file`); refuses private keys and weak ones. */
export function trustedPublicKey(v: string | undefined): KeyObject | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const text = v.startsWith('@') ? readFileSync(v.slice(1), 'utf8') : v;
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

function redisUrl(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!/^rediss?:\/\//.test(v)) throw new Error('PARLEY_REDIS_URL must be a redis:// or rediss:// URL');
  return v;
}

function flag(name: string, v: string | undefined): boolean {
  if (v === undefined || v === '' || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  throw new Error(`${name} must be 1 or 0`);
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function logLevel(v: string): string {
  if (!LOG_LEVELS.includes(v)) throw new Error(`the log level (--log-level, PARLEY_LOG_LEVEL) must be one of ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(v.slice(0, 40))}`);
  return v;
}

function sqliteWriter(v: string | undefined, cpus: number): 'thread' | 'inline' {
  if (v === 'thread' || v === 'inline') return v;
  if (v === undefined || v === '' || v === 'auto') return cpus >= 2 ? 'thread' : 'inline';
  throw new Error('PARLEY_SQLITE_WRITER must be thread, inline or auto');
}

/** Merge flags over environment over defaults, validating as we go. */
export function resolveConfig(flags: ConfigInput = {}, env: NodeJS.ProcessEnv = process.env, cpus: number = availableParallelism()): ServerConfig {
  const port = flags.port ?? envInt(env, 'PARLEY_PORT') ?? envInt(env, 'PORT') ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`port must be 0..65535, got ${port}`);
  const databaseUrl = flags.databaseUrl ?? (env['DATABASE_URL'] || undefined);
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) throw new Error('DATABASE_URL must be a postgres:// URL');
  return {
    host: flags.host ?? env['PARLEY_HOST'] ?? '0.0.0.0',
    port,
    // Empty means unset, as for DATABASE_URL (not "the current directory").
    dataDir: resolve(flags.dataDir ?? (env['PARLEY_DATA'] || undefined) ?? './data'),
    databaseUrl,
    redisUrl: redisUrl(flags.redisUrl ?? (env['PARLEY_REDIS_URL'] || undefined)),
    tutorialDemoKey: flags.tutorialDemoKey ?? flag('PARLEY_TUTORIAL_DEMO_KEY', env['PARLEY_TUTORIAL_DEMO_KEY']),
    logLevel: logLevel(flags.logLevel ?? (env['PARLEY_LOG_LEVEL'] || undefined) ?? 'info'),
    shutdownGraceMs: flags.shutdownGraceMs ?? envInt(env, 'PARLEY_SHUTDOWN_GRACE_MS') ?? 5000,
    trustProxy: flags.trustProxy ?? flag('PARLEY_TRUST_PROXY', env['PARLEY_TRUST_PROXY']),
    sqliteWriter: sqliteWriter(flags.sqliteWriter ?? env['PARLEY_SQLITE_WRITER'], cpus),
    trustedTokenSecret: flags.trustedTokenSecret ?? trustedSecret(env['PARLEY_TRUSTED_TOKEN_SECRET']),
    trustedTokenPublicKey: flags.trustedTokenPublicKey ?? trustedPublicKey(env['PARLEY_TRUSTED_TOKEN_PUBLIC_KEY']),
    accessTokenTtlS: ttl(flags.accessTokenTtlS ?? envInt(env, 'PARLEY_ACCESS_TOKEN_TTL_S') ?? ACCESS_TOKEN_TTL_S),
    blobUploadTtlS: inRange('PARLEY_BLOB_UPLOAD_TTL_S', flags.blobUploadTtlS ?? envInt(env, 'PARLEY_BLOB_UPLOAD_TTL_S') ?? BLOB_UPLOAD_TTL_S_DEFAULT, 1, 7 * 86_400),
    blobRetentionDays: inRange('PARLEY_BLOB_RETENTION_DAYS', flags.blobRetentionDays ?? envInt(env, 'PARLEY_BLOB_RETENTION_DAYS') ?? BLOB_RETENTION_DAYS_DEFAULT, 0, 36_500),
  };
}
