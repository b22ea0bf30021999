// Rewards for PPO episodes: a reward model folder (a scalar head read at the last token of prompt + response) or a
// programmatic function (tests, demos). Either way one number per episode.
import { ScalarModel, scoreSequences } from '../models/index.js';
import { applyLora, type LoraConfig, withAdaptersDisabled } from '../models/lora.js';
import { toF32 } from '../tensor/index.js';

export interface EpisodeTokens {
  /** Prompt token ids of each episode. */
  prompts: number[][];
  /** Response token ids of each episode (EOS included when the response ended with it). */
  responses: number[][];
}

export type RewardFn = (prompts: string[], responses: string[], tokens: EpisodeTokens) => number[];

/**
 * Scores prompt + response with a reward model at the response's last token (no graph is recorded). The episodes
 * of a batch are scored together.
 */
export function rewardModelFn(rm: ScalarModel, padId: number): RewardFn {
  rm.eval();
  return (_prompts, _responses, { prompts, responses }) =>
    scoreSequences(
      rm,
      prompts.map((p, b) => ({ ids: [...p, ...responses[b]], promptLength: p.length })),
      prompts.length,
      padId,
    );
}

/**
 * With LoRA, the value model and the reward model can share one frozen trunk (InstructGPT starts the value model from
 * the reward model): the value model is the reward model's trunk with LoRA adapters and a head of its own (a copy of
 * the reward head), and the reward is read with those adapters off. One copy of the trunk instead of two.
 */
export function valueOnRewardModel(
  rm: ScalarModel,
  padId: number,
  lora: LoraConfig,
  seed = 0,
): { value: ScalarModel; reward: RewardFn } {
  const value = new ScalarModel(rm.trunk);
  value.score.weight.f32.set(toF32(rm.score.weight).f32); // the reward model may be held in bf16
  value.score.bias?.f32.set(rm.score.bias?.f32 ?? [0]);
  applyLora(value, lora, { seed });
  const score = rewardModelFn(rm, padId);
  return { value, reward: (p, r, tokens) => withAdaptersDisabled(value, () => score(p, r, tokens)) };
}

/** Reward = how many times `needle` occurs in the response text (non-overlapping). */
export function countReward(needle: string): RewardFn {
  if (needle.length === 0) throw new Error('countReward: needle must not be empty');
  return (_prompts, responses) => responses.map((r) => r.split(needle).length - 1);
}

/** Reward = how many response tokens equal `tokenId`. */
export function tokenCountReward(tokenId: number): RewardFn {
  return (_prompts, _responses, { responses }) => responses.map((r) => r.filter((t) => t === tokenId).length);
}
