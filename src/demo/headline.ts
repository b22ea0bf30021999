// The paper's headline in miniature (`--size headline`): outputs of the small PPO-ptx model are preferred to those
// of a base model many times its size, prompted few-shot. The big base is pretrained on the same prose with the same
// recipe; the held-out pools judge the two on the evaluation prompts in held-out phrasings.
import { loadPretrained } from '../models/index.js';
import { Tokenizer } from '../tokenizer/index.js';
import type { EvalResult } from './eval_stage.js';
import { fewShotIds } from './eval_stage.js';
import { complete, type ModelStats, modelStats, release } from './evaluate.js';
import { HELDOUT_POOL_NAMES, type HeldoutPoolName, heldoutPools, type WinRate, winRate } from './labelers/index.js';
import type { Ctx } from './steps.js';
import { FEW_SHOT_STOP } from './world/index.js';

export interface HeadlineResult {
  baseParameters: number;
  bigParameters: number;
  /** The big base's few-shot answers, and what the world's checkers say of them. */
  answers: string[];
  stats: ModelStats;
  /** PPO-ptx's win rate against the big prompted base per held-out pool, on held-out phrasings. */
  ppoPtxWinRate: Record<HeldoutPoolName, WinRate>;
}

export async function headline(
  ctx: Ctx,
  keys: { bigBase: string; eval: string },
  params: { base: number; big: number },
  ev: EvalResult,
) {
  const { maxNewTokens } = ctx.cfg;
  return ctx.stages.run(
    'headline',
    { keys, maxNewTokens, shots: ctx.cfg.shots, seed: ctx.seed },
    (): HeadlineResult => {
      const dir = ctx.stages.dir('base_big');
      const tok = Tokenizer.fromDir(dir);
      const big = loadPretrained(dir);
      let answers: string[];
      try {
        ctx.say('headline: the big base model with a few-shot prompt');
        answers = complete(big, tok, fewShotIds(ctx, tok, big.maxPositions - maxNewTokens), {
          maxNewTokens,
          temperature: 0,
          seed: ctx.seed,
          stop: FEW_SHOT_STOP,
        });
      } finally {
        release(big);
      }
      const tasks = ctx.world.eval;
      const heldout = tasks.map((t, i) => (t.heldoutPhrasing ? i : -1)).filter((i) => i >= 0);
      // Judges of their own draw (not the evaluation's), so adding the headline changes none of the other numbers.
      const pools = heldoutPools(ctx.seed + 6, { size: ctx.cfg.labelers });
      const ppoPtxWinRate = Object.fromEntries(
        HELDOUT_POOL_NAMES.map((p) => [
          p,
          winRate(
            pools[p],
            heldout.map((i) => tasks[i]),
            heldout.map((i) => ev.answers.ppo_ptx[i]),
            heldout.map((i) => answers[i]),
          ),
        ]),
      ) as HeadlineResult['ppoPtxWinRate'];
      return {
        baseParameters: params.base,
        bigParameters: params.big,
        answers,
        stats: modelStats(tasks, answers),
        ppoPtxWinRate,
      };
    },
    (r) =>
      `PPO-ptx (${r.baseParameters.toLocaleString('en-US')} parameters) against the ${(r.bigParameters / r.baseParameters).toFixed(0)}× bigger base prompted few-shot: ` +
      HELDOUT_POOL_NAMES.map((p) => `${p} ${(100 * r.ppoPtxWinRate[p].winRate).toFixed(0)} %`).join(', '),
  );
}
