/**
 * 0010: ranking candidates from several versions. The single `candidateModel` setting of earlier releases becomes
 * the list `candidateModels` (a list of one); going down keeps the list's first name.
 */
import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the untyped schema of their own time
type Db = Kysely<any>;

async function rewrite(db: Db, from: string, to: string, convert: (value: unknown) => unknown): Promise<void> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', from).executeTakeFirst();
  if (!row) return;
  await db.deleteFrom('settings').where('key', 'in', [from, to]).execute();
  await db
    .insertInto('settings')
    .values({ key: to, value: JSON.stringify(convert(JSON.parse(row.value))) })
    .execute();
}

export const candidateModelsMigration: Migration = {
  async up(db: Db) {
    await rewrite(db, 'candidateModel', 'candidateModels', (name) => [name]);
  },
  async down(db: Db) {
    await rewrite(db, 'candidateModels', 'candidateModel', (names) => (names as string[])[0]);
  },
};
