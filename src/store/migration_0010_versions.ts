/**
 * 0010: several model versions side by side.
 * - Ranking candidates from several versions: the single `candidateModel` setting of earlier releases becomes the
 *   list `candidateModels` (a list of one); going down keeps the list's first name.
 * - Registry names are unique (versions are served, picked and compared by name, so a second version of the same
 *   name was never served). An older registry's later namesakes are renamed `NAME-ID` first (nothing could address
 *   them by name before: the name meant the oldest one).
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

export const versionsMigration: Migration = {
  async up(db: Db) {
    await rewrite(db, 'candidateModel', 'candidateModels', (name) => [name]);
    const models: { id: number; name: string }[] = await db
      .selectFrom('models')
      .select(['id', 'name'])
      .orderBy('id')
      .execute();
    const taken = new Set(models.map((m) => m.name));
    const kept = new Set<string>();
    for (const m of models) {
      if (!kept.has(m.name)) {
        kept.add(m.name);
        continue;
      }
      let name = `${m.name}-${m.id}`;
      while (taken.has(name)) name += `-${m.id}`;
      taken.add(name);
      kept.add(name);
      await db.updateTable('models').set({ name }).where('id', '=', m.id).execute();
    }
    await db.schema.createIndex('models_name').on('models').column('name').unique().execute();
  },
  async down(db: Db) {
    await db.schema.dropIndex('models_name').execute();
    await rewrite(db, 'candidateModels', 'candidateModel', (names) => (names as string[])[0]);
  },
};
