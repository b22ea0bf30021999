// GRPO's config (the base every trainer shares, and its own fields) and its maths: group advantages (GRPO, RLOO)
// and the k3 KL term.
import { Type } from '@sinclair/typebox';
import { loraConfigOf } from '../models/lora.js';
import { add, exp, mul, scale, sub, sum, type Tensor } from '../tensor/index.js';
import { baseFields, ConfigSpec, loraFields, promptFormatField } from '../train/config.js';

export type AdvantageEstimator = 'grpo' | 'rloo';
export const ADVANTAGE_ESTIMATORS: readonly AdvantageEstimator[] = ['grpo', 'rloo'];

const positiveInt = (def: number, description: string) => Type.Integer({ minimum: 1, default: def, description });

/** TRL's GRPO settings where it has them (G 8, ε 0.2, lr 1e-6), β 0.04 as in DeepSeekMath. */
export const grpoSpec = new ConfigSpec('grpo', {
  steps: positiveInt(100, 'steps: each samples groupSize completions for batchSize prompts and optimises on them'),
  groupSize: Type.Integer({ minimum: 2, default: 8, description: 'G: completions per prompt (a group to compare)' }),
  miniBatchSize: positiveInt(16, 'completions per optimizer update'),
  iterations: positiveInt(1, 'μ: passes over each step’s completions (1: on-policy)'),
  estimator: Type.Union(
    ADVANTAGE_ESTIMATORS.map((e) => Type.Literal(e)),
    { default: 'grpo', description: 'advantages: grpo (r − mean)/(std + eps) or rloo (leave-one-out)' },
  ),
  scaleRewards: Type.Boolean({ default: true, description: "GRPO: divide by the group's std (off: Dr. GRPO)" }),
  maxNewTokens: positiveInt(64, 'longest completion'),
  temperature: Type.Number({ exclusiveMinimum: 0, default: 1, description: 'sampling temperature' }),
  promptFormat: promptFormatField,
  beta: Type.Number({ minimum: 0, default: 0.04, description: 'β: weight of the k3 KL to the reference (0: none)' }),
  klInReward: Type.Boolean({ default: false, description: 'subtract β·KL from the reward instead of the loss' }),
  clipRange: Type.Number({ exclusiveMinimum: 0, default: 0.2, description: 'policy ratio clip ε' }),
  rewardWeights: Type.Array(Type.Number(), {
    default: [],
    description: 'weights of the reward sources: reward model, reward module (empty: all 1)',
  }),
  sampleEvery: Type.Integer({ minimum: 0, default: 10, description: 'write completions every N steps (0: never)' }),
  ...loraFields(),
  ...baseFields({ batchSize: 4, lr: 1e-6, lrScheduler: 'constant', warmupRatio: 0, saveEvery: 50 }),
});

export type GrpoConfig = typeof grpoSpec.defaults;
export const grpoDefaults: GrpoConfig = grpoSpec.defaults;

export function checkGrpoConfig(c: GrpoConfig, source = 'grpo config'): void {
  grpoSpec.check(c, source);
  loraConfigOf(c, source);
  if (c.miniBatchSize > c.batchSize * c.groupSize)
    throw new Error(
      `${source}: field "miniBatchSize" must be at most batchSize × groupSize (${c.batchSize * c.groupSize}), got ${c.miniBatchSize}`,
    );
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
