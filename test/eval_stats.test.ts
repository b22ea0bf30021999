// Win rates with Wilson intervals, and Bradley–Terry / Elo ratings across model versions (rlhf/eval_stats.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bradleyTerry,
  bradleyTerryObjective,
  ELO_PER_NAT,
  eloRatings,
  type Outcome,
  pairedDifference,
  wilsonInterval,
  winRateOf,
} from '../src/rlhf/index.js';
import { Rng } from '../src/tensor/index.js';

test('a win rate counts a tie as half a win, with the Wilson interval over all comparisons', () => {
  const w = winRateOf({ wins: 6, ties: 2, losses: 2 });
  assert.equal(w.n, 10);
  assert.equal(w.winRate, 0.7);
  // Wilson for p = 0.7, n = 10, z = 1.96, written out.
  const z = 1.96;
  const centre = (0.7 + (z * z) / 20) / (1 + (z * z) / 10);
  const half = (z / (1 + (z * z) / 10)) * Math.sqrt((0.7 * 0.3) / 10 + (z * z) / 400);
  assert.ok(Math.abs(w.lo - (centre - half)) < 1e-12 && Math.abs(w.hi - (centre + half)) < 1e-12);
  assert.ok(w.lo > 0.39 && w.lo < 0.4 && w.hi > 0.89 && w.hi < 0.9, `${w.lo} ${w.hi}`);
  // The interval narrows as evidence grows and always holds the estimate; no comparisons says nothing.
  const big = winRateOf({ wins: 600, ties: 200, losses: 200 });
  assert.ok(big.hi - big.lo < (w.hi - w.lo) / 5 && big.lo < 0.7 && big.hi > 0.7);
  assert.deepEqual(winRateOf({ wins: 0, ties: 0, losses: 0 }), {
    winRate: 0.5,
    lo: 0,
    hi: 1,
    wins: 0,
    ties: 0,
    losses: 0,
    n: 0,
  });
  assert.deepEqual(wilsonInterval(1, 5).hi, 1);
  assert.ok(wilsonInterval(1, 5).lo > 0.5);
});

const games = (a: string, b: string, aWins: number, ties: number, bWins: number): Outcome[] => [
  ...Array.from({ length: aWins }, () => ({ a, b, result: 'a' as const })),
  ...Array.from({ length: ties }, () => ({ a, b, result: 'tie' as const })),
  ...Array.from({ length: bWins }, () => ({ a, b, result: 'b' as const })),
];

test('Bradley–Terry maximises its objective: brute-force grid search and zero gradient agree with Newton', () => {
  const outcomes = [...games('x', 'y', 7, 2, 3), ...games('y', 'z', 5, 1, 4), ...games('x', 'z', 6, 0, 1)];
  const models = ['x', 'y', 'z'];
  const { theta } = bradleyTerry(outcomes, models);
  const f = (t: number[]) => bradleyTerryObjective(outcomes, models, t);
  // The ridge centres the strengths.
  assert.ok(Math.abs(theta[0] + theta[1] + theta[2]) < 1e-9);
  // Grid over two free coordinates (the third set by the sum-zero optimum), step 0.01.
  let best = { f: -Infinity, t: [0, 0, 0] };
  for (let a = -2; a <= 2; a += 0.01)
    for (let b = -2; b <= 2; b += 0.01) {
      const t = [a, b, -a - b];
      const v = f(t);
      if (v > best.f) best = { f: v, t };
    }
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(best.t[i] - theta[i]) < 0.011, `θ${i}: ${best.t[i]} vs ${theta[i]}`);
  assert.ok(f(theta) >= best.f - 1e-9);
  // Central differences of the objective vanish at the fit, in every direction (not only sum-zero ones).
  for (let i = 0; i < 3; i++) {
    const h = 1e-5;
    const up = [...theta];
    const down = [...theta];
    up[i] += h;
    down[i] -= h;
    assert.ok(Math.abs((f(up) - f(down)) / (2 * h)) < 1e-6, `gradient ${i}`);
  }
  assert.ok(theta[0] > theta[1] && theta[1] > theta[2]);
});

test('Bradley–Terry recovers the order of a synthetic tournament, and Elo intervals cover the truth', () => {
  const truth: Record<string, number> = { base: -1.2, prompted: -0.7, sft: 0, ppo: 0.6, ppo_ptx: 0.9 };
  const names = Object.keys(truth);
  const rng = new Rng(7);
  const outcomes: Outcome[] = [];
  for (let g = 0; g < 4000; g++) {
    const i = rng.int(names.length);
    let j = rng.int(names.length - 1);
    if (j >= i) j++;
    const [a, b] = [names[i], names[j]];
    const pA = 1 / (1 + Math.exp(truth[b] - truth[a]));
    const u = rng.next();
    // One comparison in ten is a tie.
    outcomes.push({ a, b, result: u < 0.1 ? 'tie' : rng.next() < pA ? 'a' : 'b' });
  }
  const table = eloRatings(outcomes, { rounds: 100, seed: 3, l2: 1e-3 });
  assert.deepEqual(
    table.map((r) => r.model),
    ['ppo_ptx', 'ppo', 'sft', 'prompted', 'base'],
  );
  const mean = names.reduce((s, n) => s + truth[n], 0) / names.length;
  for (const r of table) {
    assert.ok(r.lo <= r.rating && r.rating <= r.hi, `${r.model}: ${r.lo} ${r.rating} ${r.hi}`);
    // Ties (half a win each way) pull the fitted gaps in by up to ~30 Elo points here, hence the allowance.
    const want = 1000 + ELO_PER_NAT * (truth[r.model] - mean);
    assert.ok(Math.abs(r.rating - want) < 60, `${r.model}: ${r.rating} vs ${want}`);
    assert.ok(r.hi - r.lo < 120 && r.hi - r.lo > 10, `${r.model} interval ${r.lo}..${r.hi}`);
    assert.equal(r.games, outcomes.filter((o) => o.a === r.model || o.b === r.model).length);
  }
  // Seeded: the same outcomes give the same table.
  assert.deepEqual(eloRatings(outcomes, { rounds: 100, seed: 3, l2: 1e-3 }), table);
});

test('a version that never lost stays finite, and an unknown model in an outcome is an error', () => {
  const { theta } = bradleyTerry(games('a', 'b', 20, 0, 0));
  assert.ok(Number.isFinite(theta[0]) && theta[0] > 1 && Math.abs(theta[0] + theta[1]) < 1e-9);
  assert.throws(() => bradleyTerry(games('a', 'c', 1, 0, 0), ['a', 'b']), /unknown models a, c/);
  assert.throws(() => bradleyTerry([], ['a'], { l2: 0 }), /l2 must be > 0/);
});

/** n items; A right with probability pA, B right with pB, their outcomes sharing a latent draw (correlated). */
function pairedSample(rng: Rng, n: number, pA: number, pB: number) {
  const a: boolean[] = [];
  const b: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const shared = rng.next();
    const u = rng.next() < 0.7 ? shared : rng.next();
    a.push(shared < pA);
    b.push(u < pB);
  }
  return { a, b };
}

test('a paired difference of proportions: Newcombe interval covers the truth about 95 % of the time', () => {
  const rng = new Rng(7);
  const [pA, pB, n] = [0.42, 0.36, 300];
  let covered = 0;
  const runs = 2000;
  for (let r = 0; r < runs; r++) {
    const { a, b } = pairedSample(rng, n, pA, pB);
    const d = pairedDifference(a, b);
    assert.ok(d.lo <= d.diff && d.diff <= d.hi);
    if (d.lo <= pA - pB && pA - pB <= d.hi) covered++;
  }
  assert.ok(covered / runs > 0.93 && covered / runs < 0.97, `coverage ${covered / runs}`);
});

test('a paired difference: antisymmetric, like the Wald interval when n is large, narrower when outcomes agree', () => {
  const rng = new Rng(3);
  const { a, b } = pairedSample(rng, 20_000, 0.5, 0.45);
  const ab = pairedDifference(a, b);
  const ba = pairedDifference(b, a);
  assert.ok(Math.abs(ab.diff + ba.diff) < 1e-12 && Math.abs(ab.lo + ba.hi) < 1e-12 && Math.abs(ab.hi + ba.lo) < 1e-12);
  // McNemar's Wald interval from the discordant counts.
  const f = a.filter((x, i) => x && !b[i]).length;
  const g = b.filter((x, i) => x && !a[i]).length;
  const n = a.length;
  const se = Math.sqrt(f + g - (f - g) ** 2 / n) / n;
  assert.ok(Math.abs(ab.diff - (f - g) / n) < 1e-12);
  assert.ok(Math.abs(ab.lo - (ab.diff - 1.96 * se)) < 2e-3 && Math.abs(ab.hi - (ab.diff + 1.96 * se)) < 2e-3);
  // The same two rates, but B right on nearly the same items as A: far less doubt about the difference.
  const same = a.slice(0, 300);
  const near = same.map((x, i) => (i % 30 === 0 ? !x : x));
  const shuffled = near
    .map((x) => ({ x, key: rng.next() }))
    .sort((p, q) => p.key - q.key)
    .map((o) => o.x);
  const tight = pairedDifference(same, near);
  const loose = pairedDifference(same, shuffled);
  assert.equal(tight.diff, loose.diff);
  assert.ok(tight.hi - tight.lo < (loose.hi - loose.lo) / 2, `${tight.hi - tight.lo} vs ${loose.hi - loose.lo}`);
  assert.deepEqual(pairedDifference([], []), { diff: 0, lo: -1, hi: 1, n: 0 });
  assert.throws(() => pairedDifference([true], []), /1 outcomes against 0/);
});
