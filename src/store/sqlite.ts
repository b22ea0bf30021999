/** The embedded default database: SQLite through better-sqlite3 (WAL) and Kysely. */
import { Worker } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  Kysely,
  type SqliteDatabase as KyselySqliteDatabase,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely';
import { migrate } from './migrations.js';
import type { Database } from './schema.js';
import { type QueryListener, queryLog, Store } from './store.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for tests. */
  path: string;
  /** Clock (ms) used for timestamps and session expiry; injectable for tests. */
  now?: () => number;
  /** See StoreOptions.onQuery. */
  onQuery?: QueryListener;
}

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<Store> {
  const raw = new SqliteDatabase(opts.path);
  raw.pragma('synchronous = NORMAL');
  raw.pragma('foreign_keys = ON');
  raw.pragma('busy_timeout = 5000');
  let stopCheckpoints = async () => {};
  if (opts.path !== ':memory:') {
    raw.pragma('journal_mode = WAL');
    stopCheckpoints = checkpointInBackground(raw, opts.path);
  }
  const db = new Kysely<Database>({
    dialect: new ImmediateSqliteDialect({ database: cachingStatements(raw) }),
    log: queryLog(opts.onQuery),
  });
  await migrate(db, 'sqlite');
  return new Store(db, 'sqlite', opts.now, stopCheckpoints);
}

/**
 * Transactions begin IMMEDIATE: they take the write lock at once, waiting up to busy_timeout for it. A server and its
 * training worker are two processes on one file, and a deferred transaction that has read and then writes while the
 * other process writes fails at once with SQLITE_BUSY: SQLite does not wait there, since what it read is stale.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly config: SqliteDialectConfig) {
    super(config);
  }
  override createDriver() {
    return new (class extends SqliteDriver {
      override async beginTransaction(connection: DatabaseConnection) {
        await connection.executeQuery(CompiledQuery.raw('begin immediate'));
      }
    })(this.config);
  }
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

/**
 * Moves WAL checkpoints to a worker thread (see checkpointer.ts) and returns the function that stops it. Measured on
 * `npm run bench:server` (2 shared cores): about 40 % more submissions and a lower p99 than checkpointing on commit.
 */
function checkpointInBackground(raw: SqliteDatabase.Database, path: string, intervalMs = 200) {
  raw.pragma('wal_autocheckpoint = 0');
  const worker = new Worker(new URL('./checkpointer.js', import.meta.url), { workerData: { path, intervalMs } });
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  // Should the worker fail, this connection goes back to checkpointing by itself.
  worker.on('error', () => {
    if (raw.open) raw.pragma('wal_autocheckpoint = 1000');
  });
  return async (): Promise<void> => {
    worker.ref(); // keeps the process alive until the worker has closed its connection
    worker.postMessage('stop');
    await exited;
  };
}
