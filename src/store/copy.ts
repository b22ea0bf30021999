/**
 * Copies every row of one store into another, empty one (SQLite ⇄ PostgreSQL), keeping ids, in one transaction on
 * the target; then verifies each table by row count and a content hash computed on both sides.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { count } from './aggregate.js';
import { StoreError } from './errors.js';
import type { Database } from './schema.js';
import type { Store } from './store.js';

/** Every table with its key columns, parents before the tables that reference them (the order rows are copied in). */
const TABLES: Record<keyof Database, string[]> = {
  groups: ['id'],
  users: ['id'],
  sessions: ['id'],
  prompts: ['id'],
  candidate_sets: ['id'],
  responses: ['id'],
  gold_items: ['id'],
  tasks: ['id'],
  assignments: ['id'],
  demonstrations: ['id'],
  rankings: ['id'],
  conversations: ['id'],
  comparisons: ['id'],
  chat_messages: ['id'],
  gold_answers: ['id'],
  screening_results: ['id'],
  settings: ['key'],
  idempotency_keys: ['user_id', 'key'],
  login_failures: ['id'],
  evals: ['id'],
  eval_tasks: ['eval_id', 'task_id'],
  reports: ['id'],
  models: ['id'],
  jobs: ['id'],
};
type Table = keyof Database;
const tables = Object.keys(TABLES) as Table[];
// Rows per read and per insert: well under both dialects' limits on bound parameters.
const BATCH = 500;

export interface TableCopy {
  table: string;
  rows: number;
  /** sha256 of the table's rows in key order, the same on both sides. */
  sha256: string;
}

// biome-ignore lint/suspicious/noExplicitAny: copying works on rows of any table
type Row = Record<string, any>;

async function* rowsOf(store: Store, table: Table): AsyncGenerator<Row[]> {
  for (let offset = 0; ; offset += BATCH) {
    let q = store.db.selectFrom(table).selectAll();
    for (const k of TABLES[table]) q = q.orderBy(k as never);
    const rows = (await q.limit(BATCH).offset(offset).execute()) as Row[];
    if (rows.length > 0) yield rows;
    if (rows.length < BATCH) return;
  }
}

/** Row count and content hash of one table (columns by name, so column order does not matter). */
export async function tableDigest(store: Store, table: Table): Promise<TableCopy> {
  const hash = createHash('sha256');
  let rows = 0;
  for await (const batch of rowsOf(store, table)) {
    for (const r of batch) {
      hash.update(
        JSON.stringify(
          Object.keys(r)
            .sort()
            .map((k) => [k, r[k]]),
        ),
      );
      hash.update('\n');
    }
    rows += batch.length;
  }
  return { table, rows, sha256: hash.digest('hex') };
}

/** Tables that hold rows beyond what a new database starts with (its two default groups). */
async function nonEmpty(store: Store): Promise<string[]> {
  const out: string[] = [];
  for (const table of tables) {
    const { n } = await store.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    const rows = count(n as number);
    const fresh = table === 'groups' ? await onlyDefaultGroups(store) : rows === 0;
    if (!fresh) out.push(`${table} (${rows} row${rows === 1 ? '' : 's'})`);
  }
  return out;
}

async function onlyDefaultGroups(store: Store): Promise<boolean> {
  const rows = await store.db.selectFrom('groups').select(['name', 'split']).orderBy('id').execute();
  return (
    JSON.stringify(rows) ===
    JSON.stringify([
      { name: 'training', split: 'training' },
      { name: 'heldout', split: 'heldout' },
    ])
  );
}

/**
 * Copies `from` into `to`, which must be empty (a new database); nothing is written when it is not, or when any
 * table's count or hash differs afterwards (the copy's transaction rolls back). Returns each table's digest.
 */
export async function copyStore(
  from: Store,
  to: Store,
  onTable: (t: TableCopy) => void = () => {},
): Promise<TableCopy[]> {
  const used = await nonEmpty(to);
  if (used.length > 0) {
    throw new StoreError('conflict', `the target database is not empty: ${used.join(', ')}; copy into a new database`);
  }
  return to.tx(async (target) => {
    // The two default groups are replaced by the source's, ids and all.
    await target.db.deleteFrom('groups').execute();
    const digests: TableCopy[] = [];
    for (const table of tables) {
      for await (const batch of rowsOf(from, table)) await target.db.insertInto(table).values(batch).execute();
      if (target.dialect === 'postgres' && TABLES[table][0] === 'id' && table !== 'sessions') {
        // Ids were copied as they were: the next generated id follows the largest.
        await sql`select setval(pg_get_serial_sequence(${table}, 'id'), coalesce(max(id), 0) + 1, false) from ${sql.table(table)}`.execute(
          target.db,
        );
      }
      const [a, b] = [await tableDigest(from, table), await tableDigest(target, table)];
      if (a.rows !== b.rows || a.sha256 !== b.sha256) {
        throw new Error(`${table}: the copy differs (${a.rows} rows → ${b.rows}); nothing was written`);
      }
      digests.push(a);
      onTable(a);
    }
    return digests;
  });
}
