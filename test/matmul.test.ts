import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  autocast,
  backward,
  linear,
  matmul,
  mul,
  native,
  Rng,
  randn,
  sum,
  tensor,
  toBf16,
  toF32,
} from '../src/tensor/index.js';
import { gradcheck, relativeError } from './helpers/gradcheck.js';

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

test('bf16 autocast linear of many rows (B packed for oneDNN) stays close to f32, outputs and gradients', () => {
  // bf16 rounds to 8 significant bits, so products land within about a percent.
  for (const transB of [true, false]) {
    const x = param([300, 48], 11);
    const w = param(transB ? [40, 48] : [48, 40], 12);
    const bias = param([40], 13);
    const up = randn([300, 40], new Rng(14));
    const run = (dtype: 'f32' | 'bf16') => {
      for (const t of [x, w, bias]) t.grad = null;
      const y = autocast(dtype, () => linear(x, w, bias, { transB }));
      backward(sum(mul(y, up)));
      return [y.toArray(), x.grad!.toArray(), w.grad!.toArray()];
    };
    const exact = run('f32');
    const low = run('bf16');
    for (const [i, what] of ['output', 'input gradient', 'weight gradient'].entries()) {
      const err = relativeError(low[i], exact[i]);
      assert.ok(err < 1e-2, `transB ${transB}, ${what}: relative error ${err}`);
    }
  }
});

test('matmul names the op and the shapes on a mismatch', () => {
  assert.throws(
    () => matmul(tensor([1, 2, 3, 4], [2, 2]), tensor([1, 2, 3], [3, 1])),
    /matmul: inner dimensions differ.*\[2, 2\]/,
  );
});

test('bf16 autocast linear: the bias gradient is the exact column sum of the output gradient', () => {
  const x = param([37, 24], 3);
  const w = param([24, 19], 4);
  const bias = param([19], 5);
  const up = randn([37, 19], new Rng(6));
  autocast('bf16', () => backward(sum(mul(linear(x, w, bias), up))));
  const want = Array.from({ length: 19 }, (_, c) => {
    let s = 0;
    for (let r = 0; r < 37; r++) s += up.f32[r * 19 + c];
    return s;
  });
  const got = bias.grad!.toArray();
  for (let c = 0; c < 19; c++) assert.ok(Math.abs(got[c] - want[c]) < 1e-4, `column ${c}: ${got[c]} vs ${want[c]}`);
  // The weight gradient (a bf16 GEMM) stays close to the f32 one.
  const wLow = w.grad!.toArray();
  w.grad = null;
  backward(sum(mul(linear(x, w, bias), up)));
  const wExact = w.grad!.toArray();
  for (let i = 0; i < wExact.length; i++) assert.ok(Math.abs(wExact[i] - wLow[i]) < 0.2 + 0.03 * Math.abs(wExact[i]));
});

test('bf16 autocast linear: the bias gradient of a batch big enough to split across threads', () => {
  const [rows, cols] = [1024, 64]; // rows over several thread chunks
  const x = param([rows, 8], 7);
  const w = param([8, cols], 8);
  const bias = param([cols], 9);
  const up = randn([rows, cols], new Rng(10));
  autocast('bf16', () => backward(sum(mul(linear(x, w, bias), up))));
  const got = bias.grad!.toArray();
  for (let c = 0; c < cols; c++) {
    let want = 0;
    for (let r = 0; r < rows; r++) want += up.f32[r * cols + c];
    assert.ok(Math.abs(got[c] - want) < 1e-3, `column ${c}: ${got[c]} vs ${want}`);
  }
});

// The f32 value of each bf16 (round to nearest even), so that a float64 sum over the rounded weights is exact.
function bf16Round(x: Float32Array): { bits: Uint16Array; values: Float32Array } {
  const bits = new Uint16Array(x.length);
  native.toBf16(x, bits);
  const values = new Float32Array(new Uint32Array(Array.from(bits, (h) => h << 16)).buffer);
  return { bits, values };
}

for (const weights of ['f32', 'bf16'] as const)
  for (const transB of [true, false])
    test(`few-row products (the decode path) against ${weights} ${transB ? 'Linear (N×K)' : 'Conv1D (K×N)'} weights match a float64 sum, with bias and accumulation`, () => {
      const rng = new Rng(5);
      const values = (n: number) => Float32Array.from({ length: n }, () => rng.next() - 0.5);
      for (const M of [1, 2, 3, 4, 5, 8])
        for (const [K, N] of [
          [256, 200],
          [17, 33],
          [1024, 70],
          [5, 3],
          [7, 1100],
          [9, 8250], // wider than a Conv1D band's chunk at every M
        ])
          for (const accumulate of [false, true]) {
            const a = values(M * K);
            const raw = values(N * K);
            const w = weights === 'bf16' ? bf16Round(raw) : { bits: null, values: raw };
            // b[n, k] in the layout under test
            const at = (n: number, k: number) => (transB ? w.values[n * K + k] : w.values[k * N + n]);
            const bias = values(N);
            const c = values(M * N);
            const before = c.slice();
            if (w.bits) native.matmulBf16Weights(a, w.bits, c, M, N, K, transB, accumulate, bias);
            else native.matmul(a, w.values, c, 1, 1, 1, M, N, K, false, transB, accumulate, false, bias);
            for (let m = 0; m < M; m++)
              for (let n = 0; n < N; n++) {
                let want = bias[n] + (accumulate ? before[m * N + n] : 0);
                for (let k = 0; k < K; k++) want += a[m * K + k] * at(n, k);
                const got = c[m * N + n];
                assert.ok(
                  Math.abs(got - want) <= 1e-5 * (1 + Math.abs(want)),
                  `M=${M} K=${K} N=${N} [${m},${n}]: ${got} vs ${want}`,
                );
              }
          }
    });

test('many rows against a bf16 weight (oneDNN on bf16 activations) stay within bf16 rounding of f32, with gradients', () => {
  const rng = new Rng(8);
  for (const transB of [true, false]) {
    const x = randn([3, 40, 96], rng);
    x.requiresGrad = true;
    const w = randn(transB ? [72, 96] : [96, 72], rng);
    const w16 = toBf16(w);
    const bias = randn([72], rng);
    const want = linear(x, toF32(w16), bias, { transB });
    const got = linear(x, w16, bias, { transB });
    // Activations rounded to bf16 (8 bits of mantissa) over 96 products: well under 1 %.
    assert.ok(relativeError(got.f32, want.f32) < 1e-2, `transB=${transB}: ${relativeError(got.f32, want.f32)}`);
    backward(sum(mul(got, got)));
    const g16 = x.grad!.f32.slice();
    x.grad = null;
    backward(sum(mul(want, want)));
    assert.ok(relativeError(g16, x.grad!.f32) < 2e-2);
    x.grad = null;
  }
});

test('empty products have PyTorch shapes and values, forward and backward', () => {
  assert.deepEqual(matmul(tensor([], [0, 4]), tensor(new Array(12).fill(1), [4, 3])).shape, [0, 3]);
  const a = tensor([], [2, 0]);
  const b = tensor([], [0, 3]);
  a.requiresGrad = true;
  b.requiresGrad = true;
  const y = linear(a, tensor([], [0, 3]), tensor([1, 2, 3], [3]));
  assert.deepEqual(y.toArray(), [1, 2, 3, 1, 2, 3]);
  const z = matmul(a, b);
  assert.deepEqual(z.toArray(), [0, 0, 0, 0, 0, 0]);
  backward(sum(z));
  assert.deepEqual(
    [a.grad?.shape, b.grad?.shape],
    [
      [2, 0],
      [0, 3],
    ],
  );
});
