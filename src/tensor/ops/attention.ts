// Fused scaled-dot-product self-attention (flash style, native): causal and padding masks, grouped-query heads,
// a KV cache for decoding, and GPT-2's packed [q | k | v] projection. Nothing of size Tq×Tk is ever stored.
import { matmulDType } from '../autocast.js';
import { native } from '../native.js';
import { check, isGradEnabled, record, shapeStr, type Tensor as T, Tensor } from '../tensor.js';

export interface AttentionOptions {
  /** Each query sees only keys up to its own position (default true). With Tq < Tk the queries are the last Tq. */
  causal?: boolean;
  /** f32 (B, Tk): 1 (any nonzero) = attend, 0 = padding. A query whose visible keys are all padding outputs zeros. */
  keyMask?: T | null;
  /** Logit scale; default 1/sqrt(head dim). */
  scale?: number;
  /**
   * Sliding window (Mistral, Qwen2): with causal, each query sees only the last `window` keys up to its own position
   * (key j is visible to query i when i − window < j ≤ i, as transformers' sliding_window). Null or 0: all of them.
   */
  window?: number | null;
  /** Use only the first kvLen key positions (a preallocated cache); causal alignment then uses kvLen for Tk. */
  kvLen?: number;
  /**
   * k and v are head-major (B, Hkv, Tk, hd), as a KV cache keeps them: each head's keys are contiguous, which a
   * decode step streams from memory faster than rows interleaved across heads (measured ~10 % in a decode step).
   */
  headMajorKV?: boolean;
}

const MAX_HEAD_DIM = 256;

/**
 * Sizes and strides the native kernels take: rows (b, t) of q start qStride floats apart; k/v row (b, t, h) starts
 * at b·kvBatchStride + t·kvStride + h·kvHeadStride.
 */
interface Layout {
  B: number;
  Tq: number;
  Tk: number;
  kvLen: number;
  Hq: number;
  Hkv: number;
  hd: number;
  qStride: number;
  kvStride: number;
  kvHeadStride: number;
  kvBatchStride: number;
  causal: boolean;
  window: number;
  scale: number;
  keyMask: T | null;
  /**
   * Under bf16 autocast the products read bf16-rounded q, k, v, probabilities and gradients, as torch's do (on a
   * CPU with AVX512-BF16; elsewhere, and in the one-row kernel that decoding uses, they stay f32).
   */
  bf16: boolean;
}

function layout(
  op: string,
  dims: Omit<Layout, 'kvLen' | 'causal' | 'window' | 'scale' | 'keyMask' | 'bf16'>,
  opts: AttentionOptions,
): Layout {
  const { B, Tq, Tk, Hq, Hkv, hd } = dims;
  check(Hq > 0 && Hkv > 0 && hd > 0, op, () => `heads and head dim must be positive, got ${Hq}, ${Hkv}, ${hd}`);
  check(hd <= MAX_HEAD_DIM, op, () => `head dim ${hd} exceeds ${MAX_HEAD_DIM}`);
  const causal = opts.causal ?? true;
  const scale = opts.scale ?? 1 / Math.sqrt(hd);
  check(Number.isFinite(scale), op, () => `scale must be finite, got ${scale}`);
  const kvLen = opts.kvLen ?? Tk;
  check(
    Number.isInteger(kvLen) && kvLen >= 0 && kvLen <= Tk,
    op,
    () => `kvLen ${kvLen} must be an integer in [0, ${Tk}]`,
  );
  check(
    !causal || Tq <= kvLen,
    op,
    () => `causal queries are the last ${Tq} of the keys, but only ${kvLen} keys are in use`,
  );
  const window = opts.window ?? 0;
  check(Number.isInteger(window) && window >= 0, op, () => `window must be an integer >= 0, got ${window}`);
  check(window === 0 || causal, op, () => 'a sliding window needs causal attention');
  const keyMask = opts.keyMask ?? null;
  if (keyMask)
    check(
      keyMask.dtype === 'f32' && keyMask.ndim === 2 && keyMask.shape[0] === B && keyMask.shape[1] === Tk,
      op,
      () => `keyMask must be f32 [${B}, ${Tk}] (batch, keys), got ${keyMask.dtype} ${shapeStr(keyMask.shape)}`,
    );
  // Fixed when the forward runs: the backward uses the same precision wherever it is called from.
  return { ...dims, kvLen, causal, window, scale, keyMask, bf16: matmulDType() === 'bf16' };
}

function sizeArgs(L: Layout): (number | boolean)[] {
  const { B, Tq, Tk, kvLen, Hq, Hkv, hd, qStride, kvStride, kvHeadStride, kvBatchStride, causal, scale, bf16 } = L;
  return [B, Tq, Tk, kvLen, Hq, Hkv, hd, qStride, kvStride, kvHeadStride, kvBatchStride, causal, scale, bf16, L.window];
}

/** Runs the forward kernel; the returned lse is null when nothing will need a gradient. */
function forward(L: Layout, q: Float32Array, k: Float32Array, v: Float32Array, inputs: T[], outShape: number[]) {
  const out = Tensor.empty(outShape); // (B, Tq, Hq·hd) in memory, whatever the axes say
  const needsGrad = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  // Per-row logsumexp: all the backward needs to rebuild the probabilities block by block.
  const lse = needsGrad ? Tensor.empty([L.B, L.Hq, L.Tq]) : null;
  native.attentionForward(q, k, v, L.keyMask?.f32 ?? null, out.f32, lse?.f32 ?? null, ...sizeArgs(L));
  return { out, lse };
}

interface GradBuffers {
  dq: Float32Array | null;
  dk: Float32Array | null;
  dv: Float32Array | null;
}

function backwardInto(
  L: Layout,
  saved: { q: Float32Array; k: Float32Array; v: Float32Array; out: T; lse: T },
  g: T,
  grads: GradBuffers,
): void {
  native.attentionBackward(
    saved.q,
    saved.k,
    saved.v,
    L.keyMask?.f32 ?? null,
    saved.out.f32,
    g.f32,
    saved.lse.f32,
    grads.dq,
    grads.dk,
    grads.dv,
    ...sizeArgs(L),
  );
}

/**
 * softmax(scale·q·kᵀ + masks)·v per head. q (B, Tq, Hq, hd); k and v (B, Tk, Hkv, hd), or (B, Hkv, Tk, hd) with
 * headMajorKV; Hq a multiple of Hkv (query head h reads kv head h / (Hq/Hkv)). Output (B, Tq, Hq, hd). All f32
 * (under bf16 autocast the products round their operands to bf16); the BTHD layout is a Linear projection's output
 * reshaped, so no permute is needed.
 */
export function attention(q: T, k: T, v: T, opts: AttentionOptions = {}): T {
  const op = 'attention';
  check(
    q.ndim === 4 && k.ndim === 4 && v.ndim === 4,
    op,
    () =>
      `q, k, v must be (batch, time, heads, head dim), got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`,
  );
  check(
    q.dtype === 'f32' && k.dtype === 'f32' && v.dtype === 'f32',
    op,
    () => `q, k, v must be f32, got ${q.dtype}, ${k.dtype}, ${v.dtype}`,
  );
  const [B, Tq, Hq, hd] = q.shape;
  const headMajor = opts.headMajorKV ?? false;
  const [Bk, k1, k2, hdk] = k.shape;
  const [Tk, Hkv] = headMajor ? [k2, k1] : [k1, k2];
  check(
    k.shape.join() === v.shape.join(),
    op,
    () => `k ${shapeStr(k.shape)} and v ${shapeStr(v.shape)} must have the same shape`,
  );
  check(Bk === B, op, () => `batch sizes differ: q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}`);
  check(hdk === hd, op, () => `head dims differ: q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}`);
  check(
    Hq % Hkv === 0,
    op,
    () => `query heads must be a multiple of kv heads: q ${shapeStr(q.shape)}, k ${shapeStr(k.shape)}`,
  );
  const strides = headMajor
    ? { kvStride: hd, kvHeadStride: Tk * hd, kvBatchStride: Hkv * Tk * hd }
    : { kvStride: Hkv * hd, kvHeadStride: hd, kvBatchStride: Tk * Hkv * hd };
  const L = layout(op, { B, Tq, Tk, Hq, Hkv, hd, qStride: Hq * hd, ...strides }, opts);
  const { out, lse } = forward(L, q.f32, k.f32, v.f32, [q, k, v], [B, Tq, Hq, hd]);
  return record(op, out, [q, k, v], (g) => {
    const dq = q.requiresGrad ? Tensor.empty(q.shape) : null;
    const dk = k.requiresGrad ? Tensor.empty(k.shape) : null;
    const dv = v.requiresGrad ? Tensor.empty(v.shape) : null;
    const saved = { q: q.f32, k: k.f32, v: v.f32, out, lse: lse! };
    backwardInto(L, saved, g, { dq: dq?.f32 ?? null, dk: dk?.f32 ?? null, dv: dv?.f32 ?? null });
    return [dq, dk, dv];
  });
}

/**
 * GPT-2 style multi-head attention straight from the fused projection: qkv (B, T, 3·D) holds [q | k | v] along
 * its last axis, each D = nHead·hd. Output (B, T, D); the gradient is (B, T, 3·D). No copies are made.
 */
export function attentionPacked(qkv: T, nHead: number, opts: AttentionOptions = {}): T {
  const op = 'attentionPacked';
  check(
    qkv.ndim === 3 && qkv.dtype === 'f32',
    op,
    () => `qkv must be f32 (batch, time, 3·dim), got ${qkv.dtype} ${shapeStr(qkv.shape)}`,
  );
  const [B, T, D3] = qkv.shape;
  const D = D3 / 3;
  check(
    Number.isInteger(D) && Number.isInteger(nHead) && nHead > 0 && D % nHead === 0,
    op,
    () => `last axis of ${shapeStr(qkv.shape)} must be 3·nHead·hd for nHead = ${nHead}`,
  );
  check(!opts.headMajorKV, op, () => 'packed keys and values are token-major; headMajorKV does not apply');
  const hd = D / nHead;
  const packed = { qStride: D3, kvStride: D3, kvHeadStride: hd, kvBatchStride: T * D3 };
  const L = layout(op, { B, Tq: T, Tk: T, Hq: nHead, Hkv: nHead, hd, ...packed }, opts);
  const all = qkv.f32;
  const { out, lse } = forward(L, all, all.subarray(D), all.subarray(2 * D), [qkv], [B, T, D]);
  return record(op, out, [qkv], (g) => {
    const dqkv = Tensor.empty(qkv.shape);
    const d = dqkv.f32;
    const src = qkv.f32;
    const saved = { q: src, k: src.subarray(D), v: src.subarray(2 * D), out, lse: lse! };
    backwardInto(L, saved, g, { dq: d, dk: d.subarray(D), dv: d.subarray(2 * D) });
    return [dqkv];
  });
}

/**
 * Copies x (B, T, H, hd) into the head-major cache (B, H, Tmax, hd) at time offset pos, in place (no gradient).
 * Used to fill a preallocated KV cache one decode step at a time; pass kvLen and headMajorKV to attention to read it.
 */
export function writeKV(cache: T, x: T, pos: number): T {
  const op = 'writeKV';
  check(
    cache.ndim === 4 && x.ndim === 4 && cache.dtype === 'f32' && x.dtype === 'f32',
    op,
    () =>
      `cache and x must be f32 (batch, heads, time, head dim) and (batch, time, heads, head dim), got ${shapeStr(cache.shape)}, ${shapeStr(x.shape)}`,
  );
  const [B, H, Tmax, hd] = cache.shape;
  const [Bx, T, Hx, hdx] = x.shape;
  check(
    Bx === B && Hx === H && hdx === hd,
    op,
    () => `x ${shapeStr(x.shape)} does not fit cache ${shapeStr(cache.shape)}`,
  );
  check(
    Number.isInteger(pos) && pos >= 0 && pos + T <= Tmax,
    op,
    () => `writing ${T} steps at position ${pos} overruns the cache's ${Tmax}`,
  );
  native.writeKV(x.f32, cache.f32, B, T, H, hd, Tmax, pos);
  return cache;
}
