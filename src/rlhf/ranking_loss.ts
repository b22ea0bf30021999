// The reward model's ranking loss (InstructGPT appendix C): all C(K,2) pairs of a prompt's K responses, each
// −log σ(r_w − r_l − margin), weighed 1/C(K,2) so that every prompt counts once; and pairwise accuracy.
import { abs, add, check, embedding, exp, log, minimum, mul, neg, reshape, sub, sum, Tensor } from '../tensor/index.js';

/** The responses of one prompt within a flat score vector: scores[offset + i] is response i's. */
export interface RankingGroup {
  offset: number;
  /** Response indices, best first. */
  ranking: number[];
}

function checkRanking(ranking: number[], k: number, op: string): void {
  const seen = new Set(ranking);
  check(
    k >= 2 && ranking.length === k && seen.size === k && ranking.every((i) => Number.isInteger(i) && i >= 0 && i < k),
    op,
    () => `ranking [${ranking}] must be a permutation of 0..${k - 1} (K >= 2)`,
  );
}

// −log σ(x) = log(1 + e^−|x|) − min(x, 0), which neither overflows nor takes log(0).
export function negLogSigmoid(x: Tensor): Tensor {
  return sub(log(add(exp(neg(abs(x))), 1)), minimum(x, 0));
}

/**
 * Mean over prompts of each prompt's ranking loss, from one flat vector of scores (N) holding every response of
 * every prompt: all C(K,2) pairs of a prompt weigh 1/C(K,2), so each prompt counts once however large its K.
 */
export function batchRankingLoss(scores: Tensor, groups: RankingGroup[], margin = 0): Tensor {
  const op = 'rankingLoss';
  check(scores.ndim === 1, op, () => `scores must be 1-D, got ${scores.ndim}-D`);
  check(groups.length > 0, op, () => 'no rankings');
  const win: number[] = [];
  const lose: number[] = [];
  const weight: number[] = [];
  for (const { offset, ranking } of groups) {
    const K = ranking.length;
    checkRanking(ranking, K, op);
    check(
      offset >= 0 && offset + K <= scores.shape[0],
      op,
      () => `group at ${offset} of K ${K} exceeds ${scores.shape[0]} scores`,
    );
    const pairs = (K * (K - 1)) / 2;
    for (let i = 0; i < K; i++)
      for (let j = i + 1; j < K; j++) {
        win.push(offset + ranking[i]);
        lose.push(offset + ranking[j]);
        weight.push(1 / (pairs * groups.length));
      }
  }
  const P = win.length;
  const column = reshape(scores, [scores.shape[0], 1]);
  const rw = reshape(embedding(column, Tensor.fromBuffer(Int32Array.from(win), [P])), [P]);
  const rl = reshape(embedding(column, Tensor.fromBuffer(Int32Array.from(lose), [P])), [P]);
  return sum(mul(negLogSigmoid(sub(sub(rw, rl), margin)), Tensor.fromBuffer(Float32Array.from(weight), [P])));
}

/** −1/C(K,2) Σ_{w ranked above l} log σ(r_w − r_l − margin) for one prompt's K scores. */
export function rankingLoss(scores: Tensor, ranking: number[], margin = 0): Tensor {
  check(scores.ndim === 1, 'rankingLoss', () => `scores must be (K), got ${scores.ndim}-D`);
  checkRanking(ranking, scores.shape[0], 'rankingLoss');
  return batchRankingLoss(scores, [{ offset: 0, ranking }], margin);
}

/** Pairs ordered correctly (r_w > r_l; a tie counts as wrong) and pairs in all, of one prompt's scores. */
export function pairsCorrect(scores: ArrayLike<number>, ranking: number[]): { correct: number; pairs: number } {
  let correct = 0;
  let pairs = 0;
  for (let i = 0; i < ranking.length; i++)
    for (let j = i + 1; j < ranking.length; j++) {
      pairs++;
      if (scores[ranking[i]] > scores[ranking[j]]) correct++;
    }
  return { correct, pairs };
}
