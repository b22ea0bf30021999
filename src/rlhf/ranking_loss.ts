// The reward model's ranking loss (InstructGPT appendix C): every ordered pair of a prompt's K responses (C(K,2)
// without ties; a tie makes no pair), each −log σ(r_w − r_l − margin), weighed so that every prompt counts once; and
// pairwise accuracy.
import { orderedPairs, type RankingOrder, rankedItems, rankingShapeError } from '../store/ranking.js';
import { abs, add, check, embedding, exp, log, minimum, mul, neg, reshape, sub, sum, Tensor } from '../tensor/index.js';

/** The responses of one prompt within a flat score vector: scores[offset + i] is response i's. */
export interface RankingGroup {
  offset: number;
  /** Response indices, best first; tied responses as an inner array (they make no pair). */
  ranking: RankingOrder;
}

function checkRanking(ranking: RankingOrder, k: number, op: string): void {
  const err = rankingShapeError(ranking, k);
  check(k >= 2 && err === null, op, () => `ranking ${JSON.stringify(ranking)}: ${err ?? 'K must be >= 2'}`);
  check(orderedPairs(ranking).length > 0, op, () => `ranking ${JSON.stringify(ranking)} is one tie: it makes no pair`);
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
    const K = rankedItems(ranking).length;
    checkRanking(ranking, K, op);
    check(
      offset >= 0 && offset + K <= scores.shape[0],
      op,
      () => `group at ${offset} of K ${K} exceeds ${scores.shape[0]} scores`,
    );
    const pairs = orderedPairs(ranking);
    for (const [better, worse] of pairs) {
      win.push(offset + better);
      lose.push(offset + worse);
      weight.push(1 / (pairs.length * groups.length));
    }
  }
  const P = win.length;
  const column = reshape(scores, [scores.shape[0], 1]);
  const rw = reshape(embedding(column, Tensor.fromBuffer(Int32Array.from(win), [P])), [P]);
  const rl = reshape(embedding(column, Tensor.fromBuffer(Int32Array.from(lose), [P])), [P]);
  return sum(mul(negLogSigmoid(sub(sub(rw, rl), margin)), Tensor.fromBuffer(Float32Array.from(weight), [P])));
}

/**
 * −1/P Σ_{w ranked above l} log σ(r_w − r_l − margin) for one prompt's K scores, over its P ordered pairs (C(K,2)
 * without ties).
 */
export function rankingLoss(scores: Tensor, ranking: RankingOrder, margin = 0): Tensor {
  check(scores.ndim === 1, 'rankingLoss', () => `scores must be (K), got ${scores.ndim}-D`);
  checkRanking(ranking, scores.shape[0], 'rankingLoss');
  return batchRankingLoss(scores, [{ offset: 0, ranking }], margin);
}

/** Pairs ordered correctly (r_w > r_l; a tie counts as wrong) and pairs in all, of one prompt's scores. */
export function pairsCorrect(scores: ArrayLike<number>, ranking: RankingOrder): { correct: number; pairs: number } {
  const pairs = orderedPairs(ranking);
  return { correct: pairs.filter(([w, l]) => scores[w] > scores[l]).length, pairs: pairs.length };
}
