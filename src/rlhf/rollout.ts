// The rollout of the on-policy trainers (PPO, GRPO/RLOO): sample responses, then score them — the policy's
// log-probs and entropy, the reference's log-probs, optionally per-token values — under the run's autocast dtype,
// so the log-probs the update compares with come from the same arithmetic. Episodes are packed into right-padded
// grids over the next-token positions from the shortest prompt's last token on: logits are computed only where a
// response token can be (a prompt's own next-token logits would be thrown away, and the LM head over a 50k
// vocabulary is a third of a 124M model's forward).
import { type CausalLM, generate, padRight } from '../models/index.js';
import { withAdaptersDisabled } from '../models/lora.js';
import { autocast, crossEntropy, neg, noGrad, scale, slice, Tensor, tidy } from '../tensor/index.js';
import type { Formatter } from '../tokenizer/index.js';
import { METRIC, type Metrics } from '../train/metrics.js';

/** Token ids of an episode: the prompt, then the sampled response. */
export interface EpisodeRows {
  prompt: number[];
  response: number[];
}

/** A right-padded batch of prompt+response rows, with grids over next-token positions from..T−2. */
export interface Packed {
  ids: Tensor;
  mask: Tensor;
  /** First next-token position in the grids: the shortest prompt's last token. */
  from: number;
  /** Next-token targets (B, T−1−from): the response tokens, −100 elsewhere. */
  targets: Tensor;
  /** (B, T−1−from): 1 where targets holds a response token. */
  respMask: Tensor;
  T: number;
  /** A (B, T−1−from) grid holding each row's per-response-token values at its response positions, 0 elsewhere. */
  grid<E extends EpisodeRows>(get: (e: E) => readonly number[]): Tensor;
}

export function pack(eps: readonly EpisodeRows[]): Packed {
  const B = eps.length;
  const { ids, mask } = padRight(
    eps.map((e) => [...e.prompt, ...e.response]),
    0,
  );
  const T = ids.size(1);
  const from = Math.min(...eps.map((e) => e.prompt.length)) - 1;
  const W = T - 1 - from;
  const grid = <E extends EpisodeRows>(get: (e: E) => readonly number[]) => {
    const g = Tensor.empty([B, W]);
    g.f32.fill(0);
    eps.forEach((e, b) => {
      const row = get(e as E);
      for (let j = 0; j < row.length; j++) g.f32[b * W + e.prompt.length - 1 - from + j] = row[j];
    });
    return g;
  };
  const targets = Tensor.empty([B, W], 'i32');
  targets.i32.fill(-100);
  eps.forEach((e, b) => {
    for (let j = 0; j < e.response.length; j++) targets.i32[b * W + e.prompt.length - 1 - from + j] = e.response[j];
  });
  const respMask = grid((e) => e.response.map(() => 1));
  return { ids, mask, from, targets, respMask, T, grid };
}

/** Each row's response entries of a (B, T−1−from) grid. */
export function ungrid(g: Tensor, p: Packed, eps: readonly EpisodeRows[]): number[][] {
  const W = g.size(1);
  return eps.map((e, b) => {
    const at = b * W + e.prompt.length - 1 - p.from;
    return Array.from(g.f32.subarray(at, at + e.response.length));
  });
}

/** Next-token logits (B, W, V) at temperature over the grid's positions, and the log-probs of the targets (B, W). */
export function tokenLogps(model: CausalLM, p: Packed, temperature: number): { logits: Tensor; logp: Tensor } {
  const h = model.hidden(p.ids, { attentionMask: p.mask });
  let logits = model.head(slice(h, 1, p.from, p.T - 1));
  if (temperature !== 1) logits = scale(logits, 1 / temperature);
  return { logits, logp: neg(crossEntropy(logits, p.targets, { reduction: 'none' })) };
}

/**
 * The reference policy's log-probs: a frozen model of its own (f32 or bf16), or with LoRA the policy with its
 * adapters off (one copy of the base serves both).
 */
export function referenceLogps(policy: CausalLM, ref: CausalLM | null, temperature: number) {
  return (p: Packed): Tensor =>
    ref
      ? tokenLogps(ref, p, temperature).logp
      : withAdaptersDisabled(policy, () => tokenLogps(policy, p, temperature).logp);
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

export interface RolloutOptions {
  maxNewTokens: number;
  temperature: number;
  seed: number;
  formatter: Formatter;
  /** Rows per scoring pass. */
  chunk: number;
  /** The run's autocast dtype (--bf16). */
  dtype: 'f32' | 'bf16';
  /** The reference's log-probs of a packed chunk (null: no reference). */
  ref: ((p: Packed) => Tensor) | null;
  /** Per-token values of a packed chunk, a (B, W) grid (PPO's value model). */
  values?: (p: Packed) => Tensor;
}

export interface Rollout {
  rows: EpisodeRows[];
  finishReasons: string[];
  oldLogp: number[][];
  refLogp: number[][] | null;
  values: number[][] | null;
  entropy: number;
  /** time/generate (sampling alone, the prefill included) and the sampling rate, time/rollout_tokens_per_second. */
  metrics: Metrics;
}

/** Samples one response per prompt with the policy and scores every response token (no graph is recorded). */
export function rollout(policy: CausalLM, prompts: number[][], o: RolloutOptions): Rollout {
  return autocast(o.dtype, () => {
    const started = performance.now();
    const gen = generate(policy, prompts, {
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      seed: o.seed,
      eosTokenIds: [o.formatter.eosId],
      padTokenId: o.formatter.padId,
    });
    const sampling = (performance.now() - started) / 1000;
    const rows = prompts.map((p, b) => ({ prompt: p, response: gen.tokens[b] }));
    const oldLogp: number[][] = [];
    const refLogp: number[][] = [];
    const values: number[][] = [];
    let entropy = 0;
    for (let at = 0; at < rows.length; at += o.chunk) {
      const chunk = rows.slice(at, at + o.chunk);
      noGrad(() =>
        tidy(() => {
          const p = pack(chunk);
          const pol = tokenLogps(policy, p, o.temperature);
          oldLogp.push(...ungrid(pol.logp, p, chunk));
          entropy += (meanEntropy(pol.logits, p.respMask) * chunk.length) / rows.length;
          if (o.ref) refLogp.push(...ungrid(o.ref(p), p, chunk));
          if (o.values) values.push(...ungrid(o.values(p), p, chunk));
        }),
      );
    }
    const tokens = gen.tokens.reduce((n, t) => n + t.length, 0);
    return {
      rows,
      finishReasons: gen.finishReasons,
      oldLogp,
      refLogp: o.ref ? refLogp : null,
      values: o.values ? values : null,
      entropy,
      metrics: { [METRIC.generateSeconds]: sampling, [METRIC.rolloutTokensPerSecond]: tokens / sampling },
    };
  });
}
