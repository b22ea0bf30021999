/**
 * PostgreSQL through `pg`'s pool and Kysely: one database shared by several app servers. The URL may carry libpq's
 * `options` (e.g. `?options=-c%20search_path%3Dlabels` to keep the tables in another schema).
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { isStalePlan, openError } from './errors.js';
import { migrate } from './migrations.js';
import type { Database } from './schema.js';
import { type QueryListener, queryLog, Store } from './store.js';

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:port/db` */
  url: string;
  /** The store's clock (tests); by default the database server's, so that every machine agrees. */
  now?: () => number;
  /** Connections this process keeps at most (default 10). */
  poolSize?: number;
  /** See StoreOptions.onQuery. */
  onQuery?: QueryListener;
  /** A connection replans its statements when its plans are this old (ms, default 5 s); see below. */
  planRefreshMs?: number;
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
  const named = namedStatements();
  // A named statement's generic plan is made once per connection, after its fifth run, for the table sizes of that
  // moment, and kept until the tables are analyzed. On a young database that moment comes while `assignments` is a
  // page or two, so the plan scans it whole: on bench:server, 3 runs in 16 kept such plans for their whole 35 s
  // (autovacuum had not come by), and hand-outs took 0.4–1 ms instead of 0.15, growing. DISCARD PLANS makes the
  // connection plan again at the next run of each statement (the statements stay prepared); at most once per
  // planRefreshMs per connection, when it is taken from the pool, it costs one round-trip and a few replans.
  const refreshMs = opts.planRefreshMs ?? 5_000;
  const planned = new WeakMap<pg.PoolClient, number>();
  pool.on('connect', (client) => {
    client.on('error', () => {});
    named(client);
    planned.set(client, Date.now());
  });
  pool.on('acquire', (client) => {
    const now = Date.now();
    if (now - (planned.get(client) ?? now) < refreshMs) return;
    planned.set(client, now);
    // Queued ahead of the caller's first statement; should it fail, so does that statement, with the real error.
    client.query('discard plans').catch(() => {});
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: queryLog(opts.onQuery) });
  try {
    await migrate(db, 'postgres');
  } catch (err) {
    await db.destroy();
    throw openError(err, opts.url) ?? err;
  }
  return new Store(db, 'postgres', opts.now ?? (await databaseClock(pool)));
}

/**
 * This process's clock shifted to the database server's (to within half a round-trip). Heartbeats, leases and
 * deadlines that one machine writes are compared by another against its own "now", and machines' clocks may be off
 * by minutes: a worker whose clock ran behind would have its live job reclaimed. The shift is measured again in the
 * background at most once a minute, so that a clock stepped after start-up (NTP, just after boot) is followed. Sent
 * on the pool, not through Kysely, so that it is not counted among the store's statements.
 */
async function databaseClock(pool: pg.Pool): Promise<() => number> {
  let offset = 0;
  let measuredAt = 0;
  let measuring = false;
  const measure = async () => {
    const sent = Date.now();
    const { rows } = await pool.query('select extract(epoch from clock_timestamp())::float8 * 1000 as ms');
    const back = Date.now();
    offset = Math.round(rows[0].ms - (sent + back) / 2);
    measuredAt = back;
  };
  await measure();
  return () => {
    const now = Date.now();
    if (now - measuredAt > 60_000 && !measuring) {
      measuring = true;
      measure()
        .catch(() => {})
        .finally(() => {
          measuring = false;
        });
    }
    return now + offset;
  };
}

/**
 * Sends each query as a named prepared statement, so that PostgreSQL parses and plans it once per connection and
 * then reuses the plan. Kysely sends every query unnamed, to be parsed and planned anew: on `bench:server` planning
 * took longer than executing for the hot queries (pg_stat_statements: 3.1 s of planning against 2.1 s of executing
 * over 20 s). Statements beyond the first few hundred texts per process, and long ones (bulk inserts, whose text
 * changes with their row count), stay unnamed, so the statements held per connection stay bounded.
 *
 * A statement whose result changed shape since it was prepared (another server's migration added a column that a
 * `select *` returns) fails with "cached plan must not change result type", and would on every later run. The
 * connection then prepares its statements again under new names (the old ones stay on it until it closes), and runs
 * the failed one again at once unless a transaction is open: that transaction is aborted, and `Store.tx` runs it again.
 */
function namedStatements(maxStatements = 500, maxChars = 4000) {
  const names = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = names.get(text);
    if (name === undefined && names.size < maxStatements && text.length <= maxChars && DML.test(text)) {
      name = `ik_${names.size}`;
      names.set(text, name);
    }
    return name;
  };
  return (client: pg.PoolClient) => {
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    let generation = 0;
    let inTransaction = false;
    const run = (name: string, text: string, values: unknown) =>
      query({ name: generation ? `${name}_${generation}` : name, text, values });
    client.query = ((text: unknown, values?: unknown, callback?: unknown) => {
      const name = typeof text === 'string' && callback === undefined ? nameOf(text) : undefined;
      if (!name) {
        if (typeof text === 'string') inTransaction = TX_OPEN.test(text) || (inTransaction && !TX_END.test(text));
        return query(text, values, callback);
      }
      return run(name, text as string, values).catch((err) => {
        if (!isStalePlan(err)) throw err;
        generation++;
        if (inTransaction) throw err;
        return run(name, text as string, values);
      });
    }) as typeof client.query;
  };
}
const TX_OPEN = /^\s*(begin|start transaction)\b/i;
const TX_END = /^\s*(commit|rollback|end|abort)\b/i;
/** Only plannable statements are worth naming (not BEGIN, COMMIT, ANALYZE or DDL). */
const DML = /^\s*(select|insert|update|delete|with)\b/i;
