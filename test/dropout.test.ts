import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backward, dropout, getThreads, ones, Rng, rand, setThreads, type Tensor, tidy } from '../src/tensor/index.js';
import { gradcheck } from './helpers/gradcheck.js';

// Values in [1, 2): never zero, so a zero output means a dropped element.
function positive(shape: number[], seed: number): Tensor {
  return rand(shape, new Rng(seed), 1, 2);
}

function maskOf(y: Tensor): boolean[] {
  return Array.from(y.f32, (v) => v !== 0);
}

test('dropout keeps about 1 − p of the elements and scales them by 1/(1 − p)', () => {
  const x = positive([400, 250], 1);
  for (const p of [0.1, 0.5, 0.9]) {
    const y = dropout(x, p, 42);
    const xv = x.f32;
    const yv = y.f32;
    let kept = 0;
    for (let i = 0; i < xv.length; i++) {
      if (yv[i] === 0) continue;
      kept++;
      assert.ok(Math.abs(yv[i] - xv[i] / (1 - p)) <= 1e-6 * Math.abs(yv[i]), `element ${i}`);
    }
    // 100k Bernoulli draws: the standard error of the kept fraction is under 0.0016.
    assert.ok(Math.abs(kept / xv.length - (1 - p)) < 0.01, `p=${p}: kept fraction ${kept / xv.length}`);
  }
});

test('the same seed gives the same mask, different seeds differ', () => {
  const x = positive([1000], 2);
  const a = maskOf(dropout(x, 0.5, 7));
  assert.deepEqual(maskOf(dropout(x, 0.5, 7)), a);
  const b = maskOf(dropout(x, 0.5, 8));
  const differ = a.filter((k, i) => k !== b[i]).length;
  assert.ok(differ > 400 && differ < 600, `${differ} of 1000 mask entries differ`); // ≈ half for independent masks
});

test('the mask does not depend on the thread count', () => {
  const saved = getThreads();
  const x = positive([300, 300], 3);
  try {
    setThreads(1);
    const one = dropout(x, 0.3, 9).toArray();
    setThreads(2);
    assert.deepEqual(dropout(x, 0.3, 9).toArray(), one);
  } finally {
    setThreads(saved);
  }
});

test('the gradient is the forward mask scaled by 1/(1 − p)', () => {
  tidy(() => {
    const x = positive([5000], 4);
    x.requiresGrad = true;
    const p = 0.25;
    const y = dropout(x, p, 11);
    const mask = maskOf(y);
    backward(y, ones([5000]));
    const scale = Math.fround(1 / (1 - p));
    assert.deepEqual(
      x.grad!.toArray(),
      mask.map((k) => (k ? scale : 0)),
    );
  });
  const x = positive([3, 7], 5);
  x.requiresGrad = true;
  gradcheck((a) => dropout(a, 0.4, 12), [x]);
});

test('p = 0 and eval mode return the input itself', () => {
  const x = positive([10], 6);
  assert.equal(dropout(x, 0, 1), x);
  assert.equal(dropout(x, 0.5, 1, false), x);
});

test('dropout rejects p outside [0, 1) and bad seeds, naming the op', () => {
  const x = positive([4], 7);
  assert.throws(() => dropout(x, 1, 0), /dropout: p must be in \[0, 1\), got 1/);
  assert.throws(() => dropout(x, -0.1, 0), /dropout: p must be in \[0, 1\)/);
  assert.throws(() => dropout(x, Number.NaN, 0), /dropout: p must be in \[0, 1\)/);
  assert.throws(() => dropout(x, 0.5, 1.5), /dropout: seed must be a non-negative integer/);
});
