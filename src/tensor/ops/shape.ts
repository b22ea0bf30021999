// Shape ops. reshape/flatten/squeeze/unsqueeze are zero-copy views; permute, slice, concat, stack, split and
// broadcastTo materialise through the native copy kernels, which move raw elements (f32, bf16 and i32 alike).
import { native } from '../native.js';
import { check, type DType, normAxis, numelOf, record, type Shape, shapeStr, Tensor } from '../tensor.js';
import { sumTo } from './reduce.js';

const dims = (shape: Shape): Int32Array => Int32Array.from(shape);

function checkTensor(op: string, x: unknown): asserts x is Tensor {
  check(x instanceof Tensor, op, () => `expected a tensor, got ${typeof x}`);
}

function view(op: string, x: Tensor, shape: Shape): Tensor {
  const out = Tensor.viewOf(x, shape);
  return record(op, out, [x], (g) => [Tensor.viewOf(g, x.shape)]);
}

/** The same values in a new shape (a view, no copy). One dimension may be -1: it takes what is left. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  checkTensor('reshape', x);
  const free = shape.filter((d) => d === -1).length;
  check(
    free <= 1 && shape.every((d) => Number.isInteger(d) && d >= -1),
    'reshape',
    () => `shape ${shapeStr(shape)} must hold non-negative integers and at most one -1`,
  );
  const known = numelOf(shape.filter((d) => d !== -1));
  const resolved = shape.map((d) => (d === -1 ? x.numel / known : d));
  check(
    numelOf(resolved) === x.numel && resolved.every((d) => Number.isInteger(d)),
    'reshape',
    () => `cannot view ${shapeStr(x.shape)} (${x.numel} elements) as ${shapeStr(shape)}`,
  );
  return view('reshape', x, resolved);
}

/** Merges the axes from startAxis on into one (a view). */
export function flatten(x: Tensor, startAxis = 0): Tensor {
  checkTensor('flatten', x);
  if (x.ndim === 0) return view('flatten', x, [1]);
  const a = normAxis(startAxis, x.ndim, 'flatten');
  return view('flatten', x, [...x.shape.slice(0, a), numelOf(x.shape.slice(a))]);
}

/** Inserts a size-1 axis at `axis` (in the result's numbering; negative counts from the end). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  checkTensor('unsqueeze', x);
  const a = normAxis(axis, x.ndim + 1, 'unsqueeze');
  return view('unsqueeze', x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

/** Removes the given size-1 axis, or every size-1 axis when none is given. */
export function squeeze(x: Tensor, axis?: number): Tensor {
  checkTensor('squeeze', x);
  if (axis === undefined)
    return view(
      'squeeze',
      x,
      x.shape.filter((d) => d !== 1),
    );
  const a = normAxis(axis, x.ndim, 'squeeze');
  check(x.shape[a] === 1, 'squeeze', () => `axis ${axis} of ${shapeStr(x.shape)} has size ${x.shape[a]}, not 1`);
  return view(
    'squeeze',
    x,
    x.shape.filter((_, d) => d !== a),
  );
}

function permuteKernel(x: Tensor, axes: readonly number[]): Tensor {
  const out = Tensor.empty(
    axes.map((a) => x.shape[a]),
    x.dtype,
  );
  native.permute(x.buffer, out.buffer, dims(x.shape), Int32Array.from(axes));
  return out;
}

function permuteAs(op: string, x: Tensor, axes: readonly number[]): Tensor {
  checkTensor(op, x);
  check(
    axes.length === x.ndim,
    op,
    () => `axes [${axes.join(', ')}] do not match the ${x.ndim} dimensions of ${shapeStr(x.shape)}`,
  );
  const norm = axes.map((a) => normAxis(a, x.ndim, op));
  check(new Set(norm).size === norm.length, op, () => `axes [${axes.join(', ')}] repeat an axis`);
  const out = permuteKernel(x, norm);
  const inverse = new Array<number>(norm.length);
  norm.forEach((a, d) => {
    inverse[a] = d;
  });
  return record(op, out, [x], (g) => [permuteKernel(g, inverse)]);
}

/** Reorders the axes (output axis d is input axis axes[d]) into a new contiguous tensor. */
export function permute(x: Tensor, axes: readonly number[]): Tensor {
  return permuteAs('permute', x, axes);
}

/** Swaps two axes (a copy). */
export function transpose(x: Tensor, axis0: number, axis1: number): Tensor {
  checkTensor('transpose', x);
  const a = normAxis(axis0, x.ndim, 'transpose');
  const b = normAxis(axis1, x.ndim, 'transpose');
  const axes = x.shape.map((_, d) => (d === a ? b : d === b ? a : d));
  return permuteAs('transpose', x, axes);
}

// (outer, size, inner) around an axis: a copy along the axis moves `outer` blocks of size·inner elements.
function around(shape: Shape, axis: number): [number, number, number] {
  return [numelOf(shape.slice(0, axis)), shape[axis], numelOf(shape.slice(axis + 1))];
}

function sliceAs(op: string, x: Tensor, axis: number, start: number, end: number | undefined): Tensor {
  checkTensor(op, x);
  const a = normAxis(axis, x.ndim, op);
  const n = x.shape[a];
  const s = start < 0 ? start + n : start;
  const e = end === undefined ? n : end < 0 ? end + n : end;
  check(
    Number.isInteger(s) && Number.isInteger(e) && s >= 0 && s <= e && e <= n,
    op,
    () => `range ${start}..${end ?? n} does not fit axis ${axis} of ${shapeStr(x.shape)}`,
  );
  const [outer, , inner] = around(x.shape, a);
  const len = (e - s) * inner;
  const out = Tensor.empty(
    x.shape.map((d, i) => (i === a ? e - s : d)),
    x.dtype,
  );
  native.copyBlocks(x.buffer, out.buffer, outer, len, n * inner, s * inner, len, 0);
  return record(op, out, [x], (g) => {
    const dx = Tensor.empty(x.shape);
    dx.f32.fill(0);
    native.copyBlocks(g.f32, dx.f32, outer, len, len, 0, n * inner, s * inner);
    return [dx];
  });
}

/** Elements start..end-1 along an axis (negative indices count from the end; end defaults to the axis size). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  return sliceAs('slice', x, axis, start, end);
}

/** Splits an axis into consecutive pieces of the given sizes. */
export function split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  checkTensor('split', x);
  const a = normAxis(axis, x.ndim, 'split');
  const total = sizes.reduce((p, q) => p + q, 0);
  check(
    sizes.every((s) => Number.isInteger(s) && s >= 0) && total === x.shape[a],
    'split',
    () => `sizes [${sizes.join(', ')}] do not add up to axis ${axis} of ${shapeStr(x.shape)}`,
  );
  let start = 0;
  return sizes.map((s) => {
    const piece = sliceAs('split', x, a, start, start + s);
    start += s;
    return piece;
  });
}

// Joins pieces along an axis of the output: piece i fills `lens[i]` positions of that axis, each of `inner` elements.
function join(
  op: string,
  xs: readonly Tensor[],
  outShape: Shape,
  outer: number,
  inner: number,
  lens: number[],
): Tensor {
  const out = Tensor.empty(outShape, xs[0].dtype);
  const total = lens.reduce((p, q) => p + q, 0);
  const offsets: number[] = [];
  let at = 0;
  xs.forEach((x, i) => {
    offsets.push(at);
    native.copyBlocks(x.buffer, out.buffer, outer, lens[i] * inner, lens[i] * inner, 0, total * inner, at * inner);
    at += lens[i];
  });
  return record(op, out, xs, (g) =>
    xs.map((x, i) => {
      if (!x.requiresGrad) return null;
      const dx = Tensor.empty(x.shape);
      const len = lens[i] * inner;
      native.copyBlocks(g.f32, dx.f32, outer, len, total * inner, offsets[i] * inner, len, 0);
      return dx;
    }),
  );
}

function checkPieces(op: string, xs: readonly Tensor[]): void {
  check(Array.isArray(xs) && xs.length > 0, op, () => 'needs a non-empty array of tensors');
  for (const x of xs) checkTensor(op, x);
  check(
    xs.every((x) => x.dtype === xs[0].dtype),
    op,
    () => `dtypes differ: ${xs.map((x) => x.dtype).join(', ')}`,
  );
}

/** Joins tensors along an existing axis; the other axes must match. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  checkPieces('concat', xs);
  const first = xs[0];
  const a = normAxis(axis, first.ndim, 'concat');
  check(
    xs.every((x) => x.ndim === first.ndim && x.shape.every((d, i) => i === a || d === first.shape[i])),
    'concat',
    () => `shapes ${xs.map((x) => shapeStr(x.shape)).join(', ')} differ outside axis ${axis}`,
  );
  const lens = xs.map((x) => x.shape[a]);
  const [outer, , inner] = around(first.shape, a);
  const outShape = first.shape.map((d, i) => (i === a ? lens.reduce((p, q) => p + q, 0) : d));
  return join('concat', xs, outShape, outer, inner, lens);
}

/** Joins equally shaped tensors along a new axis. */
export function stack(xs: readonly Tensor[], axis: number): Tensor {
  checkPieces('stack', xs);
  const first = xs[0];
  const a = normAxis(axis, first.ndim + 1, 'stack');
  check(
    xs.every((x) => x.ndim === first.ndim && x.shape.every((d, i) => d === first.shape[i])),
    'stack',
    () => `shapes ${xs.map((x) => shapeStr(x.shape)).join(', ')} differ`,
  );
  const outShape = [...first.shape.slice(0, a), xs.length, ...first.shape.slice(a)];
  const outer = numelOf(first.shape.slice(0, a));
  const inner = numelOf(first.shape.slice(a));
  return join(
    'stack',
    xs,
    outShape,
    outer,
    inner,
    xs.map(() => 1),
  );
}

/** x expanded to `shape` along its size-1 (or missing leading) axes, as a new tensor. */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  checkTensor('broadcastTo', x);
  const lead = shape.length - x.ndim;
  check(
    lead >= 0 && x.shape.every((d, i) => d === shape[lead + i] || d === 1),
    'broadcastTo',
    () => `${shapeStr(x.shape)} does not broadcast to ${shapeStr(shape)}`,
  );
  const out = Tensor.empty(shape, x.dtype);
  native.broadcastCopy(x.buffer, dims(x.shape), out.buffer, dims(shape));
  return record('broadcastTo', out, [x], (g) => [sumTo(g, x.shape)]);
}

/**
 * A copy in another dtype: f32 ↔ bf16 (round to nearest even), i32 → f32. The gradient of f32 ↔ bf16 passes
 * through unchanged (as f32). Casting to the same dtype returns x itself.
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  checkTensor('cast', x);
  const from = x.dtype;
  if (from === dtype) return x;
  check(
    (from === 'f32' && dtype === 'bf16') || (from === 'bf16' && dtype === 'f32') || (from === 'i32' && dtype === 'f32'),
    'cast',
    () => `cannot cast ${from} to ${dtype}`,
  );
  const out = Tensor.empty(x.shape, dtype);
  if (dtype === 'bf16') native.toBf16(x.f32, out.u16);
  else if (from === 'bf16') native.fromBf16(x.u16, out.f32);
  else {
    native.i32ToF32(x.i32, out.f32);
    return out; // integers carry no gradient
  }
  return record('cast', out, [x], (g) => [g]);
}

/** A copy with its own memory. */
export function clone(x: Tensor): Tensor {
  checkTensor('clone', x);
  const out = Tensor.empty(x.shape, x.dtype);
  (out.buffer as Float32Array).set(x.buffer as Float32Array);
  return record('clone', out, [x], (g) => [g]);
}
