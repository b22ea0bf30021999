import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  arange,
  backward,
  broadcastTo,
  cast,
  clone,
  concat,
  flatten,
  mul,
  ones,
  permute,
  Rng,
  randn,
  reshape,
  slice,
  split,
  squeeze,
  stack,
  sum,
  type Tensor,
  tensor,
  transpose,
  unsqueeze,
} from '../src/tensor/index.js';
import { gradcheck } from './helpers/gradcheck.js';

function param(shape: number[], seed: number): Tensor {
  const t = randn(shape, new Rng(seed));
  t.requiresGrad = true;
  return t;
}

const product = (s: readonly number[]): number => s.reduce((p, q) => p * q, 1);

function unravel(i: number, shape: readonly number[]): number[] {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

function ravel(idx: readonly number[], shape: readonly number[]): number {
  return idx.reduce((off, v, d) => off * shape[d] + v, 0);
}

// Plain-JS permutation: output element idx comes from input index with input axis axes[d] = idx[d].
function refPermute(values: number[], shape: number[], axes: number[]): number[] {
  const outShape = axes.map((a) => shape[a]);
  return Array.from({ length: values.length }, (_, i) => {
    const o = unravel(i, outShape);
    const src: number[] = [];
    axes.forEach((a, d) => {
      src[a] = o[d];
    });
    return values[ravel(src, shape)];
  });
}

test('reshape is a view with one inferred dimension', () => {
  const x = arange(12, 'f32');
  const y = reshape(x, [3, -1]);
  assert.deepEqual(y.shape, [3, 4]);
  assert.ok(y.shared);
  x.f32[5] = 100;
  assert.equal(y.f32[5], 100);
  assert.deepEqual(reshape(x, [2, 3, 2]).shape, [2, 3, 2]);
  assert.deepEqual(reshape(tensor([7]), []).shape, []);
  gradcheck((t) => mul(reshape(t, [4, -1]), 2), [param([2, 6], 1)]);
});

test('reshape names the op on a bad shape', () => {
  const x = arange(12, 'f32');
  assert.throws(() => reshape(x, [5, 3]), /reshape: cannot view \[12\] \(12 elements\) as \[5, 3\]/);
  assert.throws(() => reshape(x, [5, -1]), /reshape: cannot view/);
  assert.throws(() => reshape(x, [-1, -1]), /reshape: shape \[-1, -1\]/);
  assert.throws(() => reshape(x, [2.5, 4]), /reshape: shape/);
});

test('flatten, unsqueeze and squeeze reshape views', () => {
  const x = param([2, 3, 4], 2);
  assert.deepEqual(flatten(x).shape, [24]);
  assert.deepEqual(flatten(x, 1).shape, [2, 12]);
  assert.deepEqual(flatten(x, -1).shape, [2, 3, 4]);
  assert.deepEqual(unsqueeze(x, 0).shape, [1, 2, 3, 4]);
  assert.deepEqual(unsqueeze(x, -1).shape, [2, 3, 4, 1]);
  assert.deepEqual(unsqueeze(x, 2).shape, [2, 3, 1, 4]);
  const y = randn([1, 3, 1], new Rng(3));
  assert.deepEqual(squeeze(y).shape, [3]);
  assert.deepEqual(squeeze(y, -1).shape, [1, 3]);
  assert.deepEqual(flatten(x, 1).toArray(), x.toArray());
  gradcheck((t) => squeeze(unsqueeze(flatten(t, 1), 1), 1), [x]);
  assert.throws(() => squeeze(y, 1), /squeeze: axis 1 of \[1, 3, 1\] has size 3, not 1/);
  assert.throws(() => unsqueeze(x, 4), /unsqueeze: axis 4 is out of range/);
  assert.throws(() => flatten(x, 3), /flatten: axis 3/);
});

// (B,T,H,D)→(B,H,T,D) and back, a plain 2-d transpose (tiled path, larger than a tile), moves of the last axis.
const permutations: [number[], number[]][] = [
  [
    [2, 3, 4, 5],
    [0, 2, 1, 3],
  ],
  [
    [2, 4, 3, 5],
    [0, 2, 1, 3],
  ],
  [
    [70, 45],
    [1, 0],
  ],
  [
    [3, 4, 5],
    [2, 0, 1],
  ],
  [
    [3, 4, 5],
    [1, 2, 0],
  ],
  [
    [3, 1, 5, 2],
    [3, 2, 1, 0],
  ],
  [
    [2, 3],
    [0, 1],
  ],
  [
    [2, 40, 6, 33],
    [0, 2, 3, 1],
  ],
];

for (const [shape, axes] of permutations) {
  test(`permute ${JSON.stringify(shape)} by ${JSON.stringify(axes)}`, () => {
    const x = randn(shape, new Rng(4));
    const out = permute(x, axes);
    assert.deepEqual(
      out.shape,
      axes.map((a) => shape[a]),
    );
    assert.deepEqual(out.toArray(), refPermute(x.toArray(), shape, axes));
    if (product(shape) <= 200) gradcheck((t) => permute(t, axes), [param(shape, 5)]);
  });
}

test('permute moves i32 and bf16 elements too', () => {
  const ids = tensor([1, 2, 3, 4, 5, 6], [2, 3], 'i32');
  assert.deepEqual(permute(ids, [1, 0]).toArray(), [1, 4, 2, 5, 3, 6]);
  const wide = arange(64 * 40, 'i32');
  const wideShape = [64, 40];
  assert.deepEqual(permute(reshape(wide, wideShape), [1, 0]).toArray(), refPermute(wide.toArray(), wideShape, [1, 0]));
  const h = cast(tensor([1, 2, 3, 4, 5, 6], [3, 2]), 'bf16');
  const t = permute(h, [1, 0]);
  assert.equal(t.dtype, 'bf16');
  assert.deepEqual(t.toArray(), [1, 3, 5, 2, 4, 6]);
});

test('transpose swaps two axes and backpropagates', () => {
  const x = param([2, 3, 4], 6);
  assert.deepEqual(transpose(x, -1, -2).toArray(), refPermute(x.toArray(), [2, 3, 4], [0, 2, 1]));
  assert.deepEqual(transpose(x, 0, 2).shape, [4, 3, 2]);
  gradcheck((t) => transpose(t, 0, -1), [x]);
});

test('permute and transpose name the op on bad axes', () => {
  const x = randn([2, 3], new Rng(7));
  assert.throws(() => permute(x, [0]), /permute: axes \[0\] do not match the 2 dimensions/);
  assert.throws(() => permute(x, [1, 1]), /permute: axes \[1, 1\] repeat/);
  assert.throws(() => permute(x, [0, 2]), /permute: axis 2 is out of range/);
  assert.throws(() => transpose(x, 0, 2), /transpose: axis 2 is out of range/);
});

function refSlice(values: number[], shape: number[], axis: number, start: number, end: number): number[] {
  const out: number[] = [];
  values.forEach((v, i) => {
    const k = unravel(i, shape)[axis];
    if (k >= start && k < end) out.push(v);
  });
  return out;
}

test('slice takes a range along an axis, negative indices from the end', () => {
  const shape = [3, 5, 4];
  const x = param(shape, 8);
  const xs = x.toArray();
  for (const [axis, start, end, s, e] of [
    [1, 1, 4, 1, 4],
    [-1, -3, undefined, 1, 4],
    [0, 0, -1, 0, 2],
    [2, 2, 2, 2, 2],
    [1, -5, 5, 0, 5],
  ] as [number, number, number | undefined, number, number][]) {
    const a = axis < 0 ? axis + 3 : axis;
    const out = slice(x, axis, start, end);
    assert.deepEqual(
      out.shape,
      shape.map((d, i) => (i === a ? e - s : d)),
    );
    assert.deepEqual(out.toArray(), refSlice(xs, shape, a, s, e));
  }
  gradcheck((t) => slice(t, 1, 1, 4), [x]);
  gradcheck((t) => slice(t, -1, -2), [x]);
  const ids = tensor([5, 6, 7, 8], [1, 4], 'i32');
  assert.deepEqual(slice(ids, 1, 1).toArray(), [6, 7, 8]);
  assert.equal(slice(ids, 1, 0, -1).dtype, 'i32');
});

test('slice names the op on a bad range', () => {
  const x = randn([3, 5], new Rng(9));
  assert.throws(() => slice(x, 1, 3, 2), /slice: range 3..2 does not fit axis 1 of \[3, 5\]/);
  assert.throws(() => slice(x, 1, 0, 6), /slice: range 0..6/);
  assert.throws(() => slice(x, 1, -6), /slice: range -6..5/);
  assert.throws(() => slice(x, 2, 0, 1), /slice: axis 2 is out of range/);
});

function refConcat(parts: { values: number[]; shape: number[] }[], axis: number): number[] {
  const outShape = parts[0].shape.map((d, i) => (i === axis ? parts.reduce((p, q) => p + q.shape[axis], 0) : d));
  return Array.from({ length: product(outShape) }, (_, i) => {
    const idx = unravel(i, outShape);
    let k = idx[axis];
    for (const part of parts) {
      if (k < part.shape[axis])
        return part.values[ravel([...idx.slice(0, axis), k, ...idx.slice(axis + 1)], part.shape)];
      k -= part.shape[axis];
    }
    throw new Error('unreachable');
  });
}

test('concat joins along an axis and splits the gradient back', () => {
  for (const axis of [0, 1, -1]) {
    const a = axis < 0 ? 2 : axis;
    const shapes = [2, 1, 3].map((n) => [2, 3, 4].map((d, i) => (i === a ? n : d)));
    const xs = shapes.map((s, i) => param(s, 10 + i));
    const out = concat(xs, axis);
    assert.deepEqual(
      out.toArray(),
      refConcat(
        xs.map((x) => ({ values: x.toArray(), shape: [...x.shape] })),
        a,
      ),
    );
    gradcheck((...ts) => concat(ts, axis), xs);
  }
  const ids = concat([tensor([1, 2], [2], 'i32'), tensor([3], [1], 'i32')], 0);
  assert.equal(ids.dtype, 'i32');
  assert.deepEqual(ids.toArray(), [1, 2, 3]);
});

test('concat gives gradients only to the pieces that need them', () => {
  const a = param([2, 2], 20);
  const b = randn([2, 3], new Rng(21));
  gradcheck((x) => concat([x, b], 1), [a]);
  assert.equal(b.grad, null);
});

test('stack joins along a new axis', () => {
  const xs = [param([2, 3], 30), param([2, 3], 31), param([2, 3], 32)];
  for (const axis of [0, 1, 2, -1]) {
    const a = axis < 0 ? axis + 3 : axis;
    const out = stack(xs, axis);
    const shape = [2, 3];
    assert.deepEqual(out.shape, [...shape.slice(0, a), 3, ...shape.slice(a)]);
    const expected = refConcat(
      xs.map((x) => ({ values: x.toArray(), shape: [...shape.slice(0, a), 1, ...shape.slice(a)] })),
      a,
    );
    assert.deepEqual(out.toArray(), expected);
    gradcheck((...ts) => stack(ts, axis), xs);
  }
});

test('split cuts an axis into pieces with their own gradients', () => {
  const x = param([3, 6], 40);
  const parts = split(x, [1, 3, 2], 1);
  assert.deepEqual(
    parts.map((p) => p.shape),
    [
      [3, 1],
      [3, 3],
      [3, 2],
    ],
  );
  assert.deepEqual(
    parts.map((p) => p.toArray()),
    [
      refSlice(x.toArray(), [3, 6], 1, 0, 1),
      refSlice(x.toArray(), [3, 6], 1, 1, 4),
      refSlice(x.toArray(), [3, 6], 1, 4, 6),
    ],
  );
  gradcheck(
    (t) => {
      const [p, q, r] = split(t, [1, 3, 2], -1);
      return concat([mul(r, 3), p, mul(q, -2)], 1);
    },
    [x],
  );
});

test('concat, stack and split name the op on bad input', () => {
  const a = randn([2, 3], new Rng(50));
  assert.throws(
    () => concat([a, randn([3, 3], new Rng(51))], 1),
    /concat: shapes \[2, 3\], \[3, 3\] differ outside axis 1/,
  );
  assert.throws(() => concat([], 0), /concat: needs a non-empty array/);
  assert.throws(() => concat([a, tensor([1, 2, 3, 4, 5, 6], [2, 3], 'i32')], 0), /concat: dtypes differ/);
  assert.throws(() => concat([a, a], 2), /concat: axis 2 is out of range/);
  assert.throws(() => stack([a, randn([3, 2], new Rng(52))], 0), /stack: shapes \[2, 3\], \[3, 2\] differ/);
  assert.throws(() => stack([a], 3), /stack: axis 3 is out of range/);
  assert.throws(() => split(a, [1, 1], 1), /split: sizes \[1, 1\] do not add up to axis 1 of \[2, 3\]/);
  assert.throws(() => split(a, [4, -1], 1), /split: sizes/);
});

test('broadcastTo expands size-1 and missing axes; its gradient sums them back', () => {
  const x = param([3, 1], 60);
  const out = broadcastTo(x, [2, 3, 4]);
  const xs = x.toArray();
  assert.deepEqual(
    out.toArray(),
    Array.from({ length: 24 }, (_, i) => xs[unravel(i, [2, 3, 4])[1]]),
  );
  gradcheck((t) => broadcastTo(t, [2, 3, 4]), [x]);
  gradcheck((t) => broadcastTo(t, [5]), [param([1], 61)]);
  assert.deepEqual(broadcastTo(tensor([4, 5], [2], 'i32'), [2, 2]).toArray(), [4, 5, 4, 5]);
  assert.throws(() => broadcastTo(x, [2, 2]), /broadcastTo: \[3, 1\] does not broadcast to \[2, 2\]/);
  assert.throws(() => broadcastTo(x, [3]), /broadcastTo/);
});

// Round to nearest even at bit 16, in plain JS.
function refBf16(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  const r = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  return new Float32Array(new Uint32Array([r << 16]).buffer)[0];
}

test('cast rounds f32 to bf16, widens back and converts i32', () => {
  const values = [1, 1.00390625, 1.01171875, -Math.PI, 65504, 1e-3, 0];
  const x = tensor(values);
  const h = cast(x, 'bf16');
  assert.equal(h.dtype, 'bf16');
  assert.deepEqual(h.toArray(), x.toArray().map(refBf16));
  const back = cast(h, 'f32');
  assert.equal(back.dtype, 'f32');
  assert.deepEqual(back.toArray(), x.toArray().map(refBf16));
  assert.deepEqual(cast(tensor([-7, 0, 123456], [3], 'i32'), 'f32').toArray(), [-7, 0, 123456]);
  assert.equal(cast(x, 'f32'), x);
  assert.throws(() => cast(h, 'i32'), /cast: cannot cast bf16 to i32/);
  assert.throws(() => cast(x, 'i32'), /cast: cannot cast f32 to i32/);
});

test('cast passes the gradient through f32 ↔ bf16', () => {
  const x = param([2, 3], 70);
  const y = mul(cast(cast(x, 'bf16'), 'f32'), tensor([1, 2, 3]));
  backward(sum(y));
  assert.deepEqual(x.grad!.toArray(), [1, 2, 3, 1, 2, 3]);
});

test('clone copies into its own memory', () => {
  const x = param([2, 2], 80);
  const c = clone(x);
  assert.deepEqual(c.toArray(), x.toArray());
  c.f32[0] = 42;
  assert.notEqual(x.f32[0], 42);
  gradcheck((t) => clone(t), [x]);
  assert.deepEqual(clone(ones([3], 'i32')).toArray(), [1, 1, 1]);
});
