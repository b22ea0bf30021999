/**
 * PostgreSQL through `pg`'s pool and Kysely: one database shared by several app servers. The URL may carry libpq's
 * `options` (e.g. `?options=-c%20search_path%3Dlabels` to keep the tables in another schema).
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { openError } from './errors.js';
import { migrate } from './migrations.js';
import type { Database } from './schema.js';
import { Store } from './store.js';

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:port/db` */
  url: string;
  now?: () => number;
  /** Connections this process keeps at most (default 10). */
  poolSize?: number;
}

const INT8 = 20;
// BIGINT (epoch-ms times, COUNT(*)) arrives as a string to keep its 64 bits; ours all fit a double exactly.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export async function openPostgresStore(opts: PostgresStoreOptions): Promise<Store> {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
    types,
    // Idle connections do not keep a process alive (CLI commands, tests); a server is kept alive by its socket.
    allowExitOnIdle: true,
  });
  // A connection the database server cuts is dropped and replaced on next use; the query it was running fails (the
  // request gets a 503, its transaction never committed). Unlistened, pg's 'error' events would end the process:
  // the pool's for idle connections, each client's own for one in use.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrate(db, 'postgres');
  } catch (err) {
    await db.destroy();
    throw openError(err, opts.url) ?? err;
  }
  return new Store(db, 'postgres', opts.now);
}
