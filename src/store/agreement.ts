/** Ranking agreement measures used by screening and the dashboards. */

/** Fraction of response pairs that two best→worst rankings of the same K items order the same way (1 = identical). */
export function pairwiseAgreement(a: readonly number[], b: readonly number[]): number {
  const k = a.length;
  if (k !== b.length || k < 2) return Number.NaN;
  const posA = new Array<number>(k);
  const posB = new Array<number>(k);
  a.forEach((item, pos) => {
    posA[item] = pos;
  });
  b.forEach((item, pos) => {
    posB[item] = pos;
  });
  let same = 0;
  let total = 0;
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      total++;
      if (posA[i] < posA[j] === posB[i] < posB[j]) same++;
    }
  }
  return same / total;
}

/** True when `ranking` is a permutation of 0..k-1. */
export function isPermutation(ranking: readonly number[], k: number): boolean {
  if (ranking.length !== k) return false;
  const seen = new Set<number>();
  for (const r of ranking) {
    if (!Number.isInteger(r) || r < 0 || r >= k || seen.has(r)) return false;
    seen.add(r);
  }
  return true;
}
