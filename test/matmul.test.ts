import assert from 'node:assert/strict';
import { test } from 'node:test';
import { autocast, matmul, Rng, randn, tensor } from '../src/tensor/index.js';
import { gradcheck } from './helpers/gradcheck.js';

function param(shape: number[], seed: number) {
  const t = randn(shape, new Rng(seed));
  t.requiresGrad = true;
  return t;
}

test('matmul forward matches a hand computation', () => {
  const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = tensor([1, 0, 0, 1, 1, 1], [3, 2]);
  assert.deepEqual(matmul(a, b).toArray(), [4, 5, 10, 11]);
  assert.deepEqual(matmul(b, a, { transA: true, transB: true }).toArray(), [4, 10, 5, 11]);
});

for (const [tA, tB] of [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
]) {
  test(`matmul gradients, transA=${tA} transB=${tB}`, () => {
    const a = param(tA ? [4, 3] : [3, 4], 1);
    const b = param(tB ? [5, 4] : [4, 5], 2);
    gradcheck((x, y) => matmul(x, y, { transA: tA, transB: tB }), [a, b]);
  });
  test(`batched matmul gradients, transA=${tA} transB=${tB}`, () => {
    const a = param(tA ? [2, 3, 4, 3] : [2, 3, 3, 4], 3);
    const b = param(tB ? [2, 3, 5, 4] : [2, 3, 4, 5], 4);
    gradcheck((x, y) => matmul(x, y, { transA: tA, transB: tB }), [a, b]);
  });
  test(`matmul gradients with a shared right side, transA=${tA} transB=${tB}`, () => {
    const a = param(tA ? [2, 4, 3] : [2, 3, 4], 5);
    const b = param(tB ? [5, 4] : [4, 5], 6);
    gradcheck((x, y) => matmul(x, y, { transA: tA, transB: tB }), [a, b]);
  });
}

test('matmul gradients with a shared left side', () => {
  gradcheck((x, y) => matmul(x, y), [param([3, 4], 7), param([2, 4, 5], 8)]);
});

test('bf16 autocast matmul stays close to f32', () => {
  const a = randn([16, 64], new Rng(1));
  const b = randn([64, 8], new Rng(2));
  const exact = matmul(a, b).toArray();
  const low = autocast('bf16', () => matmul(a, b)).toArray();
  for (let i = 0; i < exact.length; i++) assert.ok(Math.abs(exact[i] - low[i]) < 0.1 + 0.02 * Math.abs(exact[i]));
});

test('matmul names the op and the shapes on a mismatch', () => {
  assert.throws(
    () => matmul(tensor([1, 2, 3, 4], [2, 2]), tensor([1, 2, 3], [3, 1])),
    /matmul: inner dimensions differ.*\[2, 2\]/,
  );
});
