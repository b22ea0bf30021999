// The demo's evaluation stage: every model's answers on the held-out prompts, judged by the held-out pools; the
// reward model's probes; the alignment tax. The measurements themselves are in evaluate.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPretrained } from '../models/index.js';
import { readComparisons } from '../rlhf/data.js';
import { Rng } from '../tensor/index.js';
import { Tokenizer } from '../tokenizer/index.js';
import {
  chatAnswers,
  complete,
  corpusLoss,
  MODEL_LABELS,
  MODELS,
  type ModelName,
  type ModelStats,
  modelStats,
  type PairKind,
  type PairKindAccuracy,
  type PoolWinRates,
  type ProbeAccuracy,
  type ProbeKind,
  poolWinRates,
  probePairs,
  release,
  rmAccuracyByPairKind,
  rmProbeAccuracy,
  TUNED_MODELS,
  type TunedName,
} from './evaluate.js';
import { HELDOUT_POOL_NAMES, type HeldoutPoolName, heldoutPools } from './labelers/index.js';
import { fileHash } from './stages.js';
import type { Ctx } from './steps.js';
import { FEW_SHOT_STOP, fewShotExamples, fewShotPrompt, tasksByPrompt } from './world/index.js';

export interface EvalResult {
  answers: Record<ModelName, string[]>;
  /** Win rates against SFT per held-out pool, overall and per phrasing split. */
  winRates: Record<HeldoutPoolName, PoolWinRates>;
  corpusLoss: Record<'base' | TunedName, number>;
  /** The checkers' verdicts, and the share of answers with a writer's habit (opener, hedge, padding). */
  stats: Record<ModelName, ModelStats>;
  /** The reward model on probe pairs of known order. */
  rmProbes: Record<ProbeKind, ProbeAccuracy>;
  /** The reward model on the held-out labelers' own rankings, by pair kind, beside the labelers' agreement. */
  rmByPairKind: Record<PairKind, PairKindAccuracy>;
}

/**
 * The prompted baseline's prompts: each evaluation prompt after `shots` solved SFT prompts of its kind (the same
 * examples for every model that calls this), dropping examples until it fits `room` tokens.
 */
export function fewShotIds(ctx: Ctx, tok: Tokenizer, room: number): number[][] {
  const rng = new Rng(ctx.seed + 31);
  return ctx.world.eval.map((t) => {
    const examples = fewShotExamples(t, ctx.world.sft, rng, ctx.cfg.shots);
    for (let n = examples.length; n > 0; n--) {
      const ids = tok.encode(fewShotPrompt(t, examples.slice(0, n)));
      if (ids.length <= room) return ids;
    }
    return tok.encode(fewShotPrompt(t, []));
  });
}

/**
 * Answers of all the models on the evaluation prompts, judged by every held-out pool against SFT's; the reward model
 * on probe pairs built from the same prompts; the loss of each model on held-out prose.
 */
export async function evaluate(ctx: Ctx, keys: Record<string, string>) {
  const { maxNewTokens, shots } = ctx.cfg;
  const tasks = ctx.world.eval;
  return ctx.stages.run(
    'eval',
    { keys, maxNewTokens, shots, seed: ctx.seed, heldout: fileHash(ctx.heldoutCorpusPath), policy: 'ema', v: 3 },
    (): EvalResult => {
      const greedy = { maxNewTokens, temperature: 0, seed: ctx.seed };
      const baseDir = ctx.stages.dir('base');
      const tok = Tokenizer.fromDir(baseDir);
      const base = loadPretrained(baseDir);
      const fewShot = fewShotIds(ctx, tok, base.maxPositions - maxNewTokens);
      const answers = {} as Record<ModelName, string[]>;
      const heldoutText = readFileSync(ctx.heldoutCorpusPath, 'utf8');
      const corpusLosses = {} as EvalResult['corpusLoss'];
      try {
        ctx.say('eval: base model');
        answers.base = complete(
          base,
          tok,
          tasks.map((t) => tok.encode(`${t.prompt}\n`)),
          { ...greedy, stop: FEW_SHOT_STOP },
        );
        ctx.say('eval: base model with a few-shot prompt');
        answers.prompted = complete(base, tok, fewShot, { ...greedy, stop: FEW_SHOT_STOP });
        corpusLosses.base = corpusLoss(base, tok, heldoutText);
      } finally {
        release(base);
      }
      for (const name of TUNED_MODELS) {
        ctx.say(`eval: ${MODEL_LABELS[name]}`);
        // PPO's result is the moving average of its policy weights (decay 0.992, as in the paper), not the last step.
        const ppo = name === 'ppo' || name === 'ppo_ptx';
        const dir = ppo ? join(ctx.stages.dir(name), 'ema') : ctx.stages.dir(name);
        answers[name] = chatAnswers(dir, tasks, greedy);
        const model = loadPretrained(dir);
        corpusLosses[name] = corpusLoss(model, tok, heldoutText);
        release(model);
      }
      const pools = heldoutPools(ctx.seed + 2, { size: ctx.cfg.labelers });
      const winRates = Object.fromEntries(
        HELDOUT_POOL_NAMES.map((p) => [p, poolWinRates(pools[p], tasks, answers)]),
      ) as EvalResult['winRates'];
      const stats = Object.fromEntries(MODELS.map((m) => [m, modelStats(tasks, answers[m])])) as EvalResult['stats'];
      const rmProbes = rmProbeAccuracy(ctx.stages.dir('rm'), probePairs(tasks, new Rng(ctx.seed + 41)));
      // The held-out rankings the reward model's held-out accuracy is measured on (the rm key covers their content),
      // and the pools that measured the held-out labelers' agreement.
      const byPrompt = tasksByPrompt(tasks);
      const ranked = readComparisons(join(ctx.out, 'data', 'rankings_heldout.jsonl')).records.map((r) => ({
        task: byPrompt.get(r.prompt)!,
        responses: r.responses,
        ranking: r.ranking,
      }));
      const agreementPool = Object.values(heldoutPools(ctx.seed + 1, { size: ctx.cfg.labelers })).flat();
      const rmByPairKind = rmAccuracyByPairKind(ctx.stages.dir('rm'), ranked, agreementPool);
      return { answers, winRates, corpusLoss: corpusLosses, stats, rmProbes, rmByPairKind };
    },
    (r) =>
      `${MODELS.map((m) => `${MODEL_LABELS[m]} ${(100 * worstPool(r.winRates, m)).toFixed(0)} %`).join(', ')} ` +
      `(win rate vs SFT, held-out phrasings, least pleased pool); correct ` +
      MODELS.map((m) => `${MODEL_LABELS[m]} ${(100 * r.stats[m].correct).toFixed(0)} %`).join(', '),
  );
}

/** A model's win rate on held-out phrasings as judged by the held-out pool that likes it least. */
export function worstPool(rates: EvalResult['winRates'], model: ModelName): number {
  return Math.min(...HELDOUT_POOL_NAMES.map((p) => rates[p].byPhrasing.heldout[model].winRate));
}
