/**
 * Curation: the admin's review of submitted work, the labelers' skips and reports, and archiving and editing prompts,
 * tasks and gold items.
 *
 * The rules, so that nothing is lost silently:
 * - A submission is a done assignment with what it stored. Rejecting it (with a reason) keeps every row but takes it
 *   out of every export, and gives its seat back, so a task that needs more answers returns to the queue (never to
 *   the labeler whose work was rejected). Accepting a rejected one again takes the seat back.
 * - Archiving is the admin's delete. An archived prompt archives its tasks with it; an archived task is no longer
 *   handed out, an open assignment of it can no longer be submitted, and its submissions leave the exports; an
 *   archived gold item leaves screening and live checks. Every archive can be undone.
 * - Text that work was done on is not edited in place (the labels would silently describe another text): a prompt
 *   with submissions, or a gold item someone has answered, is archived and added again instead.
 */
import { type ExpressionBuilder, sql } from 'kysely';
import { Aggregate, count, isBlank } from './aggregate.js';
import { StoreError } from './errors.js';
import { rankingLabelError } from './jsonl.js';
import type { RankingOrder } from './ranking.js';
import type { Database, Review, Split, TaskKind } from './schema.js';

export interface SubmissionQuery {
  limit: number;
  offset: number;
  assignmentId?: number;
  taskId?: number;
  userId?: number;
  kind?: TaskKind;
  review?: Review | 'pending';
  /** Searches the prompt (case-insensitive, literally). */
  q?: string;
}

export interface SubmissionRow {
  assignmentId: number;
  taskId: number;
  kind: TaskKind;
  prompt: string;
  promptId: number;
  userId: number;
  username: string;
  completedAt: number | null;
  review: Review | null;
  reviewReason: string | null;
  /** What was submitted: a demonstration's text, a ranking with its responses, or an A/B choice. */
  completion: string | null;
  responses: string[] | null;
  ranking: RankingOrder | null;
  choice: 'a' | 'b' | 'tie' | null;
}

export interface ReportRow {
  id: number;
  promptId: number;
  prompt: string;
  taskId: number;
  username: string;
  reason: string;
  createdAt: number;
  resolution: 'dismissed' | 'archived' | null;
  promptArchived: boolean;
}

type Reviewed = ExpressionBuilder<Database, 'assignments'>;
export const notRejected = (eb: Reviewed) =>
  eb.or([eb('assignments.review', 'is', null), eb('assignments.review', '!=', 'rejected')]);

/**
 * The labels that count (exports, the dashboard's dataset sizes and per-labeler figures): not on an archived prompt,
 * and when a labeler submitted them, not rejected in review nor on an archived task. Imported labels belong to no
 * assignment. The query joins prompts and left-joins the label's assignment and its task.
 */
export function keptLabel(eb: ExpressionBuilder<Database, 'prompts' | 'assignments' | 'tasks'>) {
  return eb.and([
    eb('prompts.archived_at', 'is', null),
    eb.or([eb('assignments.id', 'is', null), eb.and([eb('tasks.archived_at', 'is', null), notRejected(eb)])]),
  ]);
}

/** `lower(column) like %q%` with q's wildcards escaped (SQLite's LIKE ignores ASCII case, PostgreSQL's does not). */
export function likeText(q: string) {
  return sql<string>`${`%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`} escape '\\'`;
}

export class Curation extends Aggregate {
  /** Submitted work, newest first, for the review queue: filtered by task, labeler, kind, review state or prompt. */
  async submissions(q: SubmissionQuery): Promise<{ total: number; submissions: SubmissionRow[] }> {
    const matching = () => {
      let query = this.db
        .selectFrom('assignments')
        .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
        .innerJoin('prompts', 'prompts.id', 'tasks.prompt_id')
        .innerJoin('users', 'users.id', 'assignments.user_id')
        .where('assignments.status', '=', 'done')
        // Hidden gold checks are scored, not reviewed.
        .where('tasks.gold_id', 'is', null);
      if (q.assignmentId !== undefined) query = query.where('assignments.id', '=', q.assignmentId);
      if (q.taskId !== undefined) query = query.where('tasks.id', '=', q.taskId);
      if (q.userId !== undefined) query = query.where('assignments.user_id', '=', q.userId);
      if (q.kind) query = query.where('tasks.kind', '=', q.kind);
      if (q.review === 'pending') query = query.where('assignments.review', 'is', null);
      else if (q.review) query = query.where('assignments.review', '=', q.review);
      if (q.q) query = query.where((eb) => eb(eb.fn('lower', ['prompts.text']), 'like', likeText(q.q!)));
      return query;
    };
    const rows = await matching()
      .leftJoin('demonstrations', 'demonstrations.assignment_id', 'assignments.id')
      .leftJoin('rankings', 'rankings.assignment_id', 'assignments.id')
      .leftJoin('comparisons', 'comparisons.assignment_id', 'assignments.id')
      .select([
        'assignments.id as assignmentId',
        'tasks.id as taskId',
        'tasks.kind',
        'tasks.set_id',
        'prompts.text as prompt',
        'prompts.id as promptId',
        'users.id as userId',
        'users.username',
        'assignments.completed_at as completedAt',
        'assignments.review',
        'assignments.review_reason as reviewReason',
        'demonstrations.completion',
        'rankings.ranking',
        'comparisons.choice',
      ])
      .orderBy('assignments.completed_at', 'desc')
      .orderBy('assignments.id', 'desc')
      .limit(q.limit)
      .offset(q.offset)
      .execute();
    const { n } = await matching()
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const submissions: SubmissionRow[] = [];
    for (const { set_id, ranking, ...r } of rows) {
      const responses = set_id === null ? null : (await this.s.prompts.setResponses(set_id)).map((x) => x.text);
      submissions.push({
        ...r,
        responses,
        ranking: ranking === null ? null : (JSON.parse(ranking) as RankingOrder),
        completion: r.completion ?? null,
        choice: r.choice ?? null,
      });
    }
    return { total: count(n), submissions };
  }

  /**
   * Accepts or rejects submitted work (a rejection needs its reason). Rejecting gives the task's seat back, so a task
   * that needs more answers goes back to the queue; accepting rejected work again takes the seat back.
   */
  async review(assignmentId: number, adminId: number, decision: Review, reason?: string): Promise<SubmissionRow> {
    if (decision === 'rejected' && (!reason || isBlank(reason)))
      throw new StoreError('invalid', 'say why the work is rejected: the reason is shown in the review queue');
    await this.s.tx(async (s) => {
      const row = await s.db
        .selectFrom('assignments')
        .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
        .select(['assignments.status', 'assignments.review', 'assignments.task_id', 'tasks.gold_id'])
        .where('assignments.id', '=', assignmentId)
        .$if(s.dialect === 'postgres', (qb) => qb.forUpdate())
        .executeTakeFirst();
      if (row?.status !== 'done' || row.gold_id !== null)
        throw new StoreError('not_found', `no submitted work for assignment ${assignmentId}`);
      const seat = (row.review === 'rejected' ? 1 : 0) - (decision === 'rejected' ? 1 : 0);
      if (seat !== 0) {
        await s.db
          .updateTable('tasks')
          .set((eb) => ({ assigned_count: eb('assigned_count', '+', seat) }))
          .where('id', '=', row.task_id)
          .execute();
      }
      await s.db
        .updateTable('assignments')
        .set({
          review: decision,
          review_reason: decision === 'rejected' ? reason!.trim() : (reason?.trim() ?? null),
          reviewed_by: adminId,
          reviewed_at: s.now(),
        })
        .where('id', '=', assignmentId)
        .execute();
    });
    return (await this.submissions({ limit: 1, offset: 0, assignmentId })).submissions[0];
  }

  /**
   * The labeler passes on an open assignment: its seat goes back to the pool for someone else, and it is never
   * handed to this labeler again. Marked expired too, so every query for live assignments already skips it.
   */
  async skip(assignmentId: number, userId: number): Promise<void> {
    await this.s.tx(async (s) => {
      const row = await s.tasks.row(assignmentId, userId);
      if (row.status !== 'open' || row.skipped_at !== null)
        throw new StoreError('conflict', `assignment ${assignmentId} is not open: nothing to skip`);
      const r = await s.db
        .updateTable('assignments')
        .set({ skipped_at: s.now(), expired_at: row.expired_at ?? s.now() })
        .where('id', '=', assignmentId)
        .where('skipped_at', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1)
        throw new StoreError('conflict', `assignment ${assignmentId} was skipped already`);
      // An expired assignment's seat went back when it expired.
      if (row.expired_at === null) {
        await s.db
          .updateTable('tasks')
          .set((eb) => ({ assigned_count: eb('assigned_count', '-', 1) }))
          .where('id', '=', row.task_id)
          .execute();
      }
    });
  }

  /** "Report this prompt": kept for the admins' review queue; the labeler moves on (the assignment is skipped). */
  async report(assignmentId: number, userId: number, reason: string): Promise<number> {
    if (isBlank(reason)) throw new StoreError('invalid', 'say what is wrong with the prompt');
    return this.s.tx(async (s) => {
      const row = await s.tasks.row(assignmentId, userId);
      await s.curation.skip(assignmentId, userId);
      const { id } = await s.db
        .insertInto('reports')
        .values({
          prompt_id: row.prompt_id,
          assignment_id: assignmentId,
          user_id: userId,
          reason: reason.trim(),
          created_at: s.now(),
          resolution: null,
          resolved_by: null,
          resolved_at: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return id;
    });
  }

  async reports(state: 'open' | 'resolved' | 'all'): Promise<ReportRow[]> {
    const rows = await this.db
      .selectFrom('reports')
      .innerJoin('prompts', 'prompts.id', 'reports.prompt_id')
      .innerJoin('assignments', 'assignments.id', 'reports.assignment_id')
      .innerJoin('users', 'users.id', 'reports.user_id')
      .select([
        'reports.id',
        'reports.prompt_id as promptId',
        'prompts.text as prompt',
        'prompts.archived_at',
        'assignments.task_id as taskId',
        'users.username',
        'reports.reason',
        'reports.created_at as createdAt',
        'reports.resolution',
      ])
      .$if(state === 'open', (qb) => qb.where('reports.resolved_at', 'is', null))
      .$if(state === 'resolved', (qb) => qb.where('reports.resolved_at', 'is not', null))
      .orderBy('reports.id', 'desc')
      .limit(1000)
      .execute();
    return rows.map(({ archived_at, ...r }) => ({ ...r, promptArchived: archived_at !== null }));
  }

  /** Closes a report: dismissed, or its prompt archived (with its tasks). */
  async resolveReport(id: number, adminId: number, action: 'dismiss' | 'archive'): Promise<void> {
    await this.s.tx(async (s) => {
      const report = await s.db.selectFrom('reports').selectAll().where('id', '=', id).executeTakeFirst();
      if (!report) throw new StoreError('not_found', `no report ${id}`);
      if (action === 'archive') await s.curation.archivePrompt(report.prompt_id, true);
      await s.db
        .updateTable('reports')
        .set({
          resolution: action === 'archive' ? 'archived' : 'dismissed',
          resolved_by: adminId,
          resolved_at: s.now(),
        })
        .where('id', '=', id)
        .execute();
    });
  }

  /** Archives (or restores) a prompt and, with it, its tasks that were not archived on their own. */
  async archivePrompt(promptId: number, archived: boolean): Promise<void> {
    await this.s.tx(async (s) => {
      const prompt = await s.prompts.get(promptId);
      if (!prompt) throw new StoreError('not_found', `no prompt ${promptId}`);
      if (archived === (prompt.archived_at !== null)) return;
      const at = archived ? s.now() : null;
      await s.db.updateTable('prompts').set({ archived_at: at }).where('id', '=', promptId).execute();
      // Restoring brings back exactly the tasks archived with the prompt (same instant), not ones archived alone.
      await s.db
        .updateTable('tasks')
        .set({ archived_at: at })
        .where('prompt_id', '=', promptId)
        .where('archived_at', archived ? 'is' : '=', archived ? null : prompt.archived_at)
        .execute();
    });
  }

  /** Edits a prompt's text or split; refused once work was submitted on it (archive it and add it anew). */
  async editPrompt(promptId: number, patch: { text?: string; split?: Split }): Promise<void> {
    if (patch.text !== undefined && isBlank(patch.text)) throw new StoreError('invalid', 'the prompt is empty');
    await this.s.tx(async (s) => {
      const prompt = await s.prompts.get(promptId);
      if (!prompt) throw new StoreError('not_found', `no prompt ${promptId}`);
      const work = await s.db
        .selectFrom('assignments')
        .innerJoin('tasks', 'tasks.id', 'assignments.task_id')
        .select('assignments.id')
        .where('tasks.prompt_id', '=', promptId)
        .where('assignments.status', '=', 'done')
        .limit(sql.lit(1))
        .executeTakeFirst();
      const stored = await s.db
        .selectFrom('demonstrations')
        .select('id')
        .where('prompt_id', '=', promptId)
        .union(s.db.selectFrom('rankings').select('id').where('prompt_id', '=', promptId))
        .limit(sql.lit(1))
        .executeTakeFirst();
      if (work || stored)
        throw new StoreError(
          'conflict',
          `prompt ${promptId} already has labels: editing it would change what they answer — archive it and add the new text`,
        );
      await s.db
        .updateTable('prompts')
        .set({
          ...(patch.text !== undefined ? { text: patch.text } : {}),
          ...(patch.split ? { split: patch.split } : {}),
        })
        .where('id', '=', promptId)
        .execute();
      if (patch.split)
        await s.db.updateTable('tasks').set({ split: patch.split }).where('prompt_id', '=', promptId).execute();
    });
  }

  /** Changes how many labelers a task needs, or archives / restores it. */
  async editTask(taskId: number, patch: { target?: number; archived?: boolean }): Promise<void> {
    await this.s.tx(async (s) => {
      const task = await s.db
        .selectFrom('tasks')
        .select(['id', 'archived_at'])
        .where('id', '=', taskId)
        .where('gold_id', 'is', null)
        .executeTakeFirst();
      if (!task) throw new StoreError('not_found', `no task ${taskId}`);
      const set: { target?: number; archived_at?: number | null } = {};
      if (patch.target !== undefined) set.target = patch.target;
      if (patch.archived !== undefined && patch.archived !== (task.archived_at !== null))
        set.archived_at = patch.archived ? s.now() : null;
      if (Object.keys(set).length > 0) await s.db.updateTable('tasks').set(set).where('id', '=', taskId).execute();
    });
  }

  /**
   * Edits a gold item (prompt, responses, ranking) until someone has answered it in live work; archives or restores
   * it at any time (archiving takes it out of the screening test).
   */
  async editGold(
    goldId: number,
    patch: { prompt?: string; responses?: string[]; ranking?: RankingOrder; archived?: boolean },
  ): Promise<void> {
    await this.s.tx(async (s) => {
      const gold = await s.db.selectFrom('gold_items').selectAll().where('id', '=', goldId).executeTakeFirst();
      if (!gold) throw new StoreError('not_found', `no gold item ${goldId}`);
      const { archived, ...content } = patch;
      if (Object.keys(content).length > 0) {
        const task = await s.db.selectFrom('tasks').select('id').where('gold_id', '=', goldId).executeTakeFirst();
        if (task)
          throw new StoreError(
            'conflict',
            `gold item ${goldId} was already met in live work: archive it and add the corrected item`,
          );
        const prompt = content.prompt ?? gold.prompt;
        const responses = content.responses ?? (JSON.parse(gold.responses) as string[]);
        const ranking = content.ranking ?? (JSON.parse(gold.ranking) as RankingOrder);
        if (isBlank(prompt) || responses.some(isBlank)) throw new StoreError('invalid', 'a gold text is empty');
        if (new Set(responses.map((r) => r.trim())).size !== responses.length)
          throw new StoreError('invalid', 'two gold responses are the same text');
        const err = rankingLabelError({ ranking }, responses.length);
        if (err) throw new StoreError('invalid', err);
        await s.db
          .updateTable('gold_items')
          .set({ prompt, responses: JSON.stringify(responses), ranking: JSON.stringify(ranking) })
          .where('id', '=', goldId)
          .execute();
      }
      if (archived !== undefined && archived !== (gold.archived_at !== null)) {
        await s.db
          .updateTable('gold_items')
          .set({ archived_at: archived ? s.now() : null, ...(archived ? { in_screening: 0 } : {}) })
          .where('id', '=', goldId)
          .execute();
      }
    });
  }
}
