// Fused neural-network kernels with their backward passes: softmax, normalisation, cross-entropy, index
// gathers and scatters, dropout and rotary embeddings. Each runs one native kernel forward and one backward.
import { native } from '../native.js';
import { check, normAxis, numelOf, record, shapeStr, type Tensor as T, Tensor } from '../tensor.js';

function checkF32(x: T, op: string, what: string): void {
  check(x.dtype === 'f32', op, () => `${what} must be f32, got ${x.dtype} ${shapeStr(x.shape)}`);
}

function checkI32(x: T, op: string, what: string): void {
  check(x.dtype === 'i32', op, () => `${what} must be i32, got ${x.dtype} ${shapeStr(x.shape)}`);
}

/** The multi-axis position of flat index i in shape, for error messages. */
function positionOf(i: number, shape: readonly number[]): string {
  const at: number[] = [];
  for (let a = shape.length - 1; a >= 0; a--) {
    at.unshift(i % shape[a]);
    i = Math.floor(i / shape[a]);
  }
  return shapeStr(at);
}

/** Throws naming op, the first index outside [0, limit) (other than `allowed`) and its position in idx. */
function checkIndexRange(idx: T, limit: number, op: string, what: string, allowed?: number): void {
  const d = idx.i32;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if ((v < 0 || v >= limit) && v !== allowed)
      check(false, op, () => `${what} ${v} at position ${positionOf(i, idx.shape)} is outside [0, ${limit})`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

// ---- softmax ----

function softmaxOp(x: T, axis: number, log: boolean): T {
  const op = log ? 'logSoftmax' : 'softmax';
  checkF32(x, op, 'input');
  check(x.ndim >= 1, op, () => 'input must have at least one axis');
  const a = normAxis(axis, x.ndim, op);
  const outer = numelOf(x.shape.slice(0, a));
  const n = x.shape[a];
  const inner = numelOf(x.shape.slice(a + 1));
  check(n > 0, op, () => `axis ${axis} of ${shapeStr(x.shape)} is empty`);
  const y = Tensor.empty(x.shape);
  native.softmaxForward(x.f32, y.f32, outer, n, inner, log);
  return record(op, y, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    native.softmaxBackward(y.f32, g.f32, dx.f32, outer, n, inner, log);
    return [dx];
  });
}

/** exp(x) / Σ exp(x) along `axis` (the last by default, the fast path). */
export function softmax(x: T, axis = -1): T {
  return softmaxOp(x, axis, false);
}

/** x − logsumexp(x) along `axis` (the last by default, the fast path). */
export function logSoftmax(x: T, axis = -1): T {
  return softmaxOp(x, axis, true);
}

// ---- normalisation ----

function checkNormParam(p: T | null, D: number, op: string, what: string): void {
  if (!p) return;
  checkF32(p, op, what);
  check(
    p.ndim === 1 && p.shape[0] === D,
    op,
    () => `${what} ${shapeStr(p.shape)} must have shape [${D}] (the input's last axis)`,
  );
}

function rowsOf(x: T, op: string): { rows: number; D: number } {
  checkF32(x, op, 'input');
  check(x.ndim >= 1 && x.shape[x.ndim - 1] > 0, op, () => `input ${shapeStr(x.shape)} needs a non-empty last axis`);
  const D = x.shape[x.ndim - 1];
  return { rows: x.numel / D, D };
}

/** The gradients for the non-null inputs, in the order they were passed to record(). */
function present(...ts: (T | null)[]): T[] {
  return ts.filter((t): t is T => t !== null);
}

/** (x − mean)/sqrt(var + eps)·weight + bias over the last axis; weight and bias have shape [D] or are null. */
export function layerNorm(x: T, weight: T | null, bias: T | null, eps = 1e-5): T {
  const op = 'layerNorm';
  const { rows, D } = rowsOf(x, op);
  checkNormParam(weight, D, op, 'weight');
  checkNormParam(bias, D, op, 'bias');
  check(eps >= 0, op, () => `eps must be non-negative, got ${eps}`);
  const y = Tensor.empty(x.shape);
  const mean = Tensor.empty([rows]);
  const rstd = Tensor.empty([rows]);
  native.layerNormForward(x.f32, weight?.f32 ?? null, bias?.f32 ?? null, y.f32, mean.f32, rstd.f32, rows, D, eps);
  const inputs = present(x, weight, bias);
  return record(op, y, inputs, (g) => {
    const dx = x.requiresGrad ? Tensor.empty(x.shape) : null;
    const dw = weight?.requiresGrad ? Tensor.empty([D]) : null;
    const db = bias?.requiresGrad ? Tensor.empty([D]) : null;
    native.layerNormBackward(
      x.f32,
      weight?.f32 ?? null,
      mean.f32,
      rstd.f32,
      g.f32,
      dx?.f32 ?? null,
      dw?.f32 ?? null,
      db?.f32 ?? null,
      rows,
      D,
    );
    return [dx, ...(weight ? [dw] : []), ...(bias ? [db] : [])];
  });
}

/** weight · x / sqrt(mean(x²) + eps) over the last axis (Hugging Face Llama's RMSNorm); weight [D] or null. */
export function rmsNorm(x: T, weight: T | null, eps = 1e-6): T {
  const op = 'rmsNorm';
  const { rows, D } = rowsOf(x, op);
  checkNormParam(weight, D, op, 'weight');
  check(eps >= 0, op, () => `eps must be non-negative, got ${eps}`);
  const y = Tensor.empty(x.shape);
  const rstd = Tensor.empty([rows]);
  native.rmsNormForward(x.f32, weight?.f32 ?? null, y.f32, rstd.f32, rows, D, eps);
  return record(op, y, present(x, weight), (g) => {
    const dx = x.requiresGrad ? Tensor.empty(x.shape) : null;
    const dw = weight?.requiresGrad ? Tensor.empty([D]) : null;
    native.rmsNormBackward(x.f32, weight?.f32 ?? null, rstd.f32, g.f32, dx?.f32 ?? null, dw?.f32 ?? null, rows, D);
    return weight ? [dx, dw] : [dx];
  });
}

// ---- cross-entropy ----

export interface CrossEntropyOptions {
  /** Targets equal to this contribute no loss and no gradient (default -100). */
  ignoreIndex?: number;
  /** 'mean' over non-ignored targets (default), 'sum', or 'none' for per-target losses shaped like targets. */
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * Softmax cross-entropy of logits (..., V) f32 against class indices targets (...) i32, fused: the forward
 * keeps each row's logsumexp, the backward writes (softmax − onehot)·grad directly.
 */
export function crossEntropy(logits: T, targets: T, opts: CrossEntropyOptions = {}): T {
  const op = 'crossEntropy';
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  checkF32(logits, op, 'logits');
  checkI32(targets, op, 'targets');
  check(
    ['mean', 'sum', 'none'].includes(reduction),
    op,
    () => `reduction must be 'mean', 'sum' or 'none', got ${reduction}`,
  );
  check(Number.isInteger(ignoreIndex) && Math.abs(ignoreIndex) < 2 ** 31, op, () => `bad ignoreIndex ${ignoreIndex}`);
  check(
    logits.ndim >= 1 && sameShape(logits.shape.slice(0, -1), targets.shape),
    op,
    () => `targets ${shapeStr(targets.shape)} must match the leading axes of logits ${shapeStr(logits.shape)}`,
  );
  const V = logits.shape[logits.ndim - 1];
  check(V > 0, op, () => `logits ${shapeStr(logits.shape)} have no classes`);
  const rows = targets.numel;
  checkIndexRange(targets, V, op, 'target', ignoreIndex);
  const losses = Tensor.empty(targets.shape);
  const lse = Tensor.empty([rows]);
  native.crossEntropyForward(logits.f32, targets.i32, losses.f32, lse.f32, rows, V, ignoreIndex);
  let out = losses;
  let scale = 1;
  if (reduction !== 'none') {
    const t = targets.i32;
    const l = losses.f32;
    let total = 0;
    let counted = 0;
    for (let r = 0; r < rows; r++) {
      total += l[r];
      if (t[r] !== ignoreIndex) counted++;
    }
    // No counted targets: loss 0 and zero gradient rather than 0/0.
    scale = reduction === 'sum' ? 1 : counted > 0 ? 1 / counted : 0;
    out = Tensor.empty([]);
    out.f32[0] = total * scale;
    losses.dispose();
  }
  return record(op, out, [logits], (g) => {
    const dl = Tensor.empty(logits.shape);
    const gStride = reduction === 'none' ? 1 : 0;
    native.crossEntropyBackward(logits.f32, targets.i32, lse.f32, g.f32, gStride, scale, dl.f32, rows, V, ignoreIndex);
    return [dl];
  });
}

// ---- index gathers and scatters ----

/** Rows of weight (V, D) picked by ids (any shape) → (...ids.shape, D). Its gradient scatter-adds into (V, D). */
export function embedding(weight: T, ids: T): T {
  const op = 'embedding';
  check(weight.dtype !== 'i32', op, () => 'weight must be f32 or bf16, got i32');
  checkI32(ids, op, 'ids');
  check(weight.ndim === 2, op, () => `weight ${shapeStr(weight.shape)} must be (vocab, dim)`);
  const [V, D] = weight.shape;
  checkIndexRange(ids, V, op, 'id');
  const n = ids.numel;
  const out = Tensor.empty([...ids.shape, D]);
  if (weight.dtype === 'bf16') {
    // A frozen bf16 table (inference): rows widened to f32, no gradient.
    const w = weight.u16;
    const o = new Uint32Array(out.f32.buffer, out.f32.byteOffset, out.numel);
    for (let r = 0; r < n; r++) {
      const src = ids.i32[r] * D;
      for (let j = 0; j < D; j++) o[r * D + j] = w[src + j] << 16;
    }
    return out;
  }
  native.gatherRows(weight.f32, ids.i32, out.f32, V, D, n);
  return record(op, out, [weight], (g) => {
    const dw = Tensor.empty(weight.shape);
    native.scatterAddRows(dw.f32, ids.i32, g.f32, V, D, n, true);
    return [dw];
  });
}

/** x[..., idx] for x (..., V) and idx (...) i32 → (...): e.g. the log-probability of each chosen token. */
export function gatherLast(x: T, idx: T): T {
  const op = 'gatherLast';
  checkF32(x, op, 'input');
  checkI32(idx, op, 'idx');
  check(
    x.ndim >= 1 && sameShape(x.shape.slice(0, -1), idx.shape),
    op,
    () => `idx ${shapeStr(idx.shape)} must match the leading axes of input ${shapeStr(x.shape)}`,
  );
  const V = x.shape[x.ndim - 1];
  checkIndexRange(idx, V, op, 'index');
  const rows = idx.numel;
  const out = Tensor.empty(idx.shape);
  native.gatherLast(x.f32, idx.i32, out.f32, rows, V);
  return record(op, out, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    native.scatterLast(idx.i32, g.f32, dx.f32, rows, V);
    return [dx];
  });
}

/** A copy of x (N, D) with src (M, D) rows added at rows idx (M) i32; repeated indices add up. */
export function scatterAdd(x: T, idx: T, src: T): T {
  const op = 'scatterAdd';
  checkF32(x, op, 'input');
  checkI32(idx, op, 'idx');
  checkF32(src, op, 'src');
  check(
    x.ndim === 2 && idx.ndim === 1 && src.ndim === 2 && src.shape[0] === idx.shape[0] && src.shape[1] === x.shape[1],
    op,
    () =>
      `expects x (N, D), idx (M), src (M, D); got x ${shapeStr(x.shape)}, idx ${shapeStr(idx.shape)}, ` +
      `src ${shapeStr(src.shape)}`,
  );
  const [N, D] = x.shape;
  const M = idx.shape[0];
  checkIndexRange(idx, N, op, 'index');
  const out = Tensor.empty(x.shape);
  out.f32.set(x.f32);
  native.scatterAddRows(out.f32, idx.i32, src.f32, N, D, M, false);
  return record(op, out, [x, src], (g) => {
    let dx: T | null = null;
    let dsrc: T | null = null;
    if (x.requiresGrad) {
      dx = Tensor.empty(x.shape);
      dx.f32.set(g.f32);
    }
    if (src.requiresGrad) {
      dsrc = Tensor.empty(src.shape);
      native.gatherRows(g.f32, idx.i32, dsrc.f32, N, D, M);
    }
    return [dx, dsrc];
  });
}

// ---- dropout ----

/**
 * Zeroes each element with probability p and scales the rest by 1/(1−p). The mask is a hash of (seed, element
 * index), so it is the same for any thread count and the backward regenerates it. p = 0 or !training → x itself.
 */
export function dropout(x: T, p: number, seed: number, training = true): T {
  const op = 'dropout';
  check(p >= 0 && p < 1, op, () => `p must be in [0, 1), got ${p}`);
  check(Number.isSafeInteger(seed) && seed >= 0, op, () => `seed must be a non-negative integer, got ${seed}`);
  checkF32(x, op, 'input');
  if (p === 0 || !training) return x;
  const n = x.numel;
  const y = Tensor.empty(x.shape);
  native.dropoutApply(x.f32, y.f32, n, p, seed);
  return record(op, y, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    native.dropoutApply(g.f32, dx.f32, n, p, seed);
    return [dx];
  });
}

// ---- rotary position embedding ----

export interface RopeOptions {
  /** Base of the rotation frequencies (default 10000). */
  theta?: number;
  /** Leading dims of each head that rotate (even; default the whole head); the rest pass through. */
  rotaryDim?: number;
  /** The rotaryDim/2 frequencies themselves (e.g. Llama 3's scaled ones); overrides theta. */
  invFreq?: Float32Array;
}

/** theta^(−2i/rotaryDim) for i < rotaryDim/2: the standard RoPE frequencies. */
export function ropeFrequencies(theta: number, rotaryDim: number): Float32Array {
  return Float32Array.from({ length: rotaryDim / 2 }, (_, i) => 1 / theta ** ((2 * i) / rotaryDim));
}

/**
 * Rotary position embedding of x (B, T, H, hd) at positions (T) or (B, T) i32, Hugging Face Llama convention:
 * dim i of the first half of the rotary dims pairs with dim i + rotaryDim/2, at angle pos·theta^(−2i/rotaryDim).
 */
export function rope(x: T, positions: T, opts: RopeOptions = {}): T {
  const op = 'rope';
  checkF32(x, op, 'input');
  checkI32(positions, op, 'positions');
  check(x.ndim === 4, op, () => `input ${shapeStr(x.shape)} must be (batch, time, heads, headDim)`);
  const [B, Tn, H, hd] = x.shape;
  const theta = opts.theta ?? 10000;
  const rotaryDim = opts.rotaryDim ?? hd;
  const perBatch = positions.ndim === 2;
  check(
    sameShape(positions.shape, [Tn]) || sameShape(positions.shape, [B, Tn]),
    op,
    () => `positions ${shapeStr(positions.shape)} must be [${Tn}] or [${B}, ${Tn}] for input ${shapeStr(x.shape)}`,
  );
  check(
    Number.isInteger(rotaryDim) && rotaryDim >= 2 && rotaryDim % 2 === 0 && rotaryDim <= hd,
    op,
    () => `rotaryDim ${rotaryDim} must be even, at least 2 and at most the head dim ${hd}`,
  );
  check(theta > 0 && Number.isFinite(theta), op, () => `theta must be positive, got ${theta}`);
  const invFreq = opts.invFreq ?? ropeFrequencies(theta, rotaryDim);
  check(
    invFreq.length === rotaryDim / 2,
    op,
    () => `invFreq has ${invFreq.length} frequencies, rotaryDim ${rotaryDim} needs ${rotaryDim / 2}`,
  );
  const y = Tensor.empty(x.shape);
  native.ropeApply(x.f32, positions.i32, y.f32, B, Tn, H, hd, rotaryDim, invFreq, perBatch, false);
  return record(op, y, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    native.ropeApply(g.f32, positions.i32, dx.f32, B, Tn, H, hd, rotaryDim, invFreq, perBatch, true);
    return [dx];
  });
}
