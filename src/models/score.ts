// Token rows into model inputs, and a reward model's scores of whole sequences.
import { crossEntropy, mul, neg, noGrad, reshape, sum, Tensor, tidy } from '../tensor/index.js';
import type { ScalarModel } from './heads.js';

/** Right-padded token rows with their attention mask (1 real, 0 pad) and lengths. */
export interface PaddedBatch {
  ids: Tensor;
  mask: Tensor;
  lengths: number[];
}

export function padRight(rows: readonly (readonly number[])[], padId: number): PaddedBatch {
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.length));
  const ids = Tensor.empty([B, T], 'i32');
  const mask = Tensor.empty([B, T]);
  ids.i32.fill(padId);
  mask.f32.fill(0);
  rows.forEach((r, b) => {
    ids.i32.set(r, b * T);
    mask.f32.fill(1, b * T, b * T + r.length);
  });
  return { ids, mask, lengths: rows.map((r) => r.length) };
}

/** A sequence to score: prompt + response (EOS included), the first promptLength tokens being the prompt. */
export interface ScoredSequence {
  ids: readonly number[];
  promptLength: number;
}

/** Reward-model scores of whole sequences (prompt + response), read at each one's last token; no graph recorded. */
export function scoreSequences(
  rm: ScalarModel,
  sequences: readonly ScoredSequence[],
  batchSize: number,
  padId: number,
): number[] {
  const out: number[] = [];
  for (let i = 0; i < sequences.length; i += batchSize) {
    const chunk = sequences.slice(i, i + batchSize);
    const scores = noGrad(() =>
      tidy(() => {
        const { ids, mask, lengths } = padRight(
          chunk.map((s) => s.ids),
          padId,
        );
        return rm
          .scoreAt(
            ids,
            lengths.map((n) => n - 1),
            { attentionMask: mask, responseStart: chunk.map((s) => s.promptLength) },
          )
          .toArray();
      }),
    );
    out.push(...scores);
  }
  return out;
}

/**
 * log π of each row's response from logits (B, T, V) and next-token targets (B, T) that are -100 outside the
 * response: the sum over its tokens, or their mean when `tokens` gives each row's number of response tokens.
 */
export function responseLogps(logits: Tensor, targets: Tensor, tokens?: readonly number[]): Tensor {
  const [B, T, V] = logits.shape;
  // Ignored targets have a loss of 0, so a row sum is the response's log-prob.
  const nll = crossEntropy(reshape(logits, [B * T, V]), reshape(targets, [B * T]), { reduction: 'none' });
  const logps = neg(sum(reshape(nll, [B, T]), 1));
  return tokens
    ? mul(
        logps,
        Tensor.fromBuffer(
          Float32Array.from(tokens, (n) => 1 / n),
          [B],
        ),
      )
    : logps;
}
