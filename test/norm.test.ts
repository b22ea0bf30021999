import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backward,
  getThreads,
  layerNorm,
  Rng,
  randn,
  rmsNorm,
  setThreads,
  type Tensor,
  tensor,
  tidy,
} from '../src/tensor/index.js';
import { gradcheck } from './helpers/gradcheck.js';

function param(shape: number[], seed: number, std = 1, mean = 0): Tensor {
  const t = randn(shape, new Rng(seed), std, mean);
  t.requiresGrad = true;
  return t;
}

function rowsOf(x: Tensor): number[][] {
  const D = x.shape[x.ndim - 1];
  const d = Array.from(x.f32);
  const rows: number[][] = [];
  for (let i = 0; i < d.length; i += D) rows.push(d.slice(i, i + D));
  return rows;
}

function refLayerNorm(x: Tensor, w: Tensor | null, b: Tensor | null, eps: number): number[] {
  return rowsOf(x).flatMap((row) => {
    const D = row.length;
    const mean = row.reduce((s, v) => s + v, 0) / D;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / D;
    return row.map((v, j) => ((v - mean) / Math.sqrt(variance + eps)) * (w ? w.f32[j] : 1) + (b ? b.f32[j] : 0));
  });
}

function refRmsNorm(x: Tensor, w: Tensor | null, eps: number): number[] {
  return rowsOf(x).flatMap((row) => {
    const ms = row.reduce((s, v) => s + v * v, 0) / row.length;
    return row.map((v, j) => (w ? w.f32[j] : 1) * (v / Math.sqrt(ms + eps)));
  });
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(err <= atol + rtol * Math.abs(expected[i]), `element ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('layerNorm forward matches float64 with and without weight and bias', () => {
  const x = randn([2, 3, 50], new Rng(1), 3, 10); // an offset mean tests the centred variance
  const w = randn([50], new Rng(2));
  const b = randn([50], new Rng(3));
  assertClose(layerNorm(x, w, b).toArray(), refLayerNorm(x, w, b, 1e-5), 1e-5, 1e-4);
  assertClose(layerNorm(x, w, null).toArray(), refLayerNorm(x, w, null, 1e-5), 1e-5, 1e-4);
  assertClose(layerNorm(x, null, b).toArray(), refLayerNorm(x, null, b, 1e-5), 1e-5, 1e-4);
  assertClose(layerNorm(x, null, null, 0.5).toArray(), refLayerNorm(x, null, null, 0.5), 1e-5, 1e-4);
});

test('rmsNorm forward matches float64 (Hugging Face Llama semantics)', () => {
  const x = randn([4, 64], new Rng(4), 2);
  const w = randn([64], new Rng(5));
  assertClose(rmsNorm(x, w).toArray(), refRmsNorm(x, w, 1e-6), 1e-6, 1e-5);
  assertClose(rmsNorm(x, null, 0.1).toArray(), refRmsNorm(x, null, 0.1), 1e-6, 1e-5);
});

test('layerNorm gradients for input, weight and bias', () => {
  gradcheck((x, w, b) => layerNorm(x, w, b), [param([3, 6], 6), param([6], 7, 1, 1), param([6], 8)]);
});

test('layerNorm gradients without weight or bias, and with only a weight', () => {
  gradcheck((x) => layerNorm(x, null, null), [param([2, 2, 5], 9)]);
  gradcheck((x, w) => layerNorm(x, w, null), [param([4, 5], 10), param([5], 11, 1, 1)]);
});

test('rmsNorm gradients with and without weight', () => {
  gradcheck((x, w) => rmsNorm(x, w), [param([3, 6], 12), param([6], 13, 1, 1)]);
  gradcheck((x) => rmsNorm(x, null, 1e-3), [param([2, 3, 4], 14)]);
});

test('layerNorm parameter gradients over many rows match float64 column sums', () => {
  tidy(() => {
    const x = param([300, 7], 15);
    const w = param([7], 16, 1, 1);
    const b = param([7], 17);
    const g = randn([300, 7], new Rng(18));
    backward(layerNorm(x, w, b), g);
    const xr = rowsOf(x);
    const gr = rowsOf(g);
    const dw = new Array(7).fill(0);
    const db = new Array(7).fill(0);
    xr.forEach((row, r) => {
      const mean = row.reduce((s, v) => s + v, 0) / 7;
      const rstd = 1 / Math.sqrt(row.reduce((s, v) => s + (v - mean) ** 2, 0) / 7 + 1e-5);
      row.forEach((v, j) => {
        dw[j] += gr[r][j] * (v - mean) * rstd;
        db[j] += gr[r][j];
      });
    });
    assertClose(w.grad!.toArray(), dw, 1e-4, 1e-4);
    assertClose(b.grad!.toArray(), db, 1e-4, 1e-4);
  });
});

test('norm gradients are bit-identical for 1 and 2 threads', () => {
  const saved = getThreads();
  const run = (threads: number) =>
    tidy(() => {
      setThreads(threads);
      const x = param([517, 33], 19);
      const w = param([33], 20, 1, 1);
      const b = param([33], 21);
      const g = randn([517, 33], new Rng(22));
      backward(layerNorm(x, w, b), g);
      const wr = param([33], 23, 1, 1);
      backward(rmsNorm(x, wr), g);
      return [x.grad!.toArray(), w.grad!.toArray(), b.grad!.toArray(), wr.grad!.toArray()];
    });
  try {
    assert.deepEqual(run(1), run(2));
  } finally {
    setThreads(saved);
  }
});

test('norms reject mismatched parameters and non-f32 input, naming the op', () => {
  const x = randn([2, 4], new Rng(0));
  assert.throws(() => layerNorm(x, randn([3], new Rng(0)), null), /layerNorm: weight \[3\] must have shape \[4\]/);
  assert.throws(() => layerNorm(x, null, randn([4, 1], new Rng(0))), /layerNorm: bias \[4, 1\] must have shape \[4\]/);
  assert.throws(() => rmsNorm(x, randn([5], new Rng(0))), /rmsNorm: weight \[5\] must have shape \[4\]/);
  assert.throws(() => rmsNorm(tensor([1, 2], [1, 2], 'i32'), null), /rmsNorm: input must be f32/);
  assert.throws(() => layerNorm(tensor([], [3, 0]), null, null), /layerNorm: input \[3, 0\] needs a non-empty last/);
});
