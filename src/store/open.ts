/** Opens the store a `--db` value names: a `postgres://` URL is PostgreSQL, anything else a SQLite file. */
import { openPostgresStore } from './postgres.js';
import { openSqliteStore } from './sqlite.js';
import type { QueryListener, Store } from './store.js';

export const isPostgresUrl = (db: string) => /^postgres(ql)?:\/\//i.test(db);

export interface StoreOptions {
  /** A SQLite file path (':memory:' for tests) or a `postgres://user:pass@host:port/db` URL. */
  db: string;
  now?: () => number;
  /** Called with every statement sent (tests count round-trips with it). */
  onQuery?: QueryListener;
}

export async function openStore(opts: StoreOptions): Promise<Store> {
  if (isPostgresUrl(opts.db)) {
    // Not echoed: a URL that does not parse cannot have its password masked.
    if (!URL.canParse(opts.db))
      throw new Error('not a valid PostgreSQL URL: write it as postgres://user:password@host[:port]/database');
    return openPostgresStore({ url: opts.db, now: opts.now, onQuery: opts.onQuery });
  }
  return openSqliteStore({ path: opts.db, now: opts.now, onQuery: opts.onQuery });
}

/** The database's name for messages: the URL without its password, or the file path. */
export function describeDb(db: string): string {
  if (!isPostgresUrl(db)) return db;
  try {
    const u = new URL(db);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}
