/** The embedded default database: SQLite through better-sqlite3 (WAL) and Kysely. */
import SqliteDatabase from 'better-sqlite3';
import { Kysely, type SqliteDatabase as KyselySqliteDatabase, Migrator, SqliteDialect } from 'kysely';
import { StaticMigrationProvider } from './migrations.js';
import type { Database } from './schema.js';
import { Store } from './store.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for tests. */
  path: string;
  /** Clock (ms) used for timestamps and session expiry; injectable for tests. */
  now?: () => number;
}

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<Store> {
  const raw = new SqliteDatabase(opts.path);
  if (opts.path !== ':memory:') raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = NORMAL');
  raw.pragma('foreign_keys = ON');
  raw.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingStatements(raw) }) });
  await migrate(db, 'sqlite');
  return new Store(db, opts.now);
}

export async function migrate(db: Kysely<Database>, dialect: 'sqlite' | 'postgres'): Promise<string[]> {
  // biome-ignore lint/suspicious/noExplicitAny: the migrator works on the untyped schema
  const migrator = new Migrator({ db: db as Kysely<any>, provider: new StaticMigrationProvider(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * Kysely prepares every query anew, and preparing cost about as much as running the server's small queries. The
 * same SQL text reuses one statement; better-sqlite3 runs a statement synchronously, so sharing is safe. Bounded,
 * because `in (?, ?, ...)` lists make a new text per length.
 */
function cachingStatements(raw: SqliteDatabase.Database, capacity = 500): KyselySqliteDatabase {
  const statements = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => raw.close(),
    prepare(text: string) {
      let statement = statements.get(text);
      if (statement) {
        // Refresh its place so the least recently used statement is the one dropped.
        statements.delete(text);
      } else {
        statement = raw.prepare(text);
        if (statements.size >= capacity) statements.delete(statements.keys().next().value!);
      }
      statements.set(text, statement);
      return statement;
    },
  };
}
