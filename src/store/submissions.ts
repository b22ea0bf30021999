/** A labeler's answer to an assignment: a demonstration, a ranking (or a gold check) or an A/B choice. */
import { Aggregate, isBlank, jsonOrNull } from './aggregate.js';
import { StoreError } from './errors.js';
import { rankingLabelError } from './jsonl.js';
import { prepared } from './prepared.js';
import { pairwiseAgreement, type RankingOrder } from './ranking.js';
import type { Choice, TaskKind } from './schema.js';
import type { AssignmentRow } from './tasks.js';

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

/** What a labeler sends for an assignment: the fields of its kind (`ANSWER_FIELDS`) and no others. */
export type Answer = Partial<RankingLabel> & { completion?: string; choice?: Choice };

export const ANSWER_FIELDS: Record<TaskKind, { allowed: (keyof Answer)[]; required: keyof Answer }> = {
  demonstration: { allowed: ['completion'], required: 'completion' },
  ranking: { allowed: ['ranking', 'likert', 'flags'], required: 'ranking' },
  ab: { allowed: ['choice'], required: 'choice' },
};

const insertDemonstration = prepared(
  (db, v: { promptId: number; completion: string; assignmentId: number; userId: number; now: number }) =>
    db
      .insertInto('demonstrations')
      .values({
        prompt_id: v.promptId,
        completion: v.completion,
        assignment_id: v.assignmentId,
        user_id: v.userId,
        labeler: null,
        created_at: v.now,
      })
      .returning('id'),
);

export class Submissions extends Aggregate {
  /**
   * A labeler's answer to their assignment, whatever its kind; `invalid` when the fields are not its kind's. An open
   * assignment is marked done as it is read; any refusal below rolls that back with the rest.
   */
  async submit(assignmentId: number, userId: number, answer: Answer): Promise<SubmitResult> {
    return this.s.tx(async (s) => {
      const finished = await s.tasks.finishIfOpen(assignmentId, userId);
      const row = finished ?? (await s.tasks.row(assignmentId, userId));
      const { allowed, required } = ANSWER_FIELDS[row.kind];
      const given = (Object.keys(answer) as (keyof Answer)[]).filter((f) => answer[f] !== undefined);
      if (answer[required] === undefined || given.some((f) => !allowed.includes(f))) {
        throw new StoreError('invalid', `a ${row.kind} task takes ${allowed.map((a) => `"${a}"`).join(', ')}`);
      }
      const done = finished !== undefined;
      if (row.kind === 'demonstration') return s.submissions.demonstrationFor(row, done, answer.completion!);
      if (row.kind === 'ranking') return s.submissions.rankingFor(row, done, answer as RankingLabel);
      return s.submissions.abFor(row, done, answer.choice!);
    });
  }

  demonstration(assignmentId: number, userId: number, completion: string): Promise<SubmitResult> {
    return this.submit(assignmentId, userId, { completion });
  }

  ranking(assignmentId: number, userId: number, label: RankingLabel): Promise<SubmitResult> {
    return this.submit(assignmentId, userId, label);
  }

  /** `choice` is what the labeler saw ('a' = left); it is stored un-swapped, relative to the task's models. */
  ab(assignmentId: number, userId: number, choice: Choice): Promise<SubmitResult> {
    return this.submit(assignmentId, userId, { choice });
  }

  /**
   * Checks that the assignment can take a submission. A late submission (after the task went back to the pool) is
   * still accepted while the task has room, and then takes its place again; once other labelers have filled the task
   * it is refused with `expired` (410) and nothing is stored.
   */
  private async open(row: AssignmentRow) {
    if (row.status !== 'open') throw new StoreError('conflict', `assignment ${row.id} was already submitted`);
    if (row.skipped_at !== null)
      throw new StoreError('conflict', `assignment ${row.id} was skipped; nothing was stored — ask for a new task`);
    if (row.task_archived_at !== null)
      throw new StoreError(
        'expired',
        `assignment ${row.id}'s task was withdrawn by an admin; nothing was stored — ask for a new task`,
      );
    if (row.expired_at !== null) {
      await this.db.updateTable('assignments').set({ expired_at: null }).where('id', '=', row.id).execute();
      // Taking the seat back is one conditional statement (see Tasks.takeSeat); when it fails the transaction
      // rolls back and nothing is stored.
      if (!(await this.s.tasks.takeSeat(row.task_id))) {
        throw new StoreError(
          'expired',
          `assignment ${row.id} passed its deadline and its task went to another labeler; nothing was stored — ask for a new task`,
        );
      }
    }
  }

  /** Marks it done, unless `finishIfOpen` already did. */
  private async finish(assignmentId: number, done: boolean) {
    if (done) return;
    const r = await this.db
      .updateTable('assignments')
      .set({ status: 'done', completed_at: this.now() })
      .where('id', '=', assignmentId)
      .where('status', '=', 'open')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1)
      throw new StoreError('conflict', `assignment ${assignmentId} was already submitted`);
  }

  private async demonstrationFor(row: AssignmentRow, done: boolean, completion: string): Promise<SubmitResult> {
    if (isBlank(completion)) throw new StoreError('invalid', 'the completion is empty: write the answer first');
    await this.open(row);
    await this.finish(row.id, done);
    const { id } = (await insertDemonstration(this.s, {
      promptId: row.prompt_id,
      completion,
      assignmentId: row.id,
      userId: row.user_id,
      now: this.now(),
    }))!;
    return { assignmentId: row.id, kind: 'demonstration', storedId: id };
  }

  private async rankingFor(row: AssignmentRow, done: boolean, label: RankingLabel): Promise<SubmitResult> {
    await this.open(row);
    const k = (await this.s.prompts.setResponses(row.set_id!)).length;
    const err = rankingLabelError(label, k);
    if (err) throw new StoreError('invalid', err);
    await this.finish(row.id, done);
    if (row.gold_id !== null) {
      // Answered like any ranking (the labeler cannot tell), scored against gold instead of stored for training.
      const gold = await this.db
        .selectFrom('gold_items')
        .select('ranking')
        .where('id', '=', row.gold_id)
        .executeTakeFirstOrThrow();
      const { id } = await this.db
        .insertInto('gold_answers')
        .values({
          gold_id: row.gold_id,
          user_id: row.user_id,
          assignment_id: row.id,
          ranking: JSON.stringify(label.ranking),
          agreement: pairwiseAgreement(label.ranking, JSON.parse(gold.ranking)),
          created_at: this.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return { assignmentId: row.id, kind: 'ranking', storedId: id };
    }
    const { id } = await this.db
      .insertInto('rankings')
      .values({
        prompt_id: row.prompt_id,
        set_id: row.set_id!,
        ranking: JSON.stringify(label.ranking),
        likert: jsonOrNull(label.likert),
        flags: jsonOrNull(label.flags),
        assignment_id: row.id,
        user_id: row.user_id,
        labeler: null,
        created_at: this.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { assignmentId: row.id, kind: 'ranking', storedId: id };
  }

  private async abFor(row: AssignmentRow, done: boolean, choice: Choice): Promise<SubmitResult> {
    await this.open(row);
    const [ra, rb] = await this.s.prompts.setResponses(row.set_id!);
    const stored: Choice = row.swapped && choice !== 'tie' ? (choice === 'a' ? 'b' : 'a') : choice;
    await this.finish(row.id, done);
    const { id } = await this.db
      .insertInto('comparisons')
      .values({
        kind: 'eval',
        prompt: row.prompt,
        a_text: ra.text,
        b_text: rb.text,
        model_a: ra.model,
        model_b: rb.model,
        choice: stored,
        assignment_id: row.id,
        user_id: row.user_id,
        labeler: null,
        created_at: this.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { assignmentId: row.id, kind: 'ab', storedId: id };
  }
}
