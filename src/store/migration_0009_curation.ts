/**
 * 0009: curation. Reviews of submitted work (on the assignment: a submission is a done assignment), skips, the
 * labelers' reports of prompts, archiving (a soft delete: the rows stay, exports and the queue skip them), and one
 * hidden gold task per gold item (a unique index: two servers meeting one gold item at once made two).
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { DialectName } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the untyped schema of their own time
type Db = Kysely<any>;

export function curationMigration(dialect: DialectName): Migration {
  const idType = dialect === 'postgres' ? 'serial' : 'integer';
  const ms = 'bigint';
  return {
    async up(db: Db) {
      await db.schema
        .alterTable('assignments')
        .addColumn('review', 'text', (c) => c.check(sql`review in ('accepted', 'rejected')`))
        .execute();
      await db.schema.alterTable('assignments').addColumn('review_reason', 'text').execute();
      await db.schema
        .alterTable('assignments')
        .addColumn('reviewed_by', 'integer', (c) => c.references('users.id'))
        .execute();
      await db.schema.alterTable('assignments').addColumn('reviewed_at', ms).execute();
      await db.schema.alterTable('assignments').addColumn('skipped_at', ms).execute();
      for (const table of ['prompts', 'tasks', 'gold_items']) {
        await db.schema.alterTable(table).addColumn('archived_at', ms).execute();
      }
      await db.schema
        .createTable('reports')
        .addColumn('id', idType, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('prompt_id', 'integer', (c) => c.notNull().references('prompts.id'))
        .addColumn('assignment_id', 'integer', (c) => c.notNull().unique().references('assignments.id'))
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('resolution', 'text', (c) => c.check(sql`resolution in ('dismissed', 'archived')`))
        .addColumn('resolved_by', 'integer', (c) => c.references('users.id'))
        .addColumn('resolved_at', ms)
        .execute();
      await db.schema
        .createIndex('reports_open')
        .on('reports')
        .column('id')
        .where(sql.ref('resolved_at'), 'is', null)
        .execute();
      // Fold duplicate hidden gold tasks into the oldest one of their gold item before the unique index.
      await sql`update assignments set task_id = (
          select min(t2.id) from tasks t2 where t2.gold_id = (select t.gold_id from tasks t where t.id = assignments.task_id))
        where task_id in (select id from tasks where gold_id is not null)`.execute(db);
      await sql`delete from tasks where gold_id is not null
        and id not in (select min(id) from tasks where gold_id is not null group by gold_id)`.execute(db);
      await db.schema
        .createIndex('tasks_one_per_gold')
        .on('tasks')
        .column('gold_id')
        .unique()
        .where(sql.ref('gold_id'), 'is not', null)
        .execute();
    },
    async down(db: Db) {
      await db.schema.dropIndex('tasks_one_per_gold').execute();
      await db.schema.dropTable('reports').execute();
      for (const table of ['prompts', 'tasks', 'gold_items']) {
        await db.schema.alterTable(table).dropColumn('archived_at').execute();
      }
      for (const column of ['skipped_at', 'reviewed_at', 'reviewed_by', 'review_reason', 'review']) {
        await db.schema.alterTable('assignments').dropColumn(column).execute();
      }
    },
  };
}
