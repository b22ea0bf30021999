// Rewards for PPO episodes: a reward model folder (a scalar head read at the last token of prompt + response) or a
// programmatic function (tests, demos). Either way one number per episode.
import { type ScalarModel, scoreSequences } from '../models/index.js';

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
      prompts.map((p, b) => [...p, ...responses[b]]),
      prompts.length,
      padId,
    );
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
