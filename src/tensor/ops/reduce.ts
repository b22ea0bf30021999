// Reductions. A reduction over one axis is a native (outer, R, inner) kernel call; several axes are reduced one
// merged run of axes at a time, innermost first, so the common cases (last axis, leading axes) are one call.
import { native } from '../native.js';
import { check, normAxis, numelOf, record, type Shape, shapeStr, Tensor } from '../tensor.js';

const dims = (shape: Shape): Int32Array => Int32Array.from(shape);

function checkF32(op: string, x: unknown): asserts x is Tensor {
  check(x instanceof Tensor, op, () => `expected a tensor, got ${typeof x}`);
  check(x.dtype === 'f32', op, () => `needs an f32 tensor, got ${x.dtype} ${shapeStr(x.shape)}`);
}

/** Sorted distinct axes; undefined means all of them. */
function normAxes(op: string, ndim: number, axis: number | number[] | undefined): number[] {
  if (axis === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axis === 'number' ? [axis] : axis;
  check(list.length > 0, op, () => 'axis list is empty');
  const axes = list.map((a) => normAxis(a, ndim, op));
  check(new Set(axes).size === axes.length, op, () => `axis list [${list.join(', ')}] repeats an axis`);
  return axes.sort((p, q) => p - q);
}

/** The (outer, R, inner) split of x's shape around one axis. */
function splitAt(shape: Shape, axis: number): [number, number, number] {
  return [numelOf(shape.slice(0, axis)), shape[axis], numelOf(shape.slice(axis + 1))];
}

/**
 * scale · Σ of x over the axes flagged in `reduced`, written into a new tensor of outShape (same element count
 * as the kept axes). Neighbouring axes with the same role are merged and size-1 axes dropped first.
 */
function sumAxes(x: Tensor, reduced: readonly boolean[], outShape: Shape, scale: number): Tensor {
  const out = Tensor.empty(outShape);
  if (x.numel === 0) {
    out.f32.fill(0 * scale); // an empty sum is 0; an empty mean (scale = ∞) is NaN
    return out;
  }
  const runs: { size: number; reduced: boolean }[] = [];
  for (let d = 0; d < x.ndim; d++) {
    const size = x.shape[d];
    if (size === 1) continue;
    const last = runs[runs.length - 1];
    if (last && last.reduced === reduced[d]) last.size *= size;
    else runs.push({ size, reduced: reduced[d] });
  }
  const lastReduced = (): number => {
    for (let k = runs.length - 1; k >= 0; k--) if (runs[k].reduced) return k;
    return -1;
  };
  const sizeOf = (from: number, to: number): number => numelOf(runs.slice(from, to).map((r) => r.size));
  let k = lastReduced();
  if (k < 0) {
    out.f32.set(x.f32);
    if (scale !== 1) native.scaleInPlace(out.f32, scale);
    return out;
  }
  let src = x;
  while (k >= 0) {
    const outer = sizeOf(0, k);
    const size = runs[k].size;
    const inner = sizeOf(k + 1, runs.length);
    runs.splice(k, 1);
    k = lastReduced();
    const dst = k < 0 ? out : Tensor.empty([outer * inner]);
    native.sumAxis(src.f32, dst.f32, outer, size, inner, src === x ? scale : 1);
    if (src !== x) src.dispose();
    src = dst;
  }
  return out;
}

function reduceSum(op: string, x: Tensor, axis: number | number[] | undefined, keepDim: boolean, mean: boolean) {
  checkF32(op, x);
  const axes = normAxes(op, x.ndim, axis);
  const reduced = x.shape.map((_, d) => axes.includes(d));
  const keptShape = x.shape.map((s, d) => (reduced[d] ? 1 : s));
  const outShape = keepDim ? keptShape : x.shape.filter((_, d) => !reduced[d]);
  const scale = mean ? 1 / numelOf(axes.map((a) => x.shape[a])) : 1;
  const out = sumAxes(x, reduced, outShape, scale);
  return record(op, out, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    native.broadcastCopy(g.f32, dims(keptShape), dx.f32, dims(x.shape));
    if (scale !== 1) native.scaleInPlace(dx.f32, scale);
    return [dx];
  });
}

/** Σ over the given axes (all when omitted: a [] result); keepDim leaves them as size 1. */
export function sum(x: Tensor, axis?: number | number[], keepDim = false): Tensor {
  return reduceSum('sum', x, axis, keepDim, false);
}

/** Mean over the given axes (all when omitted); keepDim leaves them as size 1. */
export function mean(x: Tensor, axis?: number | number[], keepDim = false): Tensor {
  return reduceSum('mean', x, axis, keepDim, true);
}

/**
 * Sums x down to `shape`, the reverse of broadcasting `shape` up to x's shape: the gradient of a broadcast operand.
 */
export function sumTo(x: Tensor, shape: Shape): Tensor {
  checkF32('sumTo', x);
  const lead = x.ndim - shape.length;
  check(
    lead >= 0 && shape.every((s, i) => s === x.shape[lead + i] || s === 1),
    'sumTo',
    () => `shape ${shapeStr(shape)} does not broadcast to ${shapeStr(x.shape)}`,
  );
  const reduced = x.shape.map((s, d) => d < lead || (shape[d - lead] === 1 && s !== 1));
  const out = sumAxes(x, reduced, shape, 1);
  return record('sumTo', out, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    native.broadcastCopy(g.f32, dims(shape), dx.f32, dims(x.shape));
    return [dx];
  });
}

function reducedShape(shape: Shape, axis: number, keepDim: boolean): number[] {
  return keepDim ? shape.map((s, d) => (d === axis ? 1 : s)) : shape.filter((_, d) => d !== axis);
}

/** Maximum along an axis; the gradient goes to the first position holding it. */
export function max(x: Tensor, axis: number, keepDim = false): Tensor {
  checkF32('max', x);
  const a = normAxis(axis, x.ndim, 'max');
  check(x.shape[a] > 0, 'max', () => `axis ${axis} of ${shapeStr(x.shape)} is empty`);
  const [outer, size, inner] = splitAt(x.shape, a);
  const values = Tensor.empty(reducedShape(x.shape, a, keepDim));
  // A plain array, not a pooled tensor: it must outlive any tidy scope for as long as the graph needs it.
  const indices = new Int32Array(outer * inner);
  native.maxAxis(x.f32, values.f32, indices, outer, size, inner);
  return record('max', values, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    native.maxBackward(g.f32, indices, dx.f32, outer, size, inner);
    return [dx];
  });
}

/** Index of the first maximum along an axis, as i32 (no gradient). */
export function argmax(x: Tensor, axis: number, keepDim = false): Tensor {
  checkF32('argmax', x);
  const a = normAxis(axis, x.ndim, 'argmax');
  check(x.shape[a] > 0, 'argmax', () => `axis ${axis} of ${shapeStr(x.shape)} is empty`);
  const [outer, size, inner] = splitAt(x.shape, a);
  const out = Tensor.empty(reducedShape(x.shape, a, keepDim), 'i32');
  native.maxAxis(x.f32, null, out.i32, outer, size, inner);
  return out;
}

/** log Σ exp along an axis, computed stably (shifted by the maximum). */
export function logsumexp(x: Tensor, axis: number, keepDim = false): Tensor {
  checkF32('logsumexp', x);
  const a = normAxis(axis, x.ndim, 'logsumexp');
  check(x.shape[a] > 0, 'logsumexp', () => `axis ${axis} of ${shapeStr(x.shape)} is empty`);
  const [outer, size, inner] = splitAt(x.shape, a);
  const out = Tensor.empty(reducedShape(x.shape, a, keepDim));
  native.logsumexpAxis(x.f32, out.f32, outer, size, inner);
  return record('logsumexp', out, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    native.logsumexpBackward(x.f32, out.f32, g.f32, dx.f32, outer, size, inner);
    return [dx];
  });
}
