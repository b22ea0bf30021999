/**
 * Rankings with ties. A ranking lists the K responses best → worst; an inner array is a group the labeler ranked
 * equal: `[2, [0, 3], 1]` puts 2 first, 0 and 3 tied second, 1 last. A strict ranking is a plain permutation, the
 * format every trainer already read. As in the paper, a tie makes no training pair: pairs are taken only between
 * responses in different places, so a ranking that is one tie teaches nothing and makes no pair at all.
 */

export type RankingPlace = number | number[];
export type RankingOrder = RankingPlace[];

/** The ranking's places as groups (a single response is a group of one). */
export function placesOf(ranking: readonly RankingPlace[]): number[][] {
  return ranking.map((p) => (Array.isArray(p) ? p : [p]));
}

/** Every response index, best → worst (tied ones in the order given). */
export function rankedItems(ranking: readonly RankingPlace[]): number[] {
  return ranking.flat();
}

/** True when the ranking holds a tie. */
export function hasTies(ranking: readonly RankingPlace[]): boolean {
  return ranking.some((p) => Array.isArray(p));
}

/** (better, worse) response pairs, best place first: each response over every one in a later place, never within one. */
export function orderedPairs(ranking: readonly RankingPlace[]): [number, number][] {
  const places = placesOf(ranking);
  const out: [number, number][] = [];
  for (let i = 0; i < places.length; i++)
    for (const better of places[i])
      for (let j = i + 1; j < places.length; j++) for (const worse of places[j]) out.push([better, worse]);
  return out;
}

/** The best response (the first of a tied first place). */
export const bestOf = (ranking: readonly RankingPlace[]): number => rankedItems(ranking)[0];

/** A tied group of one is just that response; an empty group is dropped. */
export function normalizeRanking(ranking: readonly RankingPlace[]): RankingOrder {
  return ranking.flatMap((p): RankingPlace[] => {
    if (!Array.isArray(p)) return [p];
    return p.length === 0 ? [] : p.length === 1 ? [p[0]] : [[...p]];
  });
}

/**
 * Why `ranking` is not a ranking of K responses (every index 0..K-1 exactly once, ties as arrays of 2 or more), or
 * null when it is.
 */
export function rankingShapeError(ranking: unknown, k: number): string | null {
  const shape = `"ranking" must be a permutation of 0..${k - 1} (best → worst; tied responses grouped in an array, e.g. [2, [0, 3], 1])`;
  if (!Array.isArray(ranking)) return shape;
  const seen = new Set<number>();
  for (const p of ranking) {
    const group = Array.isArray(p) ? p : [p];
    if (Array.isArray(p) && p.length < 2) return `${shape}; a tie groups 2 or more responses`;
    for (const i of group) {
      if (!Number.isInteger(i) || i < 0 || i >= k || seen.has(i)) return shape;
      seen.add(i);
    }
  }
  return seen.size === k ? null : shape;
}

/**
 * Share of response pairs that two rankings of the same K responses order the same way: both put i above j, both
 * below, or both tie them (1 = identical). NaN for fewer than 2 responses or rankings of different K.
 */
export function pairwiseAgreement(a: readonly RankingPlace[], b: readonly RankingPlace[]): number {
  const posA = positions(a);
  const posB = positions(b);
  const k = posA.length;
  if (k !== posB.length || k < 2) return Number.NaN;
  let same = 0;
  let total = 0;
  for (let i = 0; i < k; i++)
    for (let j = i + 1; j < k; j++) {
      total++;
      if (Math.sign(posA[i] - posA[j]) === Math.sign(posB[i] - posB[j])) same++;
    }
  return same / total;
}

/** Each response's place in a ranking, by response index (tied responses share one). */
export function positions(ranking: readonly RankingPlace[]): number[] {
  const pos: number[] = [];
  placesOf(ranking).forEach((group, place) => {
    for (const i of group) pos[i] = place;
  });
  return pos;
}
