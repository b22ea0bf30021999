// Batched sampling with a KV cache and left padding: greedy, temperature, top-k, top-p; EOS and stop strings;
// seeded; per-token log-probs (PPO needs them) and finish reasons; a streaming callback.
import { check, native, noGrad, Rng, slice, Tensor, tidy } from '../tensor/index.js';
import type { KVCache } from './kvcache.js';

/** What generate() needs of a model: hidden states with a cache, and the LM head. */
export interface Decoder {
  hidden(ids: Tensor, opts: { attentionMask?: Tensor | null; positions?: Tensor; cache?: KVCache }): Tensor;
  head(hidden: Tensor): Tensor;
  newCache(batch: number, maxLen?: number): KVCache;
  readonly maxPositions: number;
}

export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 means greedy. */
  temperature?: number;
  /** Keep only the k most likely tokens (0: all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1: all). */
  topP?: number;
  seed?: number;
  /** Token ids that end a row (included in its tokens). */
  eosTokenIds?: number[];
  /** Strings that end a row once its decoded text contains one (needs decode). */
  stop?: string[];
  decode?: (ids: number[]) => string;
  /** Token used to fill the left padding and finished rows. */
  padTokenId?: number;
  /** Called for every new token, in order. */
  onToken?: (row: number, token: number, logprob: number) => void;
  /** Asked before every step; true ends the rows still running, with finish reason 'cancelled'. */
  shouldStop?: () => boolean;
}

export interface Generation {
  /** New tokens of each row (EOS included when it ended the row). */
  tokens: number[][];
  /** log p(token) under the temperature-scaled distribution, before top-k/top-p filtering. */
  logprobs: number[][];
  finishReasons: FinishReason[];
  /** Decoded new text, cut before a stop string (only when decode is given). */
  texts?: string[];
}

/** Samples one token from logits; returns the token and its log-probability. */
export function sampleToken(
  logits: Float32Array,
  opts: { temperature: number; topK: number; topP: number },
  rng: Rng,
): { token: number; logprob: number } {
  const V = logits.length;
  const t = opts.temperature > 0 ? opts.temperature : 1;
  let max = Number.NEGATIVE_INFINITY;
  let arg = 0;
  for (let i = 0; i < V; i++)
    if (logits[i] > max) {
      max = logits[i];
      arg = i;
    }
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp((logits[i] - max) / t);
  const logZ = Math.log(sum);
  const logprob = (i: number) => (logits[i] - max) / t - logZ;
  if (opts.temperature <= 0) return { token: arg, logprob: logprob(arg) };
  // Candidates, most likely first, limited by top-k and then top-p.
  let order: number[];
  if (opts.topK > 0 && opts.topK < V) order = topIndices(logits, opts.topK);
  else if (opts.topP < 1) order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a]);
  else order = [];
  if (order.length === 0) {
    // Full distribution: inverse-CDF over the vocabulary.
    let u = rng.next() * sum;
    for (let i = 0; i < V; i++) {
      u -= Math.exp((logits[i] - max) / t);
      if (u <= 0) return { token: i, logprob: logprob(i) };
    }
    return { token: arg, logprob: logprob(arg) };
  }
  const probs = order.map((i) => Math.exp((logits[i] - max) / t) / sum);
  let keep = probs.length;
  if (opts.topP < 1) {
    let cum = 0;
    for (let j = 0; j < probs.length; j++) {
      cum += probs[j];
      if (cum >= opts.topP) {
        keep = j + 1;
        break;
      }
    }
  }
  let total = 0;
  for (let j = 0; j < keep; j++) total += probs[j];
  let u = rng.next() * total;
  for (let j = 0; j < keep; j++) {
    u -= probs[j];
    if (u <= 0) return { token: order[j], logprob: logprob(order[j]) };
  }
  return { token: order[keep - 1], logprob: logprob(order[keep - 1]) };
}

// Indices of the k largest values, largest first (ties: lower index first).
function topIndices(x: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < x.length; i++) {
    if (idx.length < k) {
      idx.push(i);
      if (idx.length === k) idx.sort((a, b) => x[b] - x[a] || a - b);
    } else if (x[i] > x[idx[k - 1]]) {
      let j = k - 1;
      while (j > 0 && x[idx[j - 1]] < x[i]) {
        idx[j] = idx[j - 1];
        j--;
      }
      idx[j] = i;
    }
  }
  if (idx.length < k) idx.sort((a, b) => x[b] - x[a] || a - b);
  return idx;
}

/** Continues each prompt (token ids, any lengths) by up to maxNewTokens tokens. */
export function generate(model: Decoder, prompts: number[][], opts: GenerateOptions): Generation {
  const B = prompts.length;
  check(B > 0, 'generate', () => 'no prompts');
  check(
    prompts.every((p) => p.length > 0),
    'generate',
    () => 'every prompt needs at least one token',
  );
  const P = Math.max(...prompts.map((p) => p.length));
  const maxLen = P + opts.maxNewTokens;
  check(
    maxLen <= model.maxPositions,
    'generate',
    () => `prompt of ${P} tokens + ${opts.maxNewTokens} new exceeds the context of ${model.maxPositions}`,
  );
  const pad = opts.padTokenId ?? 0;
  const eos = new Set(opts.eosTokenIds ?? []);
  const rng = new Rng(opts.seed ?? 0);
  const sampling = { temperature: opts.temperature ?? 1, topK: opts.topK ?? 0, topP: opts.topP ?? 1 };
  const padding = prompts.map((p) => P - p.length);
  const out: Generation = {
    tokens: prompts.map(() => []),
    logprobs: prompts.map(() => []),
    finishReasons: prompts.map(() => 'length' as FinishReason),
  };
  const texts = prompts.map(() => '');
  const done = prompts.map(() => false);
  const uniforms = new Float32Array(B);
  const logprobs = new Float32Array(B);

  const cache = model.newCache(B, maxLen);
  const mask = Tensor.empty([B, maxLen]);
  try {
    mask.f32.fill(1);
    for (let b = 0; b < B; b++) mask.f32.fill(0, b * maxLen, b * maxLen + padding[b]);
    let ids = Tensor.empty([B, P], 'i32');
    const positions = Tensor.empty([B, P], 'i32');
    for (let b = 0; b < B; b++)
      for (let t = 0; t < P; t++) {
        const k = t - padding[b];
        ids.i32[b * P + t] = k >= 0 ? prompts[b][k] : pad;
        positions.i32[b * P + t] = Math.max(0, k);
      }
    let pos = positions;
    for (let step = 0; step < opts.maxNewTokens && done.includes(false); step++) {
      if (opts.shouldStop?.()) {
        for (let b = 0; b < B; b++) if (!done[b]) out.finishReasons[b] = 'cancelled';
        break;
      }
      const logits = noGrad(() =>
        tidy(() => {
          const h = model.hidden(ids, { attentionMask: mask, positions: pos, cache });
          const T = h.shape[1];
          return model.head(T === 1 ? h : slice(h, 1, T - 1, T));
        }),
      );
      ids.dispose();
      pos.dispose();
      const V = logits.size(-1);
      const next = Tensor.empty([B, 1], 'i32');
      // Full-distribution and greedy sampling run natively over all rows; top-k / top-p go row by row.
      const fast = sampling.topK === 0 && sampling.topP >= 1;
      if (fast) {
        for (let b = 0; b < B; b++) uniforms[b] = rng.next();
        native.sampleRows(logits.f32, uniforms, Math.max(0, sampling.temperature), next.i32, logprobs);
      }
      for (let b = 0; b < B; b++) {
        if (done[b]) {
          next.i32[b] = pad;
          continue;
        }
        const { token, logprob } = fast
          ? { token: next.i32[b], logprob: logprobs[b] }
          : sampleToken(logits.f32.subarray(b * V, (b + 1) * V), sampling, rng);
        next.i32[b] = token;
        out.tokens[b].push(token);
        out.logprobs[b].push(logprob);
        opts.onToken?.(b, token, logprob);
        if (eos.has(token)) {
          done[b] = true;
          out.finishReasons[b] = 'eos';
        } else if (opts.decode && opts.stop?.length) {
          texts[b] = opts.decode(out.tokens[b]);
          if (opts.stop.some((s) => texts[b].includes(s))) {
            done[b] = true;
            out.finishReasons[b] = 'stop';
          }
        }
      }
      logits.dispose();
      ids = next;
      pos = Tensor.empty([B, 1], 'i32');
      for (let b = 0; b < B; b++) pos.i32[b] = cache.length - padding[b];
    }
    ids.dispose();
    pos.dispose();
  } finally {
    cache.dispose();
    mask.dispose();
  }
  if (opts.decode) {
    out.texts = out.tokens.map((toks, b) => {
      const text = opts.decode!(out.finishReasons[b] === 'eos' ? toks.slice(0, -1) : toks);
      const cut = Math.min(...(opts.stop ?? []).map((s) => text.indexOf(s)).filter((i) => i >= 0));
      return Number.isFinite(cut) ? text.slice(0, cut) : text;
    });
  }
  return out;
}
