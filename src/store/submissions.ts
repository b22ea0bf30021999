/** A labeler's answer to an assignment: a demonstration, a ranking (or a gold check) or an A/B choice. */
import { Aggregate, isBlank, jsonOrNull } from './aggregate.js';
import { StoreError } from './errors.js';
import { rankingLabelError } from './jsonl.js';
import { pairwiseAgreement, type RankingOrder } from './ranking.js';
import type { Choice, TaskKind } from './schema.js';

export interface RankingLabel {
  /** Best → worst; tied responses as an inner array. */
  ranking: RankingOrder;
  likert?: number[] | null;
  flags?: Record<string, number[]> | null;
}

export interface SubmitResult {
  assignmentId: number;
  kind: TaskKind;
  storedId: number;
}

export class Submissions extends Aggregate {
  /**
   * The assignment, ready to take a submission. A late submission (after the task went back to the pool) is still
   * accepted while the task has room, and then takes its place again; once other labelers have filled the task it
   * is refused with `expired` (410) and nothing is stored.
   */
  private async openRow(assignmentId: number, userId: number, kind: TaskKind) {
    const row = await this.s.tasks.row(assignmentId, userId);
    if (row.kind !== kind) throw new StoreError('invalid', `assignment ${assignmentId} is a ${row.kind} task`);
    if (row.status !== 'open') throw new StoreError('conflict', `assignment ${assignmentId} was already submitted`);
    if (row.skipped_at !== null)
      throw new StoreError(
        'conflict',
        `assignment ${assignmentId} was skipped; nothing was stored — ask for a new task`,
      );
    if (row.task_archived_at !== null)
      throw new StoreError(
        'expired',
        `assignment ${assignmentId}'s task was withdrawn by an admin; nothing was stored — ask for a new task`,
      );
    if (row.expired_at !== null) {
      await this.db.updateTable('assignments').set({ expired_at: null }).where('id', '=', assignmentId).execute();
      // Taking the seat back is one conditional statement (see Tasks.takeSeat); when it fails the transaction
      // rolls back and nothing is stored.
      if (!(await this.s.tasks.takeSeat(row.task_id))) {
        throw new StoreError(
          'expired',
          `assignment ${assignmentId} passed its deadline and its task went to another labeler; nothing was stored — ask for a new task`,
        );
      }
    }
    return row;
  }

  private async finish(assignmentId: number) {
    const r = await this.db
      .updateTable('assignments')
      .set({ status: 'done', completed_at: this.now() })
      .where('id', '=', assignmentId)
      .where('status', '=', 'open')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1)
      throw new StoreError('conflict', `assignment ${assignmentId} was already submitted`);
  }

  async demonstration(assignmentId: number, userId: number, completion: string): Promise<SubmitResult> {
    if (isBlank(completion)) throw new StoreError('invalid', 'the completion is empty: write the answer first');
    return this.s.tx(async (s) => {
      const row = await s.submissions.openRow(assignmentId, userId, 'demonstration');
      await s.submissions.finish(assignmentId);
      const { id } = await s.db
        .insertInto('demonstrations')
        .values({
          prompt_id: row.prompt_id,
          completion,
          assignment_id: assignmentId,
          user_id: userId,
          labeler: null,
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { assignmentId, kind: 'demonstration', storedId: id };
    });
  }

  async ranking(assignmentId: number, userId: number, label: RankingLabel): Promise<SubmitResult> {
    return this.s.tx(async (s) => {
      const row = await s.submissions.openRow(assignmentId, userId, 'ranking');
      const k = (await s.prompts.setResponses(row.set_id!)).length;
      const err = rankingLabelError(label, k);
      if (err) throw new StoreError('invalid', err);
      await s.submissions.finish(assignmentId);
      if (row.gold_id !== null) {
        // Answered like any ranking (the labeler cannot tell), scored against gold instead of stored for training.
        const gold = await s.db
          .selectFrom('gold_items')
          .select('ranking')
          .where('id', '=', row.gold_id)
          .executeTakeFirstOrThrow();
        const { id } = await s.db
          .insertInto('gold_answers')
          .values({
            gold_id: row.gold_id,
            user_id: userId,
            assignment_id: assignmentId,
            ranking: JSON.stringify(label.ranking),
            agreement: pairwiseAgreement(label.ranking, JSON.parse(gold.ranking)),
            created_at: s.now(),
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        return { assignmentId, kind: 'ranking', storedId: id };
      }
      const { id } = await s.db
        .insertInto('rankings')
        .values({
          prompt_id: row.prompt_id,
          set_id: row.set_id!,
          ranking: JSON.stringify(label.ranking),
          likert: jsonOrNull(label.likert),
          flags: jsonOrNull(label.flags),
          assignment_id: assignmentId,
          user_id: userId,
          labeler: null,
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { assignmentId, kind: 'ranking', storedId: id };
    });
  }

  /** `choice` is what the labeler saw ('a' = left); it is stored un-swapped, relative to the task's models. */
  async ab(assignmentId: number, userId: number, choice: Choice): Promise<SubmitResult> {
    return this.s.tx(async (s) => {
      const row = await s.submissions.openRow(assignmentId, userId, 'ab');
      const [ra, rb] = await s.prompts.setResponses(row.set_id!);
      const stored: Choice = row.swapped && choice !== 'tie' ? (choice === 'a' ? 'b' : 'a') : choice;
      await s.submissions.finish(assignmentId);
      const { id } = await s.db
        .insertInto('comparisons')
        .values({
          kind: 'eval',
          prompt: row.prompt,
          a_text: ra.text,
          b_text: rb.text,
          model_a: ra.model,
          model_b: rb.model,
          choice: stored,
          assignment_id: assignmentId,
          user_id: userId,
          labeler: null,
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { assignmentId, kind: 'ab', storedId: id };
    });
  }
}
