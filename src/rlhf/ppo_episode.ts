// PPO's episodes (bandits: one sampled response per prompt): the shared rollout, the reward's score at the last
// token, −β·KL to the reference at every token, and GAE with the value model's values → advantages and returns;
// with the rollout's metrics.
import type { ScalarModel } from '../models/index.js';
import { slice, type Tensor } from '../tensor/index.js';
import { METRIC, type Metrics } from '../train/metrics.js';
import { klShapedAdvantages } from './gae.js';
import type { KLEstimator } from './kl.js';
import type { PPOSetup } from './ppo_config.js';
import { mean, type Packed, referenceLogps, rollout } from './rollout.js';

/** One episode: token ids and per-response-token arrays (index j = the j-th response token). */
export interface Episode {
  prompt: number[];
  response: number[];
  promptText: string;
  responseText: string;
  oldLogp: number[];
  oldValues: number[];
  advantages: number[];
  returns: number[];
  score: number;
  kl: number;
}

/**
 * Samples one response per prompt with the policy (its adapters already applied) and scores it: old log-probs,
 * values, rewards, advantages and returns, at KL coefficient beta.
 */
export function ppoEpisodes(
  s: PPOSetup,
  prompts: { ids: number[][]; texts: string[] },
  o: { beta: number; seed: number },
): { episodes: Episode[]; metrics: Metrics } {
  const c = s.config;
  const { policy, ref, value, formatter } = s;
  const r = rollout(policy, prompts.ids, {
    maxNewTokens: c.maxNewTokens,
    temperature: c.temperature,
    seed: o.seed,
    formatter,
    chunk: c.batchSize,
    dtype: c.bf16 ? 'bf16' : 'f32',
    ref: referenceLogps(policy, ref ?? null, c.temperature),
    values: (p) => valuesOf(value, p),
  });
  const { rows } = r;
  const [oldLogp, refLogp, oldValues] = [r.oldLogp, r.refLogp!, r.values!];
  const responseTexts = rows.map((r) => formatter.decode(r.response));
  const scores = s.reward(prompts.texts, responseTexts, {
    prompts: rows.map((r) => r.prompt),
    responses: rows.map((r) => r.response),
  });
  if (scores.length !== rows.length || !scores.every(Number.isFinite))
    throw new Error(`reward: expected ${rows.length} finite scores, got ${JSON.stringify(scores)}`);
  const { beta } = o;
  const shaped = klShapedAdvantages(rows, oldLogp, refLogp, oldValues, scores, {
    beta,
    estimator: c.klEstimator as KLEstimator,
    gamma: c.gamma,
    lam: c.lam,
    whiten: c.whitenAdvantages,
  });
  const episodes: Episode[] = rows.map((r, b) => ({
    ...r,
    ...shaped[b],
    promptText: prompts.texts[b],
    responseText: responseTexts[b],
    oldLogp: oldLogp[b],
    oldValues: oldValues[b],
    score: scores[b],
  }));
  return {
    episodes,
    metrics: {
      [METRIC.kl]: mean(episodes.map((e) => e.kl)),
      [METRIC.scores]: mean(scores),
      [METRIC.rlhfReward]: mean(episodes.map((e) => e.score - beta * e.kl)),
      [METRIC.entropy]: r.entropy,
      [METRIC.klCoef]: beta,
      [METRIC.responseLength]: mean(rows.map((r) => r.response.length)),
      [METRIC.eosFraction]: mean(r.finishReasons.map((f) => (f === 'eos' ? 1 : 0))),
      // Sampling alone (time/generate), beside time/rollout, which also scores with every model.
      ...r.metrics,
    },
  };
}

/** The value model's per-token values over the packed grid's positions. */
export function valuesOf(value: ScalarModel, p: Packed): Tensor {
  return slice(value.scoresPerToken(p.ids, { attentionMask: p.mask }), 1, p.from, p.T - 1);
}
