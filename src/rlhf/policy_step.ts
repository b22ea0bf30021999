// The policy's update on a minibatch of rollout episodes, shared by PPO and GRPO/RLOO: the policy's log-probs of the
// sampled tokens now against the rollout's, in the clipped surrogate (ppo_loss.ts), each token with its advantage.
import type { CausalLM } from '../models/index.js';
import type { Tensor } from '../tensor/index.js';
import { METRIC, type Metrics } from '../train/metrics.js';
import { policyLoss } from './ppo_loss.js';
import { type EpisodeRows, type Packed, pack, tokenLogps } from './rollout.js';

export interface SampledEpisode extends EpisodeRows {
  /** The rollout's log-probs of the response tokens. */
  oldLogp: number[];
}

export interface PolicyStep {
  loss: Tensor;
  /** The policy's log-probs over the packed grid (for further loss terms, e.g. GRPO's KL). */
  logp: Tensor;
  packed: Packed;
  /** policy/loss, policy/clipfrac, policy/approxkl. */
  metrics: Metrics;
}

export function clippedPolicyStep<E extends SampledEpisode>(
  policy: CausalLM,
  episodes: E[],
  advantages: (e: E) => readonly number[],
  o: { temperature: number; clipRange: number },
): PolicyStep {
  const packed = pack(episodes);
  const { logp } = tokenLogps(policy, packed, o.temperature);
  const pl = policyLoss(
    logp,
    packed.grid<E>((e) => e.oldLogp),
    packed.grid(advantages),
    packed.respMask,
    o.clipRange,
  );
  const metrics = {
    [METRIC.policyLoss]: pl.loss.item(),
    [METRIC.policyClipfrac]: pl.clipfrac,
    [METRIC.policyApproxKl]: pl.approxkl,
  };
  return { loss: pl.loss, logp, packed, metrics };
}
