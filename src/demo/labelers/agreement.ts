/** Inter-labeler agreement and win rates with confidence intervals. */
import { type WinRate, winRateOf } from '../../rlhf/eval_stats.js';
import { pairwiseAgreement } from '../../store/ranking.js';
import type { Labeler, LabelItem } from './labeler.js';

// The statistics live with the rest of the evaluation maths; the demo's callers keep importing them from here.
export { type WinRate, wilsonInterval } from '../../rlhf/eval_stats.js';

export interface PairAgreement {
  a: string;
  b: string;
  agreement: number;
}

export interface AgreementReport {
  /** Mean over labeler pairs of the fraction of response pairs both order the same way. */
  agreement: number;
  /** Standard deviation of that fraction across labeler pairs. */
  sd: number;
  pairs: PairAgreement[];
  /** Response pairs compared per labeler pair. */
  comparisons: number;
}

function agreementOver<T extends LabelItem>(
  labelers: readonly Labeler<T>[],
  pairs: readonly [number, number][],
  tasks: readonly T[],
  responsesPerTask: readonly (readonly string[])[],
): AgreementReport {
  if (tasks.length !== responsesPerTask.length) {
    throw new Error(`agreement: ${tasks.length} tasks but ${responsesPerTask.length} response sets`);
  }
  if (pairs.length === 0) throw new Error('agreement: needs at least two labelers');
  const same = new Array<number>(pairs.length).fill(0);
  let comparisons = 0;
  tasks.forEach((task, t) => {
    const responses = responsesPerTask[t];
    const k = responses.length;
    if (k < 2) return;
    const rankings = labelers.map((l) => l.rank(task, responses).ranking);
    const n = (k * (k - 1)) / 2;
    comparisons += n;
    pairs.forEach(([i, j], p) => {
      same[p] += pairwiseAgreement(rankings[i], rankings[j]) * n;
    });
  });
  if (comparisons === 0) throw new Error('agreement: no task has two or more responses');
  const per = pairs.map(([i, j], p) => ({ a: labelers[i].id, b: labelers[j].id, agreement: same[p] / comparisons }));
  const mean = per.reduce((s, x) => s + x.agreement, 0) / per.length;
  const sd = Math.sqrt(per.reduce((s, x) => s + (x.agreement - mean) ** 2, 0) / per.length);
  return { agreement: mean, sd, pairs: per, comparisons };
}

/** Agreement among the labelers of one pool: every labeler ranks every response set. */
export function measureAgreement<T extends LabelItem>(
  pool: readonly Labeler<T>[],
  tasks: readonly T[],
  responsesPerTask: readonly (readonly string[])[],
): AgreementReport {
  const pairs: [number, number][] = [];
  for (let i = 0; i < pool.length; i++) for (let j = i + 1; j < pool.length; j++) pairs.push([i, j]);
  return agreementOver(pool, pairs, tasks, responsesPerTask);
}

/** Agreement between two pools: only pairs with one labeler from each. */
export function agreementBetween<T extends LabelItem>(
  poolA: readonly Labeler<T>[],
  poolB: readonly Labeler<T>[],
  tasks: readonly T[],
  responsesPerTask: readonly (readonly string[])[],
): AgreementReport {
  const pairs: [number, number][] = [];
  for (let i = 0; i < poolA.length; i++) for (let j = 0; j < poolB.length; j++) pairs.push([i, poolA.length + j]);
  return agreementOver([...poolA, ...poolB], pairs, tasks, responsesPerTask);
}

/**
 * How often answers A beat answers B on the same tasks. Judges take turns (task i goes to judge i mod n) and see
 * A first on even tasks, second on odd ones, so an order bias in a judge cancels. Identical answers are a tie.
 */
export function winRate<T extends LabelItem>(
  judges: readonly Labeler<T>[],
  tasks: readonly T[],
  answersA: readonly string[],
  answersB: readonly string[],
): WinRate {
  if (judges.length === 0) throw new Error('winRate: needs at least one judge');
  if (answersA.length !== tasks.length || answersB.length !== tasks.length) {
    throw new Error(`winRate: ${tasks.length} tasks but ${answersA.length} and ${answersB.length} answers`);
  }
  let wins = 0;
  let ties = 0;
  tasks.forEach((task, i) => {
    const a = answersA[i];
    const b = answersB[i];
    if (a.trim() === b.trim()) {
      ties++;
      return;
    }
    const judge = judges[i % judges.length];
    const aWins = i % 2 === 0 ? judge.compare(task, a, b) === 'a' : judge.compare(task, b, a) === 'b';
    if (aWins) wins++;
  });
  return winRateOf({ wins, ties, losses: tasks.length - wins - ties });
}
