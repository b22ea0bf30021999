/** The base of the per-aggregate query modules: each holds the store it belongs to (or its transaction). */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { Store } from './store.js';

export abstract class Aggregate {
  constructor(protected readonly s: Store) {}

  protected get db(): Kysely<Database> {
    return this.s.db;
  }

  protected now(): number {
    return this.s.now();
  }
}

/** Source of the prompts behind gold tasks: they are not the admin's prompts and are never exported. */
export const GOLD_SOURCE = 'gold';

/** An optional value as a JSON column (null when absent). */
export const jsonOrNull = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));

/** COUNT(*) comes back as a number from SQLite and as a string (bigint) from PostgreSQL: read it through this. */
export const count = (n: number | string | bigint | undefined | null) => Number(n ?? 0);

/** An answer that says nothing (empty or only whitespace) is never stored as one. */
export const isBlank = (text: string) => text.trim() === '';
