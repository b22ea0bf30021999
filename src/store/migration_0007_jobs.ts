/**
 * 0007: the model registry (`models`: every model folder the platform knows, with its lineage) and the training job
 * queue (`jobs`: what a worker claims, heartbeats and finishes). Kept in its own file so migrations.ts stays a list.
 */
import { type ColumnDefinitionBuilder, type Kysely, type Migration, sql } from 'kysely';
import type { DialectName } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the untyped schema of their own time
type Db = Kysely<any>;

export function jobsMigration(dialect: DialectName): Migration {
  const idType = dialect === 'postgres' ? 'serial' : 'integer';
  const id = (c: ColumnDefinitionBuilder) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement());
  const ms = 'bigint';
  return {
    async up(db: Db) {
      await db.schema
        .createTable('models')
        .addColumn('id', idType, id)
        .addColumn('name', 'text', (c) => c.notNull())
        // Absolute folder path: one registry entry per folder, so registering it again finds the same version.
        .addColumn('path', 'text', (c) => c.notNull().unique())
        .addColumn('kind', 'text', (c) =>
          c.notNull().check(sql`kind in ('base', 'sft', 'rm', 'ppo', 'dpo', 'grpo', 'registered')`),
        )
        // What the folder holds: a causal LM, or a scalar-head (reward/value) model.
        .addColumn('head', 'text', (c) => c.notNull().check(sql`head in ('causal', 'scalar')`))
        .addColumn('parent_id', 'integer', (c) => c.references('models.id'))
        .addColumn('job_id', 'integer')
        .addColumn('data_hash', 'text')
        .addColumn('config', 'text')
        .addColumn('metrics', 'text')
        .addColumn('params', ms)
        .addColumn('created_at', ms, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('jobs')
        .addColumn('id', idType, id)
        .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('sft', 'rm', 'ppo', 'dpo', 'grpo')`))
        .addColumn('state', 'text', (c) =>
          c.notNull().check(sql`state in ('queued', 'running', 'done', 'failed', 'cancelled')`),
        )
        .addColumn('base_model_id', 'integer', (c) => c.notNull().references('models.id'))
        .addColumn('reward_model_id', 'integer', (c) => c.references('models.id'))
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('dir', 'text', (c) => c.notNull())
        .addColumn('data_hash', 'text', (c) => c.notNull())
        .addColumn('data_count', 'integer', (c) => c.notNull())
        .addColumn('ptx', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('worker', 'text')
        .addColumn('heartbeat_at', ms)
        .addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('progress', 'text')
        .addColumn('metrics', 'text')
        .addColumn('log', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('error', 'text')
        .addColumn('model_id', 'integer', (c) => c.references('models.id'))
        .addColumn('created_by', 'integer', (c) => c.references('users.id'))
        .addColumn('created_at', ms, (c) => c.notNull())
        .addColumn('started_at', ms)
        .addColumn('finished_at', ms)
        .execute();
      await db.schema.createIndex('jobs_state').on('jobs').columns(['state', 'id']).execute();
    },
    async down(db: Db) {
      await db.schema.dropTable('jobs').execute();
      await db.schema.dropTable('models').execute();
    },
  };
}
