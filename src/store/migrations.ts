/**
 * Versioned migrations, written with Kysely's schema builder so the same list serves SQLite and PostgreSQL.
 * Append new versions; never edit a released one.
 */
import {
  type ColumnDefinitionBuilder,
  type Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  sql,
} from 'kysely';
import { jobsMigration } from './migration_0007_jobs.js';
import { evalsMigration } from './migration_0008_evals.js';
import { curationMigration } from './migration_0009_curation.js';
import { versionsMigration } from './migration_0010_versions.js';
import { numbersMigration } from './migration_0011_numbers.js';
import type { Database } from './schema.js';

export type DialectName = 'sqlite' | 'postgres';

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the untyped schema of their own time
type Db = Kysely<any>;

function migrationsFor(dialect: DialectName): Record<string, Migration> {
  const idType = dialect === 'postgres' ? 'serial' : 'integer';
  const id = (c: ColumnDefinitionBuilder) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement());
  const ms = 'bigint';
  // PostgreSQL's `real` is 4 bytes and would round scores; SQLite's is already 8.
  const real = dialect === 'postgres' ? 'double precision' : 'real';
  return {
    '0001_initial': {
      async up(db: Db) {
        await db.schema
          .createTable('groups')
          .addColumn('id', idType, id)
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('split', 'text', (c) => c.notNull().check(sql`split in ('training', 'heldout')`))
          .execute();
        await db
          .insertInto('groups')
          .values([
            { name: 'training', split: 'training' },
            { name: 'heldout', split: 'heldout' },
          ])
          .execute();
        await db.schema
          .createTable('users')
          .addColumn('id', idType, id)
          .addColumn('username', 'text', (c) => c.notNull().unique())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('admin', 'labeler')`))
          .addColumn('group_id', 'integer', (c) => c.references('groups.id'))
          .addColumn('screening_passed', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('chat_replies', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('csrf_token', 'text', (c) => c.notNull())
          .addColumn('created_at', ms, (c) => c.notNull())
          .addColumn('expires_at', ms, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('sessions_expires').on('sessions').column('expires_at').execute();
        await db.schema
          .createTable('prompts')
          .addColumn('id', idType, id)
          .addColumn('text', 'text', (c) => c.notNull())
          .addColumn('split', 'text', (c) => c.notNull().check(sql`split in ('training', 'heldout')`))
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('prompts_text').on('prompts').column('text').execute();
        await db.schema
          .createTable('candidate_sets')
          .addColumn('id', idType, id)
          .addColumn('prompt_id', 'integer', (c) => c.notNull().references('prompts.id'))
          .addColumn('model', 'text', (c) => c.notNull())
          .addColumn('pooled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('candidate_sets_pool')
          .on('candidate_sets')
          .columns(['model', 'pooled', 'prompt_id'])
          .execute();
        await db.schema
          .createTable('responses')
          .addColumn('id', idType, id)
          .addColumn('set_id', 'integer', (c) => c.notNull().references('candidate_sets.id'))
          .addColumn('idx', 'integer', (c) => c.notNull())
          .addColumn('text', 'text', (c) => c.notNull())
          .addColumn('model', 'text', (c) => c.notNull())
          .addUniqueConstraint('responses_set_idx', ['set_id', 'idx'])
          .execute();
        await db.schema
          .createTable('tasks')
          .addColumn('id', idType, id)
          .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('demonstration', 'ranking', 'ab')`))
          .addColumn('prompt_id', 'integer', (c) => c.notNull().references('prompts.id'))
          .addColumn('set_id', 'integer', (c) => c.references('candidate_sets.id'))
          .addColumn('split', 'text', (c) => c.notNull())
          .addColumn('target', 'integer', (c) => c.notNull())
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('tasks_split').on('tasks').columns(['split', 'id']).execute();
        await db.schema
          .createTable('assignments')
          .addColumn('id', idType, id)
          .addColumn('task_id', 'integer', (c) => c.notNull().references('tasks.id'))
          .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
          .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open', 'done')`))
          .addColumn('swapped', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', ms, (c) => c.notNull())
          .addColumn('completed_at', ms)
          // A task is never handed to the same labeler twice.
          .addUniqueConstraint('assignments_task_user', ['task_id', 'user_id'])
          .execute();
        await db.schema.createIndex('assignments_user').on('assignments').columns(['user_id', 'status']).execute();
        await db.schema
          .createTable('demonstrations')
          .addColumn('id', idType, id)
          .addColumn('prompt_id', 'integer', (c) => c.notNull().references('prompts.id'))
          .addColumn('completion', 'text', (c) => c.notNull())
          .addColumn('assignment_id', 'integer', (c) => c.unique().references('assignments.id'))
          .addColumn('user_id', 'integer', (c) => c.references('users.id'))
          .addColumn('labeler', 'text')
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('rankings')
          .addColumn('id', idType, id)
          .addColumn('prompt_id', 'integer', (c) => c.notNull().references('prompts.id'))
          .addColumn('set_id', 'integer', (c) => c.notNull().references('candidate_sets.id'))
          .addColumn('ranking', 'text', (c) => c.notNull())
          .addColumn('likert', 'text')
          .addColumn('flags', 'text')
          .addColumn('assignment_id', 'integer', (c) => c.unique().references('assignments.id'))
          .addColumn('user_id', 'integer', (c) => c.references('users.id'))
          .addColumn('labeler', 'text')
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('comparisons')
          .addColumn('id', idType, id)
          .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('eval', 'chat', 'pairwise')`))
          .addColumn('prompt', 'text', (c) => c.notNull())
          .addColumn('a_text', 'text', (c) => c.notNull())
          .addColumn('b_text', 'text', (c) => c.notNull())
          .addColumn('model_a', 'text')
          .addColumn('model_b', 'text')
          .addColumn('choice', 'text', (c) => c.check(sql`choice in ('a', 'b', 'tie')`))
          .addColumn('assignment_id', 'integer', (c) => c.unique().references('assignments.id'))
          .addColumn('user_id', 'integer', (c) => c.references('users.id'))
          .addColumn('labeler', 'text')
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('gold_items')
          .addColumn('id', idType, id)
          .addColumn('prompt', 'text', (c) => c.notNull())
          .addColumn('responses', 'text', (c) => c.notNull())
          .addColumn('ranking', 'text', (c) => c.notNull())
          .addColumn('in_screening', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('screening_results')
          .addColumn('id', idType, id)
          .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
          .addColumn('score', real, (c) => c.notNull())
          .addColumn('passed', 'integer', (c) => c.notNull())
          .addColumn('answers', 'text', (c) => c.notNull())
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('settings')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('idempotency_keys')
          .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('route', 'text', (c) => c.notNull())
          .addColumn('body_hash', 'text', (c) => c.notNull())
          .addColumn('status', 'integer', (c) => c.notNull())
          .addColumn('response', 'text', (c) => c.notNull())
          .addColumn('created_at', ms, (c) => c.notNull())
          .addPrimaryKeyConstraint('idempotency_keys_pk', ['user_id', 'key'])
          .execute();
      },
      async down(db: Db) {
        for (const t of [
          'idempotency_keys',
          'settings',
          'screening_results',
          'gold_items',
          'comparisons',
          'rankings',
          'demonstrations',
          'assignments',
          'tasks',
          'responses',
          'candidate_sets',
          'prompts',
          'sessions',
          'users',
          'groups',
        ]) {
          await db.schema.dropTable(t).execute();
        }
      },
    },
    // Handing out a task used to count each task's assignments for every task scanned; a counter kept in the same
    // transaction as the assignment, and an index over only the tasks that still need labelers, make it one seek.
    '0002_task_capacity': {
      async up(db: Db) {
        await db.schema
          .alterTable('tasks')
          .addColumn('assigned_count', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db
          .updateTable('tasks')
          .set((eb) => ({
            assigned_count: eb
              .selectFrom('assignments')
              .select((e) => e.fn.countAll().as('n'))
              .whereRef('assignments.task_id', '=', 'tasks.id'),
          }))
          .execute();
        await db.schema
          .createIndex('tasks_needing_labelers')
          .on('tasks')
          .columns(['split', 'id'])
          .where(sql.ref('assigned_count'), '<', sql.ref('target'))
          .execute();
      },
      async down(db: Db) {
        await db.schema.dropIndex('tasks_needing_labelers').execute();
        await db.schema.alterTable('tasks').dropColumn('assigned_count').execute();
      },
    },
    // An assignment not submitted by its deadline goes back to the pool: `expired_at` records when it was taken back
    // (status stays 'open' so the first release's check constraint holds on every dialect).
    '0003_assignment_deadlines': {
      async up(db: Db) {
        await db.schema.alterTable('assignments').addColumn('expires_at', ms).execute();
        await db.schema.alterTable('assignments').addColumn('expired_at', ms).execute();
        await db.schema
          .createIndex('assignments_pending_deadline')
          .on('assignments')
          .column('expires_at')
          .where(sql.ref('status'), '=', sql.lit('open'))
          .where(sql.ref('expired_at'), 'is', null)
          .execute();
      },
      async down(db: Db) {
        await db.schema.dropIndex('assignments_pending_deadline').execute();
        await db.schema.alterTable('assignments').dropColumn('expired_at').execute();
        await db.schema.alterTable('assignments').dropColumn('expires_at').execute();
      },
    },
    // Gold items mixed into live ranking work: a hidden task per gold item (target 0, so the pool never hands it out)
    // and each labeler's answer with its agreement, kept apart from the rankings that feed training.
    '0004_live_gold': {
      async up(db: Db) {
        await db.schema
          .alterTable('tasks')
          .addColumn('gold_id', 'integer', (c) => c.references('gold_items.id'))
          .execute();
        await db.schema.createIndex('tasks_gold').on('tasks').column('gold_id').execute();
        await db.schema
          .createTable('gold_answers')
          .addColumn('id', idType, id)
          .addColumn('gold_id', 'integer', (c) => c.notNull().references('gold_items.id'))
          .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
          .addColumn('assignment_id', 'integer', (c) => c.notNull().unique().references('assignments.id'))
          .addColumn('ranking', 'text', (c) => c.notNull())
          .addColumn('agreement', real, (c) => c.notNull())
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
      },
      async down(db: Db) {
        await db.schema.dropTable('gold_answers').execute();
        await db.schema.dropIndex('tasks_gold').execute();
        await db.schema.alterTable('tasks').dropColumn('gold_id').execute();
      },
    },
    '0005_chat_history': {
      async up(db: Db) {
        await db.schema
          .createTable('conversations')
          .addColumn('id', idType, id)
          .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
          .addColumn('title', 'text', (c) => c.notNull())
          .addColumn('created_at', ms, (c) => c.notNull())
          .addColumn('updated_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('conversations_recent')
          .on('conversations')
          .columns(['user_id', 'updated_at'])
          .execute();
        await db.schema
          .createTable('chat_messages')
          .addColumn('id', idType, id)
          .addColumn('conversation_id', 'integer', (c) => c.notNull().references('conversations.id'))
          .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('user', 'assistant')`))
          .addColumn('content', 'text', (c) => c.notNull())
          .addColumn('created_at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('chat_messages_conversation')
          .on('chat_messages')
          .columns(['conversation_id', 'id'])
          .execute();
        // A chat comparison waiting for its choice belongs to a conversation; the chosen reply continues it.
        await db.schema
          .alterTable('comparisons')
          .addColumn('conversation_id', 'integer', (c) => c.references('conversations.id'))
          .execute();
      },
      async down(db: Db) {
        await db.schema.alterTable('comparisons').dropColumn('conversation_id').execute();
        await db.schema.dropTable('chat_messages').execute();
        await db.schema.dropTable('conversations').execute();
      },
    },
    // Failed sign-ins, so that every app server on one database counts the same failures.
    '0006_login_failures': {
      async up(db: Db) {
        await db.schema
          .createTable('login_failures')
          .addColumn('id', idType, id)
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('address', 'text', (c) => c.notNull())
          .addColumn('at', ms, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('login_failures_pair')
          .on('login_failures')
          .columns(['username', 'address', 'at'])
          .execute();
      },
      async down(db: Db) {
        await db.schema.dropTable('login_failures').execute();
      },
    },
    '0007_jobs_models': jobsMigration(dialect),
    '0008_evals': evalsMigration(dialect),
    '0009_curation': curationMigration(dialect),
    '0010_versions': versionsMigration,
    '0011_numbers': numbersMigration,
  };
}

export class StaticMigrationProvider implements MigrationProvider {
  constructor(private readonly dialect: DialectName) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrationsFor(this.dialect);
  }
}

/** Kysely's migrator for this database. */
export async function migratorFor(
  db: Kysely<Database>,
  dialect: DialectName,
  provider: MigrationProvider = new StaticMigrationProvider(dialect),
): Promise<Migrator> {
  // Kysely looks for its own tables in every schema unless told which: name the one in use (the URL's search_path).
  const migrationTableSchema =
    dialect === 'postgres' ? (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0].s : undefined;
  // biome-ignore lint/suspicious/noExplicitAny: the migrator works on the untyped schema
  return new Migrator({ db: db as Kysely<any>, provider, migrationTableSchema });
}

/**
 * Brings the schema to the latest version. On PostgreSQL every pending migration runs in one transaction (its DDL is
 * transactional), so a failing one leaves the database as it was; Kysely also takes a lock, so app servers starting
 * together migrate once.
 */
export async function migrate(
  db: Kysely<Database>,
  dialect: DialectName,
  provider?: MigrationProvider,
): Promise<string[]> {
  const { error, results } = await (await migratorFor(db, dialect, provider)).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
