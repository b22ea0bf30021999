import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logSoftmax, Rng, randn, softmax, type Tensor, tensor } from '../src/tensor/index.js';
import { gradcheck } from './helpers/gradcheck.js';

function param(shape: number[], seed: number, std = 1): Tensor {
  const t = randn(shape, new Rng(seed), std);
  t.requiresGrad = true;
  return t;
}

/** float64 softmax (or log-softmax) of x along `axis`, by explicit strides. */
function refSoftmax(x: Tensor, axis: number, log: boolean): number[] {
  const shape = x.shape;
  const n = shape[axis];
  let inner = 1;
  for (let a = axis + 1; a < shape.length; a++) inner *= shape[a];
  const outer = x.numel / (n * inner);
  const d = x.f32;
  const out = new Array<number>(x.numel);
  for (let o = 0; o < outer; o++)
    for (let k = 0; k < inner; k++) {
      const at = (j: number) => o * n * inner + j * inner + k;
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, d[at(j)]);
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(d[at(j)] - m);
      for (let j = 0; j < n; j++) out[at(j)] = log ? d[at(j)] - m - Math.log(s) : Math.exp(d[at(j)] - m) / s;
    }
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(err <= atol + rtol * Math.abs(expected[i]), `element ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('softmax and logSoftmax over the last axis match float64, including large logits', () => {
  const x = randn([5, 37], new Rng(1), 8);
  for (let i = 0; i < 37; i++) x.f32[i] += 500; // a shifted row: only stable if the max is subtracted
  assertClose(softmax(x).toArray(), refSoftmax(x, 1, false), 1e-7, 1e-5);
  assertClose(logSoftmax(x).toArray(), refSoftmax(x, 1, true), 1e-5, 1e-5);
});

test('softmax over many long rows (the parallel path) matches float64', () => {
  const x = randn([64, 1000], new Rng(2), 5);
  assertClose(softmax(x).toArray(), refSoftmax(x, 1, false), 1e-8, 1e-5);
  assertClose(logSoftmax(x, 1).toArray(), refSoftmax(x, 1, true), 1e-5, 1e-5);
});

test('softmax over a non-last axis matches float64', () => {
  const x = randn([3, 4, 5], new Rng(3), 3);
  for (const axis of [0, 1]) {
    assertClose(softmax(x, axis).toArray(), refSoftmax(x, axis, false), 1e-7, 1e-5);
    assertClose(logSoftmax(x, axis - 3).toArray(), refSoftmax(x, axis, true), 1e-5, 1e-5);
  }
});

test('masked (-inf) logits get probability exactly 0', () => {
  const y = softmax(tensor([0, -Infinity, 1, -Infinity], [1, 4])).toArray();
  assert.equal(y[1], 0);
  assert.equal(y[3], 0);
  assertClose([y[0], y[2]], [1 / (1 + Math.E), Math.E / (1 + Math.E)], 1e-7, 1e-6);
});

test('softmax gradients, last and middle axis', () => {
  gradcheck((x) => softmax(x), [param([3, 6], 4)]);
  gradcheck((x) => softmax(x, 1), [param([2, 4, 3], 5)]);
});

test('logSoftmax gradients, last and first axis', () => {
  gradcheck((x) => logSoftmax(x), [param([3, 6], 6)]);
  gradcheck((x) => logSoftmax(x, 0), [param([4, 3], 7)]);
});

test('softmax rejects bad input, naming the op', () => {
  assert.throws(() => softmax(tensor([1, 2], [2], 'i32')), /softmax: input must be f32/);
  assert.throws(() => logSoftmax(tensor([1, 2], [1, 2]), 2), /logSoftmax: axis 2 is out of range/);
  assert.throws(() => softmax(tensor([], [2, 0])), /softmax: axis -1 of \[2, 0\] is empty/);
});
