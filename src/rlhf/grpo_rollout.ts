// GRPO's and RLOO's episodes: G completions per prompt from the shared rollout, scored by the weighted reward
// sources; the KL to the reference (k3) summed per completion and, with klInReward, subtracted from its reward; the
// advantage of each completion from its own group (grpo_config.ts); and the rollout's metrics.
import type { CausalLM } from '../models/index.js';
import type { Tensor } from '../tensor/index.js';
import type { Formatter } from '../tokenizer/index.js';
import { METRIC, type Metrics } from '../train/metrics.js';
import type { PromptSet } from './data.js';
import { type GrpoConfig, groupAdvantages } from './grpo_config.js';
import { klPerToken } from './kl.js';
import type { SampledEpisode } from './policy_step.js';
import { type RewardSource, weightedReward } from './reward_sources.js';
import { mean, type Packed, rollout } from './rollout.js';

/** One sampled completion with what the update needs. */
export interface Sample extends SampledEpisode {
  promptIndex: number;
  refLogp: number[];
  advantage: number;
}

export interface GrpoEpisodes {
  samples: Sample[];
  completions: string[];
  /** Each completion's reward before any KL. */
  rewards: number[];
  metrics: Metrics;
}

/** What a GRPO rollout samples with and scores by. */
export interface GrpoSources {
  policy: CausalLM;
  /** The reference's log-probs of a packed chunk (null: β = 0, no reference). */
  refLogps: ((p: Packed) => Tensor) | null;
  fmt: Formatter;
  prompts: PromptSet;
  promptIds: number[][];
  sources: RewardSource[];
  weights: number[];
}

/** Samples cfg.groupSize completions for each prompt index of the batch and scores them. */
export async function grpoEpisodes(
  p: GrpoSources,
  cfg: GrpoConfig,
  batch: number[],
  seed: number,
): Promise<GrpoEpisodes> {
  const t0 = performance.now();
  const promptIndex = batch.flatMap((i) => Array<number>(cfg.groupSize).fill(i));
  const r = rollout(
    p.policy,
    promptIndex.map((i) => p.promptIds[i]),
    {
      maxNewTokens: cfg.maxNewTokens,
      temperature: cfg.temperature,
      seed,
      formatter: p.fmt,
      chunk: cfg.miniBatchSize,
      dtype: cfg.bf16 ? 'bf16' : 'f32',
      ref: p.refLogps,
    },
  );
  const { rows, oldLogp, refLogp } = r;
  const promptTexts = promptIndex.map((i) => p.prompts.texts[i]);
  const completions = rows.map((r) => p.fmt.decode(r.response));
  const scored = await weightedReward(p.sources, p.weights, promptTexts, completions, {
    prompts: rows.map((r) => r.prompt),
    responses: rows.map((r) => r.response),
  });
  const kl = refLogp ? rows.map((_, b) => klPerToken(oldLogp[b], refLogp[b], 'k3').reduce((a, x) => a + x, 0)) : null;
  const rewards = kl && cfg.klInReward ? scored.total.map((r, b) => r - cfg.beta * kl[b]) : scored.total;
  const advantages = groupAdvantages(rewards, cfg.groupSize, cfg.estimator, { scaleRewards: cfg.scaleRewards });
  const samples: Sample[] = rows.map((r, b) => ({
    ...r,
    promptIndex: promptIndex[b],
    oldLogp: oldLogp[b],
    refLogp: refLogp?.[b] ?? [],
    advantage: advantages[b],
  }));
  const groupStd: number[] = [];
  for (let at = 0; at < rewards.length; at += cfg.groupSize) {
    const g = scored.total.slice(at, at + cfg.groupSize);
    const m = mean(g);
    groupStd.push(Math.sqrt(g.reduce((a, r) => a + (r - m) ** 2, 0) / (g.length - 1)));
  }
  const metrics: Metrics = {
    reward: mean(scored.total),
    reward_std: mean(groupStd),
    ...scored.means,
    frac_reward_zero_std: mean(groupStd.map((s) => (s === 0 ? 1 : 0))),
    ...(kl ? { [METRIC.kl]: mean(kl) } : {}),
    [METRIC.entropy]: r.entropy,
    'completions/mean_length': mean(rows.map((e) => e.response.length)),
    'completions/eos_fraction': mean(r.finishReasons.map((f) => (f === 'eos' ? 1 : 0))),
    ...r.metrics,
    [METRIC.rolloutSeconds]: (performance.now() - t0) / 1000,
  };
  return { samples, completions, rewards: scored.total, metrics };
}

/** The samples.jsonl records of a step. */
export function sampleRecords(step: number, texts: string[], r: GrpoEpisodes): Record<string, unknown>[] {
  return r.samples.map((s, b) => ({
    step,
    prompt: texts[s.promptIndex],
    completion: r.completions[b],
    reward: r.rewards[b],
    advantage: s.advantage,
  }));
}
