/**
 * The statistics of blind A/B evaluation: a win rate with its 95 % Wilson interval, and Bradley–Terry strengths
 * across many model versions fitted from every pairwise outcome, reported on the Elo scale with bootstrap intervals
 * (as Anthropic's HH paper and Chatbot Arena compare models).
 */
import { Rng } from '../tensor/index.js';

export interface WinRate {
  /** Share of comparisons A wins, a tie counted as half a win (and half a loss). */
  winRate: number;
  /** 95 % Wilson score interval of winRate. */
  lo: number;
  hi: number;
  wins: number;
  ties: number;
  losses: number;
  n: number;
}

/** Wilson score interval for a proportion p over n trials (z = 1.96 for 95 %); [0, 1] when n is 0. */
export function wilsonInterval(p: number, n: number, z = 1.96): { lo: number; hi: number } {
  if (n === 0) return { lo: 0, hi: 1 };
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { lo: Math.max(0, centre - half), hi: Math.min(1, centre + half) };
}

/**
 * A's win rate from counts: (wins + ties / 2) / n with the Wilson interval over all n comparisons, ties included
 * (a tie is half a win, as the paper's Figure 1 counts them); 0.5 with [0, 1] when there are none.
 */
export function winRateOf(c: { wins: number; ties: number; losses: number }): WinRate {
  const n = c.wins + c.ties + c.losses;
  const rate = n === 0 ? 0.5 : (c.wins + c.ties / 2) / n;
  return { winRate: rate, ...wilsonInterval(rate, n), wins: c.wins, ties: c.ties, losses: c.losses, n };
}

/** The difference of two proportions measured on the same items, with its 95 % interval. */
export interface PairedDifference {
  /** Share of items A gets right minus the share B gets right. */
  diff: number;
  lo: number;
  hi: number;
  n: number;
}

/**
 * A's rate minus B's on the same n items (`a[i]`, `b[i]`: item i counted for each), with Newcombe's hybrid score
 * interval for paired data (1998, his method 10, without continuity correction): the two Wilson intervals, combined
 * through the correlation of the two outcomes. Paired, so it is narrower than two independent samples' interval when
 * both models get the same items right.
 */
export function pairedDifference(a: readonly boolean[], b: readonly boolean[], z = 1.96): PairedDifference {
  if (a.length !== b.length) throw new Error(`pairedDifference: ${a.length} outcomes against ${b.length}`);
  const n = a.length;
  if (n === 0) return { diff: 0, lo: -1, hi: 1, n };
  let both = 0;
  let onlyA = 0;
  let onlyB = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] && b[i]) both++;
    else if (a[i]) onlyA++;
    else if (b[i]) onlyB++;
  }
  const neither = n - both - onlyA - onlyB;
  const [pA, pB] = [(both + onlyA) / n, (both + onlyB) / n];
  const wa = wilsonInterval(pA, n, z);
  const wb = wilsonInterval(pB, n, z);
  const margins = (both + onlyA) * (onlyB + neither) * (both + onlyB) * (onlyA + neither);
  const phi = margins === 0 ? 0 : (both * neither - onlyA * onlyB) / Math.sqrt(margins);
  const spread = (x: number, y: number) => Math.sqrt(Math.max(0, x * x - 2 * phi * x * y + y * y));
  const diff = pA - pB;
  return {
    diff,
    lo: Math.max(-1, diff - spread(pA - wa.lo, wb.hi - pB)),
    hi: Math.min(1, diff + spread(wa.hi - pA, pB - wb.lo)),
    n,
  };
}

/** One blind comparison: which of two models' answers the labeler preferred. */
export interface Outcome {
  a: string;
  b: string;
  result: 'a' | 'b' | 'tie';
}

/** `model`'s wins, ties and losses against `opponent`, whichever side each comparison showed them on. */
export function headToHead(outcomes: readonly Outcome[], model: string, opponent: string) {
  const c = { wins: 0, ties: 0, losses: 0 };
  for (const o of outcomes) {
    const side = o.a === model && o.b === opponent ? 'a' : o.b === model && o.a === opponent ? 'b' : null;
    if (!side) continue;
    if (o.result === 'tie') c.ties++;
    else if (o.result === side) c.wins++;
    else c.losses++;
  }
  return c;
}

export interface BradleyTerryOptions {
  /**
   * Ridge on the log-strengths (a Gaussian prior of variance 1/λ, natural-log units): keeps a version that never
   * lost (or never played) finite, and fixes the scale's origin (strengths sum to 0). Default 0.1.
   */
  l2?: number;
  maxIterations?: number;
  tolerance?: number;
}

/**
 * Bradley–Terry log-strengths θ (P(i beats j) = σ(θi − θj)) maximising the likelihood of the outcomes (a tie as
 * half a win each way) minus λ/2·Σθ², by Newton's method (the objective is strictly concave, so it converges in a
 * few steps). `models` fixes the order (default: first appearance); every outcome's models must be in it.
 */
export function bradleyTerry(outcomes: readonly Outcome[], models?: readonly string[], opts: BradleyTerryOptions = {}) {
  const names = models ? [...models] : [...new Set(outcomes.flatMap((o) => [o.a, o.b]))];
  const games = indexOutcomes(outcomes, names);
  return { models: names, theta: fitStrengths(countGames(games, names.length), opts) };
}

/** Log-strengths maximising the ridge-penalised likelihood of these pair counts, by Newton's method. */
function fitStrengths({ wins, games }: PairCounts, opts: BradleyTerryOptions): number[] {
  const l2 = opts.l2 ?? 0.1;
  if (!(l2 > 0)) throw new Error(`bradleyTerry: l2 must be > 0 (got ${l2}); it keeps unbeaten versions finite`);
  const m = wins.length;
  const theta = new Array<number>(m).fill(0);
  for (let it = 0; it < (opts.maxIterations ?? 100); it++) {
    const grad = theta.map((t) => -l2 * t);
    const hess = Array.from({ length: m }, (_, i) => Array.from({ length: m }, (_, j) => (i === j ? -l2 : 0)));
    for (let i = 0; i < m; i++)
      for (let j = 0; j < m; j++) {
        const n = games[i][j];
        if (i === j || n === 0) continue;
        const p = sigmoid(theta[i] - theta[j]);
        grad[i] += wins[i][j] - n * p;
        hess[i][i] -= n * p * (1 - p);
        hess[i][j] += n * p * (1 - p);
      }
    const step = solve(hess, grad);
    let largest = 0;
    for (let i = 0; i < m; i++) {
      theta[i] -= step[i];
      largest = Math.max(largest, Math.abs(step[i]));
    }
    if (largest < (opts.tolerance ?? 1e-10)) break;
  }
  return theta;
}

/** The objective bradleyTerry maximises (log-likelihood minus the ridge), for checks and model comparison. */
export function bradleyTerryObjective(
  outcomes: readonly Outcome[],
  models: readonly string[],
  theta: readonly number[],
  l2 = 0.1,
): number {
  const { wins, games } = countGames(indexOutcomes(outcomes, models), models.length);
  let f = -0.5 * l2 * theta.reduce((s, t) => s + t * t, 0);
  for (let i = 0; i < models.length; i++)
    for (let j = 0; j < models.length; j++) {
      if (games[i][j] > 0) f += wins[i][j] * Math.log(sigmoid(theta[i] - theta[j]));
    }
  return f;
}

/** Elo points per unit of natural-log strength: a 400-point gap is 10:1 odds. */
export const ELO_PER_NAT = 400 / Math.LN10;

export interface EloRating {
  model: string;
  /** Bradley–Terry strength on the Elo scale (mean `base` across versions). */
  rating: number;
  /** 95 % bootstrap percentile interval. */
  lo: number;
  hi: number;
  /** Comparisons this version took part in. */
  games: number;
}

/**
 * Elo-scale ratings from a Bradley–Terry fit (base + ELO_PER_NAT·θ), best first, each with a 95 % percentile
 * interval from `rounds` bootstrap refits on outcomes resampled with replacement (seeded: the same outcomes give
 * the same table).
 */
export function eloRatings(
  outcomes: readonly Outcome[],
  opts: BradleyTerryOptions & { base?: number; rounds?: number; seed?: number } = {},
): EloRating[] {
  const base = opts.base ?? 1000;
  const fit = bradleyTerry(outcomes, undefined, opts);
  const names = fit.models;
  const rounds = opts.rounds ?? 200;
  const rng = new Rng(opts.seed ?? 0);
  const samples: number[][] = names.map(() => []);
  // Resampled as indices into the outcomes read once, so a round costs one pass over typed arrays.
  const all = indexOutcomes(outcomes, names);
  const n = all.w.length;
  const picks = new Int32Array(n);
  for (let r = 0; r < rounds && n > 0; r++) {
    for (let k = 0; k < n; k++) picks[k] = rng.int(n);
    const theta = fitStrengths(countGames(all, names.length, picks), opts);
    for (let i = 0; i < theta.length; i++) samples[i].push(base + ELO_PER_NAT * theta[i]);
  }
  const games = names.map((n) => outcomes.filter((o) => o.a === n || o.b === n).length);
  return names
    .map((model, i) => {
      const rating = base + ELO_PER_NAT * fit.theta[i];
      const s = samples[i].sort((x, y) => x - y);
      const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : rating);
      return { model, rating, lo: q(0.025), hi: q(0.975), games: games[i] };
    })
    .sort((x, y) => y.rating - x.rating);
}

interface PairCounts {
  /** wins[i][j]: i's wins over j (a tie half to each). */
  wins: number[][];
  /** games[i][j]: comparisons between i and j. */
  games: number[][];
}

/** The outcomes as model indices and A's score (1, ½, 0); a version against itself says nothing and is left out. */
function indexOutcomes(outcomes: readonly Outcome[], names: readonly string[]) {
  const index = new Map(names.map((n, i) => [n, i]));
  const kept = outcomes.filter((o) => o.a !== o.b);
  const a = new Int32Array(kept.length);
  const b = new Int32Array(kept.length);
  const w = new Float64Array(kept.length);
  kept.forEach((o, k) => {
    const i = index.get(o.a);
    const j = index.get(o.b);
    if (i === undefined || j === undefined)
      throw new Error(`bradleyTerry: outcome between unknown models ${o.a}, ${o.b}`);
    a[k] = i;
    b[k] = j;
    w[k] = o.result === 'a' ? 1 : o.result === 'tie' ? 0.5 : 0;
  });
  return { a, b, w };
}

/** Pair counts of the indexed outcomes (or of the ones `picks` names, repeats counted: a bootstrap sample). */
function countGames(g: ReturnType<typeof indexOutcomes>, m: number, picks?: Int32Array): PairCounts {
  const wins = Array.from({ length: m }, () => new Array<number>(m).fill(0));
  const games = Array.from({ length: m }, () => new Array<number>(m).fill(0));
  const total = picks ? picks.length : g.w.length;
  for (let t = 0; t < total; t++) {
    const k = picks ? picks[t] : t;
    const i = g.a[k];
    const j = g.b[k];
    const w = g.w[k];
    wins[i][j] += w;
    wins[j][i] += 1 - w;
    games[i][j]++;
    games[j][i]++;
  }
  return { wins, games };
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** Solves A x = b by Gaussian elimination with partial pivoting (A is small: one row per model version). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = c + 1; r < n; r++) {
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let k = r + 1; k < n; k++) s -= m[r][k] * x[k];
    x[r] = s / m[r][r];
  }
  return x;
}
