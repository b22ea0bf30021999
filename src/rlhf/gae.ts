// Generalised advantage estimation (Schulman et al. 2016) over one episode's tokens, advantage whitening, and PPO's
// per-token rewards (−β·KL at every token, the score at the last) turned into advantages and returns.
import { type KLEstimator, klPerToken } from './kl.js';

/**
 * Advantages and returns for one episode of T steps: δ_t = r_t + γ·V_{t+1} − V_t (V_T = 0, the episode ends),
 * A_t = δ_t + γλ·A_{t+1}, returns R_t = A_t + V_t (the value targets).
 */
export function gae(
  rewards: readonly number[],
  values: readonly number[],
  gamma: number,
  lambda: number,
): { advantages: number[]; returns: number[] } {
  const T = rewards.length;
  if (values.length !== T) throw new Error(`gae: ${T} rewards but ${values.length} values`);
  const advantages = new Array<number>(T);
  let next = 0;
  for (let t = T - 1; t >= 0; t--) {
    const nextValue = t + 1 < T ? values[t + 1] : 0;
    const delta = rewards[t] + gamma * nextValue - values[t];
    next = delta + gamma * lambda * next;
    advantages[t] = next;
  }
  return { advantages, returns: advantages.map((a, t) => a + values[t]) };
}

/** (x − mean)/sqrt(var + 1e-8) over all values of all rows (population variance); shiftMean false keeps the mean. */
export function whiten(rows: readonly (readonly number[])[], shiftMean = true): number[][] {
  let n = 0;
  let sum = 0;
  for (const r of rows)
    for (const x of r) {
      sum += x;
      n++;
    }
  if (n === 0) return rows.map(() => []);
  const mean = sum / n;
  let sq = 0;
  for (const r of rows) for (const x of r) sq += (x - mean) ** 2;
  const inv = 1 / Math.sqrt(sq / n + 1e-8);
  return rows.map((r) => r.map((x) => (x - mean) * inv + (shiftMean ? 0 : mean)));
}

/**
 * InstructGPT's per-token rewards — −β·KL(π ‖ π_ref) at every response token, the reward model's score added at the
 * last — through GAE with the value model's values; advantages whitened over the batch when asked. Returns each
 * episode's advantages, returns and summed KL.
 */
export function klShapedAdvantages(
  rows: readonly { response: readonly number[] }[],
  logp: number[][],
  refLogp: number[][],
  values: number[][],
  scores: number[],
  o: { beta: number; estimator: KLEstimator; gamma: number; lam: number; whiten: boolean },
): { advantages: number[]; returns: number[]; kl: number }[] {
  const out = rows.map((_, b) => {
    const kl = klPerToken(logp[b], refLogp[b], o.estimator);
    const rewards = kl.map((k) => -o.beta * k);
    rewards[rewards.length - 1] += scores[b];
    return { ...gae(rewards, values[b], o.gamma, o.lam), kl: kl.reduce((a, x) => a + x, 0) };
  });
  if (o.whiten) {
    const white = whiten(out.map((e) => e.advantages));
    out.forEach((e, b) => {
      e.advantages = white[b];
    });
  }
  return out;
}
