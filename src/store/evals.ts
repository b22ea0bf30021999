/**
 * Blind evaluations: an eval compares two model versions on held-out prompts through A/B tasks (answered by the
 * held-out labeler group only: tasks follow their prompt's split, and labelers get tasks of their group's split).
 * Outcomes are read back from the stored comparisons by model name, whatever side each task showed first.
 */
import { Aggregate, count } from './aggregate.js';
import { notRejected } from './curation.js';
import { StoreError } from './errors.js';
import type { Choice } from './schema.js';

/** One decided comparison between two versions (as the evaluation statistics take them). */
export interface ModelOutcome {
  a: string;
  b: string;
  result: Choice;
}

export interface EvalRow {
  id: number;
  modelA: string;
  modelB: string;
  createdAt: number;
  /** A/B tasks in the eval, and how many have all their answers. */
  tasks: number;
  done: number;
}

export class Evals extends Aggregate {
  /**
   * Stores an eval over these A/B tasks (each between the same two models, on a held-out prompt). With `labelers`, a
   * reused task that asks fewer labelers than that is raised to it, so that the eval's agreement can be measured.
   */
  async create(e: {
    modelA: string;
    modelB: string;
    createdBy: number | null;
    taskIds: number[];
    labelers?: number;
  }): Promise<number> {
    if (e.modelA === e.modelB) throw new StoreError('invalid', 'an eval compares two different models');
    return this.s.tx(async (s) => {
      const { id } = await s.db
        .insertInto('evals')
        .values({ model_a: e.modelA, model_b: e.modelB, created_by: e.createdBy, created_at: s.now() })
        .returning('id')
        .executeTakeFirstOrThrow();
      for (const taskId of new Set(e.taskIds)) {
        const task = await s.db
          .selectFrom('tasks')
          .select(['kind', 'split'])
          .where('id', '=', taskId)
          .executeTakeFirst();
        if (task?.kind !== 'ab' || task.split !== 'heldout') {
          throw new StoreError('invalid', `task ${taskId} is not an A/B task on a held-out prompt`);
        }
        await s.db.insertInto('eval_tasks').values({ eval_id: id, task_id: taskId }).execute();
      }
      if (e.labelers !== undefined && e.taskIds.length > 0) {
        await s.db
          .updateTable('tasks')
          .set({ target: e.labelers })
          .where('id', 'in', e.taskIds)
          .where('target', '<', e.labelers)
          .execute();
      }
      return id;
    });
  }

  async list(): Promise<EvalRow[]> {
    const rows = await this.db
      .selectFrom('evals')
      .select((eb) => [
        'evals.id',
        'evals.model_a',
        'evals.model_b',
        'evals.created_at',
        eb
          .selectFrom('eval_tasks')
          .select((e) => e.fn.countAll<number>().as('n'))
          .whereRef('eval_tasks.eval_id', '=', 'evals.id')
          .as('tasks'),
        eb
          .selectFrom('eval_tasks')
          .innerJoin('tasks', 'tasks.id', 'eval_tasks.task_id')
          .select((e) => e.fn.countAll<number>().as('n'))
          .whereRef('eval_tasks.eval_id', '=', 'evals.id')
          .where((w) =>
            w(
              w
                .selectFrom('assignments')
                .select((x) => x.fn.countAll<number>().as('n'))
                .whereRef('assignments.task_id', '=', 'tasks.id')
                .where('assignments.status', '=', 'done')
                .where(notRejected),
              '>=',
              w.ref('tasks.target'),
            ),
          )
          .as('done'),
      ])
      .orderBy('evals.id', 'desc')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      modelA: r.model_a,
      modelB: r.model_b,
      createdAt: r.created_at,
      tasks: count(r.tasks),
      done: count(r.done),
    }));
  }

  async get(id: number): Promise<EvalRow> {
    const row = (await this.list()).find((r) => r.id === id);
    if (!row) throw new StoreError('not_found', `no eval ${id}`);
    return row;
  }

  /** The eval's decided comparisons so far. */
  async outcomes(id: number): Promise<ModelOutcome[]> {
    const rows = await this.db
      .selectFrom('eval_tasks')
      .innerJoin('assignments', 'assignments.task_id', 'eval_tasks.task_id')
      .innerJoin('comparisons', 'comparisons.assignment_id', 'assignments.id')
      .select(['comparisons.model_a', 'comparisons.model_b', 'comparisons.choice'])
      .where('eval_tasks.eval_id', '=', id)
      // Work an admin rejected in review does not count (as it leaves every export).
      .where(notRejected)
      .orderBy('comparisons.id')
      .execute();
    return decided(rows);
  }

  /**
   * How often two labelers who answered the same prompt of the eval agree (the same winner, or both a tie), over
   * every such pair of answers: the eval's inter-labeler agreement (null until a prompt has two answers).
   */
  async agreement(id: number): Promise<{ rate: number | null; pairs: number; tasks: number }> {
    const rows = await this.db
      .selectFrom('eval_tasks')
      .innerJoin('assignments', 'assignments.task_id', 'eval_tasks.task_id')
      .innerJoin('comparisons', 'comparisons.assignment_id', 'assignments.id')
      .select(['eval_tasks.task_id', 'comparisons.model_a', 'comparisons.model_b', 'comparisons.choice'])
      .where('eval_tasks.eval_id', '=', id)
      .where(notRejected)
      .execute();
    const winners = new Map<number, string[]>();
    for (const r of rows) {
      if (!r.choice) continue;
      const winner = r.choice === 'tie' ? 'tie' : r.choice === 'a' ? r.model_a : r.model_b;
      winners.set(r.task_id, [...(winners.get(r.task_id) ?? []), winner ?? '']);
    }
    let pairs = 0;
    let agreeing = 0;
    let tasks = 0;
    for (const w of winners.values()) {
      if (w.length < 2) continue;
      tasks++;
      for (let i = 0; i < w.length; i++) {
        for (let j = i + 1; j < w.length; j++) {
          pairs++;
          if (w[i] === w[j]) agreeing++;
        }
      }
    }
    return { rate: pairs > 0 ? agreeing / pairs : null, pairs, tasks };
  }

  /**
   * Every decided blind A/B comparison between two different versions on a held-out prompt (evals and the admin's
   * own A/B tasks alike): what the Bradley–Terry table and the win rates against a baseline are fitted from.
   */
  async heldoutOutcomes(): Promise<ModelOutcome[]> {
    const rows = await this.db
      .selectFrom('comparisons')
      .innerJoin('assignments', 'assignments.id', 'comparisons.assignment_id')
      .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
      .select(['comparisons.model_a', 'comparisons.model_b', 'comparisons.choice'])
      .where('comparisons.kind', '=', 'eval')
      .where('tasks.split', '=', 'heldout')
      .where('tasks.archived_at', 'is', null)
      .where(notRejected)
      .orderBy('comparisons.id')
      .execute();
    return decided(rows);
  }

  /** Chat comparisons the users decided between replies of two different versions (reported on their own). */
  async chatOutcomes(): Promise<ModelOutcome[]> {
    const rows = await this.db
      .selectFrom('comparisons')
      .select(['model_a', 'model_b', 'choice'])
      .where('kind', '=', 'chat')
      .orderBy('id')
      .execute();
    return decided(rows);
  }

  /** Chat comparisons decided between two replies of one version (different samples): counted, not rated. */
  async chatSameModelCount(): Promise<number> {
    const { n } = await this.db
      .selectFrom('comparisons')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kind', '=', 'chat')
      .where('choice', 'is not', null)
      .whereRef('model_a', '=', 'model_b')
      .executeTakeFirstOrThrow();
    return count(n);
  }
}

function decided(rows: { model_a: string | null; model_b: string | null; choice: Choice | null }[]): ModelOutcome[] {
  const out: ModelOutcome[] = [];
  for (const r of rows) {
    if (r.choice && r.model_a && r.model_b && r.model_a !== r.model_b) {
      out.push({ a: r.model_a, b: r.model_b, result: r.choice });
    }
  }
  return out;
}
