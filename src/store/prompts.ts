/** Prompts (the admin's, by split) and candidate sets: the responses a ranking or A/B task shows. */
import { Aggregate, count, GOLD_SOURCE } from './aggregate.js';
import type { Split } from './schema.js';

export class Prompts extends Aggregate {
  async add(prompts: { text: string; split?: Split }[], source: string): Promise<number[]> {
    return this.s.tx(async (s) => {
      const ids: number[] = [];
      for (const p of prompts) {
        const { id } = await s.db
          .insertInto('prompts')
          .values({ text: p.text, split: p.split ?? 'training', source, created_at: s.now() })
          .returning('id')
          .executeTakeFirstOrThrow();
        ids.push(id);
      }
      return ids;
    });
  }

  /** The existing prompt with this text and split, or a new one. */
  async idFor(text: string, split: Split, source: string): Promise<number> {
    const row = await this.db
      .selectFrom('prompts')
      .select('id')
      .where('text', '=', text)
      .where('split', '=', split)
      .where('source', '!=', GOLD_SOURCE)
      .orderBy('id')
      .executeTakeFirst();
    if (row) return row.id;
    return (await this.add([{ text, split }], source))[0];
  }

  /** The admin's prompts, oldest first: the live ones, or with `archived` the archived ones. */
  async list(q: { split?: Split; archived?: boolean; limit: number; offset: number }) {
    const matching = () => {
      let query = this.db
        .selectFrom('prompts')
        .where('source', '!=', GOLD_SOURCE)
        .where('archived_at', q.archived ? 'is not' : 'is', null);
      if (q.split) query = query.where('split', '=', q.split);
      return query;
    };
    const rows = await matching()
      .select(['id', 'text', 'split', 'source', 'created_at', 'archived_at'])
      .orderBy('id')
      .limit(q.limit)
      .offset(q.offset)
      .execute();
    const { n } = await matching()
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return {
      total: count(n),
      prompts: rows.map((r) => ({
        id: r.id,
        text: r.text,
        split: r.split,
        source: r.source,
        createdAt: r.created_at,
        archived: r.archived_at !== null,
      })),
    };
  }

  async get(id: number) {
    return this.db.selectFrom('prompts').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async addCandidateSet(promptId: number, responses: { text: string; model: string }[], pooled: boolean) {
    return this.s.tx(async (s) => {
      const models = new Set(responses.map((r) => r.model));
      const { id } = await s.db
        .insertInto('candidate_sets')
        .values({
          prompt_id: promptId,
          model: models.size === 1 ? responses[0].model : 'mixed',
          pooled: pooled ? 1 : 0,
          created_at: s.now(),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      let idx = 0;
      for (const r of responses) {
        await s.db.insertInto('responses').values({ set_id: id, idx: idx++, text: r.text, model: r.model }).execute();
      }
      return id;
    });
  }

  /** Imported candidates (the pool) for a prompt text and model, oldest first; does not consume them. */
  async pooledCandidates(promptText: string, model: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('candidate_sets')
      .innerJoin('prompts', 'prompts.id', 'candidate_sets.prompt_id')
      .innerJoin('responses', 'responses.set_id', 'candidate_sets.id')
      .select(['responses.text'])
      .where('prompts.text', '=', promptText)
      .where('candidate_sets.model', '=', model)
      .where('candidate_sets.pooled', '=', 1)
      .orderBy('candidate_sets.id')
      .orderBy('responses.idx')
      .execute();
    return rows.map((r) => r.text);
  }

  /** Models that have imported candidates in the pool. */
  async pooledModels(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('candidate_sets')
      .select('model')
      .distinct()
      .where('pooled', '=', 1)
      .execute();
    return rows.map((r) => r.model);
  }

  async setResponses(setId: number): Promise<{ text: string; model: string }[]> {
    return this.db
      .selectFrom('responses')
      .select(['text', 'model'])
      .where('set_id', '=', setId)
      .orderBy('idx')
      .execute();
  }
}
