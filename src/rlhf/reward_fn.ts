// Rewards for PPO episodes: a reward model folder (a scalar head read at the last token of prompt + response) or a
// programmatic function (tests, demos). Either way one number per episode.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadScalarPretrained, ScalarModel } from '../models/index.js';
import { applyLora, type LoraConfig, withAdaptersDisabled } from '../models/lora.js';
import { noGrad, Tensor, tidy } from '../tensor/index.js';

export interface EpisodeTokens {
  /** Prompt token ids of each episode. */
  prompts: number[][];
  /** Response token ids of each episode (EOS included when the response ended with it). */
  responses: number[][];
}

export type RewardFn = (prompts: string[], responses: string[], tokens: EpisodeTokens) => number[];

/** Scores prompt + response with a reward model at the response's last token (no graph is recorded). */
export function rewardModelFn(rm: ScalarModel): RewardFn {
  rm.eval();
  return (_prompts, _responses, { prompts, responses }) =>
    noGrad(() =>
      tidy(() => {
        const seqs = prompts.map((p, b) => [...p, ...responses[b]]);
        const T = Math.max(...seqs.map((s) => s.length));
        const ids = Tensor.empty([seqs.length, T], 'i32');
        const mask = Tensor.empty([seqs.length, T]);
        seqs.forEach((s, b) => {
          for (let t = 0; t < T; t++) {
            ids.i32[b * T + t] = t < s.length ? s[t] : 0;
            mask.f32[b * T + t] = t < s.length ? 1 : 0;
          }
        });
        return rm
          .scoreAt(
            ids,
            seqs.map((s) => s.length - 1),
            { attentionMask: mask },
          )
          .toArray();
      }),
    );
}

/**
 * With LoRA, the value model and the reward model can share one frozen trunk (InstructGPT starts the value model from
 * the reward model): the value model is the reward model's trunk with LoRA adapters and a head of its own (a copy of
 * the reward head), and the reward is read with those adapters off. One copy of the trunk instead of two.
 */
export function valueOnRewardModel(
  rm: ScalarModel,
  lora: LoraConfig,
  seed = 0,
): { value: ScalarModel; reward: RewardFn } {
  const value = new ScalarModel(rm.trunk);
  value.score.weight.f32.set(rm.score.weight.f32);
  value.score.bias?.f32.set(rm.score.bias?.f32 ?? [0]);
  applyLora(value, lora, { seed });
  const score = rewardModelFn(rm);
  return { value, reward: (p, r, tokens) => withAdaptersDisabled(value, () => score(p, r, tokens)) };
}

/** The kind of a Hugging Face model folder, from config.json: a causal LM or a one-label scalar (reward/value) model. */
export function folderKind(dir: string): 'lm' | 'scalar' {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new Error(`${dir}: not a model folder (no config.json)`);
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  const arch = Array.isArray(cfg.architectures) ? String(cfg.architectures[0]) : '';
  if (/ForSequenceClassification$/.test(arch)) {
    if (cfg.num_labels !== undefined && cfg.num_labels !== 1)
      throw new Error(`${path}: field "num_labels" is ${cfg.num_labels}, a reward model has 1`);
    return 'scalar';
  }
  return 'lm';
}

/** Loads a reward model folder, checking first that it is one. */
export function loadRewardModel(dir: string): ScalarModel {
  if (folderKind(dir) !== 'scalar')
    throw new Error(`${dir}: is a language model folder, not a reward model (*ForSequenceClassification)`);
  return loadScalarPretrained(dir);
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
