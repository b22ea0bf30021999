import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backward, crossEntropy, Rng, randn, type Tensor, tensor, tidy } from '../src/tensor/index.js';
import { gradcheck } from './helpers/gradcheck.js';

function param(shape: number[], seed: number, std = 1): Tensor {
  const t = randn(shape, new Rng(seed), std);
  t.requiresGrad = true;
  return t;
}

const ints = (values: number[], shape: number[] = [values.length]) => tensor(values, shape, 'i32');

/** float64 per-row losses (0 at ignored rows) and float64 softmax probabilities. */
function refCrossEntropy(logits: Tensor, targets: Tensor, ignoreIndex: number) {
  const V = logits.shape[logits.ndim - 1];
  const x = logits.f32;
  const t = targets.i32;
  const losses: number[] = [];
  const probs: number[][] = [];
  for (let r = 0; r < t.length; r++) {
    const row = Array.from(x.subarray(r * V, (r + 1) * V));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    probs.push(row.map((v) => Math.exp(v - lse)));
    losses.push(t[r] === ignoreIndex ? 0 : lse - row[t[r]]);
  }
  return { losses, probs };
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(err <= atol + rtol * Math.abs(expected[i]), `element ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('crossEntropy mean, sum and none match float64, skipping ignored targets', () => {
  const logits = randn([2, 3, 11], new Rng(1), 4);
  const targets = ints([3, -100, 10, 0, 7, -100], [2, 3]);
  const { losses } = refCrossEntropy(logits, targets, -100);
  const sum = losses.reduce((s, v) => s + v, 0);
  const none = crossEntropy(logits, targets, { reduction: 'none' });
  assert.deepEqual(none.shape, [2, 3]);
  assertClose(none.toArray(), losses, 1e-5, 1e-5);
  assert.equal(none.toArray()[1], 0);
  assertClose([crossEntropy(logits, targets, { reduction: 'sum' }).item()], [sum], 1e-5, 1e-5);
  assertClose([crossEntropy(logits, targets).item()], [sum / 4], 1e-5, 1e-5);
});

test('crossEntropy honours a custom ignoreIndex', () => {
  const logits = randn([4, 5], new Rng(2));
  const targets = ints([4, 0, 0, 2]);
  const { losses } = refCrossEntropy(logits, targets, 0);
  const expected = (losses[0] + losses[3]) / 2;
  assertClose([crossEntropy(logits, targets, { ignoreIndex: 0 }).item()], [expected], 1e-6, 1e-5);
});

test('crossEntropy over a large vocabulary (the parallel path) matches float64', () => {
  const logits = randn([64, 3000], new Rng(3), 6);
  const rng = new Rng(4);
  const targets = ints(Array.from({ length: 64 }, () => rng.int(3000)));
  const { losses } = refCrossEntropy(logits, targets, -100);
  assertClose(crossEntropy(logits, targets, { reduction: 'none' }).toArray(), losses, 1e-5, 1e-5);
});

test('crossEntropy mean backward is (softmax − onehot) / count, zero on ignored rows', () => {
  tidy(() => {
    const logits = param([3, 6], 5, 3);
    const targets = ints([2, -100, 5]);
    backward(crossEntropy(logits, targets));
    const { probs } = refCrossEntropy(logits, targets, -100);
    const t = targets.i32;
    const expected = probs.flatMap((row, r) => row.map((p, j) => (t[r] === -100 ? 0 : (p - (j === t[r] ? 1 : 0)) / 2)));
    assertClose(logits.grad!.toArray(), expected, 1e-7, 1e-5);
  });
});

test('crossEntropy with every target ignored gives loss 0 and zero gradient', () => {
  tidy(() => {
    const logits = param([2, 4], 6);
    const loss = crossEntropy(logits, ints([-100, -100]));
    assert.equal(loss.item(), 0);
    backward(loss);
    assert.deepEqual(logits.grad!.toArray(), [0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

for (const reduction of ['mean', 'sum', 'none'] as const) {
  test(`crossEntropy gradients, reduction ${reduction}`, () => {
    const targets = ints([1, 4, -100, 0, 3, 3], [2, 3]);
    gradcheck((x) => crossEntropy(x, targets, { reduction }), [param([2, 3, 5], 7)]);
  });
}

test('crossEntropy names the op, the bad target and its position, before computing', () => {
  const logits = randn([2, 2, 4], new Rng(8));
  assert.throws(
    () => crossEntropy(logits, ints([0, 1, 2, 4], [2, 2])),
    /crossEntropy: target 4 at position \[1, 1\] is outside \[0, 4\)/,
  );
  assert.throws(
    () => crossEntropy(logits, ints([0, -1, 2, 3], [2, 2])),
    /crossEntropy: target -1 at position \[0, 1\]/,
  );
  assert.throws(
    () => crossEntropy(logits, ints([0, 1, 2, -100], [2, 2]), { ignoreIndex: 0 }),
    /crossEntropy: target -100 at position \[1, 1\]/,
  );
});

test('crossEntropy rejects mismatched shapes and dtypes, naming the op', () => {
  const logits = randn([2, 4], new Rng(9));
  assert.throws(() => crossEntropy(logits, ints([0, 1, 2])), /crossEntropy: targets \[3\] must match/);
  assert.throws(() => crossEntropy(logits, tensor([0, 1])), /crossEntropy: targets must be i32/);
  assert.throws(
    () => crossEntropy(logits, ints([0, 1]), { reduction: 'avg' as 'mean' }),
    /crossEntropy: reduction must be/,
  );
});
