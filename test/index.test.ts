import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backward,
  embedding,
  gatherLast,
  getThreads,
  Rng,
  randn,
  scatterAdd,
  setThreads,
  type Tensor,
  tensor,
  tidy,
} from '../src/tensor/index.js';
import { gradcheck } from './helpers/gradcheck.js';

function param(shape: number[], seed: number): Tensor {
  const t = randn(shape, new Rng(seed));
  t.requiresGrad = true;
  return t;
}

const ints = (values: number[], shape: number[] = [values.length]) => tensor(values, shape, 'i32');

test('embedding picks weight rows into shape (...ids, D)', () => {
  const w = randn([5, 3], new Rng(1));
  const ids = ints([4, 0, 4, 2], [2, 2]);
  const out = embedding(w, ids);
  assert.deepEqual(out.shape, [2, 2, 3]);
  const wv = w.toArray();
  assert.deepEqual(
    out.toArray(),
    [4, 0, 4, 2].flatMap((id) => wv.slice(id * 3, id * 3 + 3)),
  );
});

test('embedding gradient adds up repeated ids', () => {
  gradcheck((w) => embedding(w, ints([1, 3, 1, 1, 0], [5])), [param([4, 3], 2)]);
  gradcheck((w) => embedding(w, ints([2, 2, 0, 1, 2, 0], [2, 3])), [param([3, 70], 3)]);
});

test('embedding gradient is bit-identical for 1 and 2 threads', () => {
  const saved = getThreads();
  const run = (threads: number) =>
    tidy(() => {
      setThreads(threads);
      const w = param([50, 200], 4);
      const rng = new Rng(5);
      const ids = ints(Array.from({ length: 500 }, () => rng.int(50)));
      backward(embedding(w, ids), randn([500, 200], new Rng(6)));
      return w.grad!.toArray();
    });
  try {
    assert.deepEqual(run(1), run(2));
  } finally {
    setThreads(saved);
  }
});

test('gatherLast picks x[..., idx] and scatters its gradient', () => {
  const x = randn([2, 3, 4], new Rng(7));
  const idx = ints([3, 0, 1, 2, 2, 0], [2, 3]);
  const out = gatherLast(x, idx);
  assert.deepEqual(out.shape, [2, 3]);
  const xv = x.toArray();
  assert.deepEqual(
    out.toArray(),
    [3, 0, 1, 2, 2, 0].map((k, r) => xv[r * 4 + k]),
  );
  gradcheck((a) => gatherLast(a, idx), [param([2, 3, 4], 8)]);
});

test('scatterAdd adds src rows at idx rows, duplicates summed', () => {
  const x = randn([4, 3], new Rng(9));
  const src = randn([5, 3], new Rng(10));
  const idx = [2, 0, 2, 3, 2];
  const out = scatterAdd(x, ints(idx), src).toArray();
  const expected = x.toArray().map((v) => v as number);
  const sv = src.toArray();
  idx.forEach((row, m) => {
    for (let j = 0; j < 3; j++) expected[row * 3 + j] += sv[m * 3 + j];
  });
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(out[i] - expected[i]) < 1e-6, `element ${i}`);
  assert.deepEqual(x.toArray().slice(3, 6), out.slice(3, 6)); // row 1 receives nothing
});

test('scatterAdd gradients to x and src', () => {
  gradcheck((x, src) => scatterAdd(x, ints([1, 1, 3]), src), [param([4, 2], 11), param([3, 2], 12)]);
});

test('index ops name themselves and the bad index', () => {
  const w = randn([5, 2], new Rng(0));
  assert.throws(() => embedding(w, ints([1, 7, 0])), /embedding: id 7 at position \[1\] is outside \[0, 5\)/);
  assert.throws(() => embedding(w, ints([-1])), /embedding: id -1/);
  assert.throws(() => embedding(w, tensor([1])), /embedding: ids must be i32/);
  assert.throws(() => gatherLast(w, ints([0, 1, 1, 0])), /gatherLast: idx \[4\] must match/);
  assert.throws(() => gatherLast(w, ints([0, 1, 2, 1, 0])), /gatherLast: index 2 at position \[2\]/);
  assert.throws(() => scatterAdd(w, ints([5]), randn([1, 2], new Rng(0))), /scatterAdd: index 5 at position \[0\]/);
  assert.throws(() => scatterAdd(w, ints([0]), randn([1, 3], new Rng(0))), /scatterAdd: expects x \(N, D\)/);
});
