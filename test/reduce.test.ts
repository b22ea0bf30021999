import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  argmax,
  backward,
  logsumexp,
  max,
  mean,
  ones,
  Rng,
  randn,
  sum,
  sumTo,
  type Tensor,
  tensor,
} from '../src/tensor/index.js';
import { gradcheck } from './helpers/gradcheck.js';

function param(shape: number[], seed: number): Tensor {
  const t = randn(shape, new Rng(seed));
  t.requiresGrad = true;
  return t;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-5): void {
  assert.equal(actual.length, expected.length, 'lengths differ');
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (!Number.isFinite(e)) assert.equal(a, e, `element ${i}`);
    else assert.ok(Math.abs(a - e) <= atol + rtol * Math.abs(e), `element ${i}: ${a}, expected ${e}`);
  }
}

const product = (s: number[]): number => s.reduce((p, q) => p * q, 1);

// Float64 reduction of `values` (shape `shape`) over `axes`, combining each output's elements with `combine`.
function refReduce(
  values: number[],
  shape: number[],
  axes: number[],
  combine: (xs: number[]) => number,
): { shape: number[]; kept: number[]; values: number[] } {
  const kept = shape.map((s, d) => (axes.includes(d) ? 1 : s));
  const groups: number[][] = Array.from({ length: product(kept) }, () => []);
  for (let i = 0; i < values.length; i++) {
    let rem = i;
    let out = 0;
    let stride = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      const idx = rem % shape[d];
      rem = Math.floor(rem / shape[d]);
      if (!axes.includes(d)) {
        out += idx * stride;
        stride *= shape[d];
      }
    }
    groups[out].push(values[i]);
  }
  return { shape: shape.filter((_, d) => !axes.includes(d)), kept, values: groups.map(combine) };
}

const total = (xs: number[]): number => xs.reduce((p, q) => p + q, 0);
const average = (xs: number[]): number => total(xs) / xs.length;

const sumCases: [number[], number[] | number | undefined][] = [
  [[2, 3, 4], undefined],
  [[2, 3, 4], 0],
  [[2, 3, 4], -1],
  [[2, 3, 4], 1],
  [
    [2, 3, 4],
    [0, 2],
  ],
  [
    [2, 3, 4],
    [1, 2],
  ],
  [
    [3, 1, 5],
    [0, 1],
  ],
  [[3, 1, 5], 1],
  [[5], 0],
];

for (const [shape, axis] of sumCases) {
  for (const keepDim of [false, true]) {
    const label = `${JSON.stringify(shape)} axis=${JSON.stringify(axis)} keepDim=${keepDim}`;
    test(`sum and mean forward match float64, ${label}`, () => {
      const x = randn(shape, new Rng(1));
      const axes =
        axis === undefined
          ? shape.map((_, d) => d)
          : (typeof axis === 'number' ? [axis] : axis).map((a) => (a < 0 ? a + shape.length : a));
      for (const [op, combine] of [
        [sum, total],
        [mean, average],
      ] as const) {
        const ref = refReduce(x.toArray(), shape, axes, combine);
        const out = op(x, axis, keepDim);
        assert.deepEqual(out.shape, keepDim ? ref.kept : ref.shape);
        assertClose(out.toArray(), ref.values);
      }
    });
    test(`sum and mean gradients, ${label}`, () => {
      gradcheck((x) => sum(x, axis, keepDim), [param(shape, 2)]);
      gradcheck((x) => mean(x, axis, keepDim), [param(shape, 3)]);
    });
  }
}

test('sum with no axis gives a [] tensor', () => {
  const out = sum(tensor([1, 2, 3, 4], [2, 2]));
  assert.deepEqual(out.shape, []);
  assert.equal(out.item(), 10);
});

// Shapes chosen to reach every kernel path: split-R partials (few outputs, long axis) with inner 1 and inner > 1,
// owned columns over many outputs, and parallel row sums.
for (const [shape, axis] of [
  [[50000], 0],
  [[3, 20000], 1],
  [[20000, 3], 0],
  [[300, 200], 0],
  [[2, 400, 130], 1],
  [[2000, 40], 1],
] as [number[], number][]) {
  test(`large sum over ${JSON.stringify(shape)} axis ${axis} matches float64 and repeats exactly`, () => {
    const x = randn(shape, new Rng(4));
    const ref = refReduce(x.toArray(), shape, [axis], total);
    const first = sum(x, axis).toArray();
    assertClose(first, ref.values, 1e-5, 2e-4);
    assert.deepEqual(sum(x, axis).toArray(), first);
  });
}

test('sum and mean over an empty axis give 0 and NaN', () => {
  const x = tensor([], [2, 0]);
  assert.deepEqual(sum(x, 1).toArray(), [0, 0]);
  assert.ok(mean(x, 1).toArray().every(Number.isNaN));
});

const firstMaxIndex = (xs: number[]): number => xs.indexOf(Math.max(...xs));

for (const [shape, axis] of [
  [[4, 7], -1],
  [[4, 7], 0],
  [[2, 3, 5], 1],
  [[6], 0],
] as [number[], number][]) {
  for (const keepDim of [false, true]) {
    test(`max and argmax over ${JSON.stringify(shape)} axis ${axis} keepDim=${keepDim}`, () => {
      const x = randn(shape, new Rng(5));
      const a = axis < 0 ? axis + shape.length : axis;
      const refMax = refReduce(x.toArray(), shape, [a], (xs) => Math.max(...xs));
      const refArg = refReduce(x.toArray(), shape, [a], firstMaxIndex);
      const m = max(x, axis, keepDim);
      assert.deepEqual(m.shape, keepDim ? refMax.kept : refMax.shape);
      assert.deepEqual(m.toArray(), refMax.values);
      const idx = argmax(x, axis, keepDim);
      assert.equal(idx.dtype, 'i32');
      assert.deepEqual(idx.shape, m.shape);
      assert.deepEqual(idx.toArray(), refArg.values);
    });
    test(`max gradients over ${JSON.stringify(shape)} axis ${axis} keepDim=${keepDim}`, () => {
      gradcheck((x) => max(x, axis, keepDim), [param(shape, 6)]);
    });
  }
}

test('max takes the first of equal maxima, for values and gradient', () => {
  const rows = tensor([1, 3, 3, 0, 2, 2, 2, 1], [2, 4]);
  assert.deepEqual(argmax(rows, 1).toArray(), [1, 0]);
  const cols = tensor([1, 3, 3, 0, 3, 3, 0, 0], [2, 4]);
  assert.deepEqual(argmax(cols, 0).toArray(), [1, 0, 0, 0]);
  cols.requiresGrad = true;
  backward(max(cols, 0), ones([4]));
  assert.deepEqual(cols.grad!.toArray(), [0, 1, 1, 1, 1, 0, 0, 0]);
  const long = new Array(3000).fill(0);
  long[1700] = 5;
  long[2900] = 5;
  assert.deepEqual(argmax(tensor(long, [1, 3000]), 1).toArray(), [1700]);
});

test('max and argmax propagate NaN', () => {
  assert.deepEqual(argmax(tensor([1, NaN, 5, NaN]), 0).toArray(), [1]);
  assert.deepEqual(max(tensor([1, NaN, 5, 2], [2, 2]), 0).toArray(), [5, NaN]);
  assert.deepEqual(max(tensor([1, 2, 5, NaN], [2, 2]), 0).toArray(), [5, NaN]);
});

const refLse = (xs: number[]): number => {
  const m = Math.max(...xs);
  return m + Math.log(total(xs.map((v) => Math.exp(v - m))));
};

for (const [shape, axis] of [
  [[3, 50], -1],
  [[50, 3], 0],
  [[2, 6, 4], 1],
] as [number[], number][]) {
  for (const keepDim of [false, true]) {
    test(`logsumexp over ${JSON.stringify(shape)} axis ${axis} keepDim=${keepDim}`, () => {
      const x = randn(shape, new Rng(7), 4);
      const a = axis < 0 ? axis + shape.length : axis;
      const ref = refReduce(x.toArray(), shape, [a], refLse);
      const out = logsumexp(x, axis, keepDim);
      assert.deepEqual(out.shape, keepDim ? ref.kept : ref.shape);
      assertClose(out.toArray(), ref.values, 1e-6, 1e-6);
      gradcheck((t) => logsumexp(t, axis, keepDim), [param([2, 3, 4], 8)]);
    });
  }
}

test('logsumexp is stable for large and infinite inputs', () => {
  assertClose(logsumexp(tensor([1000, 1000, -Infinity, 999], [1, 4]), 1).toArray(), [
    refLse([1000, 1000, -1e300, 999]),
  ]);
  assert.deepEqual(logsumexp(tensor([-Infinity, -Infinity], [2, 1]), 0).toArray(), [-Infinity]);
  assert.deepEqual(logsumexp(tensor([-Infinity, -Infinity]), 0).toArray(), [-Infinity]);
  assert.deepEqual(logsumexp(tensor([Infinity, 1]), 0).toArray(), [Infinity]);
});

for (const [from, to] of [
  [[2, 3, 4], [4]],
  [
    [2, 3, 4],
    [3, 1],
  ],
  [
    [2, 3, 4],
    [2, 1, 4],
  ],
  [
    [2, 3, 4],
    [1, 1, 1],
  ],
  [[2, 3], []],
  [
    [2, 3],
    [2, 3],
  ],
] as [number[], number[]][]) {
  test(`sumTo ${JSON.stringify(from)} → ${JSON.stringify(to)}`, () => {
    const x = param(from, 9);
    const lead = from.length - to.length;
    const axes = from.map((_, d) => d).filter((d) => d < lead || (to[d - lead] === 1 && from[d] !== 1));
    const ref = refReduce(x.toArray(), from, axes, total);
    const out = sumTo(x, to);
    assert.deepEqual(out.shape, to);
    assertClose(out.toArray(), ref.values);
    gradcheck((t) => sumTo(t, to), [x]);
  });
}

test('reductions name the op on bad axes and inputs', () => {
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  assert.throws(() => sum(x, 2), /sum: axis 2 is out of range/);
  assert.throws(() => mean(x, [0, -2]), /mean: axis list \[0, -2\] repeats/);
  assert.throws(() => sum(x, []), /sum: axis list is empty/);
  assert.throws(() => max(x, -3), /max: axis -3 is out of range/);
  assert.throws(() => max(tensor([], [2, 0]), 1), /max: axis 1 of \[2, 0\] is empty/);
  assert.throws(() => argmax(x, 5), /argmax: axis 5/);
  assert.throws(() => logsumexp(x, 3), /logsumexp: axis 3/);
  assert.throws(() => sum(tensor([1, 2], [2], 'i32')), /sum: needs an f32 tensor/);
  assert.throws(() => mean([1, 2] as never), /mean: expected a tensor/);
  assert.throws(() => sumTo(x, [3, 3]), /sumTo: shape \[3, 3\] does not broadcast to \[2, 3\]/);
});
