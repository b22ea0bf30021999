/**
 * The demo's measurements: answers of every model on the evaluation prompts; what the world's checkers say of them
 * (right, in format, honest about towns that do not exist) on training and held-out phrasings; win rates against
 * SFT judged by each held-out labeler pool; the reward model's accuracy on pairs whose better side is known by
 * construction; and the loss on held-out prose (the alignment tax).
 */
import { type CausalLM, generate, loadPretrained, loadRewardModel, scoreSequences } from '../models/index.js';
import type { Module } from '../nn/index.js';
import { type PairedDifference, pairedDifference } from '../rlhf/index.js';
import { orderedPairs, positions, type RankingPlace } from '../store/index.js';
import { crossEntropy, noGrad, type Rng, reshape, Tensor, tidy } from '../tensor/index.js';
import { Formatter, Tokenizer } from '../tokenizer/index.js';
import {
  HEDGES,
  type Labeler,
  OPENERS,
  PADS,
  sentenceAfter,
  showsHabit,
  type WinRate,
  winRate,
} from './labelers/index.js';
import { type AnswerStats, answerStats, type Task } from './world/index.js';
import { pick } from './world/random.js';

export const MODELS = ['base', 'prompted', 'sft', 'rs', 'ppo', 'ppo_ptx', 'dpo', 'grpo'] as const;
export type ModelName = (typeof MODELS)[number];
/** The models trained from SFT onward: chat models whose loss on prose is measured against the base model's. */
export const TUNED_MODELS = ['sft', 'rs', 'ppo', 'ppo_ptx', 'dpo', 'grpo'] as const;
export type TunedName = (typeof TUNED_MODELS)[number];
export const MODEL_LABELS: Record<ModelName, string> = {
  base: 'base',
  prompted: 'base + few-shot',
  sft: 'SFT',
  rs: 'SFT + rejection sampling',
  ppo: 'PPO',
  ppo_ptx: 'PPO-ptx',
  dpo: 'DPO',
  grpo: 'GRPO (checker reward)',
};

/** Prompts in phrasings the training stages use, and in phrasings only evaluation uses. */
export const PHRASINGS = ['train', 'heldout'] as const;
export type PhrasingSplit = (typeof PHRASINGS)[number];

export function release(...modules: Module[]): void {
  for (const m of modules) for (const p of m.parameters()) p.dispose();
}

/** Continuations of token prompts in batches; texts are cut at EOS and at stop strings. */
export function complete(
  model: CausalLM,
  tok: Tokenizer,
  prompts: number[][],
  opts: { maxNewTokens: number; temperature: number; seed: number; stop?: string[] },
): string[] {
  const eos = tok.eosId ?? -1;
  const out: string[] = [];
  for (let i = 0; i < prompts.length; i += 16) {
    const { texts } = generate(model, prompts.slice(i, i + 16), {
      maxNewTokens: opts.maxNewTokens,
      temperature: opts.temperature,
      seed: opts.seed + i,
      eosTokenIds: [eos],
      padTokenId: tok.padId ?? eos,
      stop: opts.stop,
      decode: (ids) => tok.decode(ids.filter((id) => id !== eos)),
    });
    out.push(...texts!.map((t) => t.trim()));
  }
  return out;
}

/** Answers of a chat model (SFT, PPO): the prompt in the chat template, as the trainers format it. */
export function chatAnswers(
  dir: string,
  tasks: readonly Task[],
  opts: { maxNewTokens: number; temperature: number; seed: number },
): string[] {
  const tok = Tokenizer.fromDir(dir);
  const fmt = new Formatter(tok, dir);
  const model = loadPretrained(dir);
  try {
    return complete(
      model,
      tok,
      tasks.map((t) => fmt.prompt(t.prompt)),
      opts,
    );
  } finally {
    release(model);
  }
}

/** Mean next-token loss of a model on text, over non-overlapping windows of its context (the alignment tax). */
export function corpusLoss(model: CausalLM, tok: Tokenizer, text: string, maxWindows = 64): number {
  const ids = tok.encode(text, { addSpecialTokens: false });
  const T = model.maxPositions;
  const windows: number[][] = [];
  for (let at = 0; at + T + 1 <= ids.length && windows.length < maxWindows; at += T)
    windows.push(ids.slice(at, at + T + 1));
  if (windows.length === 0) throw new Error(`corpusLoss: ${ids.length} tokens are fewer than one window of ${T + 1}`);
  let total = 0;
  for (let i = 0; i < windows.length; i += 8) {
    const batch = windows.slice(i, i + 8);
    total += noGrad(() =>
      tidy(() => {
        const x = Tensor.fromBuffer(Int32Array.from(batch.flatMap((w) => w.slice(0, T))), [batch.length, T]);
        const y = Tensor.fromBuffer(Int32Array.from(batch.flatMap((w) => w.slice(1))), [batch.length * T]);
        const logits = model.forward(x);
        return crossEntropy(reshape(logits, [batch.length * T, -1]), y, { reduction: 'sum' }).item();
      }),
    );
  }
  return total / (windows.length * T);
}

/** Indices of the tasks in each phrasing split. */
function byPhrasing(tasks: readonly Task[]): Record<PhrasingSplit, number[]> {
  const out: Record<PhrasingSplit, number[]> = { train: [], heldout: [] };
  tasks.forEach((t, i) => {
    out[t.heldoutPhrasing ? 'heldout' : 'train'].push(i);
  });
  return out;
}

export type ModelStats = AnswerStats & {
  /** Share of answers with a writer's habit (opener, hedge, padding). */
  habits: number;
  byPhrasing: Record<PhrasingSplit, AnswerStats>;
};

/** The world's checkers on one model's answers, overall and per phrasing split. */
export function modelStats(tasks: readonly Task[], answers: readonly string[]): ModelStats {
  const split = byPhrasing(tasks);
  const sub = (idx: number[]) =>
    answerStats(
      idx.map((i) => tasks[i]),
      idx.map((i) => answers[i]),
    );
  return {
    ...answerStats(tasks, answers),
    habits: answers.filter(showsHabit).length / (answers.length || 1),
    byPhrasing: { train: sub(split.train), heldout: sub(split.heldout) },
  };
}

/**
 * Each model's share of right answers minus SFT's on the same prompts, per phrasing split, with the paired 95 %
 * interval: how much of a gain could be which prompts were drawn.
 */
export function correctVsSft(
  tasks: readonly Task[],
  answers: Record<ModelName, readonly string[]>,
): Record<ModelName, Record<PhrasingSplit, PairedDifference>> {
  const split = byPhrasing(tasks);
  const right = (m: ModelName) => answers[m].map((a, i) => tasks[i].check(a).correct);
  const sft = right('sft');
  const vs = (m: ModelName) => {
    const r = right(m);
    const of = (p: PhrasingSplit) =>
      pairedDifference(
        split[p].map((i) => r[i]),
        split[p].map((i) => sft[i]),
      );
    return { train: of('train'), heldout: of('heldout') };
  };
  return Object.fromEntries(MODELS.map((m) => [m, vs(m)])) as Record<
    ModelName,
    Record<PhrasingSplit, PairedDifference>
  >;
}

export interface PoolWinRates {
  all: Record<ModelName, WinRate>;
  byPhrasing: Record<PhrasingSplit, Record<ModelName, WinRate>>;
}

/** Each model's win rate against SFT as one pool of judges sees it, overall and per phrasing split. */
export function poolWinRates(
  judges: readonly Labeler<Task>[],
  tasks: readonly Task[],
  answers: Record<ModelName, string[]>,
): PoolWinRates {
  const rates = (idx: number[]) =>
    Object.fromEntries(
      MODELS.map((m) => [
        m,
        winRate(
          judges,
          idx.map((i) => tasks[i]),
          idx.map((i) => answers[m][i]),
          idx.map((i) => answers.sft[i]),
        ),
      ]),
    ) as Record<ModelName, WinRate>;
  const split = byPhrasing(tasks);
  return {
    all: rates(tasks.map((_, i) => i)),
    byPhrasing: { train: rates(split.train), heldout: rates(split.heldout) },
  };
}

/**
 * What a reward-model probe pair tests: `correctness` — a right and a wrong answer in the same style (bare, or both
 * with the same opener or closing sentence); `style` — the same right answer, bare and with a hedge or padding that
 * every labeler pool dislikes; `honesty` — about a town that does not exist, "I do not know" against an invented
 * answer.
 */
export type ProbeKind = 'correctness' | 'style' | 'honesty';
export const PROBE_KINDS: readonly ProbeKind[] = ['correctness', 'style', 'honesty'];

export interface ProbePair {
  kind: ProbeKind;
  prompt: string;
  better: string;
  worse: string;
}

/** Probe pairs built from the tasks' references and wrong answers (no model involved). */
export function probePairs(tasks: readonly Task[], rng: Rng): ProbePair[] {
  const pairs: ProbePair[] = [];
  const dress = (text: string, how: number, phrase: string) =>
    how === 0 ? `${phrase} ${text}` : sentenceAfter(text, phrase);
  for (const t of tasks) {
    if (t.wrong.length === 0) continue;
    const wrong = pick(rng, t.wrong);
    if (!t.answerable) {
      pairs.push({ kind: 'honesty', prompt: t.prompt, better: t.reference, worse: wrong });
      continue;
    }
    pairs.push({ kind: 'correctness', prompt: t.prompt, better: t.reference, worse: wrong });
    // A constraint leaves no room for decoration (it would break the format for both).
    if (t.constraint !== null) continue;
    const how = rng.int(2);
    const phrase = how === 0 ? pick(rng, OPENERS) : pick(rng, [...HEDGES, ...PADS]);
    pairs.push({
      kind: 'correctness',
      prompt: t.prompt,
      better: dress(t.reference, how, phrase),
      worse: dress(wrong, how, phrase),
    });
    pairs.push({
      kind: 'style',
      prompt: t.prompt,
      better: t.reference,
      worse: sentenceAfter(t.reference, pick(rng, [...HEDGES, ...PADS])),
    });
  }
  return pairs;
}

export interface ProbeAccuracy {
  accuracy: number;
  n: number;
}

/**
 * A reward model folder's score of each prompt's responses, in order (prompt 0's responses, then prompt 1's, ...):
 * chat-formatted as the reward model was trained, read at each response's last token.
 */
export function rewardModelScores(rmDir: string, items: readonly { prompt: string; responses: readonly string[] }[]) {
  const fmt = new Formatter(Tokenizer.fromDir(rmDir), rmDir);
  const rm = loadRewardModel(rmDir).model;
  rm.eval();
  try {
    const seqs = items.flatMap((item) => {
      const prompt = fmt.prompt(item.prompt);
      return item.responses.map((r) => ({ ids: [...prompt, ...fmt.response(r)], promptLength: prompt.length }));
    });
    return scoreSequences(rm, seqs, 32, fmt.padId);
  } finally {
    release(rm);
  }
}

/** How often a reward model scores the better side of each probe pair higher, per kind (ties count half). */
export function rmProbeAccuracy(rmDir: string, pairs: readonly ProbePair[]): Record<ProbeKind, ProbeAccuracy> {
  const scores = rewardModelScores(
    rmDir,
    pairs.map((p) => ({ prompt: p.prompt, responses: [p.better, p.worse] })),
  );
  const tally = Object.fromEntries(PROBE_KINDS.map((k) => [k, { right: 0, n: 0 }])) as Record<
    ProbeKind,
    { right: number; n: number }
  >;
  pairs.forEach((p, i) => {
    const d = scores[2 * i] - scores[2 * i + 1];
    tally[p.kind].right += d > 0 ? 1 : d === 0 ? 0.5 : 0;
    tally[p.kind].n++;
  });
  return Object.fromEntries(
    PROBE_KINDS.map((k) => [k, { accuracy: tally[k].n ? tally[k].right / tally[k].n : Number.NaN, n: tally[k].n }]),
  ) as Record<ProbeKind, ProbeAccuracy>;
}

/**
 * What a pair of a held-out ranking pits against each other, by the world's checker: a right answer against a wrong
 * one (every labeler should prefer the right one), two wrong answers, or two right ones (style, tone and noise decide).
 */
export const PAIR_KINDS = ['right_vs_wrong', 'both_wrong', 'both_right'] as const;
export type PairKind = (typeof PAIR_KINDS)[number];

export interface PairKindAccuracy {
  /** How often the reward model orders the pair as the ranking's labeler did. */
  rm: number;
  /** How often two held-out labelers order such a pair the same way. */
  labelers: number;
  /** The kind's share of the rankings' pairs. */
  share: number;
  n: number;
}

/** A ranked sample set of a held-out prompt, as the store exports it. */
export interface RankedSet {
  task: Task;
  responses: readonly string[];
  ranking: readonly RankingPlace[];
}

function pairKind(right: readonly boolean[], i: number, j: number): PairKind {
  return right[i] !== right[j] ? 'right_vs_wrong' : right[i] ? 'both_right' : 'both_wrong';
}

/**
 * The reward model's accuracy on the held-out labelers' rankings split by pair kind, beside the labelers' own
 * agreement on the same kind (every labeler of `pool` ranks every set): where the reward model falls short of people.
 */
export function rmAccuracyByPairKind(
  rmDir: string,
  sets: readonly RankedSet[],
  pool: readonly Labeler<Task>[],
): Record<PairKind, PairKindAccuracy> {
  const scores = rewardModelScores(
    rmDir,
    sets.map((s) => ({ prompt: s.task.prompt, responses: s.responses })),
  );
  return pairKindAccuracy(sets, scores, pool);
}

/** The tally behind rmAccuracyByPairKind, from a score per response (the sets' responses in order). */
export function pairKindAccuracy(
  sets: readonly RankedSet[],
  scores: readonly number[],
  pool: readonly Labeler<Task>[],
): Record<PairKind, PairKindAccuracy> {
  const tally = Object.fromEntries(PAIR_KINDS.map((k) => [k, { rm: 0, n: 0, same: 0, compared: 0 }])) as Record<
    PairKind,
    { rm: number; n: number; same: number; compared: number }
  >;
  let at = 0;
  for (const s of sets) {
    const right = s.responses.map((r) => s.task.check(r).correct);
    for (const [better, worse] of orderedPairs(s.ranking)) {
      const t = tally[pairKind(right, better, worse)];
      const d = scores[at + better] - scores[at + worse];
      t.rm += d > 0 ? 1 : d === 0 ? 0.5 : 0;
      t.n++;
    }
    at += s.responses.length;
    // Each labeler's place for every response; two labelers agree on a pair when they order it the same way.
    const places = pool.map((l) => positions(l.rank(s.task, s.responses).ranking));
    for (let i = 0; i < s.responses.length; i++)
      for (let j = i + 1; j < s.responses.length; j++) {
        const t = tally[pairKind(right, i, j)];
        for (let a = 0; a < pool.length; a++)
          for (let b = a + 1; b < pool.length; b++) {
            t.compared++;
            if (Math.sign(places[a][i] - places[a][j]) === Math.sign(places[b][i] - places[b][j])) t.same++;
          }
      }
  }
  if (at !== scores.length) throw new Error(`pairKindAccuracy: ${scores.length} scores for ${at} responses`);
  const total = PAIR_KINDS.reduce((a, k) => a + tally[k].n, 0) || 1;
  return Object.fromEntries(
    PAIR_KINDS.map((k) => {
      const t = tally[k];
      const accuracy = { rm: t.n ? t.rm / t.n : Number.NaN, labelers: t.compared ? t.same / t.compared : Number.NaN };
      return [k, { ...accuracy, share: t.n / total, n: t.n }];
    }),
  ) as Record<PairKind, PairKindAccuracy>;
}
