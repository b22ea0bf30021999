/** Gold items: the screening test, and gold rankings mixed into live work to keep measuring quality. */
import { sql } from 'kysely';
import { Aggregate, count, GOLD_SOURCE } from './aggregate.js';
import { StoreError } from './errors.js';
import { rankingLabelError } from './jsonl.js';
import { pairwiseAgreement, type RankingOrder } from './ranking.js';
import type { TaskKind } from './schema.js';

export interface ScreeningItem {
  goldId: number;
  prompt: string;
  responses: string[];
}

export interface GoldEntry {
  id: number;
  prompt: string;
  responses: string[];
  ranking: RankingOrder;
  inScreening: boolean;
  archived: boolean;
}

export class Gold extends Aggregate {
  async add(items: { prompt: string; responses: string[]; ranking: RankingOrder }[]): Promise<number[]> {
    return this.s.tx(async (s) => {
      const ids: number[] = [];
      for (const g of items) {
        const { id } = await s.db
          .insertInto('gold_items')
          .values({
            prompt: g.prompt,
            responses: JSON.stringify(g.responses),
            ranking: JSON.stringify(g.ranking),
            created_at: s.now(),
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        ids.push(id);
      }
      return ids;
    });
  }

  async list(): Promise<GoldEntry[]> {
    const rows = await this.db.selectFrom('gold_items').selectAll().orderBy('id').execute();
    return rows.map((r) => ({
      id: r.id,
      prompt: r.prompt,
      responses: JSON.parse(r.responses) as string[],
      ranking: JSON.parse(r.ranking) as RankingOrder,
      inScreening: r.in_screening === 1,
      archived: r.archived_at !== null,
    }));
  }

  /** Replaces the screening test with these gold items. */
  async setScreening(goldIds: number[]): Promise<void> {
    await this.s.tx(async (s) => {
      // An empty `in ()` is an error on PostgreSQL.
      const found =
        goldIds.length === 0
          ? []
          : await s.db
              .selectFrom('gold_items')
              .select('id')
              .where('id', 'in', goldIds)
              .where('archived_at', 'is', null)
              .execute();
      if (found.length !== new Set(goldIds).size) throw new StoreError('invalid', 'unknown or archived gold item id');
      await s.db.updateTable('gold_items').set({ in_screening: 0 }).execute();
      if (goldIds.length > 0) {
        await s.db.updateTable('gold_items').set({ in_screening: 1 }).where('id', 'in', goldIds).execute();
      }
    });
  }

  /** The screening test as a labeler sees it: no gold rankings. */
  async screeningItems(): Promise<ScreeningItem[]> {
    return (await this.list())
      .filter((g) => g.inScreening)
      .map((g) => ({ goldId: g.id, prompt: g.prompt, responses: g.responses }));
  }

  /** How many screening attempts this user has made (every one is kept). */
  async attempts(userId: number): Promise<number> {
    const { n } = await this.db
      .selectFrom('screening_results')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    return count(n);
  }

  /**
   * Scores an attempt against gold and keeps it. The labeler learns only pass or fail (a score would teach the gold
   * answers over a few tries); after `maxAttempts` (0 = no limit) failed attempts only an admin can let them through.
   */
  async submitScreening(
    userId: number,
    answers: { goldId: number; ranking: RankingOrder }[],
    limits: { threshold: number; maxAttempts: number },
  ): Promise<{ passed: boolean; attemptsLeft: number | null; resultId: number }> {
    return this.s.tx(async (s) => {
      const gold = (await s.gold.list()).filter((g) => g.inScreening);
      if (gold.length === 0) throw new StoreError('conflict', 'no screening test is set up');
      // Counting and then inserting: SQLite's single writer serialises it; on PostgreSQL two concurrent attempts
      // (on one server or two) queue on the user's row, so the second counts the first. NO KEY UPDATE, because the
      // idempotency key stored first holds a KEY SHARE lock on that row (its foreign key): FOR UPDATE deadlocked.
      if (s.dialect === 'postgres') {
        await s.db.selectFrom('users').select('id').where('id', '=', userId).forNoKeyUpdate().execute();
      }
      const made = await s.gold.attempts(userId);
      if (limits.maxAttempts > 0 && made >= limits.maxAttempts) {
        throw new StoreError(
          'forbidden',
          `no screening attempts left (${limits.maxAttempts} allowed): ask an admin to let you through`,
        );
      }
      const byId = new Map(answers.map((a) => [a.goldId, a.ranking]));
      if (byId.size !== answers.length) throw new StoreError('invalid', 'each gold item may be answered once');
      let total = 0;
      for (const g of gold) {
        const r = byId.get(g.id);
        if (!r) throw new StoreError('invalid', `missing answer for gold item ${g.id}`);
        const err = rankingLabelError({ ranking: r }, g.responses.length);
        if (err) throw new StoreError('invalid', `gold item ${g.id}: ${err}`);
        total += pairwiseAgreement(r, g.ranking);
      }
      if (byId.size !== gold.length) throw new StoreError('invalid', 'answers name items outside the screening test');
      const score = total / gold.length;
      const passed = score >= limits.threshold;
      const { id } = await s.db
        .insertInto('screening_results')
        .values({
          user_id: userId,
          score,
          passed: passed ? 1 : 0,
          answers: JSON.stringify(answers),
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      if (passed) await s.db.updateTable('users').set({ screening_passed: 1 }).where('id', '=', userId).execute();
      const attemptsLeft = limits.maxAttempts > 0 ? limits.maxAttempts - made - 1 : null;
      return { passed, attemptsLeft, resultId: id };
    });
  }

  /** The hidden ranking task of the oldest live gold item this labeler has not met (created on first use). */
  async unseenTask(userId: number): Promise<{ id: number; kind: TaskKind } | undefined> {
    const gold = await this.db
      .selectFrom('gold_items')
      .select(['id', 'prompt', 'responses'])
      // Screening items are known to the labeler already.
      .where('in_screening', '=', 0)
      .where('archived_at', 'is', null)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('tasks')
              .innerJoin('assignments', 'assignments.task_id', 'tasks.id')
              .select('assignments.id')
              .whereRef('tasks.gold_id', '=', 'gold_items.id')
              .where('assignments.user_id', '=', userId),
          ),
        ),
      )
      .orderBy('id')
      .limit(sql.lit(1))
      .executeTakeFirst();
    if (!gold) return undefined;
    // One hidden task per gold item (a unique index): on PostgreSQL two servers meeting this item at once queue on
    // its row, and the second finds the task the first made.
    if (this.s.dialect === 'postgres') {
      await this.db.selectFrom('gold_items').select('id').where('id', '=', gold.id).forUpdate().execute();
    }
    const existing = await this.db.selectFrom('tasks').select('id').where('gold_id', '=', gold.id).executeTakeFirst();
    if (existing) return { id: existing.id, kind: 'ranking' };
    const { id: promptId } = await this.db
      .insertInto('prompts')
      .values({ text: gold.prompt, split: 'training', source: GOLD_SOURCE, created_at: this.now() })
      .returning('id')
      .executeTakeFirstOrThrow();
    const setId = await this.s.prompts.addCandidateSet(
      promptId,
      (JSON.parse(gold.responses) as string[]).map((text) => ({ text, model: GOLD_SOURCE })),
      false,
    );
    const { id } = await this.db
      .insertInto('tasks')
      .values({
        kind: 'ranking',
        prompt_id: promptId,
        set_id: setId,
        split: 'training',
        target: 0,
        gold_id: gold.id,
        created_at: this.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id, kind: 'ranking' };
  }
}
