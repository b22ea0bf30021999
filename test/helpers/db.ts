/**
 * The database the store and server tests run on. By default SQLite in memory; the `*.postgres.test.ts` entry files
 * run the same suites on PostgreSQL ($INSTRUCTKIT_TEST_PG, e.g. from `bash scripts/with-postgres.sh`), each store
 * on a fresh schema. Without a URL those files skip with a message, except in CI, where they must run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import type { DialectName } from '../../src/store/index.js';

export const testDialect = (): DialectName =>
  process.env.INSTRUCTKIT_TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite';

let admin: pg.Pool | undefined;
const schemas: string[] = [];

/**
 * A fresh, empty database for one test: ':memory:' (or, with `shared`, a new SQLite file that several stores can
 * open), or the PostgreSQL URL of a new schema (its search_path set in the URL's `options`).
 */
export async function testDb(opts: { shared?: boolean } = {}): Promise<string> {
  if (testDialect() === 'sqlite') {
    return opts.shared ? join(mkdtempSync(join(tmpdir(), 'ik-db-')), 'labels.sqlite') : ':memory:';
  }
  const url = process.env.INSTRUCTKIT_TEST_PG!;
  admin ??= new pg.Pool({ connectionString: url, max: 1, allowExitOnIdle: true });
  const schema = `ik_test_${process.pid}_${schemas.length}`;
  await admin.query(`drop schema if exists ${schema} cascade; create schema ${schema}`);
  schemas.push(schema);
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

/** Runs a test suite (imported by `load`) on PostgreSQL, or skips it with a message when no server is given. */
export async function onPostgres(load: () => Promise<unknown>): Promise<void> {
  if (!process.env.INSTRUCTKIT_TEST_PG) {
    const how = 'set INSTRUCTKIT_TEST_PG=postgres://… or run under `bash scripts/with-postgres.sh`';
    if (process.env.CI) throw new Error(`CI runs every test on PostgreSQL too: ${how}`);
    test(`PostgreSQL variant (${how})`, { skip: 'no PostgreSQL server given' }, () => {});
    return;
  }
  process.env.INSTRUCTKIT_TEST_DIALECT = 'postgres';
  after(async () => {
    if (!admin) return;
    for (const schema of schemas) await admin.query(`drop schema if exists ${schema} cascade`);
    await admin.end();
  });
  await load();
}
