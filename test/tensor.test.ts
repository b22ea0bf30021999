import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backward,
  detach,
  keep,
  matmul,
  noGrad,
  pooledMemory,
  Rng,
  randn,
  setPoolLimit,
  Tensor,
  tensor,
  tidy,
  zeros,
} from '../src/tensor/index.js';

function param(shape: number[], seed: number): Tensor {
  const t = keep(randn(shape, new Rng(seed)));
  t.requiresGrad = true;
  return t;
}

test('tidy releases what it made, keeps what it returns', () => {
  let inner: Tensor | undefined;
  const out = tidy(() => {
    inner = zeros([4]);
    return zeros([2]);
  });
  assert.ok(inner?.disposed);
  assert.ok(!out.disposed);
  assert.throws(() => inner?.f32, /was released/);
});

test('tidy releases on throw and rethrows', () => {
  let made: Tensor | undefined;
  assert.throws(
    () =>
      tidy(() => {
        made = zeros([3]);
        throw new Error('boom');
      }),
    /boom/,
  );
  assert.ok(made?.disposed);
});

test('gradients accumulate across backward calls', () => {
  const w = param([3, 2], 1);
  const x = tensor([1, 2, 3], [1, 3]);
  tidy(() => backward(matmul(x, w), tensor([1, 1], [1, 2])));
  const first = w.grad!.toArray();
  tidy(() => backward(matmul(x, w), tensor([1, 1], [1, 2])));
  assert.deepEqual(
    w.grad!.toArray(),
    first.map((v) => 2 * v),
  );
  assert.deepEqual(first, [1, 1, 2, 2, 3, 3]);
});

test('a tensor used twice receives the sum of both gradients', () => {
  const w = param([2, 2], 2);
  const x = tensor([1, 0, 0, 1], [2, 2]);
  tidy(() => {
    const y = matmul(matmul(x, w), w);
    backward(y, tensor([1, 1, 1, 1], [2, 2]));
  });
  // d/dW of 1ᵀ(W·W)1 with x = I: grad = 1·(W1)ᵀ... check against a finite difference instead of algebra
  const g = w.grad!.toArray();
  const d = w.f32;
  const f = () =>
    tidy(() =>
      matmul(matmul(x, w), w)
        .toArray()
        .reduce((a, b) => a + b, 0),
    );
  for (let i = 0; i < 4; i++) {
    const o = d[i];
    d[i] = o + 1e-2;
    const up = f();
    d[i] = o - 1e-2;
    const down = f();
    d[i] = o;
    assert.ok(Math.abs((up - down) / 2e-2 - g[i]) < 1e-3);
  }
});

test('backward through a freed graph names the op', () => {
  const w = param([2, 2], 3);
  tidy(() => {
    const y = matmul(tensor([1, 2, 3, 4], [2, 2]), w);
    const g = tensor([1, 1, 1, 1], [2, 2]);
    backward(y, g);
    assert.throws(() => backward(y, g), /matmul was already freed/);
    backward(matmul(tensor([1, 2, 3, 4], [2, 2]), w), g, { retainGraph: true });
  });
});

test('NaN loss is refused before any gradient is written', () => {
  const w = param([1, 1], 4);
  tidy(() => {
    const y = matmul(tensor([Number.NaN], [1, 1]), w);
    assert.throws(() => backward(y), /backward: loss is NaN \(from op matmul\)/);
  });
  assert.equal(w.grad, null);
});

test('noGrad and detach record nothing', () => {
  const w = param([2, 2], 5);
  const x = tensor([1, 2, 3, 4], [2, 2]);
  assert.equal(noGrad(() => matmul(x, w)).requiresGrad, false);
  assert.equal(detach(matmul(x, w)).requiresGrad, false);
  assert.throws(() => backward(detach(matmul(x, w))), /does not require grad/);
});

test('memory stays flat over 10,000 training-like steps', () => {
  const w = param([64, 64], 6);
  const x = keep(randn([32, 64], new Rng(7)));
  const step = () =>
    tidy(() => {
      const y = matmul(matmul(x, w), w, { transB: true });
      backward(y, y);
      noGrad(() => {
        w.grad!.dispose();
        w.grad = null;
      });
    });
  for (let i = 0; i < 50; i++) step();
  const pooled = pooledMemory();
  const heap = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 10_000; i++) step();
  assert.equal(pooledMemory(), pooled);
  assert.ok(process.memoryUsage().arrayBuffers - heap < 1 << 20);
});

test('the buffer pool keeps the most recently used sizes within its limit', () => {
  setPoolLimit(1 << 20); // 1 MiB: room for the last few of the 64 KiB buffers below
  try {
    const kept = (n: number) => {
      const t = Tensor.empty([n]);
      const buf = t.f32;
      t.dispose();
      return buf;
    };
    const first = kept(16_384);
    for (let i = 1; i <= 40; i++) kept(16_384 + i); // 40 other sizes of ~64 KiB: 2.5 MiB in all
    assert.ok(pooledMemory() <= 1 << 20, `pool holds ${pooledMemory()} bytes`);
    const last = kept(16_384 + 40);
    assert.equal(Tensor.empty([16_384 + 40]).f32, last, 'the newest size is reused');
    assert.notEqual(Tensor.empty([16_384]).f32, first, 'the oldest size was let go');
  } finally {
    setPoolLimit(2 ** 30);
  }
});
