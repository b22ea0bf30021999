// SFT's evaluation at each epoch's end: the validation loss over response tokens, and the paper's selection score,
// the reward model's mean score of greedy samples on the validation prompts.
import { type CausalLM, generate, type ScalarModel, type ScoredSequence, scoreSequences } from '../models/index.js';
import { crossEntropy, noGrad, reshape, tidy } from '../tensor/index.js';
import type { Formatter } from '../tokenizer/index.js';
import { type SftExample, sftBatch } from './data.js';

/** Validation loss: the mean over all response tokens of the set. */
export function validationLoss(model: CausalLM, examples: SftExample[], batchSize: number, padId: number): number {
  let total = 0;
  let count = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const chunk = examples.slice(i, i + batchSize);
    total += noGrad(() =>
      tidy(() => {
        const { ids, mask, targets } = sftBatch(chunk, padId);
        const logits = model.forward(ids, { attentionMask: mask });
        const [B, T, V] = logits.shape;
        return crossEntropy(reshape(logits, [B * T, V]), reshape(targets, [B * T]), { reduction: 'sum' }).item();
      }),
    );
    for (const e of chunk) count += e.ids.length - e.promptLength;
  }
  return total / count;
}

/** Mean reward-model score of the policy's greedy (temperature 0) samples on the prompts. */
export function sampleScore(
  policy: CausalLM,
  rm: ScalarModel,
  prompts: number[][],
  fmt: Formatter,
  opts: { batchSize: number; maxNewTokens: number },
): number {
  const longest = Math.max(...prompts.map((p) => p.length));
  const room = Math.min(policy.maxPositions, rm.trunk.maxPositions) - longest;
  const maxNewTokens = Math.max(1, Math.min(opts.maxNewTokens, room));
  const sequences: ScoredSequence[] = [];
  for (let i = 0; i < prompts.length; i += opts.batchSize) {
    const chunk = prompts.slice(i, i + opts.batchSize);
    const { tokens } = generate(policy, chunk, {
      maxNewTokens,
      temperature: 0,
      eosTokenIds: [fmt.eosId],
      padTokenId: fmt.padId,
    });
    for (const [b, p] of chunk.entries()) sequences.push({ ids: [...p, ...tokens[b]], promptLength: p.length });
  }
  const scores = scoreSequences(rm, sequences, opts.batchSize, fmt.padId);
  return scores.reduce((a, b) => a + b, 0) / scores.length;
}

// Each distinct prompt once (a prompt with several demonstrations is sampled once), at most `limit` (0: all).
export function uniquePrompts(examples: SftExample[], limit: number): number[][] {
  const seen = new Map<string, number[]>();
  for (const e of examples) {
    const prompt = e.ids.slice(0, e.promptLength);
    seen.set(prompt.join(','), prompt);
  }
  const all = [...seen.values()];
  return limit > 0 ? all.slice(0, limit) : all;
}
