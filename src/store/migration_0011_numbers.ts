/**
 * 0011: each assignment keeps the labeler's own count (their first is 1), written when it is made. Counting the
 * labeler's earlier assignments on every hand-out read all of them: slower with every task a labeler did.
 */
import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the untyped schema of their own time
type Db = Kysely<any>;

export const numbersMigration: Migration = {
  async up(db: Db) {
    await db.schema.alterTable('assignments').addColumn('number', 'integer').execute();
    // Both dialects take UPDATE … FROM and window functions.
    await db
      .updateTable('assignments')
      .from(
        db
          .selectFrom('assignments as mine')
          .select((eb) => [
            'mine.id',
            eb.fn
              .agg<number>('row_number')
              .over((o) => o.partitionBy('mine.user_id').orderBy('mine.id'))
              .as('n'),
          ])
          .as('counted'),
      )
      .set((eb) => ({ number: eb.ref('counted.n') }))
      .whereRef('assignments.id', '=', 'counted.id')
      .execute();
    // Also how the next number is found: the labeler's highest, from the index.
    await db.schema
      .createIndex('assignments_user_number')
      .on('assignments')
      .columns(['user_id', 'number'])
      .unique()
      .execute();
  },
  async down(db: Db) {
    await db.schema.dropIndex('assignments_user_number').execute();
    await db.schema.alterTable('assignments').dropColumn('number').execute();
  },
};
