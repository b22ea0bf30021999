// The rollout half of PPO, shared with the other on-policy trainers: episodes packed into right-padded grids over
// the next-token positions, per-token log-probs of a model at a temperature, and the entropy of its distributions.
import { type CausalLM, padRight } from '../models/index.js';
import { crossEntropy, neg, scale, slice, Tensor } from '../tensor/index.js';

/** Token ids of an episode: the prompt, then the sampled response. */
export interface EpisodeRows {
  prompt: number[];
  response: number[];
}

/** A right-padded batch of prompt+response rows, with grids over the T−1 next-token positions. */
export interface Packed {
  ids: Tensor;
  mask: Tensor;
  /** Next-token targets (B, T−1): the response tokens, −100 elsewhere. */
  targets: Tensor;
  /** (B, T−1): 1 where targets holds a response token. */
  respMask: Tensor;
  T: number;
  /** A (B, T−1) grid holding each row's per-response-token values at its response positions, 0 elsewhere. */
  grid<E extends EpisodeRows>(get: (e: E) => readonly number[]): Tensor;
}

export function pack(eps: readonly EpisodeRows[]): Packed {
  const B = eps.length;
  const { ids, mask } = padRight(
    eps.map((e) => [...e.prompt, ...e.response]),
    0,
  );
  const T = ids.size(1);
  const targets = Tensor.empty([B, T - 1], 'i32');
  const respMask = Tensor.empty([B, T - 1]);
  targets.i32.fill(-100);
  respMask.f32.fill(0);
  eps.forEach((e, b) => {
    for (let j = 0; j < e.response.length; j++) {
      const at = b * (T - 1) + e.prompt.length - 1 + j;
      targets.i32[at] = e.response[j];
      respMask.f32[at] = 1;
    }
  });
  const grid = <E extends EpisodeRows>(get: (e: E) => readonly number[]) => {
    const g = Tensor.empty([B, T - 1]);
    g.f32.fill(0);
    eps.forEach((e, b) => {
      const row = get(e as E);
      for (let j = 0; j < row.length; j++) g.f32[b * (T - 1) + e.prompt.length - 1 + j] = row[j];
    });
    return g;
  };
  return { ids, mask, targets, respMask, T, grid };
}

/** Each row's response entries of a (B, T−1) grid. */
export function ungrid(g: Tensor, eps: readonly EpisodeRows[]): number[][] {
  const W = g.size(1);
  return eps.map((e, b) =>
    Array.from(g.f32.subarray(b * W + e.prompt.length - 1, b * W + e.prompt.length - 1 + e.response.length)),
  );
}

/** Next-token logits (B, T−1, V) at temperature, and the log-probs of the targets (B, T−1; 0 where ignored). */
export function tokenLogps(model: CausalLM, p: Packed, temperature: number): { logits: Tensor; logp: Tensor } {
  const h = model.hidden(p.ids, { attentionMask: p.mask });
  let logits = model.head(slice(h, 1, 0, p.T - 1));
  if (temperature !== 1) logits = scale(logits, 1 / temperature);
  return { logits, logp: neg(crossEntropy(logits, p.targets, { reduction: 'none' })) };
}

/** Mean entropy of the next-token distributions at the masked positions. */
export function meanEntropy(logits: Tensor, respMask: Tensor): number {
  const V = logits.size(-1);
  const l = logits.f32;
  const m = respMask.f32;
  let total = 0;
  let n = 0;
  for (let i = 0; i < m.length; i++) {
    if (m[i] === 0) continue;
    const row = l.subarray(i * V, (i + 1) * V);
    let max = Number.NEGATIVE_INFINITY;
    for (const x of row) max = Math.max(max, x);
    let z = 0;
    let zx = 0;
    for (const x of row) {
      const e = Math.exp(x - max);
      z += e;
      zx += e * (x - max);
    }
    total += Math.log(z) - zx / z;
    n++;
  }
  return total / n;
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
