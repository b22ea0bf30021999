/**
 * 0008: blind evaluations. An eval is a comparison of two model versions (by name, as the candidate sources and the
 * model registry call them) on held-out prompts; `eval_tasks` links it to the A/B tasks that carry it, so a task
 * made for an earlier eval of the same pair on the same prompt is reused, not labeled twice.
 */
import { type ColumnDefinitionBuilder, type Kysely, type Migration, sql } from 'kysely';
import type { DialectName } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the untyped schema of their own time
type Db = Kysely<any>;

export function evalsMigration(dialect: DialectName): Migration {
  const idType = dialect === 'postgres' ? 'serial' : 'integer';
  const id = (c: ColumnDefinitionBuilder) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement());
  return {
    async up(db: Db) {
      await db.schema
        .createTable('evals')
        .addColumn('id', idType, id)
        .addColumn('model_a', 'text', (c) => c.notNull())
        .addColumn('model_b', 'text', (c) => c.notNull().check(sql`model_b <> model_a`))
        .addColumn('created_by', 'integer', (c) => c.references('users.id'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('eval_tasks')
        .addColumn('eval_id', 'integer', (c) => c.notNull().references('evals.id').onDelete('cascade'))
        .addColumn('task_id', 'integer', (c) => c.notNull().references('tasks.id'))
        .addPrimaryKeyConstraint('eval_tasks_pk', ['eval_id', 'task_id'])
        .execute();
      await db.schema.createIndex('eval_tasks_task').on('eval_tasks').column('task_id').execute();
    },
    async down(db: Db) {
      await db.schema.dropTable('eval_tasks').execute();
      await db.schema.dropTable('evals').execute();
    },
  };
}
