/**
 * Pick the storage backend from the configuration: PostgreSQL when a
 * DATABASE_URL is set, embedded SQLite in the data directory otherwise.
 *
 * @module
 */
import type { ServerConfig } from '../config.ts';
import { redactedUrl } from '../redacted-url.ts';
import type { Storage } from './types.ts';
import { PostgresStorage } from './postgres.ts';
import { SqliteStorage } from './sqlite.ts';
import { ThreadedSqliteStorage } from './sqlite-threaded.ts';

export async function openStorage(config: ServerConfig): Promise<{ storage: Storage; kind: 'sqlite' | 'sqlite (writer thread)' | 'postgres' }> {
  const storage: Storage =
    config.databaseUrl !== undefined
      ? new PostgresStorage({ connectionString: config.databaseUrl })
      : config.sqliteWriter === 'inline'
        ? new SqliteStorage(config.dataDir)
        : new ThreadedSqliteStorage(config.dataDir);
  try {
    await storage.migrate();
  } catch (e) {
    await storage.close().catch(() => undefined);
    // A driver's own message ("connect ECONNREFUSED 127.0.0.1:5432") does not say what it was connecting to.
    if (config.databaseUrl !== undefined) throw new Error(`cannot use the PostgreSQL database at ${redactedUrl(config.databaseUrl)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    throw e;
  }
  return { storage, kind: config.databaseUrl !== undefined ? 'postgres' : config.sqliteWriter === 'inline' ? 'sqlite' : 'sqlite (writer thread)' };
}
