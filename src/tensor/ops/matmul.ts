// Matrix products with optional transposes of either side, batched, through the native GEMM.
import { matmulDType } from '../autocast.js';
import { native } from '../native.js';
import { check, isGradEnabled, numelOf, record, shapeStr, type Tensor as T, Tensor } from '../tensor.js';
import { sumTo } from './reduce.js';

export interface MatmulOptions {
  /** Use the last two axes of a transposed (a is stored ...×K×M). */
  transA?: boolean;
  /** Use the last two axes of b transposed (b is stored ...×N×K, as in a Linear weight). */
  transB?: boolean;
}

/** f32 → bf16 copy (round to nearest even). bf16 input is returned as is. */
export function toBf16(x: T): T {
  if (x.dtype === 'bf16') return x;
  const y = Tensor.empty(x.shape, 'bf16');
  native.toBf16(x.f32, y.u16);
  return y;
}

/** bf16 → f32 copy. f32 input is returned as is. */
export function toF32(x: T): T {
  if (x.dtype === 'f32') return x;
  const y = Tensor.empty(x.shape, 'f32');
  native.fromBf16(x.u16, y.f32);
  return y;
}

interface Dims {
  batch: number;
  batchA: number;
  batchB: number;
  M: number;
  N: number;
  K: number;
  outShape: number[];
}

function dims(a: T, b: T, tA: boolean, tB: boolean): Dims {
  const op = 'matmul';
  check(a.ndim >= 2 && b.ndim >= 2, op, () => `needs 2+ dims, got ${shapeStr(a.shape)} @ ${shapeStr(b.shape)}`);
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const M = tA ? ac : ar;
  const K = tA ? ar : ac;
  const Kb = tB ? bc : br;
  const N = tB ? br : bc;
  check(
    K === Kb,
    op,
    () =>
      `inner dimensions differ: ${shapeStr(a.shape)}${tA ? 'ᵀ' : ''} @ ${shapeStr(b.shape)}${tB ? 'ᵀ' : ''} (${K} vs ${Kb})`,
  );
  const batchDimsA = a.shape.slice(0, -2);
  const batchDimsB = b.shape.slice(0, -2);
  const batchA = numelOf(batchDimsA);
  const batchB = numelOf(batchDimsB);
  check(
    b.ndim === 2 || a.ndim === 2 || batchDimsA.join() === batchDimsB.join(),
    op,
    () => `batch dimensions do not match: ${shapeStr(a.shape)} @ ${shapeStr(b.shape)}`,
  );
  const lead = batchDimsA.length >= batchDimsB.length ? batchDimsA : batchDimsB;
  return { batch: Math.max(batchA, batchB), batchA, batchB, M, N, K, outShape: [...lead, M, N] };
}

function gemm(a: T, b: T, out: T, d: Dims, tA: boolean, tB: boolean, accumulate: boolean, bias: T | null = null): void {
  const bf16 = a.dtype === 'bf16';
  check(a.dtype === b.dtype, 'matmul', () => `dtypes differ: ${a.dtype} and ${b.dtype}`);
  check(a.dtype !== 'i32', 'matmul', () => 'integer tensors cannot be multiplied');
  // Empty products, as PyTorch has them: no output at all, or (K = 0) sums of nothing, which are 0 (plus the bias).
  if (d.batch * d.M * d.N === 0) return;
  if (d.K === 0) {
    if (!accumulate) out.f32.fill(0);
    if (bias) for (let i = 0; i < out.numel; i++) out.f32[i] += bias.f32[i % d.N];
    return;
  }
  // A shared right-hand matrix under an untransposed batched left side is one tall GEMM.
  if (d.batchB === 1 && d.batch > 1 && !tA && d.batchA === d.batch) {
    native.matmul(
      a.buffer,
      b.buffer,
      out.f32,
      1,
      1,
      1,
      d.batch * d.M,
      d.N,
      d.K,
      false,
      tB,
      accumulate,
      bf16,
      bias?.f32 ?? null,
    );
    return;
  }
  native.matmul(
    a.buffer,
    b.buffer,
    out.f32,
    d.batch,
    d.batchA,
    d.batchB,
    d.M,
    d.N,
    d.K,
    tA,
    tB,
    accumulate,
    bf16,
    bias?.f32 ?? null,
  );
}

/**
 * a @ b over the last two axes; leading axes are batch axes (equal in both, or absent on one side).
 * Inside autocast('bf16') the product runs on bf16 copies with f32 accumulation; the result is f32.
 */
export function matmul(a: T, b: T, opts: MatmulOptions = {}): T {
  return product('matmul', a, b, null, opts);
}

/**
 * x @ w (+ bias), the bias (one value per output column, f32) added inside the GEMM. With transB this is
 * torch's Linear (w stored [out, in]); without, GPT-2's Conv1D (w stored [in, out]).
 */
export function linear(x: T, w: T, bias: T | null, opts: { transB?: boolean } = {}): T {
  return product('linear', x, w, bias, opts);
}

// Rows up to which the native skinny kernels run a product (kSkinnyMaxRows in native/src/skinny_gemm.h).
const SKINNY_MAX_ROWS = 8;

function product(op: string, a: T, b: T, bias: T | null, opts: MatmulOptions): T {
  const tA = opts.transA ?? false;
  const tB = opts.transB ?? false;
  const d = dims(a, b, tA, tB);
  if (bias)
    check(
      bias.ndim === 1 && bias.shape[0] === d.N && bias.dtype === 'f32',
      op,
      () => `bias must be f32 [${d.N}] for output ${shapeStr(d.outShape)}, got ${bias.dtype} ${shapeStr(bias.shape)}`,
    );
  if (a.dtype === 'f32' && b.dtype === 'bf16') return bf16WeightProduct(op, a, b, bias, d, tA, tB);
  // Under autocast, a few rows needing no gradient (a decode step) read an f32 weight once, as it is: converting the
  // whole weight to bf16 for them made autocast decoding 3× slower than f32.
  const needsGrad = isGradEnabled() && (a.requiresGrad || b.requiresGrad || (bias?.requiresGrad ?? false));
  const skinny = !tA && d.batchB === 1 && d.batch * d.M <= SKINNY_MAX_ROWS;
  const lowp = matmulDType() === 'bf16' && (needsGrad || !skinny);
  const ac = lowp ? toBf16(a) : a;
  const bc = lowp ? toBf16(b) : b;
  const out = Tensor.empty(d.outShape);
  gemm(ac, bc, out, d, tA, tB, false, bias);
  // Under autocast a bf16 copy lives only as long as it is needed: the right side's (a weight) until the left side's
  // gradient is made; the left side's (an activation) is made again from its f32 source for the right side's
  // gradient, since the graph keeps that source anyway: holding both from forward to backward cost a copy of every
  // activation. Without a gradient to come, both go at once.
  if (ac !== a) ac.dispose();
  if (bc !== b && !(needsGrad && a.requiresGrad)) bc.dispose();
  return record(op, out, bias ? [a, b, bias] : [a, b], (g) => {
    let gBias: T | null = null;
    let gc = g;
    if (lowp && bias?.requiresGrad) {
      // One pass over g gives both its bf16 copy and the bias gradient.
      gc = Tensor.empty(g.shape, 'bf16');
      gBias = Tensor.empty(bias.shape);
      native.toBf16ColumnSums(g.f32, gc.u16, gBias.f32, g.numel / d.N, d.N);
    } else if (lowp) gc = toBf16(g);
    let ga: T | null = null;
    let gb: T | null = null;
    if (a.requiresGrad) {
      const broadcastA = d.batchA === 1 && d.batch > 1;
      ga = Tensor.empty(broadcastA ? [d.batch, ...a.shape] : a.shape);
      // dA = dC·op(B)ᵀ, or for a stored transposed: dAᵀ = op(B)·dCᵀ
      if (!tA) gemm(gc, bc, ga, dims(gc, bc, false, !tB), false, !tB, false);
      else gemm(bc, gc, ga, dims(bc, gc, tB, true), tB, true, false);
      if (broadcastA) ga = sumLeading(ga, a, d);
    }
    if (b.requiresGrad) {
      const ac = lowp ? toBf16(a) : a;
      if (d.batchB === 1 && d.batch > 1 && !tA) {
        // Shared B: fold the batch into M so that one GEMM sums over it.
        gb = Tensor.empty(b.shape);
        const a2 = Tensor.viewOf(ac, [d.batch * d.M, d.K]);
        const g2 = Tensor.viewOf(gc, [d.batch * d.M, d.N]);
        if (!tB) gemm(a2, g2, gb, dims(a2, g2, true, false), true, false, false);
        else gemm(g2, a2, gb, dims(g2, a2, true, false), true, false, false);
        a2.dispose();
        g2.dispose();
      } else {
        const broadcastB = d.batchB === 1 && d.batch > 1;
        gb = Tensor.empty(broadcastB ? [d.batch, ...b.shape] : b.shape);
        // dB = op(A)ᵀ·dC, or for b stored transposed: dBᵀ = dCᵀ·op(A)
        if (!tB) gemm(ac, gc, gb, dims(ac, gc, !tA, false), !tA, false, false);
        else gemm(gc, ac, gb, dims(gc, ac, true, tA), true, tA, false);
        if (broadcastB) gb = sumLeading(gb, b, d);
      }
      if (ac !== a) ac.dispose();
    }
    if (gc !== g) gc.dispose();
    if (bias?.requiresGrad) gBias ??= sumTo(g, bias.shape);
    return bias ? [ga, gb, gBias] : [ga, gb];
  });
}

// f32 activations against a frozen bf16 weight (a model cast with toDtype('bf16')): the native side reads the weight
// as stored, with f32 activations for a few rows and oneDNN's bf16 product for more. The result is f32.
function bf16WeightProduct(op: string, a: T, w: T, bias: T | null, d: Dims, tA: boolean, tB: boolean): T {
  check(
    w.ndim === 2 && !tA,
    op,
    () => `a bf16 weight must be a 2-d right-hand side with f32 rows on the left, got ${shapeStr(w.shape)}`,
  );
  const out = Tensor.empty(d.outShape);
  const rows = d.batch * d.M;
  if (rows > 0 && d.N > 0)
    native.matmulBf16Weights(a.f32, w.u16, out.f32, rows, d.N, d.K, tB, false, bias?.f32 ?? null);
  return record(op, out, bias ? [a, w, bias] : [a, w], (g) => {
    let ga: T | null = null;
    if (a.requiresGrad) {
      const gc = toBf16(g);
      ga = Tensor.empty(a.shape);
      gemm(gc, w, ga, dims(gc, w, false, !tB), false, !tB, false);
      gc.dispose();
    }
    const gBias = bias?.requiresGrad ? sumTo(g, bias.shape) : null;
    return bias ? [ga, null, gBias] : [ga, null];
  });
}

// Rare path: a 2-d side broadcast over a batched other side; its gradient sums the per-batch products.
function sumLeading(gFull: T, x: T, d: Dims): T {
  const out = Tensor.empty(x.shape);
  const src = gFull.f32;
  const dst = out.f32;
  dst.set(src.subarray(0, x.numel));
  for (let i = 1; i < d.batch; i++) native.addInPlace(dst, src.subarray(i * x.numel, (i + 1) * x.numel), 1);
  gFull.dispose();
  return out;
}
