/**
 * JSONL in and out (DESIGN.md's formats): imports are all-or-nothing, one transaction per file; exports are what the
 * trainers read. Gold prompts are never exported.
 */
import type { Insertable } from 'kysely';
import { Aggregate, GOLD_SOURCE, jsonOrNull } from './aggregate.js';
import { keptLabel as kept, notRejected } from './curation.js';
import type {
  CandidateRecord,
  DemonstrationRecord,
  EvalRecord,
  PairwiseRecord,
  PromptRecord,
  RankingRecord,
} from './jsonl.js';
import { normalizeRanking, orderedPairs, placesOf } from './ranking.js';
import type { Database, Split } from './schema.js';

/**
 * A ranking as training may see it: a blank answer leaves, an answer repeated keeps only its best-ranked place
 * (otherwise a pair would have chosen == rejected), and a ranking left with fewer than two places (so no pair: one
 * answer, or one tie) is dropped. New labels cannot be like this (imports and candidate sets refuse them); older
 * data is cleaned on the way out.
 */
export function withoutDegenerateAnswers(r: RankingRecord): RankingRecord | null {
  const seen = new Set<string>();
  const places = placesOf(r.ranking)
    .map((group) =>
      group.filter((i) => {
        const key = r.responses[i].trim();
        if (key === '' || seen.has(key)) return false;
        seen.add(key);
        return true;
      }),
    )
    .filter((group) => group.length > 0);
  if (places.length < 2) return null;
  const kept = places.flat();
  if (kept.length === r.responses.length) return r;
  // Keep the surviving responses in their original order and renumber the ranking and per-response fields.
  const order = [...kept].sort((a, b) => a - b);
  const newIndex = new Map(order.map((old, i) => [old, i]));
  const out: RankingRecord = {
    prompt: r.prompt,
    responses: order.map((i) => r.responses[i]),
    ranking: normalizeRanking(places.map((group) => group.map((i) => newIndex.get(i)!))),
  };
  if (r.context) out.context = r.context;
  if (r.labeler) out.labeler = r.labeler;
  if (r.likert) out.likert = order.map((i) => r.likert![i]);
  if (r.models) out.models = order.map((i) => r.models![i]);
  if (r.flags) {
    out.flags = Object.fromEntries(
      Object.entries(r.flags).map(([f, idx]) => [f, idx.filter((i) => newIndex.has(i)).map((i) => newIndex.get(i)!)]),
    );
  }
  return out;
}

/** The model name of answers imported without one. */
const IMPORTED = 'imported';

export class Exchange extends Aggregate {
  async importPrompts(records: PromptRecord[], source = 'import'): Promise<number> {
    return (
      await this.s.prompts.add(
        records.map((r) => ({ text: r.prompt, split: r.split })),
        source,
      )
    ).length;
  }

  async importCandidates(records: CandidateRecord[]): Promise<number> {
    return this.s.tx(async (s) => {
      for (const r of records) {
        const pid = await s.prompts.idFor(r.prompt, r.split ?? 'training', 'import');
        const model = r.model ?? IMPORTED;
        await s.prompts.addCandidateSet(
          pid,
          r.responses.map((text) => ({ text, model })),
          true,
        );
      }
      return records.length;
    });
  }

  async importDemonstrations(records: DemonstrationRecord[]): Promise<number> {
    return this.s.tx(async (s) => {
      for (const r of records) {
        const pid = await s.prompts.idFor(r.prompt, r.split ?? 'training', 'import');
        await s.db
          .insertInto('demonstrations')
          .values({
            prompt_id: pid,
            completion: r.completion,
            assignment_id: null,
            user_id: null,
            labeler: null,
            created_at: s.now(),
          })
          .execute();
      }
      return records.length;
    });
  }

  async importRankings(records: RankingRecord[]): Promise<number> {
    return this.s.tx(async (s) => {
      for (const r of records) {
        const pid = await s.prompts.idFor(r.prompt, r.split ?? 'training', 'import');
        const setId = await s.prompts.addCandidateSet(
          pid,
          r.responses.map((text, i) => ({ text, model: r.models?.[i] ?? IMPORTED })),
          false,
        );
        await s.db
          .insertInto('rankings')
          .values({
            prompt_id: pid,
            set_id: setId,
            ranking: JSON.stringify(r.ranking),
            likert: jsonOrNull(r.likert),
            flags: jsonOrNull(r.flags),
            assignment_id: null,
            user_id: null,
            labeler: r.labeler ?? null,
            created_at: s.now(),
          })
          .execute();
      }
      return records.length;
    });
  }

  async importPairwise(records: PairwiseRecord[]): Promise<number> {
    return this.importComparisons(records, (r) => ({
      kind: 'pairwise',
      prompt: r.prompt,
      a_text: r.chosen,
      b_text: r.rejected,
      model_a: null,
      model_b: null,
      choice: 'a',
      labeler: null,
    }));
  }

  async importEval(records: EvalRecord[]): Promise<number> {
    return this.importComparisons(records, (r) => ({
      kind: 'eval',
      prompt: r.prompt,
      a_text: r.response_a,
      b_text: r.response_b,
      model_a: r.model_a,
      model_b: r.model_b,
      choice: r.winner,
      labeler: r.labeler ?? null,
    }));
  }

  // Imported comparisons belong to no assignment or user; one transaction for the whole file.
  private importComparisons<R>(
    records: R[],
    row: (r: R) => Omit<Insertable<Database['comparisons']>, 'assignment_id' | 'user_id' | 'created_at'>,
  ): Promise<number> {
    return this.s.tx(async (s) => {
      for (const r of records)
        await s.db
          .insertInto('comparisons')
          .values({ ...row(r), assignment_id: null, user_id: null, created_at: s.now() })
          .execute();
      return records.length;
    });
  }

  async importGold(records: RankingRecord[]): Promise<number> {
    return (await this.s.gold.add(records)).length;
  }

  async exportPrompts(split: Split): Promise<PromptRecord[]> {
    const rows = await this.db
      .selectFrom('prompts')
      .select('text')
      .where('split', '=', split)
      .where('source', '!=', GOLD_SOURCE)
      .where('archived_at', 'is', null)
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ prompt: r.text }));
  }

  async exportDemonstrations(split: Split): Promise<DemonstrationRecord[]> {
    const rows = await this.db
      .selectFrom('demonstrations')
      .innerJoin('prompts', 'prompts.id', 'demonstrations.prompt_id')
      .leftJoin('assignments', 'assignments.id', 'demonstrations.assignment_id')
      .leftJoin('tasks', 'tasks.id', 'assignments.task_id')
      .select(['prompts.text as prompt', 'demonstrations.completion'])
      .where('prompts.split', '=', split)
      .where(kept)
      .orderBy('demonstrations.id')
      .execute();
    return rows.map((r) => ({ prompt: r.prompt, completion: r.completion }));
  }

  async exportRankings(split: Split): Promise<RankingRecord[]> {
    const rows = await this.db
      .selectFrom('rankings')
      .innerJoin('prompts', 'prompts.id', 'rankings.prompt_id')
      .leftJoin('users', 'users.id', 'rankings.user_id')
      .leftJoin('assignments', 'assignments.id', 'rankings.assignment_id')
      .leftJoin('tasks', 'tasks.id', 'assignments.task_id')
      .select([
        'rankings.id',
        'rankings.set_id',
        'prompts.text as prompt',
        'rankings.ranking',
        'rankings.likert',
        'rankings.flags',
        'rankings.labeler',
        'users.username',
      ])
      .where('prompts.split', '=', split)
      .where(kept)
      .orderBy('rankings.id')
      .execute();
    const out: RankingRecord[] = [];
    for (const r of rows) {
      const responses = await this.s.prompts.setResponses(r.set_id);
      const rec: RankingRecord = {
        prompt: r.prompt,
        responses: responses.map((x) => x.text),
        ranking: JSON.parse(r.ranking),
      };
      const labeler = r.labeler ?? r.username;
      if (labeler) rec.labeler = labeler;
      if (r.likert) rec.likert = JSON.parse(r.likert);
      if (r.flags) rec.flags = JSON.parse(r.flags);
      // Which version wrote each answer, unless nothing is known (imported without model names).
      if (responses.some((x) => x.model !== IMPORTED)) rec.models = responses.map((x) => x.model);
      const clean = withoutDegenerateAnswers(rec);
      if (clean) out.push(clean);
    }
    return out;
  }

  /**
   * Pairwise preferences: every (better, worse) pair from each ranking (the paper's K-choose-2 comparisons; tied
   * responses make no pair), then decided chat and imported pairwise comparisons. Ties and eval A/B results are not
   * included.
   */
  async exportPairwise(split: Split, include: { rankings: boolean; comparisons: boolean }): Promise<PairwiseRecord[]> {
    const out: PairwiseRecord[] = [];
    if (include.rankings) {
      for (const r of await this.exportRankings(split)) {
        for (const [better, worse] of orderedPairs(r.ranking)) {
          out.push({
            prompt: r.prompt,
            chosen: r.responses[better],
            rejected: r.responses[worse],
            ...(r.models ? { chosen_model: r.models[better], rejected_model: r.models[worse] } : {}),
          });
        }
      }
    }
    // Comparisons carry no prompt split; they count as training data.
    if (include.comparisons && split === 'training') {
      const rows = await this.db
        .selectFrom('comparisons')
        .select(['prompt', 'a_text', 'b_text', 'model_a', 'model_b', 'choice'])
        .where('kind', 'in', ['chat', 'pairwise'])
        .where('choice', 'in', ['a', 'b'])
        .orderBy('id')
        .execute();
      for (const c of rows) {
        const a = { text: c.a_text, model: c.model_a };
        const b = { text: c.b_text, model: c.model_b };
        const [chosen, rejected] = c.choice === 'a' ? [a, b] : [b, a];
        if (chosen.text.trim() && rejected.text.trim() && chosen.text.trim() !== rejected.text.trim()) {
          out.push({
            prompt: c.prompt,
            chosen: chosen.text,
            rejected: rejected.text,
            ...(chosen.model && rejected.model ? { chosen_model: chosen.model, rejected_model: rejected.model } : {}),
          });
        }
      }
    }
    return out;
  }

  /**
   * A/B evaluation results of one split: those from A/B tasks by their prompt's split; imported ones carry no split
   * and count as training data, as imported pairwise comparisons do.
   */
  async exportEval(split: Split): Promise<EvalRecord[]> {
    const rows = await this.db
      .selectFrom('comparisons')
      .leftJoin('users', 'users.id', 'comparisons.user_id')
      .leftJoin('assignments', 'assignments.id', 'comparisons.assignment_id')
      .leftJoin('tasks', 'tasks.id', 'assignments.task_id')
      .select([
        'comparisons.prompt',
        'comparisons.a_text',
        'comparisons.b_text',
        'comparisons.model_a',
        'comparisons.model_b',
        'comparisons.choice',
        'comparisons.labeler',
        'users.username',
      ])
      .where('comparisons.kind', '=', 'eval')
      .where((eb) =>
        eb.or([
          eb('comparisons.assignment_id', 'is', null),
          eb.and([eb('tasks.archived_at', 'is', null), notRejected(eb)]),
        ]),
      )
      .where((eb) =>
        split === 'training'
          ? eb.or([eb('tasks.split', '=', 'training'), eb('tasks.split', 'is', null)])
          : eb('tasks.split', '=', split),
      )
      .orderBy('comparisons.id')
      .execute();
    return rows.map((r) => {
      const rec: EvalRecord = {
        prompt: r.prompt,
        model_a: r.model_a ?? '',
        model_b: r.model_b ?? '',
        response_a: r.a_text,
        response_b: r.b_text,
        winner: r.choice ?? 'tie',
      };
      const labeler = r.labeler ?? r.username;
      if (labeler) rec.labeler = labeler;
      return rec;
    });
  }
}
