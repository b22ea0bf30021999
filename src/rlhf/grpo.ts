// GRPO (Shao et al. 2024, DeepSeekMath) and RLOO (Ahmadian et al. 2024): G completions per prompt, no value
// model. Each completion's advantage comes from its own group: GRPO (r − mean)/(std + eps), RLOO r − the mean of
// the other G − 1. The policy takes PPO's clipped token-level objective (rollout machinery and loss imported from
// ppo.ts / ppo_loss.ts); KL to the reference (k3) is either a loss term β·KL or subtracted from the reward.
import { type CausalLM, generate } from '../models/index.js';
import { type AdamW, clipGradNorm } from '../nn/index.js';
import { add, backward, exp, mul, noGrad, type Rng, scale, sub, sum, type Tensor, tidy } from '../tensor/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { Metrics } from '../train/metrics.js';
import { type Formatter, shuffled } from './data.js';
import { klPerToken } from './kl.js';
import { meanEntropy, type PromptSet, pack, type Rollout, tokenLogps, ungrid } from './ppo.js';
import { policyLoss } from './ppo_loss.js';
import { type RewardSource, weightedReward } from './reward_sources.js';

export type AdvantageEstimator = 'grpo' | 'rloo';
export const ADVANTAGE_ESTIMATORS: readonly AdvantageEstimator[] = ['grpo', 'rloo'];

export interface GrpoConfig {
  /** Iterations: each samples groupSize completions for batchSize prompts and optimises on them. */
  steps: number;
  /** Prompts per iteration. */
  batchSize: number;
  /** G: completions per prompt. */
  groupSize: number;
  /** Completions per gradient step. */
  miniBatchSize: number;
  /** μ: passes over each iteration's completions (1: on-policy, the ratio is 1 and the clip never binds). */
  iterations: number;
  estimator: AdvantageEstimator;
  /** GRPO: divide by the group's standard deviation (false: Dr. GRPO's plain r − mean). */
  scaleRewards: boolean;
  lr: number;
  weightDecay: number;
  maxGradNorm: number;
  maxNewTokens: number;
  temperature: number;
  /** β: weight of the k3 KL to the reference (0: no reference model is loaded). */
  beta: number;
  /** Subtract β·KL (summed over the completion) from the reward instead of adding β·KL to the loss. */
  klInReward: boolean;
  clipRange: number;
  /** Weights of the reward sources, in the order reward model, reward module (empty: all 1). */
  rewardWeights: number[];
  /** Checkpoint every this many iterations (0: only at the end or when stopped). */
  saveEvery: number;
  /** Write the completions of every this many iterations to samples.jsonl (0: never). */
  sampleEvery: number;
  seed: number;
}

/** TRL's GRPO settings where it has them (G 8, ε 0.2, lr 1e-6), β 0.04 as in DeepSeekMath. */
export const grpoDefaults: GrpoConfig = {
  steps: 100,
  batchSize: 4,
  groupSize: 8,
  miniBatchSize: 16,
  iterations: 1,
  estimator: 'grpo',
  scaleRewards: true,
  lr: 1e-6,
  weightDecay: 0,
  maxGradNorm: 1,
  maxNewTokens: 64,
  temperature: 1,
  beta: 0.04,
  klInReward: false,
  clipRange: 0.2,
  rewardWeights: [],
  saveEvery: 50,
  sampleEvery: 10,
  seed: 0,
};

export function checkGrpoConfig(c: GrpoConfig, source = 'grpo config'): void {
  const bad = (field: string, want: string) =>
    new Error(`${source}: field "${field}" must be ${want}, got ${JSON.stringify((c as never)[field])}`);
  for (const k of ['steps', 'batchSize', 'miniBatchSize', 'iterations', 'maxNewTokens'] as const)
    if (!Number.isInteger(c[k]) || c[k] < 1) throw bad(k, 'an integer >= 1');
  if (!Number.isInteger(c.groupSize) || c.groupSize < 2) throw bad('groupSize', 'an integer >= 2 (a group to compare)');
  for (const k of ['saveEvery', 'sampleEvery', 'seed'] as const)
    if (!Number.isInteger(c[k]) || c[k] < 0) throw bad(k, 'an integer >= 0');
  if (c.miniBatchSize > c.batchSize * c.groupSize)
    throw bad('miniBatchSize', `at most batchSize × groupSize (${c.batchSize * c.groupSize})`);
  if (!ADVANTAGE_ESTIMATORS.includes(c.estimator))
    throw bad('estimator', ADVANTAGE_ESTIMATORS.map((e) => `"${e}"`).join(' or '));
  for (const k of ['lr', 'weightDecay', 'maxGradNorm', 'beta'] as const)
    if (!(c[k] >= 0) || !Number.isFinite(c[k])) throw bad(k, 'a finite number >= 0');
  for (const k of ['temperature', 'clipRange'] as const) if (!(c[k] > 0)) throw bad(k, '> 0');
  if (!Array.isArray(c.rewardWeights) || !c.rewardWeights.every(Number.isFinite))
    throw bad('rewardWeights', 'a list of numbers');
}

// ---- advantages ----

/**
 * Advantages of consecutive groups of G rewards. GRPO: (r − mean)/(std + eps) with the unbiased std (as TRL;
 * without scaling, r − mean). RLOO: r − mean of the group's other G − 1 rewards.
 */
export function groupAdvantages(
  rewards: readonly number[],
  groupSize: number,
  estimator: AdvantageEstimator,
  opts: { scaleRewards?: boolean; eps?: number } = {},
): number[] {
  const G = groupSize;
  if (!Number.isInteger(G) || G < 2 || rewards.length % G !== 0)
    throw new Error(`groupAdvantages: ${rewards.length} rewards do not form groups of ${G} (G >= 2)`);
  const out: number[] = [];
  for (let at = 0; at < rewards.length; at += G) {
    const group = rewards.slice(at, at + G);
    const total = group.reduce((a, b) => a + b, 0);
    const mean = total / G;
    if (estimator === 'rloo') {
      for (const r of group) out.push(r - (total - r) / (G - 1));
      continue;
    }
    const std = Math.sqrt(group.reduce((a, r) => a + (r - mean) ** 2, 0) / (G - 1));
    const div = opts.scaleRewards === false ? 1 : std + (opts.eps ?? 1e-4);
    for (const r of group) out.push((r - mean) / div);
  }
  return out;
}

/**
 * Mean over the masked tokens of the k3 estimate of KL(π ‖ π_ref), differentiable in logp:
 * exp(ref − logp) − (ref − logp) − 1.
 */
export function k3Loss(logp: Tensor, refLogp: Tensor, mask: Tensor): Tensor {
  let n = 0;
  for (const m of mask.f32) n += m;
  const d = sub(refLogp, logp);
  const k3 = add(sub(exp(d), d), -1);
  return scale(sum(mul(k3, mask)), 1 / Math.max(n, 1));
}

// ---- one iteration: rollout and update ----

/** What an iteration works on: the models, the prompts (texts and ids), the reward sources and their weights. */
export interface GrpoSetup {
  policy: CausalLM;
  /** The frozen reference (null when β is 0). */
  ref: CausalLM | null;
  tokenizer: Tokenizer;
  fmt: Formatter;
  prompts: PromptSet;
  promptIds: number[][];
  sources: RewardSource[];
  weights: number[];
}

/** One sampled completion with what the update needs. */
export interface GrpoSample extends Rollout {
  promptIndex: number;
  oldLogp: number[];
  advantage: number;
  /** The reference's log-probs of its tokens (empty without a reference). */
  refLogp: number[];
}

function avg(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function decode(tokenizer: Tokenizer, ids: number[], eos: number): string {
  return tokenizer.decode(ids.filter((id) => id !== eos && tokenizer.idToToken(id) !== null));
}

/** Samples G completions per prompt and scores them: old log-probs, rewards, KL, group advantages. */
export async function grpoRollout(p: GrpoSetup, cfg: GrpoConfig, batch: number[], rng: Rng) {
  const { policy, ref, tokenizer, fmt } = p;
  const promptIndex = batch.flatMap((i) => Array<number>(cfg.groupSize).fill(i));
  const gen = generate(
    policy,
    promptIndex.map((i) => p.promptIds[i]),
    {
      maxNewTokens: cfg.maxNewTokens,
      temperature: cfg.temperature,
      seed: rng.nextU32(),
      eosTokenIds: [fmt.eosId],
      padTokenId: fmt.padId,
    },
  );
  const rows: Rollout[] = promptIndex.map((i, b) => ({ prompt: p.promptIds[i], response: gen.tokens[b] }));
  const oldLogp: number[][] = [];
  const refLogp: number[][] = [];
  let entropy = 0;
  for (let at = 0; at < rows.length; at += cfg.miniBatchSize) {
    const chunk = rows.slice(at, at + cfg.miniBatchSize);
    noGrad(() =>
      tidy(() => {
        const packed = pack(chunk);
        const pol = tokenLogps(policy, packed, cfg.temperature);
        oldLogp.push(...ungrid(pol.logp, chunk));
        entropy += (meanEntropy(pol.logits, packed.respMask) * chunk.length) / rows.length;
        if (ref) refLogp.push(...ungrid(tokenLogps(ref, packed, cfg.temperature).logp, chunk));
      }),
    );
  }
  const promptTexts = promptIndex.map((i) => p.prompts.texts[i]);
  const completions = rows.map((r) => decode(tokenizer, r.response, fmt.eosId));
  const scored = await weightedReward(p.sources, p.weights, promptTexts, completions, {
    prompts: rows.map((r) => r.prompt),
    responses: rows.map((r) => r.response),
  });
  const kl = ref ? rows.map((_, b) => klPerToken(oldLogp[b], refLogp[b], 'k3').reduce((a, x) => a + x, 0)) : null;
  const rewards = kl && cfg.klInReward ? scored.total.map((r, b) => r - cfg.beta * kl[b]) : scored.total;
  const advantages = groupAdvantages(rewards, cfg.groupSize, cfg.estimator, { scaleRewards: cfg.scaleRewards });
  const samples: GrpoSample[] = rows.map((r, b) => ({
    ...r,
    promptIndex: promptIndex[b],
    oldLogp: oldLogp[b],
    refLogp: refLogp[b] ?? [],
    advantage: advantages[b],
  }));
  const groupStd: number[] = [];
  for (let at = 0; at < rewards.length; at += cfg.groupSize) {
    const g = scored.total.slice(at, at + cfg.groupSize);
    const m = avg(g);
    groupStd.push(Math.sqrt(g.reduce((a, r) => a + (r - m) ** 2, 0) / (g.length - 1)));
  }
  const metrics: Metrics = {
    reward: avg(scored.total),
    reward_std: avg(groupStd),
    ...scored.means,
    frac_reward_zero_std: avg(groupStd.map((s) => (s === 0 ? 1 : 0))),
    ...(kl ? { 'objective/kl': avg(kl) } : {}),
    'objective/entropy': entropy,
    'completions/mean_length': avg(rows.map((r) => r.response.length)),
    'completions/eos_fraction': avg(gen.finishReasons.map((f) => (f === 'eos' ? 1 : 0))),
  };
  return { samples, completions, rewards: scored.total, metrics };
}

/** μ passes of shuffled minibatches: the clipped objective with the group advantage at every token, + β·k3. */
export function grpoUpdate(p: GrpoSetup, cfg: GrpoConfig, opt: AdamW, samples: GrpoSample[], rng: Rng) {
  const stats: Record<string, number[]> = {};
  const note = (k: string, v: number) => {
    stats[k] ??= [];
    stats[k].push(v);
  };
  const klLoss = p.ref !== null && !cfg.klInReward && cfg.beta > 0;
  for (let it = 0; it < cfg.iterations; it++) {
    const order = shuffled(samples.length, rng);
    for (let at = 0; at < order.length; at += cfg.miniBatchSize) {
      const mb = order.slice(at, at + cfg.miniBatchSize).map((i) => samples[i]);
      tidy(() => {
        const packed = pack(mb);
        const { logp } = tokenLogps(p.policy, packed, cfg.temperature);
        const advantages = packed.grid((e) => e.response.map(() => e.advantage));
        const pl = policyLoss(
          logp,
          packed.grid((e) => e.oldLogp),
          advantages,
          packed.respMask,
          cfg.clipRange,
        );
        let loss = pl.loss;
        if (klLoss)
          loss = add(
            loss,
            scale(
              k3Loss(
                logp,
                packed.grid((e) => e.refLogp),
                packed.respMask,
              ),
              cfg.beta,
            ),
          );
        note('policy/loss', pl.loss.item());
        note('loss', loss.item());
        note('policy/clipfrac', pl.clipfrac);
        note('policy/approxkl', pl.approxkl);
        backward(loss);
      });
      if (cfg.maxGradNorm > 0) note('policy/grad_norm', clipGradNorm(p.policy.parameters(), cfg.maxGradNorm));
      opt.step(cfg.lr);
      opt.zeroGrad();
    }
  }
  return Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, avg(v)]));
}
